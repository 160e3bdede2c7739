"""The Unix-socket transport: one JSON request per line in, one answer per line out, any
number of requests per connection::

    {"token": "…", "method": "recommend", "params": {"profile": "alice", "k": 5}, "id": 7}
    {"ok": true, "result": [{"item_id": "i004", "title": "…", …}], "id": 7}

A line longer than the request limit is answered and the connection closed (the reader never
buffers more than twice the limit); so is a connection that sends no complete line within the
read timeout. The rate limit is per client process (``SO_PEERCRED``), so reconnecting does not
refill the bucket.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
import struct
from pathlib import Path
from typing import Hashable

from edge.errors import EdgeError, RequestError
from edge.service import streams
from edge.service.limits import Limits
from edge.service.protocol import (INTERNAL_ERROR, RATE_LIMITED, Answer, answer_error, check_request_fields, json_type,
                                   parse_json, request_id)
from edge.service.ratelimit import rate_limited_message

log = logging.getLogger("edge.service")


def _answers(path: Path) -> bool:
    """Whether a service listens on the socket file ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
        return True
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError as exc:
        raise EdgeError(f"{path} exists and cannot be probed ({exc}); remove it if no service uses it") from None
    finally:
        probe.close()


def bind(path: Path, limits: Limits) -> tuple[socket.socket, int]:
    """Listen on ``path`` (mode 0600), replacing a stale socket file a killed service left.

    :returns: the listening socket and the socket file's inode (so that only this socket file
        is removed at shutdown).
    :raises EdgeError: another service answers on ``path``, ``path`` is not a socket, or it
        cannot be bound.
    """
    if os.path.lexists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise EdgeError(f"{path} exists and is not a socket; remove it or choose another --socket path")
        if _answers(path):
            raise EdgeError(f"another service is already listening on {path}; stop it first or choose another --socket path")
        log.info("replacing the stale socket %s (its service did not shut down cleanly)", path)
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        # bind() applies the umask; the 0700 folder keeps others out until this chmod.
        os.chmod(path, 0o600)
        ino = os.stat(path).st_ino
        sock.listen(min(limits.max_connections, 128))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise EdgeError(f"cannot listen on {path} ({exc}); choose another --socket path (at most about 100 characters)") from None
    return sock, ino


def peer_key(writer: asyncio.StreamWriter) -> tuple[str, Hashable]:
    """The rate-limit key of a connection: its client's process id, else the connection."""
    sock = writer.get_extra_info("socket")
    if hasattr(socket, "SO_PEERCRED") and sock is not None:
        try:
            pid, _uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
            if pid > 0:
                # Per process, not per connection: reconnecting does not refill the bucket.
                return "pid", pid
        except OSError:
            pass
    return "conn", id(writer)


async def answer_line(svc: streams.Server, line: bytes, key: Hashable) -> Answer:
    """Answer one request line: rate limit, JSON, then the token before anything the request
    asks, then its fields, then the method."""
    req_id: object = None
    try:
        if not svc._buckets.take(key):
            return answer_error(RATE_LIMITED, rate_limited_message(svc.limits))
        req = parse_json(line, "request", "send one JSON object per line")
        if not isinstance(req, dict):
            raise RequestError(f"a request must be a JSON object, got {json_type(req)}")
        req_id = request_id(req)
        svc._authorize(req.get("token"))
        check_request_fields(req)
        return await svc._call(req.get("method"), req.get("params", {}), req_id)
    except EdgeError as exc:
        return answer_error(type(exc).__name__, str(exc), req_id)
    except Exception:  # a bug here must cost one answer, not the connection
        log.exception("a request on the socket failed unexpectedly")
        return answer_error(INTERNAL_ERROR, "the request failed inside the service; the details are in the service's log", req_id)


async def handle_connection(svc: streams.Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Serve one socket connection until the client hangs up, misbehaves or the service stops."""
    conn = svc._enter("unix")
    key = peer_key(writer)
    timeout = svc.limits.read_timeout_s
    try:
        if conn is None:
            await streams.refuse(reader, writer, svc._busy()[1] + b"\n", timeout)
            return
        while not svc._stopping.is_set():  # type: ignore[union-attr]
            last = False
            try:
                line = await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
            except asyncio.IncompleteReadError as exc:
                if not exc.partial.strip():
                    return  # the client hung up
                line, last = exc.partial, True  # a last request without its newline
            except asyncio.LimitOverrunError:
                msg = (f"request longer than {svc.limits.max_request_bytes} bytes; send smaller requests "
                       "(one JSON object per line); closing the connection")
                await streams.refuse(reader, writer, answer_error("RequestError", msg)[1] + b"\n", timeout)
                return
            except asyncio.TimeoutError:
                msg = f"no complete request within {timeout:g} s; closing the connection"
                await streams.refuse(reader, writer, answer_error("RequestError", msg)[1] + b"\n", timeout)
                return
            conn.busy = True
            try:
                if line.strip():
                    _, data = await answer_line(svc, line, key)
                else:
                    _, data = answer_error("RequestError", "empty request; send one JSON object per line")
            finally:
                conn.busy = False
            await streams.send(writer, data + b"\n", timeout)
            if last:
                return
    except (OSError, asyncio.TimeoutError):
        pass  # the client went away or stopped reading
    except asyncio.CancelledError:
        pass  # shutdown; ending quietly, since asyncio (3.11) logs a cancelled connection task as an error
    finally:
        if key[0] == "conn":
            svc._buckets.forget(key)
        svc._leave()
        await streams.close(writer)
