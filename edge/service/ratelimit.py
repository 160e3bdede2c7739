"""Token buckets, one per client: a process on the socket (``SO_PEERCRED``), a peer address
over HTTP. Over the budget a request is answered ``RateLimited`` without being run."""

from __future__ import annotations

import time
from typing import Hashable

from edge.service.limits import Limits

#: Token buckets remembered at most; buckets that have refilled are dropped first.
MAX_BUCKETS = 1024


def rate_limited_message(limits: Limits) -> str:
    """The ``RateLimited`` answer's message."""
    return f"more than {limits.burst} requests at once or {limits.rate_per_s:g} per second; slow down and retry"


class Buckets:
    """Token buckets per client key; used from the event loop thread only."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = float(rate), float(burst)
        self._state: dict[Hashable, list[float]] = {}  # key -> [tokens, last update (monotonic s)]

    def take(self, key: Hashable) -> bool:
        """Spend one token of ``key``'s bucket; False when it is empty."""
        now = time.monotonic()
        b = self._state.get(key)
        if b is None:
            if len(self._state) >= MAX_BUCKETS:
                self._prune(now)
            b = self._state[key] = [self.burst, now]
        tokens = min(self.burst, b[0] + (now - b[1]) * self.rate)
        b[1] = now
        if tokens < 1.0:
            b[0] = tokens
            return False
        b[0] = tokens - 1.0
        return True

    def forget(self, key: Hashable) -> None:
        """Drop ``key``'s bucket (its connection is gone)."""
        self._state.pop(key, None)

    def _prune(self, now: float) -> None:
        # A refilled bucket equals a new one, so dropping it forgets nothing.
        for key in [k for k, (t, last) in self._state.items() if t + (now - last) * self.rate >= self.burst]:
            del self._state[key]
        if len(self._state) >= MAX_BUCKETS:
            for key in sorted(self._state, key=lambda k: self._state[k][1])[: len(self._state) // 2]:
                del self._state[key]
