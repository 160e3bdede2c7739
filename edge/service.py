"""The local service: the :class:`~edge.recommender.Recommender` facade as JSON, for apps on
the same device that are not written in Python (``edgerec serve``).

Two transports, one envelope (every method's schema is in ``docs/service.md``):

* a **Unix domain socket**: one JSON object per line in, one per line out, any number of
  requests per connection::

      {"token": "…", "method": "recommend", "params": {"profile": "alice", "k": 5}, "id": 7}
      {"ok": true, "result": [{"item_id": "i004", "title": "…", …}], "id": 7}

* optionally **HTTP on a loopback address**: ``POST /v1/<method>`` with the params object as
  the body and ``Authorization: Bearer <token>``; the response body is the same envelope
  (without ``id``). Any other bind address is refused.

Errors are ``{"ok": false, "error": {"type": "HistoryError", "message": "…"}}``: the class name
of any :class:`~edge.errors.EdgeError`, ``RequestError`` (malformed request), ``AuthError``
(no or wrong token), ``RateLimited``, ``Busy`` (too many connections) or ``InternalError``
(logged on ``edge.service``; no traceback goes to the client).

**Access.** The socket is created with mode 0600 in a folder of mode 0700 owned by the
service's user, and every request carries a token (``secrets.token_urlsafe(32)``, kept in a
mode-0600 token file, compared with :func:`hmac.compare_digest`).

**Limits** (:class:`Limits`): request size (a longer line or body is answered and the
connection closed; the reader never buffers more than twice the limit), a token-bucket rate
per client (per process on the socket via ``SO_PEERCRED``, per peer address over HTTP), a
read timeout for idle and slow clients, and a cap on open connections.

**Concurrency.** One asyncio event loop does all network I/O; every call into the
Recommender runs on **one worker thread**, so calls are serialised. One thread rather than a
lock around a thread pool: the history is one SQLite connection whose writes must not
interleave, and a single queue needs no lock discipline from whoever edits the facade.
``recommend`` takes milliseconds, so queueing costs clients little; a long ``add_item``
(feature extraction on a big video) delays the calls queued behind it.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import signal
import socket
import stat
import struct
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Hashable

from edge.context import DEVICE_KINDS, Context
from edge.errors import AuthError, EdgeError, RequestError

if TYPE_CHECKING:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from edge.recommender import Recommender

__all__ = ["Limits", "Service", "default_socket_path", "load_or_create_token", "loopback_address"]

log = logging.getLogger("edge.service")

#: HTTP path prefix; the method name follows it.
API_PREFIX = "/v1/"
#: Longest HTTP request line plus headers (bytes).
MAX_HEADER_BYTES = 16 * 1024
#: Most items one ``recommend`` may ask for.
MAX_K = 1000
#: After answering a request that closes the connection (too long, too slow, busy), unread
#: input is drained for up to this long (s) and this many bytes before closing: closing with
#: unread data resets the connection, and the client would lose the answer explaining why.
LINGER_S = 1.0
LINGER_BYTES = 1 << 20
#: How long (s) shutdown waits for requests already running in the facade.
SHUTDOWN_GRACE_S = 10.0
#: Token buckets remembered at most; buckets that have refilled are dropped first.
MAX_BUCKETS = 1024

_TOKEN_CHARS = re.compile(r"[\x21-\x7e]{16,512}")
_HTTP_STATUS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
                408: "Request Timeout", 411: "Length Required", 413: "Content Too Large", 422: "Unprocessable Content",
                429: "Too Many Requests", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
                503: "Service Unavailable"}
_STATUS_BY_TYPE = {None: 200, "RequestError": 400, "AuthError": 401, "RateLimited": 429, "Busy": 503, "InternalError": 500}

# An answer: the error type (None for success) and the JSON envelope as bytes, no newline.
_Answer = tuple["str | None", bytes]


@dataclass(frozen=True)
class Limits:
    """What clients may ask of the service.

    :param max_request_bytes: longest request in bytes: a line on the socket (without its
        newline) or an HTTP body.
    :param rate_per_s: requests per second a client may sustain (token-bucket refill).
    :param burst: requests a client may send at once (bucket size).
    :param read_timeout_s: seconds a client has to send a complete request, counted from
        connecting or from the previous answer; an idle or slow connection is then closed.
    :param max_connections: open connections, both transports together; more are answered
        ``Busy`` and closed.
    :raises EdgeError: a value out of range.
    """

    max_request_bytes: int = 64 * 1024
    rate_per_s: float = 50.0
    burst: int = 100
    read_timeout_s: float = 30.0
    max_connections: int = 32

    def __post_init__(self) -> None:
        checks = [("max_request_bytes", self.max_request_bytes, 64, 64 << 20), ("rate_per_s", self.rate_per_s, 1e-3, 1e6),
                  ("burst", self.burst, 1, 1_000_000), ("read_timeout_s", self.read_timeout_s, 1e-3, 86_400),
                  ("max_connections", self.max_connections, 1, 10_000)]
        for name, value, lo, hi in checks:
            kinds = (int, float) if isinstance(lo, float) else int
            if isinstance(value, bool) or not isinstance(value, kinds) or not lo <= value <= hi:
                what = "a number" if kinds is not int else "a whole number"
                raise EdgeError(f"service limit {name}={value!r}; expected {what} from {lo} to {hi}")


# -- parameters ------------------------------------------------------------------------------

_REQUIRED = object()


@dataclass(frozen=True)
class _Param:
    name: str
    kind: str  # str | int | number | bool | str_list | device | path
    default: Any = _REQUIRED
    nullable: bool = False


_WANT = {"str": "a string", "int": "an integer", "number": "a finite number", "bool": "true or false",
         "str_list": "an array of strings", "device": f"one of {list(DEVICE_KINDS)}", "path": "an absolute file path (string)"}

#: Every method and its parameters, in the order docs/service.md lists them.
METHODS: dict[str, tuple[_Param, ...]] = {
    "recommend": (_Param("profile", "str"), _Param("k", "int", 10), _Param("device", "device", "tv"),
                  _Param("at", "number", None, True)),
    "record": (_Param("profile", "str"), _Param("item_id", "str"), _Param("kind", "str", "play"),
               _Param("at", "number", None, True), _Param("value", "number", None, True), _Param("device", "device", "tv")),
    "add_item": (_Param("source", "path"), _Param("title", "str"), _Param("tags", "str_list", ()),
                 _Param("kind", "str", None, True), _Param("description", "str", ""), _Param("profile", "str", None, True),
                 _Param("item_id", "str", None, True)),
    "add_profile": (_Param("profile", "str"), _Param("age_limit", "int", None, True)),
    "block": (_Param("profile", "str"), _Param("item_id", "str"), _Param("blocked", "bool", True)),
    "forget": (_Param("profile", "str"),),
    "export": (_Param("profile", "str"),),
    "health": (),
}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _check_value(method: str, p: _Param, value: object) -> object:
    if value is None and p.nullable:
        return None
    kind = p.kind
    if kind in ("str", "device", "path"):
        ok = isinstance(value, str)
        if ok and kind == "device":
            ok = value in DEVICE_KINDS
        if ok and kind == "path":
            ok = os.path.isabs(value)  # the service's working folder means nothing to a client
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif kind == "bool":
        ok = isinstance(value, bool)
    else:  # str_list
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    if not ok:
        shown = f"{value!r}" if isinstance(value, str) and len(value) <= 80 else _json_type(value)
        raise RequestError(f"{method}: parameter {p.name!r} must be {_WANT[kind]}{' or null' if p.nullable else ''}, got {shown}")
    return value


def check_params(method: object, params: object) -> tuple[str, dict[str, Any]]:
    """Validate a method name and its params object; fill in defaults.

    :returns: the method and its keyword arguments.
    :raises RequestError: an unknown method, a missing, unexpected or wrongly typed parameter.
    """
    if not isinstance(method, str) or method not in METHODS:
        shown = repr(method) if isinstance(method, str) and len(method) <= 80 else _json_type(method)
        raise RequestError(f"unknown method {shown}; expected one of {sorted(METHODS)}")
    if not isinstance(params, dict):
        raise RequestError(f"{method}: params must be a JSON object, got {_json_type(params)}")
    spec = METHODS[method]
    names = [p.name for p in spec]
    extra = sorted(set(params) - set(names))
    if extra:
        raise RequestError(f"{method}: unexpected parameter {extra[0][:80]!r}; expected some of {names}")
    out: dict[str, Any] = {}
    for p in spec:
        if p.name in params:
            out[p.name] = _check_value(method, p, params[p.name])
        elif p.default is _REQUIRED:
            raise RequestError(f"{method}: missing parameter {p.name!r} ({_WANT[p.kind]})")
        else:
            out[p.name] = list(p.default) if isinstance(p.default, tuple) else p.default
    if method == "recommend" and not 1 <= out["k"] <= MAX_K:
        raise RequestError(f"recommend: parameter 'k' must be from 1 to {MAX_K}, got {out['k']}")
    return method, out


# -- the facade's methods, run on the worker thread ------------------------------------------

def _recommend(rec: Recommender, profile: str, k: int, device: str, at: float | None) -> list[dict[str, Any]]:
    recs = rec.recommend(profile, k=k, context=Context.at(at, device))
    return [dataclasses.asdict(r) for r in recs]


def _record(rec: Recommender, profile: str, item_id: str, kind: str, at: float | None, value: float | None,
            device: str) -> dict[str, Any]:
    return {"event_id": rec.record(profile, item_id, kind, timestamp=at, value=value, device=device)}


def _add_item(rec: Recommender, source: str, title: str, tags: list[str], kind: str | None, description: str,
              profile: str | None, item_id: str | None) -> dict[str, Any]:
    return {"item_id": rec.add_item(Path(source), title, tags=tags, kind=kind, description=description,
                                          profile=profile, item_id=item_id)}


def _add_profile(rec: Recommender, profile: str, age_limit: int | None) -> dict[str, Any]:
    rec.history.add_profile(profile, age_limit=age_limit)
    # An existing profile keeps its limit: answer with what is stored, not what was asked.
    return {"profile": profile, "age_limit": rec.history.age_limit(profile)}


def _block(rec: Recommender, profile: str, item_id: str, blocked: bool) -> dict[str, Any]:
    rec.block(profile, item_id, blocked)
    return {"blocked_items": rec.blocked(profile)}


def _forget(rec: Recommender, profile: str) -> dict[str, Any]:
    return dataclasses.asdict(rec.history.forget(profile))


def _export(rec: Recommender, profile: str) -> dict[str, Any]:
    return rec.history.export(profile)


_HANDLERS: dict[str, Callable[..., Any]] = {
    "recommend": _recommend, "record": _record, "add_item": _add_item, "add_profile": _add_profile,
    "block": _block, "forget": _forget, "export": _export,
}


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _error(kind: str, message: str, req_id: object = None) -> _Answer:
    doc: dict[str, Any] = {"ok": False, "error": {"type": kind, "message": message}}
    if req_id is not None:
        doc["id"] = req_id
    return kind, _dumps(doc)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _import_asyncio() -> None:
    # asyncio takes ~60 ms to import, and every `edgerec` command imports this module for the
    # serve defaults; it is loaded when a service binds, before any coroutine here runs.
    global asyncio
    import asyncio


# -- files and addresses ---------------------------------------------------------------------

def default_socket_path() -> Path:
    """``$XDG_RUNTIME_DIR/edgerec/edgerec.sock``, or ``/tmp/edgerec-<uid>/edgerec.sock``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(runtime) / "edgerec" if runtime else Path(tempfile.gettempdir()) / f"edgerec-{os.getuid()}"
    return folder / "edgerec.sock"


def _private_folder(folder: Path) -> None:
    """Create ``folder`` with mode 0700, or check that it is this user's and private."""
    if not os.path.lexists(folder):
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(folder, 0o700)
            os.chmod(folder, 0o700)  # the umask may have removed owner bits; the mode must be exact
        except FileExistsError:
            pass  # created meanwhile by someone else: the checks below decide
        except OSError as exc:
            raise EdgeError(f"cannot create the service folder {folder} ({exc}); choose another --socket path") from None
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode):
        raise EdgeError(f"{folder} is not a folder (a file or a symlink); the socket needs a private folder: choose another --socket path")
    if st.st_uid != os.getuid():
        raise EdgeError(f"{folder} belongs to uid {st.st_uid}, not to this user (uid {os.getuid()}); choose another --socket path")
    if st.st_mode & 0o077:
        raise EdgeError(
            f"{folder} is open to other users (mode {stat.S_IMODE(st.st_mode):04o}); the socket must sit in a private folder: "
            f"run `chmod 700 {folder}`, or pass a --socket path whose folder does not exist yet (it is created with mode 0700)"
        )


def _check_token(token: object, where: str) -> str:
    if not isinstance(token, str) or not _TOKEN_CHARS.fullmatch(token):
        raise EdgeError(f"{where}: a token must be 16 to 512 printable ASCII characters without spaces; "
                        "delete the token file to have a new one generated")
    return token


def load_or_create_token(path: str | Path) -> tuple[str, bool]:
    """The token in ``path``; when the file is missing, a new ``secrets.token_urlsafe(32)``
    is written there with mode 0600 (its folder is created with mode 0700 when missing).

    :returns: ``(token, created)``.
    :raises EdgeError: the file is not a regular file of this user, is readable by others,
        or holds no valid token.
    """
    path = Path(path)
    if not os.path.lexists(path.parent):
        _private_folder(path.parent)
    if not os.path.lexists(path):
        token = secrets.token_urlsafe(32)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".token-")  # mode 0600
        try:
            os.write(fd, (token + "\n").encode("ascii"))
            os.close(fd)
            os.link(tmp, path)  # atomic and never replaces a token another start wrote meanwhile
            return token, True
        except FileExistsError:
            pass
        except OSError as exc:
            raise EdgeError(f"cannot write the token file {path} ({exc}); choose another --token-file") from None
        finally:
            os.unlink(tmp)
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
        raise EdgeError(f"{path}: the token file must be a regular file of this user (not a link or another user's file)")
    if st.st_mode & 0o077:
        raise EdgeError(f"{path}: the token file is readable by other users (mode {stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {path}`")
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgeError(f"cannot read the token file {path} ({exc})") from None
    return _check_token(text, str(path)), False


def loopback_address(host: str) -> str:
    """``host`` as a loopback IP address literal (``localhost`` means 127.0.0.1).

    :raises EdgeError: any other address: the HTTP endpoint must not be reachable off the device.
    """
    if host == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise EdgeError(f"HTTP host {host!r} is not an IP address; the service listens on a loopback address only, such as 127.0.0.1") from None
    if not ip.is_loopback:
        raise EdgeError(f"refusing to serve HTTP on {host}: not a loopback address; only 127.0.0.1 (or ::1) is allowed, "
                        "so nothing off the device can reach a profile's history")
    return str(ip)


def _answers(path: Path) -> bool:
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


def _peer_key(writer: asyncio.StreamWriter) -> tuple[str, Hashable]:
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


class _Buckets:
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


@dataclass
class _Conn:
    busy: bool = False  # a request of this connection is in the facade


# -- the service -----------------------------------------------------------------------------

class Service:
    """The facade served as JSON on a Unix socket and, optionally, loopback HTTP.

    >>> rec = Recommender.open("bundle/", "history.db")
    >>> with Service(rec, "/run/user/1000/edgerec/edgerec.sock") as svc:   # background thread
    ...     print(svc.socket_path, svc.token_file)
    >>> Service(rec, http_port=8765).serve_forever()   # this thread, until SIGTERM/SIGINT

    The caller keeps ownership of ``recommender`` (close it after the service stops) and must
    not use it from other threads while the service runs.

    :param recommender: an open :class:`~edge.recommender.Recommender`.
    :param socket_path: the Unix socket; default :func:`default_socket_path`. Its folder is
        created with mode 0700, or must already be private to this user.
    :param token: the token clients must send; default: read from ``token_file``, created
        there on first start.
    :param token_file: default ``token`` beside the socket.
    :param http_port: also serve HTTP on this port (0: any free port; None: no HTTP).
    :param http_host: a loopback address; anything else is refused.
    :param limits: request size, rate, read timeout and connection cap.
    :raises EdgeError: a non-loopback ``http_host``, a bad token or limit.
    """

    def __init__(self, recommender: Recommender, socket_path: str | Path | None = None, *, token: str | None = None,
                 token_file: str | Path | None = None, http_port: int | None = None, http_host: str = "127.0.0.1",
                 limits: Limits | None = None) -> None:
        self.recommender = recommender
        self.limits = limits or Limits()
        self.socket_path = Path(socket_path) if socket_path is not None else default_socket_path()
        if http_port is not None and (isinstance(http_port, bool) or not isinstance(http_port, int) or not 0 <= http_port <= 65535):
            raise EdgeError(f"HTTP port {http_port!r}; expected 0 to 65535")
        self.http_host = loopback_address(http_host) if http_port is not None else None
        self._http_port = http_port
        #: Where the token lives (None when it was passed in).
        self.token_file: Path | None = None if token is not None else Path(token_file) if token_file else self.socket_path.parent / "token"
        self._token = _check_token(token, "token") if token is not None else None
        #: True when this start wrote a new token file.
        self.token_created = False
        self._buckets = _Buckets(self.limits.rate_per_s, self.limits.burst)
        self._unix_sock: socket.socket | None = None
        self._http_sock: socket.socket | None = None
        self._unix_ino: int | None = None
        self._worker: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._stop_requested = threading.Event()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._conns: dict[asyncio.Task, _Conn] = {}
        self._others: set[asyncio.Task] = set()  # connections being refused
        self._served = False
        self._started = time.time()
        self._health: dict[str, Any] | None = None

    # -- properties ------------------------------------------------------------------------

    @property
    def token(self) -> str:
        """The token clients must send (available after :meth:`bind`)."""
        if self._token is None:
            raise EdgeError("the service is not bound yet; call bind() or start() first")
        return self._token

    @property
    def http_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of the HTTP endpoint once bound, else None."""
        return self._http_sock.getsockname()[:2] if self._http_sock is not None else None

    # -- lifecycle -------------------------------------------------------------------------

    def bind(self) -> "Service":
        """Create the private folder and the token, then listen (nothing is served yet).

        :raises EdgeError: another service answers on the socket, the path is not a socket,
            the folder or token file is not private, the port is taken.
        """
        if self._served or self._stop_requested.is_set():
            raise EdgeError("this service has been started or stopped before; create a new Service to serve again")
        if self._unix_sock is not None:
            return self
        _import_asyncio()
        from concurrent.futures import ThreadPoolExecutor

        _private_folder(self.socket_path.parent)
        if self._token is None:
            assert self.token_file is not None
            self._token, self.token_created = load_or_create_token(self.token_file)
        self._unix_sock = self._bind_unix()
        try:
            if self._http_port is not None:
                self._http_sock = self._bind_http()
        except BaseException:
            self._close_sockets()
            raise
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgerec-facade")
        return self

    def _bind_unix(self) -> socket.socket:
        path = self.socket_path
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
            self._unix_ino = os.stat(path).st_ino
            sock.listen(min(self.limits.max_connections, 128))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise EdgeError(f"cannot listen on {path} ({exc}); choose another --socket path (at most about 100 characters)") from None
        return sock

    def _bind_http(self) -> socket.socket:
        assert self.http_host is not None and self._http_port is not None
        family = socket.AF_INET6 if ":" in self.http_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.http_host, self._http_port))
            sock.listen(min(self.limits.max_connections, 128))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise EdgeError(f"cannot serve HTTP on {self.http_host}:{self._http_port} ({exc}); choose another --http-port") from None
        return sock

    def start(self) -> "Service":
        """Bind, then serve in a background thread; returns once requests are accepted.

        :raises EdgeError: as :meth:`bind`.
        """
        self.bind()
        self._thread = threading.Thread(target=self._run, name="edgerec-service", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure
        return self

    def serve_forever(self) -> None:
        """Bind, then serve in this thread until SIGTERM or SIGINT (when this is the main
        thread) or :meth:`stop`; then remove the socket file.

        :raises EdgeError: as :meth:`bind`.
        """
        self.bind()
        self._run(signals=threading.current_thread() is threading.main_thread())
        if self._failure is not None:
            raise self._failure

    def stop(self, timeout_s: float = SHUTDOWN_GRACE_S + 5) -> None:
        """Stop accepting, let running requests finish, close connections and remove the
        socket file. Safe from any thread, and more than once."""
        self._stop_requested.set()
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:
                pass  # the loop has already finished
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        if not self._served:
            self._cleanup()  # bound but never served

    def __enter__(self) -> "Service":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, signals: bool = False) -> None:
        self._served = True
        try:
            asyncio.run(self._main(signals))
        except BaseException as exc:  # handed to the thread waiting in start()
            self._failure = exc
            log.exception("the service stopped on an unexpected error")
        finally:
            self._cleanup()
            self._ready.set()

    async def _main(self, signals: bool) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._loop = loop
        installed = []
        if signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._stopping.set)
                installed.append(sig)
        try:
            limit = self.limits.max_request_bytes
            servers = [await asyncio.start_unix_server(self._unix_connection, sock=self._unix_sock, limit=limit)]
            if self._http_sock is not None:
                servers.append(await asyncio.start_server(self._http_connection, sock=self._http_sock, limit=MAX_HEADER_BYTES))
            self._ready.set()
            if self._stop_requested.is_set():
                self._stopping.set()
            await self._stopping.wait()
            log.info("stopping: no new connections; waiting for running requests")
            for server in servers:
                server.close()
            # Idle connections go now; a request already in the facade gets its answer first.
            for task, conn in list(self._conns.items()):
                if not conn.busy:
                    task.cancel()
            pending = set(self._conns) | self._others
            if pending:
                await asyncio.wait(pending, timeout=SHUTDOWN_GRACE_S)
            pending = set(self._conns) | self._others
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def _close_sockets(self) -> None:
        for sock in (self._unix_sock, self._http_sock):
            if sock is not None:
                sock.close()
        if self._unix_ino is not None:
            try:
                # Only our own socket: a service started after us may have replaced it.
                if os.stat(self.socket_path).st_ino == self._unix_ino:
                    self.socket_path.unlink()
            except FileNotFoundError:
                pass
            self._unix_ino = None

    def _cleanup(self) -> None:
        self._close_sockets()
        if self._worker is not None:
            self._worker.shutdown(wait=True)  # a running facade call finishes; the caller closes the recommender

    # -- requests --------------------------------------------------------------------------

    def _authorize(self, token: object) -> None:
        if not isinstance(token, str) or not token:
            raise AuthError("no token; send the service's token (the \"token\" field on the socket, "
                            "\"Authorization: Bearer <token>\" over HTTP), read from its token file")
        expected = self.token.encode("ascii")
        if not hmac.compare_digest(token.encode("utf-8", "surrogatepass"), expected):
            raise AuthError("wrong token; read the current one from the service's token file")

    async def _call(self, method: object, params: object, req_id: object = None) -> _Answer:
        method, kwargs = check_params(method, params)
        loop = asyncio.get_running_loop()
        assert self._worker is not None
        return await loop.run_in_executor(self._worker, self._invoke, method, kwargs, req_id)

    def _invoke(self, method: str, kwargs: dict[str, Any], req_id: object) -> _Answer:
        """Runs on the worker thread: the one place the recommender is called."""
        t0 = time.perf_counter()
        try:
            result = self._health_doc() if method == "health" else _HANDLERS[method](self.recommender, **kwargs)
            doc: dict[str, Any] = {"ok": True, "result": result}
            if req_id is not None:
                doc["id"] = req_id
            answer: _Answer = (None, _dumps(doc))  # serialised here, so a big export does not stall the event loop
        except EdgeError as exc:
            answer = _error(type(exc).__name__, str(exc), req_id)
        except Exception:  # logged with its traceback; the client only learns that it failed
            log.exception("%s failed unexpectedly", method)
            answer = _error("InternalError", f"{method} failed inside the service; the details are in the service's log", req_id)
        # Never the params: they name profiles and items.
        log.debug("%s -> %s in %.1f ms", method, answer[0] or "ok", (time.perf_counter() - t0) * 1000)
        return answer

    def _health_doc(self) -> dict[str, Any]:
        if self._health is None:
            from edge import __version__
            from edge.bundle.store import bundle_id

            b = self.recommender.bundle
            self._health = {"version": __version__,
                            "bundle": {"id": bundle_id(b.root, b.manifest), "created_at": b.manifest.get("created_at"),
                                       "items": len(b.items), "embedding_dim": b.embedding_dim},
                            "backend": self.recommender.interest.backend}
        return {**self._health, "uptime_s": round(time.time() - self._started, 3)}

    async def _answer_line(self, line: bytes, key: Hashable) -> _Answer:
        req_id: object = None
        try:
            if not self._buckets.take(key):
                return _error("RateLimited", f"more than {self.limits.burst} requests at once or {self.limits.rate_per_s:g} per second; slow down and retry")
            try:
                req = json.loads(line.decode("utf-8"), parse_constant=_reject_constant)
            except ValueError as exc:
                raise RequestError(f"the request is not valid JSON ({exc}); send one JSON object per line") from None
            except RecursionError:
                raise RequestError("the request is nested too deeply") from None
            if not isinstance(req, dict):
                raise RequestError(f"a request must be a JSON object, got {_json_type(req)}")
            raw_id = req.get("id")
            req_id = raw_id if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else None
            self._authorize(req.get("token"))
            extra = sorted(set(req) - {"token", "method", "params", "id"})
            if extra:
                raise RequestError(f"unexpected request field {extra[0][:80]!r}; expected token, method, params and optionally id")
            if raw_id is not None and req_id is None:
                raise RequestError(f"the request id must be a string or an integer, got {_json_type(raw_id)}")
            return await self._call(req.get("method"), req.get("params", {}), req_id)
        except EdgeError as exc:
            return _error(type(exc).__name__, str(exc), req_id)
        except Exception:  # a bug here must cost one answer, not the connection
            log.exception("a request on the socket failed unexpectedly")
            return _error("InternalError", "the request failed inside the service; the details are in the service's log", req_id)

    # -- connections -----------------------------------------------------------------------

    def _enter(self) -> _Conn | None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._conns) >= self.limits.max_connections or (self._stopping is not None and self._stopping.is_set()):
            self._others.add(task)
            return None
        conn = self._conns[task] = _Conn()
        return conn

    def _leave(self) -> None:
        task = asyncio.current_task()
        self._conns.pop(task, None)  # type: ignore[arg-type]
        self._others.discard(task)  # type: ignore[arg-type]

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await asyncio.wait_for(writer.drain(), self.limits.read_timeout_s)

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> None:
        """Answer, then close without resetting the connection (see :data:`LINGER_S`)."""
        try:
            await self._send(writer, data)
            if writer.can_write_eof():
                writer.write_eof()
            deadline = time.monotonic() + LINGER_S
            drained = 0
            while drained < LINGER_BYTES and (left := deadline - time.monotonic()) > 0:
                chunk = await asyncio.wait_for(reader.read(65536), left)
                if not chunk:
                    break
                drained += len(chunk)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass

    async def _close(self, writer: asyncio.StreamWriter) -> None:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        except (OSError, asyncio.TimeoutError):
            pass

    def _busy(self) -> _Answer:
        return _error("Busy", f"the service has {self.limits.max_connections} connections open already; retry shortly")

    async def _unix_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = self._enter()
        key = _peer_key(writer)
        try:
            if conn is None:
                await self._refuse(reader, writer, self._busy()[1] + b"\n")
                return
            while not self._stopping.is_set():  # type: ignore[union-attr]
                last = False
                try:
                    line = await asyncio.wait_for(reader.readuntil(b"\n"), self.limits.read_timeout_s)
                except asyncio.IncompleteReadError as exc:
                    if not exc.partial.strip():
                        return  # the client hung up
                    line, last = exc.partial, True  # a last request without its newline
                except asyncio.LimitOverrunError:
                    msg = (f"request longer than {self.limits.max_request_bytes} bytes; send smaller requests "
                           "(one JSON object per line); closing the connection")
                    await self._refuse(reader, writer, _error("RequestError", msg)[1] + b"\n")
                    return
                except asyncio.TimeoutError:
                    msg = f"no complete request within {self.limits.read_timeout_s:g} s; closing the connection"
                    await self._refuse(reader, writer, _error("RequestError", msg)[1] + b"\n")
                    return
                conn.busy = True
                try:
                    if line.strip():
                        _, data = await self._answer_line(line, key)
                    else:
                        _, data = _error("RequestError", "empty request; send one JSON object per line")
                finally:
                    conn.busy = False
                await self._send(writer, data + b"\n")
                if last:
                    return
        except (OSError, asyncio.TimeoutError):
            pass  # the client went away or stopped reading
        except asyncio.CancelledError:
            pass  # shutdown; ending quietly, since asyncio (3.11) logs a cancelled connection task as an error
        finally:
            if key[0] == "conn":
                self._buckets.forget(key)
            self._leave()
            await self._close(writer)

    async def _http_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = self._enter()
        try:
            if conn is None:
                await self._refuse(reader, writer, _http_response(503, self._busy()[1]))
                return
            try:
                status, data = await self._http_request(reader, writer, conn)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                raise
            except Exception:  # a bug here must cost one answer, not the service
                log.exception("an HTTP request failed unexpectedly")
                status, data = 500, _error("InternalError", "the request failed inside the service; the details are in the service's log")[1]
            if status in (408, 411, 413, 431):  # the request was not read to its end
                await self._refuse(reader, writer, _http_response(status, data))
            else:
                await self._send(writer, _http_response(status, data))
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # shutdown (see _unix_connection)
        finally:
            self._leave()
            await self._close(writer)

    async def _http_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: _Conn) -> tuple[int, bytes]:
        timeout = self.limits.read_timeout_s
        deadline = time.monotonic() + timeout  # one deadline for head and body: a slow drip cannot hold a slot
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        except asyncio.LimitOverrunError:
            return 431, _error("RequestError", f"request line and headers longer than {MAX_HEADER_BYTES} bytes")[1]
        except asyncio.TimeoutError:
            return 408, _error("RequestError", f"no complete request within {timeout:g} s")[1]
        try:
            verb, target, headers = _parse_head(head)
        except RequestError as exc:
            return 400, _error("RequestError", str(exc))[1]
        if not self._host_allowed(headers.get("host")):
            # DNS rebinding: a web page must not reach the service through a name it controls.
            return 400, _error("RequestError", f"Host {headers.get('host')!r} is not a loopback name; use http://127.0.0.1:PORT")[1]
        if not target.startswith(API_PREFIX):
            return 404, _error("RequestError", f"no such path {target[:80]!r}; use POST {API_PREFIX}<method>")[1]
        if verb != "POST":
            return 405, _error("RequestError", f"{verb[:16]} is not allowed; use POST {API_PREFIX}<method> with a JSON body")[1]
        if "transfer-encoding" in headers:
            return 411, _error("RequestError", "chunked bodies are not accepted; send Content-Length")[1]
        raw_length = headers.get("content-length", "0")
        if not raw_length.isdigit() or len(raw_length) > 12:
            return 400, _error("RequestError", f"bad Content-Length {raw_length[:20]!r}")[1]
        length = int(raw_length)
        if length > self.limits.max_request_bytes:
            return 413, _error("RequestError", f"body of {length} bytes is over the limit of {self.limits.max_request_bytes} bytes")[1]
        try:
            body = await asyncio.wait_for(reader.readexactly(length), max(deadline - time.monotonic(), 1e-3))
        except asyncio.TimeoutError:
            return 408, _error("RequestError", f"no complete request within {timeout:g} s")[1]
        peer = writer.get_extra_info("peername")
        if not self._buckets.take(("http", peer[0] if isinstance(peer, tuple) else "?")):
            return 429, _error("RateLimited", f"more than {self.limits.burst} requests at once or {self.limits.rate_per_s:g} per second; slow down and retry")[1]
        try:
            scheme, _, credential = headers.get("authorization", "").partition(" ")
            self._authorize(credential.strip() if scheme.lower() == "bearer" else None)
            try:
                params = json.loads(body.decode("utf-8"), parse_constant=_reject_constant) if body.strip() else {}
            except ValueError as exc:
                raise RequestError(f"the body is not valid JSON ({exc}); send the params object") from None
            except RecursionError:
                raise RequestError("the body is nested too deeply") from None
            conn.busy = True
            try:
                kind, data = await self._call(target[len(API_PREFIX):], params)
            finally:
                conn.busy = False
        except EdgeError as exc:
            kind, data = _error(type(exc).__name__, str(exc))
        return _STATUS_BY_TYPE.get(kind, 422), data

    def _host_allowed(self, host: str | None) -> bool:
        if host is None:
            return True  # HTTP/1.0 clients send none
        name = host.lower()
        name = name.rsplit(":", 1)[0] if name.count(":") == 1 or name.startswith("[") and "]:" in name else name
        return name.strip("[]") in {"127.0.0.1", "localhost", "::1", self.http_host or ""}


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
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


def _http_response(status: int, body: bytes) -> bytes:
    extra = "WWW-Authenticate: Bearer\r\n" if status == 401 else "Allow: POST\r\n" if status == 405 else ""
    head = (f"HTTP/1.1 {status} {_HTTP_STATUS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n{extra}Connection: close\r\n\r\n")
    return head.encode("ascii") + body
