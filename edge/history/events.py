"""What one event is, and the checks every event passes before it reaches SQLite.

Validation happens in Python, before a transaction opens, so a bad event refuses its whole
batch and the database never sees half of it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from edge.context import DEVICE_KINDS, hour_weekday
from edge.contract.events import EVENT_KINDS, NEGATIVE_KINDS, NEUTRAL_KINDS, POSITIVE_KINDS
from edge.errors import HistoryError

__all__ = ["EVENT_KINDS", "POSITIVE_KINDS", "NEGATIVE_KINDS", "NEUTRAL_KINDS", "Event", "clock_is_set", "event_row", "event_from_row"]

#: Longest profile id, item id, surface or setting key (characters).
MAX_ID_LEN = 256
#: Most tags on one event, and the longest tag (characters).
MAX_TAGS = 32
MAX_TAG_LEN = 64
#: Most events in one :meth:`HistoryStore.record_many` call: one batch is one write
#: transaction, and a bigger one would hold the write lock for too long.
MAX_BATCH_EVENTS = 20_000
#: Largest magnitude accepted for ``value`` and ``position_s``.
MAX_ABS_VALUE = 1e9
MIN_TIMESTAMP = 946_684_800  # 2000-01-01 UTC: earlier is a clock that was never set
FUTURE_SLACK_S = 2 * 86400


def clock_is_set(now: float) -> bool:
    """Whether the device clock reads a plausible time (a box that booted without a network
    time source reads 1970)."""
    return now >= MIN_TIMESTAMP


@dataclass(frozen=True)
class Event:
    """One thing a profile did with an item.

    ``timestamp`` is Unix seconds (UTC). ``value`` is the watched fraction 0..1 for
    play/complete/skip (or a rating the caller defines). ``position_s`` is the playback
    position in seconds. ``surface`` names where it happened in the UI (``"home"``,
    ``"search"``...). ``hour`` (0..23), ``weekday`` (0 = Monday) and ``device`` (``"tv"`` or
    ``"speaker"``) are the context; hour and weekday default to the timestamp's, in UTC as
    :mod:`edge.context` computes them. ``tags`` are the item's tags, counted in the
    profile's aggregates. ``client_id`` is the caller's own id for the event (unique per
    profile): a batch retried after an error or a lost reply stores it once. ``id`` is set on
    events read back from the store.
    """

    profile: str
    item_id: str
    kind: str
    timestamp: float
    value: float | None = None
    hour: int | None = None
    weekday: int | None = None
    device: str | None = None
    position_s: float | None = None
    surface: str | None = None
    tags: tuple[str, ...] = ()
    client_id: str | None = None
    id: int | None = None


def check_id(name: str, value: object, max_len: int = MAX_ID_LEN) -> str:
    """Return ``value`` if it is a usable id: a non-empty str of at most ``max_len``
    characters, without NUL bytes, encodable as UTF-8. Quotes, semicolons and emoji are fine:
    every query is parameterised.

    :raises HistoryError: naming the field and what to change.
    """
    if not isinstance(value, str) or not value:
        raise HistoryError(f"{name} must be a non-empty string, got {value!r}")
    if len(value) > max_len:
        raise HistoryError(f"{name} is {len(value)} characters; at most {max_len} allowed ({value[:40]!r}...)")
    if "\x00" in value:
        raise HistoryError(f"{name} {value!r} contains a NUL byte; remove it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise HistoryError(f"{name} {value!r} is not valid Unicode (lone surrogate); decode it properly first") from None
    return value


def check_number(name: str, value: object, lo: float = -MAX_ABS_VALUE, hi: float = MAX_ABS_VALUE) -> float | None:
    """``None`` or a finite float within ``[lo, hi]``.

    :raises HistoryError: for NaN, infinity, a non-number or a value out of range.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars
        except (TypeError, ValueError):
            raise HistoryError(f"{name} must be a number, got {value!r}") from None
    value = float(value)
    if not math.isfinite(value):
        raise HistoryError(f"{name} is {value}; it must be a finite number")
    if not lo <= value <= hi:
        raise HistoryError(f"{name} is {value}; expected {lo} to {hi}")
    return value


def check_tags(tags: Iterable[str] | None) -> tuple[str, ...]:
    """The tags, deduplicated in order.

    :raises HistoryError: a tag that is not a usable id, or more than :data:`MAX_TAGS`.
    """
    if not tags:
        return ()
    if isinstance(tags, str):
        raise HistoryError(f"tags must be a list of strings, got the string {tags!r}; wrap it in a list")
    out = tuple(dict.fromkeys(check_id("tag", t, MAX_TAG_LEN) for t in tags))
    if len(out) > MAX_TAGS:
        raise HistoryError(f"{len(out)} tags on one event; at most {MAX_TAGS} allowed")
    return out


def event_row(ev: Event, now: float | None = None) -> tuple[tuple, tuple[str, ...]]:
    """Validate one event; return its ``events`` row (columns :data:`EVENT_COLUMNS`, no id)
    and its deduplicated tags.

    Time is judged by the device clock ``now``: a timestamp up to :data:`FUTURE_SLACK_S` ahead
    (an app whose clock runs fast) is stored as ``now``, so it cannot stay "newest" and push
    later events out of the recent history. While the device clock is not set (before 2000)
    nothing can be judged: an event from the same unset clock is accepted and its timestamp
    left for the store to place after the profile's newest event (``HistoryStore.record_many``).

    :raises HistoryError: unknown kind or device, an implausible timestamp, a bad id, tag,
        hour, weekday or number; the message names the field.
    """
    check_id("profile", ev.profile)
    check_id("item_id", ev.item_id)
    if ev.kind not in EVENT_KINDS:
        raise HistoryError(f"unknown event kind {ev.kind!r} (item {ev.item_id!r}); expected one of {list(EVENT_KINDS)}")
    ts = check_number("timestamp", ev.timestamp, -math.inf, math.inf)
    if ts is None:
        raise HistoryError(f"timestamp of {ev.kind} {ev.item_id!r} is missing; pass Unix seconds")
    now = time.time() if now is None else now
    if clock_is_set(now):
        if ts < MIN_TIMESTAMP:
            raise HistoryError(f"timestamp {ts} is before 2000; the clock of whoever sent it was probably never set")
        if ts > now + FUTURE_SLACK_S:
            raise HistoryError(f"timestamp {ts} is {(ts - now) / 86400:.1f} days in the future (2 allowed); check the device clock")
        ts = min(ts, now)
    elif ts < 0:
        raise HistoryError(f"timestamp {ts} is negative; pass Unix seconds")
    hour, weekday = (int(x) for x in hour_weekday(ts))
    if ev.hour is not None:
        hour = int(check_number("hour", ev.hour, 0, 23))
        if hour != ev.hour:
            raise HistoryError(f"hour must be a whole number 0..23, got {ev.hour!r}")
    if ev.weekday is not None:
        weekday = int(check_number("weekday", ev.weekday, 0, 6))
        if weekday != ev.weekday:
            raise HistoryError(f"weekday must be a whole number 0..6 (0 = Monday), got {ev.weekday!r}")
    if ev.device is not None and ev.device not in DEVICE_KINDS:
        raise HistoryError(f"unknown device kind {ev.device!r}; expected one of {list(DEVICE_KINDS)}")
    surface = None if ev.surface is None else check_id("surface", ev.surface)
    client_id = None if ev.client_id is None else check_id("client_id", ev.client_id)
    tags = check_tags(ev.tags)
    row = (
        ev.profile,
        ev.item_id,
        ev.kind,
        ts,
        check_number("value", ev.value),
        check_number("position_s", ev.position_s, 0.0),
        surface,
        hour,
        weekday,
        ev.device,
        json.dumps(tags, ensure_ascii=False) if tags else None,
        client_id,
    )
    return row, tags


#: Column order of :func:`event_row`.
EVENT_COLUMNS: tuple[str, ...] = (
    "profile", "item_id", "kind", "timestamp", "value", "position_s", "surface", "hour", "weekday", "device", "tags", "client_id",
)


@lru_cache(maxsize=4096)
def _parse_tags(stored: str) -> tuple[str, ...]:
    # Items repeat, and so do their tag lists: caching makes reading 200 events ~40% faster.
    try:
        tags = json.loads(stored)
    except (TypeError, ValueError, RecursionError):
        tags = None
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        # integrity_check validates pages and indexes, not what a record holds: a torn last page passes it.
        raise HistoryError(f"an event's stored tags are damaged ({str(stored)[:40]!r}, expected a JSON list of strings); "
                           "the history file is damaged: export what is readable and move the file aside")
    return tuple(tags)


def event_from_row(row: tuple) -> Event:
    """An :class:`Event` from ``(id, *EVENT_COLUMNS)`` as selected from ``events``."""
    id_, profile, item_id, kind, ts, value, position_s, surface, hour, weekday, device, tags, client_id = row
    return Event(profile, item_id, kind, ts, value, hour, weekday, device, position_s, surface, _parse_tags(tags) if tags else (),
                 client_id, id_)
