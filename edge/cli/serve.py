"""``edgerec serve``: registered here; the local service lives in :mod:`edge.service`.

``--device-profile`` is the hardware (as in every ``edgerec`` command; ``--profile`` always
names a person in the household, and a service client sends that per request)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from edge.cli.common import DEVICE_PROFILE_HELP, device_profile_arg, load_device_profile

if TYPE_CHECKING:
    from edge.profiles import DeviceProfile
    from edge.service import Limits

DESCRIPTION = """\
Serve the device API (recommend, record, add_item, add_profile, profiles, recent, block,
blocked, forget, export, health: the Recommender's methods, with its argument names) as JSON
to apps on this device that are not written in Python.

Unix socket: one JSON request per line, e.g.
  {"token": "...", "method": "recommend", "params": {"profile": "alice", "k": 10}}
HTTP (with --http-port, on 127.0.0.1 only): POST /v1/<method> with the params object as the
body and "Authorization: Bearer <token>".

The socket is created with mode 0600 in a folder of mode 0700; the token is read from the
token file, or generated there (mode 0600) on first start. Requests without the token are
refused. Schema of every method: docs/service.md. SIGTERM or Ctrl-C stops the service and
removes the socket file."""


def _cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from edge.backends import BACKENDS
    from edge.errors import EdgeError
    from edge.recommender import Recommender
    from edge.service import Service

    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    unknown = [b for b in backends if b not in BACKENDS]
    if not backends or unknown:
        raise EdgeError(f"--backends {args.backends!r}; expected a comma-separated list of {list(BACKENDS)}")
    device = load_device_profile(args.device_profile)
    limits = request_limits(args, device)
    logging.basicConfig(level=logging.INFO, format="edgerec serve: %(levelname)s: %(message)s")
    rec = Recommender.open(args.bundle, args.db, backends=backends, threads=args.threads, device_profile=device)
    try:
        service = Service(rec, args.socket, token_file=args.token_file, http_port=args.http_port, limits=limits).bind()
        print(f"edgerec serve: listening on unix:{service.socket_path} (mode 0600, folder mode 0700)", flush=True)
        if service.http_address is not None:
            host, port = service.http_address
            host = f"[{host}]" if ":" in host else host
            print(f"edgerec serve: listening on http://{host}:{port}/v1/<method>", flush=True)
        if service.token_file is not None:
            state = "created now" if service.token_created else "existing"
            print(f"edgerec serve: token file {service.token_file} ({state}, mode 0600): send its content as \"token\" "
                  "(socket) or \"Authorization: Bearer\" (HTTP)", flush=True)
        print(f"edgerec serve: bundle {rec.bundle.root}, {len(rec.bundle.items)} items, backend {rec.interest.backend}; "
              "SIGTERM or Ctrl-C stops", flush=True)
        service.serve_forever()
        print("edgerec serve: stopped; socket removed", flush=True)
    finally:
        rec.close()
    return 0


def request_limits(args: argparse.Namespace, device: "DeviceProfile | None") -> "Limits":
    """The service's limits: ``--max-request-bytes`` and ``--rate`` when given, else the device
    profile's ``[limits]`` (``max_request_bytes``, ``max_requests_per_s``), else the defaults of
    :class:`edge.service.Limits`. Bursts are twice the rate.

    :raises EdgeError: a value out of range (a profile rate of 0 included).
    """
    from edge.service import Limits

    d = Limits()
    size = args.max_request_bytes if args.max_request_bytes is not None else device.limits.max_request_bytes if device else d.max_request_bytes
    rate = args.rate if args.rate is not None else device.limits.max_requests_per_s if device else d.rate_per_s
    return Limits(max_request_bytes=size, rate_per_s=rate, burst=max(1, round(2 * rate)),
                  read_timeout_s=args.read_timeout, max_connections=args.max_connections,
                  decode_timeout_s=args.decode_timeout if args.decode_timeout > 0 else None)


def register(sub: "argparse._SubParsersAction") -> None:
    """Add ``serve`` to ``sub``."""
    from edge.service import Limits, default_socket_path

    d = Limits()
    p = sub.add_parser("serve", help="serve the device API as JSON on a Unix socket (and optionally 127.0.0.1 HTTP)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, help="bundle folder or bundle store")
    p.add_argument("--db", required=True, help="SQLite history file (created when missing)")
    p.add_argument("--socket", default=None,
                   help=f"Unix socket path; its folder is created with mode 0700 or must be private already "
                        f"(default {default_socket_path()})")
    p.add_argument("--http-port", type=int, default=None, help="also serve HTTP on 127.0.0.1:PORT (default: no HTTP)")
    p.add_argument("--token-file", default=None,
                   help="file holding the token; created with a new token (mode 0600) when missing (default: 'token' beside the socket)")
    device_profile_arg(p, help=DEVICE_PROFILE_HELP + "; its threads, backends, history and [security] settings apply, "
                                                     "and its [limits] give the request size and rate defaults")
    p.add_argument("--max-request-bytes", type=int, default=None,
                   help=f"longest request line or HTTP body in bytes (default: the device profile's limits.max_request_bytes, "
                        f"else {d.max_request_bytes})")
    p.add_argument("--rate", type=float, default=None,
                   help=f"requests per second per client, bursts of twice that (default: the device profile's "
                        f"limits.max_requests_per_s, else {d.rate_per_s:g})")
    p.add_argument("--read-timeout", type=float, default=d.read_timeout_s,
                   help=f"seconds a client has to send a whole request before the connection is closed (default {d.read_timeout_s:g})")
    p.add_argument("--max-connections", type=int, default=d.max_connections,
                   help=f"open connections at most on each transport; more are answered Busy (default {d.max_connections})")
    p.add_argument("--decode-timeout", type=float, default=60.0,
                   help="seconds add_item may spend decoding a file, in a child process stopped after that (default 60; "
                        "0 decodes in the service's own process without a limit)")
    p.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    p.add_argument("--backends", default="onnx,tflite", help="backends to try, in order (default onnx,tflite)")
    p.set_defaults(func=_cmd_serve)
