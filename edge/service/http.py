"""The HTTP transport, on a loopback address only: ``POST /v1/<method>`` with the params
object as the body and ``Authorization: Bearer <token>``; the response body is the envelope
(without ``id``), one request per connection (``Connection: close``).

A small hand-written HTTP/1.x reader rather than :mod:`http.server`: it enforces the header
and body limits and one deadline for the whole request, refuses chunked bodies and repeated
framing headers, and checks ``Host`` against DNS rebinding.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time

from edge.errors import EdgeError, RequestError
from edge.service import streams
from edge.service.access import host_allowed
from edge.service.limits import MAX_HEADER_BYTES, Limits
from edge.service.protocol import INTERNAL_ERROR, RATE_LIMITED, answer_error, parse_json
from edge.service.ratelimit import rate_limited_message

log = logging.getLogger("edge.service")

#: HTTP path prefix; the method name follows it.
API_PREFIX = "/v1/"

_HTTP_STATUS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
                408: "Request Timeout", 411: "Length Required", 413: "Content Too Large", 422: "Unprocessable Content",
                429: "Too Many Requests", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
                503: "Service Unavailable"}
#: The status of an answer by its error type (None: success); any other EdgeError is 422.
STATUS_BY_TYPE = {None: 200, "RequestError": 400, "AuthError": 401, RATE_LIMITED: 429, "Busy": 503, INTERNAL_ERROR: 500}


def bind(host: str, port: int, limits: Limits) -> socket.socket:
    """Listen on ``host:port`` (``host`` already checked to be a loopback address).

    :raises EdgeError: the port is taken or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(min(limits.max_connections, 128))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise EdgeError(f"cannot serve HTTP on {host}:{port} ({exc}); choose another --http-port") from None
    return sock


def parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """The verb, target and headers (names lower-cased) of a request head ending in a blank line.

    :raises RequestError: a malformed request line or header line, or a repeated framing header.
    """
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise RequestError("malformed HTTP request line; expected `POST /v1/<method> HTTP/1.1`")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise RequestError(f"malformed HTTP header line {line[:40]!r}")
        name = name.lower()
        if name in headers and name in ("content-length", "authorization", "host", "transfer-encoding"):
            raise RequestError(f"repeated HTTP header {name!r}")
        headers[name] = value.strip()
    return parts[0], parts[1], headers


def response(status: int, body: bytes) -> bytes:
    """A complete ``Connection: close`` response with a JSON body."""
    extra = "WWW-Authenticate: Bearer\r\n" if status == 401 else "Allow: POST\r\n" if status == 405 else ""
    head = (f"HTTP/1.1 {status} {_HTTP_STATUS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n{extra}Connection: close\r\n\r\n")
    return head.encode("ascii") + body


async def handle_connection(svc: streams.Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Serve the one request of an HTTP connection."""
    conn = svc._enter("http")
    timeout = svc.limits.read_timeout_s
    try:
        if conn is None:
            await streams.refuse(reader, writer, response(503, svc._busy()[1]), timeout)
            return
        try:
            status, data = await _answer(svc, reader, writer, conn)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            raise
        except Exception:  # a bug here must cost one answer, not the service
            log.exception("an HTTP request failed unexpectedly")
            status, data = 500, answer_error(INTERNAL_ERROR, "the request failed inside the service; the details are in the service's log")[1]
        if status in (408, 411, 413, 431):  # the request was not read to its end
            await streams.refuse(reader, writer, response(status, data), timeout)
        else:
            await streams.send(writer, response(status, data), timeout)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        pass
    except asyncio.CancelledError:
        pass  # shutdown (see edge.service.unix.handle_connection)
    finally:
        svc._leave()
        await streams.close(writer)


async def _answer(svc: streams.Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: streams.Conn) -> tuple[int, bytes]:
    """Read one request and answer it: ``(status, body)``."""
    limits = svc.limits
    timeout = limits.read_timeout_s
    deadline = time.monotonic() + timeout  # one deadline for head and body: a slow drip cannot hold a slot
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except asyncio.LimitOverrunError:
        return 431, answer_error("RequestError", f"request line and headers longer than {MAX_HEADER_BYTES} bytes")[1]
    except asyncio.TimeoutError:
        return 408, answer_error("RequestError", f"no complete request within {timeout:g} s")[1]
    try:
        verb, target, headers = parse_head(head)
    except RequestError as exc:
        return 400, answer_error("RequestError", str(exc))[1]
    if not host_allowed(headers.get("host"), svc.http_host):
        # DNS rebinding: a web page must not reach the service through a name it controls.
        return 400, answer_error("RequestError", f"Host {headers.get('host')!r} is not a loopback name; use http://127.0.0.1:PORT")[1]
    if not target.startswith(API_PREFIX):
        return 404, answer_error("RequestError", f"no such path {target[:80]!r}; use POST {API_PREFIX}<method>")[1]
    if verb != "POST":
        return 405, answer_error("RequestError", f"{verb[:16]} is not allowed; use POST {API_PREFIX}<method> with a JSON body")[1]
    if "transfer-encoding" in headers:
        return 411, answer_error("RequestError", "chunked bodies are not accepted; send Content-Length")[1]
    raw_length = headers.get("content-length", "0")
    if not raw_length.isdigit() or len(raw_length) > 12:
        return 400, answer_error("RequestError", f"bad Content-Length {raw_length[:20]!r}")[1]
    length = int(raw_length)
    if length > limits.max_request_bytes:
        return 413, answer_error("RequestError", f"body of {length} bytes is over the limit of {limits.max_request_bytes} bytes")[1]
    try:
        body = await asyncio.wait_for(reader.readexactly(length), max(deadline - time.monotonic(), 1e-3))
    except asyncio.TimeoutError:
        return 408, answer_error("RequestError", f"no complete request within {timeout:g} s")[1]
    # Every local process and web page shares 127.0.0.1, so buckets go by what a request proves:
    # the token holder (the app) has its own, strangers share another and cannot drain the app's.
    scheme, _, credential = headers.get("authorization", "").partition(" ")
    try:
        svc._authorize(credential.strip() if scheme.lower() == "bearer" else None)
    except EdgeError as exc:
        if not svc._buckets.take(("http", "unauthenticated")):
            return 429, answer_error(RATE_LIMITED, rate_limited_message(limits))[1]
        kind, data = answer_error(type(exc).__name__, str(exc))
        return STATUS_BY_TYPE.get(kind, 422), data
    if not svc._buckets.take(("http", "token")):
        return 429, answer_error(RATE_LIMITED, rate_limited_message(limits))[1]
    try:
        params = parse_json(body, "body", "send the params object") if body.strip() else {}
        conn.busy = True
        try:
            kind, data = await svc._call(target[len(API_PREFIX):], params)
        finally:
            conn.busy = False
    except EdgeError as exc:
        kind, data = answer_error(type(exc).__name__, str(exc))
    return STATUS_BY_TYPE.get(kind, 422), data
