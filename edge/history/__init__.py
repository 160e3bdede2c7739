"""The household's history, kept only on the device in SQLite (through sqlite-utils).

:class:`HistoryStore` is the one door. The package holds:

- ``events``: :class:`Event`, the event kinds and the checks every event passes;
- ``schema``: the current tables; ``migrations``: forward steps from every older version;
- ``aggregates``: running per-profile counts by tag and by hour;
- ``local_items``: content the device found itself, with float32 embeddings;
- ``recovery``: integrity checks on open, moving a damaged file aside;
- ``store``: :class:`HistoryStore` (durability, concurrency, retention, forget, export).

Every error is an :class:`edge.errors.HistoryError`.
"""

from edge.history.events import EVENT_KINDS, MAX_ID_LEN, NEGATIVE_KINDS, POSITIVE_KINDS, Event
from edge.history.local_items import LocalItem
from edge.history.schema import GUEST_PROFILE, SCHEMA_VERSION
from edge.history.store import SYNCHRONOUS_MODES, Forgotten, HistoryStore

__all__ = [
    "HistoryStore",
    "Event",
    "LocalItem",
    "Forgotten",
    "EVENT_KINDS",
    "POSITIVE_KINDS",
    "NEGATIVE_KINDS",
    "GUEST_PROFILE",
    "SCHEMA_VERSION",
    "SYNCHRONOUS_MODES",
    "MAX_ID_LEN",
]
