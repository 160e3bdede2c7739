"""The :class:`Service`: its lifecycle (bind, serve, stop on SIGTERM), the worker thread that
is the only caller of the recommender, and the dispatch of a checked request to the facade
method of the same name.

**Concurrency.** One asyncio event loop does all network I/O; every call into the Recommender
runs on **one worker thread**, so calls are serialised. One thread rather than a lock around a
thread pool: the history is one SQLite connection whose writes must not interleave, and a
single queue needs no lock discipline from whoever edits the facade. ``recommend`` takes
milliseconds, so queueing costs clients little; a long ``add_item`` (feature extraction on a
big video) delays the calls queued behind it.

``asyncio`` (about 60 ms to import) is loaded when a service binds, not when this module is
imported: every ``edgerec`` command imports :mod:`edge.service` for the ``serve`` defaults.
The transports (:mod:`edge.service.unix`, :mod:`edge.service.http`) call the methods of the
*transports* section below.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.errors import EdgeError
from edge.service.access import authorize, check_token, default_socket_path, load_or_create_token, loopback_address, private_folder
from edge.service.limits import MAX_HEADER_BYTES, SHUTDOWN_GRACE_S, Limits
from edge.service.protocol import BUSY, INTERNAL_ERROR, Answer, answer_error, answer_ok, check_params, result_json
from edge.service.ratelimit import Buckets

if TYPE_CHECKING:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from edge.recommender import Recommender
    from edge.service.streams import Conn

log = logging.getLogger("edge.service")


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
        recommender.decode_timeout_s = self.limits.decode_timeout_s
        self.socket_path = Path(socket_path) if socket_path is not None else default_socket_path()
        if http_port is not None and (isinstance(http_port, bool) or not isinstance(http_port, int) or not 0 <= http_port <= 65535):
            raise EdgeError(f"HTTP port {http_port!r}; expected 0 to 65535")
        self.http_host = loopback_address(http_host) if http_port is not None else None
        self._http_port = http_port
        #: Where the token lives (None when it was passed in).
        self.token_file: Path | None = None if token is not None else Path(token_file) if token_file else self.socket_path.parent / "token"
        self._token = check_token(token, "token") if token is not None else None
        #: True when this start wrote a new token file.
        self.token_created = False
        self._buckets = Buckets(self.limits.rate_per_s, self.limits.burst)
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
        self._conns: dict[asyncio.Task, Conn] = {}
        self._others: set[asyncio.Task] = set()  # connections being refused
        self._served = False
        self._started = time.time()

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
        from concurrent.futures import ThreadPoolExecutor

        from edge.service import http, unix  # asyncio loads here

        private_folder(self.socket_path.parent)
        if self._token is None:
            assert self.token_file is not None
            self._token, self.token_created = load_or_create_token(self.token_file)
        self._unix_sock, self._unix_ino = unix.bind(self.socket_path, self.limits)
        try:
            if self._http_port is not None:
                assert self.http_host is not None
                self._http_sock = http.bind(self.http_host, self._http_port, self.limits)
        except BaseException:
            self._close_sockets()
            raise
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgerec-facade")
        return self

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
        import asyncio

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
        import asyncio

        from edge.service import http, unix

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
            servers = [await asyncio.start_unix_server(partial(unix.handle_connection, self), sock=self._unix_sock, limit=limit)]
            if self._http_sock is not None:
                servers.append(await asyncio.start_server(partial(http.handle_connection, self), sock=self._http_sock,
                                                          limit=MAX_HEADER_BYTES))
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
            # A running facade call may finish (SHUTDOWN_GRACE_S); one stuck past that (a
            # storage that stopped answering) does not keep the service from stopping.
            self._worker.shutdown(wait=False, cancel_futures=True)
            for thread in list(getattr(self._worker, "_threads", ())):
                thread.join(SHUTDOWN_GRACE_S)
                if thread.is_alive():
                    log.warning("a facade call is still running after %.0f s; stopping without it", SHUTDOWN_GRACE_S)

    # -- dispatch --------------------------------------------------------------------------

    def _invoke(self, method: str, kwargs: dict[str, Any], req_id: object) -> Answer:
        """Runs on the worker thread: the one place the recommender is called, always as the
        facade method named ``method`` with the checked parameters."""
        t0 = time.perf_counter()
        try:
            result = result_json(method, kwargs, getattr(self.recommender, method)(**kwargs))
            if method == "health":
                result = {**result, "uptime_s": round(time.time() - self._started, 3)}
            answer = answer_ok(result, req_id)  # serialised here, so a big export does not stall the event loop
        except EdgeError as exc:
            answer = answer_error(type(exc).__name__, str(exc), req_id)
        except Exception:  # logged with its traceback; the client only learns that it failed
            log.exception("%s failed unexpectedly", method)
            answer = answer_error(INTERNAL_ERROR, f"{method} failed inside the service; the details are in the service's log", req_id)
        # Never the params: they name profiles and items.
        log.debug("%s -> %s in %.1f ms", method, answer[0] or "ok", (time.perf_counter() - t0) * 1000)
        return answer

    # -- transports ------------------------------------------------------------------------

    def _authorize(self, token: object) -> None:
        authorize(token, self.token)

    async def _call(self, method: object, params: object, req_id: object = None) -> Answer:
        """Check ``method`` and ``params``, then run it on the worker thread."""
        import asyncio

        method, kwargs = check_params(method, params)
        assert self._worker is not None
        return await asyncio.get_running_loop().run_in_executor(self._worker, self._invoke, method, kwargs, req_id)

    def _enter(self, transport: str) -> Conn | None:
        """Count the current connection task in; None when it must be refused ``Busy``.

        Each transport has its own ``max_connections`` slots: connections any local web page can
        open over loopback HTTP must not lock the app out of its Unix socket.
        """
        import asyncio

        from edge.service.streams import Conn

        task = asyncio.current_task()
        assert task is not None
        open_here = sum(1 for c in self._conns.values() if c.transport == transport)
        if open_here >= self.limits.max_connections or (self._stopping is not None and self._stopping.is_set()):
            self._others.add(task)
            return None
        conn = self._conns[task] = Conn(transport=transport)
        return conn

    def _leave(self) -> None:
        import asyncio

        task = asyncio.current_task()
        self._conns.pop(task, None)  # type: ignore[arg-type]
        self._others.discard(task)  # type: ignore[arg-type]

    def _busy(self) -> Answer:
        return answer_error(BUSY, f"the service has {self.limits.max_connections} connections open already; retry shortly")
