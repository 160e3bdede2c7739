"""What clients may ask of the service (:class:`Limits`) and the fixed bounds beside it."""

from __future__ import annotations

from dataclasses import dataclass

from edge.contract.defaults import DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_REQUESTS_PER_S
from edge.errors import EdgeError

#: Longest HTTP request line plus headers (bytes).
MAX_HEADER_BYTES = 16 * 1024
#: After answering a request that closes the connection (too long, too slow, busy), unread
#: input is drained for up to this long (s) and this many bytes before closing: closing with
#: unread data resets the connection, and the client would lose the answer explaining why.
LINGER_S = 1.0
LINGER_BYTES = 1 << 20
#: How long (s) shutdown waits for requests already running in the facade.
SHUTDOWN_GRACE_S = 10.0


@dataclass(frozen=True)
class Limits:
    """What clients may ask of the service.

    :param max_request_bytes: longest request in bytes: a line on the socket (without its
        newline) or an HTTP body.
    :param rate_per_s: requests per second a client may sustain (token-bucket refill).
    :param burst: requests a client may send at once (bucket size).
    :param read_timeout_s: seconds a client has to send a complete request, counted from
        connecting or from the previous answer; an idle or slow connection is then closed.
    :param max_connections: open connections on each transport; more are answered ``Busy``
        and closed.
    :param decode_timeout_s: ``add_item`` decodes in a child process killed after this many
        seconds (None: in the service's process, without a limit).
    :raises EdgeError: a value out of range.
    """

    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    rate_per_s: float = DEFAULT_MAX_REQUESTS_PER_S
    burst: int = round(2 * DEFAULT_MAX_REQUESTS_PER_S)  # as `edgerec serve` sets it: twice the rate
    read_timeout_s: float = 30.0
    max_connections: int = 32
    decode_timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.decode_timeout_s is not None and (isinstance(self.decode_timeout_s, bool) or not isinstance(self.decode_timeout_s, (int, float))
                                                  or not 1e-3 <= self.decode_timeout_s <= 86_400):
            raise EdgeError(f"service limit decode_timeout_s={self.decode_timeout_s!r}; expected a number from 0.001 to 86400 or None")
        checks = [("max_request_bytes", self.max_request_bytes, 64, 64 << 20), ("rate_per_s", self.rate_per_s, 1e-3, 1e6),
                  ("burst", self.burst, 1, 1_000_000), ("read_timeout_s", self.read_timeout_s, 1e-3, 86_400),
                  ("max_connections", self.max_connections, 1, 10_000)]
        for name, value, lo, hi in checks:
            kinds = (int, float) if isinstance(lo, float) else int
            if isinstance(value, bool) or not isinstance(value, kinds) or not lo <= value <= hi:
                what = "a number" if kinds is not int else "a whole number"
                raise EdgeError(f"service limit {name}={value!r}; expected {what} from {lo} to {hi}")
