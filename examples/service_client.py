"""A small client of ``edgerec serve`` (standard library only): it reads the token file,
records one event and prints recommendations, over the service's Unix socket.

    edgerec serve --bundle bundle/ --db history.db &
    python examples/service_client.py --profile alice --item-id v00012 --kind complete

Any language with Unix sockets and JSON can do the same: write one JSON object per line,
read one line back. The protocol is described in docs/service.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence


def default_socket_path() -> Path:
    """Where ``edgerec serve`` listens unless told otherwise."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(runtime) / "edgerec" if runtime else Path(tempfile.gettempdir()) / f"edgerec-{os.getuid()}"
    return folder / "edgerec.sock"


class ServiceError(Exception):
    """An error answer: ``kind`` is the error type (``HistoryError``, ``AuthError``...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class EdgerecClient:
    """One connection to the service; :meth:`call` sends a request and waits for its answer."""

    def __init__(self, socket_path: str | Path, token: str, timeout_s: float = 30.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout_s)
        self._sock.connect(str(socket_path))
        self._lines = self._sock.makefile("rb")
        self._token = token
        self._next_id = 0

    def call(self, method: str, **params: Any) -> Any:
        """Run ``method`` with ``params`` and return its result.

        :raises ServiceError: the service answered with an error.
        """
        self._next_id += 1
        request = {"token": self._token, "method": method, "params": params, "id": self._next_id}
        self._sock.sendall(json.dumps(request).encode("utf-8") + b"\n")
        line = self._lines.readline()
        if not line:
            raise ConnectionError("the service closed the connection")
        answer = json.loads(line)
        if not answer["ok"]:
            raise ServiceError(answer["error"]["type"], answer["error"]["message"])
        return answer["result"]

    def close(self) -> None:
        """Close the connection."""
        self._lines.close()
        self._sock.close()

    def __enter__(self) -> "EdgerecClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Record one event for a profile, then print its recommendations."""
    parser = argparse.ArgumentParser(description="Record an event and print recommendations through `edgerec serve`.")
    parser.add_argument("--socket", default=str(default_socket_path()), help="the service's Unix socket")
    parser.add_argument("--token-file", default=None, help="the service's token file (default: 'token' beside the socket)")
    parser.add_argument("--profile", required=True, help="profile id")
    parser.add_argument("--item-id", required=True, help="item id to record")
    parser.add_argument("--kind", default="play", help="event kind (default play)")
    parser.add_argument("-k", type=int, default=10, help="how many recommendations (default 10)")
    parser.add_argument("--device", choices=["tv", "speaker"], default="tv", help="device kind (default tv)")
    args = parser.parse_args(argv)

    token_file = Path(args.token_file) if args.token_file else Path(args.socket).parent / "token"
    try:
        token = token_file.read_text(encoding="ascii").strip()
        with EdgerecClient(args.socket, token) as client:
            event = client.call("record", profile=args.profile, item_id=args.item_id, kind=args.kind, device=args.device)
            print(f"recorded {args.kind} of {args.item_id} for {args.profile} (event {event['event_id']})")
            recs = client.call("recommend", profile=args.profile, k=args.k, device=args.device)
    except (OSError, ServiceError) as exc:
        print(f"service_client: error: {exc}", file=sys.stderr)
        return 1
    for n, r in enumerate(recs, 1):
        print(f"{n:>2}  {r['item_id']:<12} {r['kind']:<5} {r['score']:7.3f}  {r['title']}  ({r['reason']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
