"""What both transports share: the part of the :class:`~edge.service.server.Service` they
call (:class:`Server`), and what they do with an asyncio stream: send with a deadline, refuse
(answer, then close without resetting the connection) and close."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Hashable, Protocol

from edge.service.limits import LINGER_BYTES, LINGER_S, Limits

if TYPE_CHECKING:
    from edge.service.protocol import Answer


@dataclass
class Conn:
    """One open connection, as the service's shutdown sees it."""

    busy: bool = False  # a request of this connection is in the facade
    transport: str = "unix"


class Buckets(Protocol):
    def take(self, key: Hashable) -> bool: ...
    def forget(self, key: Hashable) -> None: ...


class Server(Protocol):
    """What a transport calls on the service (:class:`edge.service.server.Service`), so the
    transports need not import it."""

    limits: Limits
    http_host: str | None
    _buckets: Buckets
    _stopping: asyncio.Event | None

    def _enter(self, transport: str) -> Conn | None:
        """Count the current connection in; None when it must be refused ``Busy``."""

    def _leave(self) -> None:
        """Count the current connection out."""

    def _busy(self) -> Answer:
        """The ``Busy`` answer."""

    def _authorize(self, token: object) -> None:
        """:raises AuthError: no token or a wrong one."""

    async def _call(self, method: object, params: object, req_id: object = None) -> Answer:
        """Check the method and params, run it on the worker thread and answer."""


async def send(writer: asyncio.StreamWriter, data: bytes, timeout_s: float) -> None:
    """Write ``data``; a client that does not read it within ``timeout_s`` loses the connection."""
    writer.write(data)
    await asyncio.wait_for(writer.drain(), timeout_s)


async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes, timeout_s: float) -> None:
    """Answer, then close without resetting the connection (see :data:`~edge.service.limits.LINGER_S`)."""
    try:
        await send(writer, data, timeout_s)
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


async def close(writer: asyncio.StreamWriter) -> None:
    """Close the connection, waiting at most a second for it to go."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    except (OSError, asyncio.TimeoutError):
        pass
