"""The household's history, kept only on the device in SQLite (through sqlite-utils).

WAL journal and a busy timeout let the UI read while an ingestion thread writes; each batch of
events is one transaction, so a power cut loses a whole unacknowledged batch or nothing.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import sqlite_utils

from edge.errors import HistoryError

SCHEMA_VERSION = 1
EVENT_KINDS: tuple[str, ...] = ("play", "complete", "skip", "like", "dislike", "search", "add-to-list")
#: Kinds that say the person wanted the item; the rest are negative or neutral signals.
POSITIVE_KINDS = frozenset({"play", "complete", "like", "add-to-list"})
NEGATIVE_KINDS = frozenset({"skip", "dislike"})
MAX_ID_LEN = 256
_MIN_TS = 946_684_800  # 2000-01-01: earlier is a clock that was never set
_FUTURE_SLACK_S = 2 * 86400


@dataclass(frozen=True)
class Event:
    """One thing a profile did with an item."""

    profile: str
    item_id: str
    kind: str
    timestamp: float
    value: float | None = None
    hour: int | None = None
    weekday: int | None = None
    device: str | None = None


def _check_id(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise HistoryError(f"{name} must be a non-empty string, got {value!r}")
    if len(value) > MAX_ID_LEN:
        raise HistoryError(f"{name} is {len(value)} characters; at most {MAX_ID_LEN} allowed")
    if "\x00" in value:
        raise HistoryError(f"{name} {value!r} contains a NUL byte")
    return value


class HistoryStore:
    """Events and profiles in one SQLite file. Open with ``HistoryStore(path)``."""

    def __init__(self, path: str | Path, synchronous: str = "NORMAL", busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        try:
            conn = sqlite3.connect(str(self.path), timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False)
            self.db = sqlite_utils.Database(conn)
            self.db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self.db.enable_wal()
            self.db.execute(f"PRAGMA synchronous = {synchronous}")
            self._create()
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{self.path}: cannot open the history database ({exc})") from None

    def _create(self) -> None:
        db = self.db
        with db.conn:
            if "profiles" not in db.table_names():
                db["profiles"].create({"profile": str, "created_at": float, "age_limit": int}, pk="profile")
            if "events" not in db.table_names():
                db["events"].create(
                    {
                        "id": int,
                        "profile": str,
                        "item_id": str,
                        "kind": str,
                        "timestamp": float,
                        "value": float,
                        "hour": int,
                        "weekday": int,
                        "device": str,
                    },
                    pk="id",
                    foreign_keys=[("profile", "profiles", "profile")],
                )
                db["events"].create_index(["profile", "timestamp"])
            if "settings" not in db.table_names():
                db["settings"].create({"key": str, "value": str}, pk="key")
                db["settings"].insert({"key": "schema_version", "value": str(SCHEMA_VERSION)})

    def close(self) -> None:
        """Close the connection."""
        self.db.conn.close()

    def add_profile(self, profile: str, age_limit: int | None = None) -> None:
        """Create a profile (no-op if it exists)."""
        _check_id("profile", profile)
        with self.db.conn:
            self.db["profiles"].insert({"profile": profile, "created_at": time.time(), "age_limit": age_limit}, ignore=True)

    def profiles(self) -> list[str]:
        """All profile ids."""
        return [r["profile"] for r in self.db["profiles"].rows]

    def _require_profile(self, profile: str) -> None:
        if not self.db["profiles"].count_where("profile = ?", [profile]):
            raise HistoryError(f"unknown profile {profile!r}; create it first (known: {self.profiles()[:10]})")

    def record_many(self, events: Sequence[Event]) -> int:
        """Validate and insert a batch of events in one transaction.

        :returns: number of events stored.
        :raises HistoryError: on an unknown profile or kind, or an implausible timestamp; then
            nothing of the batch is stored.
        """
        now = time.time()
        rows = []
        for ev in events:
            _check_id("profile", ev.profile)
            _check_id("item_id", ev.item_id)
            if ev.kind not in EVENT_KINDS:
                raise HistoryError(f"unknown event kind {ev.kind!r}; expected one of {list(EVENT_KINDS)}")
            if not _MIN_TS <= ev.timestamp <= now + _FUTURE_SLACK_S:
                raise HistoryError(f"timestamp {ev.timestamp} is before 2000 or in the future; check the device clock")
            rows.append(
                {
                    "profile": ev.profile,
                    "item_id": ev.item_id,
                    "kind": ev.kind,
                    "timestamp": float(ev.timestamp),
                    "value": ev.value,
                    "hour": ev.hour,
                    "weekday": ev.weekday,
                    "device": ev.device,
                }
            )
        try:
            with self.db.conn:
                for profile in {r["profile"] for r in rows}:
                    self._require_profile(profile)
                self.db["events"].insert_all(rows, batch_size=500)
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{self.path}: could not store {len(rows)} event(s) ({exc})") from None
        return len(rows)

    def record(self, profile: str, item_id: str, kind: str = "play", timestamp: float | None = None, **extra) -> None:
        """Store one event (see :meth:`record_many`)."""
        self.record_many([Event(profile, item_id, kind, time.time() if timestamp is None else timestamp, **extra)])

    def recent(self, profile: str, n: int = 50, kinds: Iterable[str] | None = None) -> list[Event]:
        """The last ``n`` events of a profile, newest first.

        :raises HistoryError: for an unknown profile.
        """
        self._require_profile(profile)
        sql = "select profile, item_id, kind, timestamp, value, hour, weekday, device from events where profile = ?"
        params: list[object] = [profile]
        if kinds is not None:
            kinds = list(kinds)
            sql += f" and kind in ({','.join('?' * len(kinds))})"
            params += kinds
        sql += " order by timestamp desc, id desc limit ?"
        params.append(int(n))
        return [Event(*row) for row in self.db.execute(sql, params).fetchall()]

    def count(self, profile: str | None = None) -> int:
        """Number of events stored (for one profile, or all)."""
        if profile is None:
            return self.db["events"].count
        return self.db["events"].count_where("profile = ?", [profile])
