"""Running per-profile counts by (tag, kind) and (hour, kind).

Updated by the same transaction that inserts or deletes the events they count, so a reader
never sees counts that disagree with the events.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from typing import Iterable

#: ``(profile, kind, hour, tags)`` of one event; tags as a tuple or as stored (JSON or None).
CountedEvent = tuple[str, str, int, "tuple[str, ...] | str | None"]


def _stored_tags(stored: str) -> tuple[str, ...]:
    # A damaged tag list counts as none: retention must still delete the event (its tag
    # counts then stay a little high) rather than fail after the caller's batch committed.
    try:
        tags = json.loads(stored)
    except (ValueError, RecursionError):
        return ()
    return tuple(tags) if isinstance(tags, list) and all(isinstance(t, str) for t in tags) else ()


def deltas(events: Iterable[CountedEvent]) -> tuple[Counter, Counter]:
    """Counts to add per ``(profile, tag, kind)`` and per ``(profile, hour, kind)``."""
    tags: Counter = Counter()
    hours: Counter = Counter()
    for profile, kind, hour, event_tags in events:
        hours[profile, hour, kind] += 1
        if event_tags:
            for tag in _stored_tags(event_tags) if isinstance(event_tags, str) else event_tags:
                tags[profile, tag, kind] += 1
    return tags, hours


def add(conn: sqlite3.Connection, tags: Counter, hours: Counter) -> None:
    """Add counts (inside the caller's transaction)."""
    conn.executemany(
        "INSERT INTO tag_counts (profile, tag, kind, n) VALUES (?, ?, ?, ?) ON CONFLICT (profile, tag, kind) DO UPDATE SET n = n + excluded.n",
        [(*k, n) for k, n in tags.items()],
    )
    conn.executemany(
        "INSERT INTO hour_counts (profile, hour, kind, n) VALUES (?, ?, ?, ?) ON CONFLICT (profile, hour, kind) DO UPDATE SET n = n + excluded.n",
        [(*k, n) for k, n in hours.items()],
    )


def subtract(conn: sqlite3.Connection, tags: Counter, hours: Counter) -> None:
    """Subtract counts of deleted events and drop rows that reach zero (inside the caller's
    transaction)."""
    conn.executemany("UPDATE tag_counts SET n = n - ? WHERE profile = ? AND tag = ? AND kind = ?", [(n, *k) for k, n in tags.items()])
    conn.executemany("UPDATE hour_counts SET n = n - ? WHERE profile = ? AND hour = ? AND kind = ?", [(n, *k) for k, n in hours.items()])
    for profile in {k[0] for k in tags} | {k[0] for k in hours}:
        conn.execute("DELETE FROM tag_counts WHERE profile = ? AND n <= 0", [profile])
        conn.execute("DELETE FROM hour_counts WHERE profile = ? AND n <= 0", [profile])
