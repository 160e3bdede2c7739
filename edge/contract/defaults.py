"""Defaults and limits read by more than one part of the device runtime (history, device
profiles, the local service, the CLI), so a changed default changes everywhere at once."""

from __future__ import annotations

#: SQLite ``synchronous`` settings the history accepts (OFF would lose acknowledged events).
SQLITE_SYNCHRONOUS: tuple[str, ...] = ("NORMAL", "FULL", "EXTRA")
#: The history's default durability: an acknowledged event survives a power cut.
DEFAULT_SYNCHRONOUS = "FULL"
#: Events kept per profile unless a device profile says otherwise.
DEFAULT_MAX_EVENTS_PER_PROFILE = 100_000
#: Recommendations per call unless the caller asks for another number.
DEFAULT_K = 10
#: Most recommendations one call may ask for (CLI and service alike).
MAX_K = 1000
#: Longest local-service request in bytes (a socket line or an HTTP body).
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024
#: Requests per second one service client may sustain.
DEFAULT_MAX_REQUESTS_PER_S = 50.0
#: Largest media file (or folder of images) read for a local item, in bytes.
DEFAULT_MAX_MEDIA_BYTES = 2 << 30
#: Longest media duration a local item may declare, in seconds.
DEFAULT_MAX_MEDIA_SECONDS = 14_400.0
