"""The household's history in one SQLite file: :class:`HistoryStore`."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ContextManager, Iterable, Iterator, Sequence
from urllib.parse import quote

import numpy as np
import sqlite_utils

from edge.atomic import atomic_write
from edge.contract.defaults import DEFAULT_MAX_EVENTS_PER_PROFILE, DEFAULT_SYNCHRONOUS
# Accepted ``synchronous`` settings; OFF is refused: it can lose acknowledged events.
from edge.contract.defaults import SQLITE_SYNCHRONOUS as SYNCHRONOUS_MODES
from edge.errors import HistoryError
from edge.history import aggregates
from edge.history.events import (
    EVENT_COLUMNS,
    EVENT_KINDS,
    MAX_BATCH_EVENTS,
    MIN_TIMESTAMP,
    Event,
    check_id,
    check_number,
    event_from_row,
    event_row,
)
from edge.history.local_items import LOCAL_ITEM_KINDS, MAX_TITLE_LEN, LocalItem, decode_embedding, encode_embedding
from edge.history.migrations import readable_version, schema_version, upgrade
from edge.history.recovery import Corrupt, check_existing, is_corruption, move_aside, salvage_household
from edge.history.schema import GUEST_PROFILE, HOUSEHOLD, SCHEMA_VERSION, VERSION_KEY

log = logging.getLogger("edge.history")

#: Events deleted per retention transaction, so the write lock is held only briefly.
RETENTION_CHUNK = 500
#: A profile may exceed its event cap by this fraction before it is trimmed back to the cap,
#: so a profile at its cap does not pay a delete on every insert.
RETENTION_SLACK = 0.01
#: The WAL file is truncated back to this size after a checkpoint (bytes).
WAL_SIZE_LIMIT = 4 * 1024 * 1024
MAX_SETTING_LEN = 4096
EXPORT_FORMAT = "edgerec-history-export/1"
#: Settings keys the store writes itself for the privacy receipt (:mod:`edge.privacy`).
#: Per profile: the last export, ``{"at": unix seconds, "path": str | None}`` (removed by
#: :meth:`HistoryStore.forget` with the profile's other settings).
LAST_EXPORT_KEY = "edgerec.last_export"
#: Household: ``{"count", "last_at"}`` of every export, so exports of a profile forgotten
#: later still count (no profile name or path: the path may contain the name).
EXPORTS_KEY = "edgerec.exports"
#: Household: ``{"count", "last_at"}`` of :meth:`HistoryStore.forget` calls, never the name.
FORGOTTEN_KEY = "edgerec.forgotten"
STORE_KEYS = (LAST_EXPORT_KEY, EXPORTS_KEY, FORGOTTEN_KEY)

_SELECT_EVENTS = f"SELECT id, {', '.join(EVENT_COLUMNS)} FROM events"
_HOUR = EVENT_COLUMNS.index("hour")
_TS = EVENT_COLUMNS.index("timestamp")
_CLIENT = EVENT_COLUMNS.index("client_id")
_INSERT_EVENT = f"INSERT INTO events (id, {', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * (len(EVENT_COLUMNS) + 1))})"


@dataclass(frozen=True)
class Forgotten:
    """What :meth:`HistoryStore.forget` removed. ``wal_truncated`` is False when another
    connection kept the WAL file busy: its old pages are overwritten or truncated at the
    next checkpoint instead."""

    profile: str
    events: int
    local_items: int
    settings: int
    wal_truncated: bool


class HistoryStore:
    """Profiles, events, running aggregates, local items and settings in one SQLite file.

    >>> store = HistoryStore("history.db")
    >>> store.add_profile("alice")
    >>> store.record("alice", "v00012", "complete", value=0.97, device="tv", tags=["drama"])
    >>> store.recent("alice", 50)              # newest first
    >>> store.tag_counts("alice")              # {"drama": 1}
    >>> store.forget("alice")                  # every trace, then VACUUM

    Durability: WAL journal; each :meth:`record_many` batch is one transaction, so a crash or
    power cut keeps a whole acknowledged batch or nothing of an unacknowledged one (power cuts
    need ``synchronous="FULL"``; with ``"NORMAL"`` the last commits may roll back).

    Disk full: a write that fails ("database or disk is full", "disk I/O error") raises
    :class:`HistoryError` saying so; its transaction is rolled back, acknowledged events stay,
    and the same store writes again once space returns (tests/test_history_faults.py).

    Concurrency: one writer and any number of readers, each process or thread with its own
    store (a store may also be shared between threads; its calls are then serialised). Write
    transactions start with ``BEGIN IMMEDIATE``, so a second writer waits up to
    ``busy_timeout_ms`` instead of failing with "database is locked"; readers never wait
    for the writer.

    Opening checks the file's integrity (see :mod:`edge.history.recovery`). A damaged file is
    moved aside with a timestamped name, a warning is logged on ``edge.history``, a fresh
    history is started and :attr:`recovered_from` names the moved file.

    :param path: the SQLite file; created when missing (its folder must exist).
    :param synchronous: ``"FULL"`` (survives power cuts), ``"NORMAL"`` (survives crashes of
        the app, fewer flash writes) or ``"EXTRA"``; chosen by the device profile.
    :param busy_timeout_ms: how long a writer waits for another writer's lock.
    :param max_events_per_profile: cap on stored events per profile (``None``: no cap); the
        oldest go first.
    :param max_age_days: events older than this are deleted (``None``: kept).
    :param recover: move a damaged file aside and start fresh (``True``) or raise.
    :param read_only: open for reading only; by default when the file or its folder is not
        writable (a read-only mount, another user's file), so recommendations still use the
        history while every write raises :class:`HistoryError` saying why.
    :raises HistoryError: a bad parameter, a folder that does not exist, a file that cannot
        be opened, a damaged file with ``recover=False``, a file of another application or
        of a newer edgerec.
    """

    def __init__(
        self,
        path: str | Path,
        synchronous: str = DEFAULT_SYNCHRONOUS,
        busy_timeout_ms: int = 5000,
        max_events_per_profile: int | None = DEFAULT_MAX_EVENTS_PER_PROFILE,
        max_age_days: float | None = None,
        recover: bool = True,
        read_only: bool | None = None,
    ) -> None:
        self.path = Path(path)
        #: Opened for reading only (the file or its folder is not writable, e.g. a read-only
        #: mount): recommendations work from the history as it is; every write raises.
        self.read_only = _cannot_write(self.path) if read_only is None else bool(read_only)
        if not isinstance(synchronous, str) or synchronous.upper() not in SYNCHRONOUS_MODES:
            raise HistoryError(
                f"synchronous={synchronous!r}; expected one of {list(SYNCHRONOUS_MODES)} "
                "(OFF is refused: a power cut could lose acknowledged events)"
            )
        self.synchronous = synchronous.upper()
        if isinstance(busy_timeout_ms, bool) or not isinstance(busy_timeout_ms, int) or busy_timeout_ms < 0:
            raise HistoryError(f"busy_timeout_ms={busy_timeout_ms!r}; expected a whole number of milliseconds >= 0")
        self.busy_timeout_ms = busy_timeout_ms
        if max_events_per_profile is not None and (isinstance(max_events_per_profile, bool) or not isinstance(max_events_per_profile, int) or max_events_per_profile < 1):
            raise HistoryError(f"max_events_per_profile={max_events_per_profile!r}; expected a whole number >= 1 or None")
        self.max_events_per_profile = max_events_per_profile
        self.max_age_days = None if max_age_days is None else check_number("max_age_days", max_age_days, 1e-6, 1e6)
        #: Where the damaged file was moved when this store had to start fresh, else None.
        self.recovered_from: Path | None = None
        #: Rows copied from the damaged file into the fresh one (profiles, settings), when recovered.
        self.salvaged: dict[str, int] = {}
        self._lock = threading.RLock()
        self._closed = False
        self._holder = _Holder(self.path, self.read_only)
        try:
            self._open(recover)
        except BaseException:
            self._holder.release()
            raise

    def _open(self, recover: bool) -> None:
        try:
            self.db = self._connect()
        except Corrupt as exc:
            if not recover:
                raise HistoryError(f"{self.path}: the history database is damaged ({exc}); open it with recover=True to move it aside and start fresh") from None
            if not self._holder.sole():
                raise HistoryError(f"{self.path}: the history database is damaged ({exc}), but another process has it open; it was not "
                                   "moved aside (that process's writes would be lost). Stop the other edgerec processes (the service) "
                                   "and open it again to recover") from None
            try:
                self.recovered_from = move_aside(self.path, shm=exc.shm)
            except OSError as move_exc:
                raise HistoryError(f"{self.path}: the history database is damaged ({exc}) and could not be moved aside ({move_exc}); free the folder or move it by hand") from None
            log.warning(
                "history database %s is damaged (%s); moved it to %s and started an empty history: recommendations start cold",
                self.path, exc, self.recovered_from,
            )
            try:
                self.db = self._connect()
            except Corrupt as again:
                raise HistoryError(f"{self.path}: a fresh history database is reported damaged too ({again}); check the storage") from None
            # Profiles, age limits and settings come back where the damaged file still reads:
            # a kid's profile must not return without its age limit.
            try:
                with self._write("salvage profiles and settings") as conn:
                    self.salvaged = salvage_household(self.recovered_from, conn)
            except HistoryError as exc:
                log.warning("nothing salvaged from %s: %s", self.recovered_from, exc)
            log.warning("salvaged %s from %s", self.salvaged, self.recovered_from)

    # -- opening -----------------------------------------------------------------------------

    def _connect(self) -> sqlite_utils.Database:
        p = self.path
        if p.is_dir():
            raise HistoryError(f"{p} is a folder; pass a file path such as {p / 'history.db'}")
        if not p.parent.is_dir():
            raise HistoryError(f"{p.parent} does not exist; create the folder first")
        if self.read_only:
            return self._connect_read_only()
        if p.exists() and (p.stat().st_size > 0 or Path(f"{p}-wal").exists()):
            try:
                # Read-only checks first: a damaged, foreign or newer file must not be modified
                # (even switching it to WAL rewrites its header).
                check_existing(p, self.busy_timeout_ms, readable_version)
            except sqlite3.Error as exc:
                raise HistoryError(f"{p}: cannot open the history database ({exc}); check its permissions") from None
        created = not p.exists()
        try:
            conn = sqlite3.connect(str(p), timeout=self.busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise HistoryError(f"{p}: cannot open the history database ({exc}); check the path and its permissions") from None
        if created:
            _give_to_folder_owner(p)
        try:
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            db = sqlite_utils.Database(conn)
            db.enable_wal()
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            # Deleted rows are zeroed in place, not left in free pages.
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            upgrade(db)
            return db
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                if is_corruption(exc):
                    raise Corrupt(str(exc)) from None
                raise HistoryError(f"{p}: cannot open the history database ({exc}); check its permissions and free space") from None
            raise

    def _open_uri(self, uri: str) -> sqlite3.Connection:
        conn = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        return conn

    def _connect_read_only(self) -> sqlite_utils.Database:
        p = self.path
        if not p.is_file():
            raise HistoryError(f"{p}: no history database, and its folder is not writable to create one; fix the permissions")
        conn = None
        try:
            try:
                conn = self._open_uri(f"file:{quote(str(p.resolve()))}?mode=ro")
                found = readable_version(conn)
            except sqlite3.OperationalError:
                # A WAL file with no -shm beside it in a folder we cannot write: SQLite cannot
                # share it, so read the file as it is (no writer can change it either).
                if conn is not None:
                    conn.close()
                conn = self._open_uri(f"file:{quote(str(p.resolve()))}?mode=ro&immutable=1")
                found = readable_version(conn)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            if is_corruption(exc):
                raise HistoryError(f"{p}: the history database is damaged ({exc}) and read-only, so it cannot be moved aside; "
                                   "fix the permissions or move it by hand") from None
            raise HistoryError(f"{p}: cannot open the read-only history database ({exc}); check its permissions") from None
        if found != SCHEMA_VERSION:
            conn.close()
            raise HistoryError(f"{p}: the read-only history has schema version {found}, this edgerec reads {SCHEMA_VERSION} "
                               "after a migration it cannot write; make the file writable once")
        log.warning("history database %s is read-only: recommendations use it as it is; recording fails", p)
        return sqlite_utils.Database(conn)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.db.conn.close()
                self._holder.release()

    def __enter__(self) -> "HistoryStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HistoryStore({str(self.path)!r}, synchronous={self.synchronous!r})"

    @property
    def schema_version(self) -> int:
        """The file's schema version."""
        with self._reading("read the schema version") as conn:
            return schema_version(conn)

    # -- transactions ------------------------------------------------------------------------

    def _error(self, what: str, exc: sqlite3.Error, outcome: str = "nothing of this operation was stored") -> HistoryError:
        """The HistoryError for a failed SQLite call; ``outcome`` says what was kept."""
        msg = str(exc)
        if isinstance(exc, sqlite3.DatabaseError) and is_corruption(exc):
            hint = "the file is damaged; close and reopen the store to move it aside and start a fresh history"
        elif "locked" in msg or "busy" in msg:
            hint = f"another connection held the write lock for more than {self.busy_timeout_ms} ms: {outcome}; retry, or raise busy_timeout_ms"
        elif self.read_only or "readonly" in msg:
            hint = f"the history is read-only (file or folder not writable, or a read-only mount): {outcome}; fix the permissions to record"
        elif _is_write_failure(exc):
            # SQLITE_FULL (ENOSPC, a short write) or SQLITE_IOERR_* (EFBIG past a file-size
            # limit, a failing card): the transaction is rolled back and the store stays usable.
            hint = f"the disk is full or the storage failed a write: {outcome}; free some space and retry with the same store"
        else:
            hint = outcome
        return HistoryError(f"{self.path}: could not {what} ({msg}); {hint}")

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise HistoryError(f"{self.path}: the history store is closed; open a new HistoryStore")
        return self.db.conn

    @contextmanager
    def _transaction(self, what: str, begin: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn()
            try:
                conn.execute(begin)
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                _rollback(conn)
                if isinstance(exc, sqlite3.Error):
                    raise self._error(what, exc) from None
                raise

    def _write(self, what: str) -> ContextManager[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, where the busy timeout applies; a deferred
        # transaction that upgrades from read to write fails at once with "database is locked".
        return self._transaction(what, "BEGIN IMMEDIATE")

    def _reading(self, what: str) -> ContextManager[sqlite3.Connection]:
        # One read transaction: every statement inside sees the same snapshot.
        return self._transaction(what, "BEGIN")

    def _require_profiles(self, conn: sqlite3.Connection, profiles: Iterable[str]) -> None:
        # Checked here too: a caller may pass anything (argparse turns "--profile=--" into []).
        wanted = list(dict.fromkeys(check_id("profile", p) for p in profiles))
        found = {r[0] for r in conn.execute(f"SELECT profile FROM profiles WHERE profile IN ({','.join('?' * len(wanted))})", wanted)}
        missing = [p for p in wanted if p not in found]
        if missing:
            known = [r[0] for r in conn.execute("SELECT profile FROM profiles ORDER BY rowid LIMIT 10")]
            raise HistoryError(f"unknown profile {missing[0]!r}; create it with add_profile() first (known: {known})")

    # -- profiles ----------------------------------------------------------------------------

    def add_profile(self, profile: str, age_limit: int | None = None) -> None:
        """Create a profile; a no-op when it exists.

        :param age_limit: the viewer's age limit in years, or None.
        :raises HistoryError: a malformed id or age limit.
        """
        check_id("profile", profile)
        if age_limit is not None:
            age_limit = int(check_number("age_limit", age_limit, 0, 120))
        with self._write(f"add profile {profile!r}"):
            self.db["profiles"].insert({"profile": profile, "created_at": time.time(), "age_limit": age_limit, "is_guest": 0}, ignore=True)

    def age_limit(self, profile: str) -> int | None:
        """The profile's age limit in years (None: no limit).

        :raises HistoryError: an unknown profile.
        """
        with self._reading("read profile") as conn:
            self._require_profiles(conn, [profile])
            row = conn.execute("SELECT age_limit FROM profiles WHERE profile = ?", [profile]).fetchone()
        return None if row[0] is None else int(row[0])

    def profiles(self) -> list[str]:
        """Every profile id, oldest first (the guest profile included)."""
        with self._lock:
            try:
                return [r[0] for r in self._conn().execute("SELECT profile FROM profiles ORDER BY rowid")]
            except sqlite3.Error as exc:
                raise self._error("list profiles", exc) from None

    # -- events ------------------------------------------------------------------------------

    def record_many(self, events: Iterable[Event]) -> list[int]:
        """Validate and store a batch of events, and their aggregates, in one transaction.

        At most :data:`~edge.history.events.MAX_BATCH_EVENTS` per call. Retention caps are
        applied afterwards, in their own small transactions.

        An event whose ``client_id`` its profile already has is not stored again: its first id
        is returned, so a caller may retry a batch after any error or a lost answer.

        :returns: the ids of the events, in order; once returned, they survive a crash.
        :raises HistoryError: an unknown profile, an unknown kind or device, a timestamp before
            2000 or more than 2 days ahead, a malformed id, tag or number, an oversized batch,
            or a write that failed; then nothing of the batch is stored.
        """
        events = list(events)
        if not events:
            return []
        if len(events) > MAX_BATCH_EVENTS:
            raise HistoryError(f"a batch of {len(events)} events; at most {MAX_BATCH_EVENTS} per record_many() call, split it")
        now = time.time()
        rows = []
        for ev in events:
            if not isinstance(ev, Event):
                raise HistoryError(f"record_many() takes Event objects, got {type(ev).__name__}")
            rows.append(event_row(ev, now))
        profiles = list(dict.fromkeys(r[0] for r, _ in rows))
        with self._write(f"store {len(rows)} event(s)") as conn:
            self._require_profiles(conn, profiles)
            known = self._stored_client_ids(conn, {(r[0], r[_CLIENT]) for r, _ in rows if r[_CLIENT] is not None})
            floors: dict[str, float] = {}
            # Ids are assigned here, under the write lock, so the caller learns them without a
            # round trip per row.
            next_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM events").fetchone()[0]
            ids, new, counted = [], [], []
            for row, tags in rows:
                key = (row[0], row[_CLIENT]) if row[_CLIENT] is not None else None
                if key in known:  # a retry: stored once, answered with the first id
                    ids.append(known[key])
                    continue
                if row[_TS] < MIN_TIMESTAMP:
                    # The device clock is not set: keep insertion order by placing the event
                    # right after the profile's newest one.
                    if row[0] not in floors:
                        newest = conn.execute("SELECT max(timestamp) FROM events WHERE profile = ?", [row[0]]).fetchone()[0]
                        floors[row[0]] = max(float(newest or 0.0), float(MIN_TIMESTAMP))
                    row = (*row[:_TS], floors[row[0]], *row[_TS + 1:])
                if key is not None:
                    known[key] = next_id
                new.append((next_id, *row))
                counted.append((row[0], row[2], row[_HOUR], tags))
                ids.append(next_id)
                next_id += 1
            # The hot path: executemany on validated tuples runs about twice the rate of
            # sqlite-utils' insert_all, which builds a dict per row (benchmarks/history_store.py).
            conn.executemany(_INSERT_EVENT, new)
            aggregates.add(conn, *aggregates.deltas(counted))
        for profile in profiles:
            try:
                self._trim(profile, now, slack=True)
            except (HistoryError, sqlite3.Error, ValueError) as exc:
                # The batch is committed: failing here would make the caller store it twice.
                log.warning("retention after insert skipped: %s", exc)
        return ids

    @staticmethod
    def _stored_client_ids(conn: sqlite3.Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """``(profile, client_id) -> id`` of those already stored."""
        found: dict[tuple[str, str], int] = {}
        keys_l = sorted(keys)
        for start in range(0, len(keys_l), 400):  # well under SQLite's bound-parameter limit
            chunk = keys_l[start:start + 400]
            where = " OR ".join(["(profile = ? AND client_id = ?)"] * len(chunk))
            for profile, cid, id_ in conn.execute(f"SELECT profile, client_id, id FROM events WHERE {where}", [v for k in chunk for v in k]):
                found[profile, cid] = id_
        return found

    def record(
        self,
        profile: str,
        item_id: str,
        kind: str = "play",
        timestamp: float | None = None,
        value: float | None = None,
        *,
        hour: int | None = None,
        weekday: int | None = None,
        device: str | None = None,
        position_s: float | None = None,
        surface: str | None = None,
        tags: Iterable[str] = (),
        client_id: str | None = None,
    ) -> int:
        """Store one event (see :class:`Event` for the fields and :meth:`record_many`).

        :param timestamp: Unix seconds; now when None.
        :returns: the event's id.
        :raises HistoryError: as :meth:`record_many`.
        """
        ts = time.time() if timestamp is None else timestamp
        # A bare string is passed through so validation can refuse it with a clear message.
        tags = tags if isinstance(tags, str) else tuple(tags or ())
        ev = Event(profile, item_id, kind, ts, value, hour, weekday, device, position_s, surface, tags, client_id)
        return self.record_many([ev])[0]

    def recent(self, profile: str, n: int = 50, kinds: Iterable[str] | None = None) -> list[Event]:
        """The last ``n`` events of ``profile``, newest first (ties by id), with their kinds and
        context, in one query that walks ``idx_events_recent`` backwards.

        :param kinds: only these kinds (None: all).
        :raises HistoryError: an unknown profile or kind, or a negative ``n``.
        """
        return [event_from_row(r) for r in self._recent_rows(_SELECT_EVENTS, profile, n, kinds)]

    def recent_items(self, profile: str, n: int = 50, kinds: Iterable[str] | None = None) -> list[tuple[str, str]]:
        """``(item_id, kind)`` of the last ``n`` events of ``profile``, newest first: what
        :meth:`recent` returns, without building events (the ranker reads thousands).

        :raises HistoryError: as :meth:`recent`.
        """
        return self._recent_rows("SELECT item_id, kind FROM events", profile, n, kinds)

    def _recent_rows(self, select: str, profile: str, n: int, kinds: Iterable[str] | None) -> list[tuple]:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise HistoryError(f"n={n!r}; expected a whole number >= 0")
        sql = f"{select} WHERE profile = ?"
        params: list[object] = [profile]
        if kinds is not None:
            kinds = _check_kinds(kinds)
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            params += kinds
        sql += " ORDER BY timestamp DESC, id DESC LIMIT ?"
        params.append(n)
        with self._lock:
            try:
                rows = self._conn().execute(sql, params).fetchall()
                if not rows:
                    self._require_profiles(self._conn(), [profile])
            except sqlite3.Error as exc:
                raise self._error(f"read events of {profile!r}", exc) from None
        return rows

    def change_token(self) -> tuple[int, int, int]:
        """A value that differs once anything in the file has changed, by this store or by
        another connection or process (SQLite's ``data_version`` and this connection's change
        count): a reader may keep what it derived from the history while the token holds.

        :raises HistoryError: the file cannot be read.
        """
        with self._lock:
            conn = self._conn()
            try:
                version = conn.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error as exc:
                raise self._error("read the history's version", exc) from None
            return id(conn), int(version), conn.total_changes

    def count(self, profile: str | None = None) -> int:
        """Number of events stored, for one profile (0 for an unknown one) or all."""
        with self._lock:
            try:
                if profile is None:
                    return self._conn().execute("SELECT count(*) FROM events").fetchone()[0]
                return self._conn().execute("SELECT coalesce(sum(n), 0) FROM hour_counts WHERE profile = ?", [profile]).fetchone()[0]
            except sqlite3.Error as exc:
                raise self._error("count events", exc) from None

    def tag_counts(self, profile: str, kinds: Iterable[str] | None = None) -> dict[str, int]:
        """Events of ``profile`` per tag (of the given kinds; all when None), most frequent
        first, from the running aggregates.

        :raises HistoryError: an unknown profile or kind.
        """
        return {k: n for k, n in self._aggregate("tag_counts", "tag", profile, kinds)}

    def hour_counts(self, profile: str, kinds: Iterable[str] | None = None) -> list[int]:
        """Events of ``profile`` per context hour, a list of 24 counts (hour 0 first), from the
        running aggregates.

        :raises HistoryError: an unknown profile or kind.
        """
        out = [0] * 24
        for hour, n in self._aggregate("hour_counts", "hour", profile, kinds):
            out[hour] = n
        return out

    def _aggregate(self, table: str, key: str, profile: str, kinds: Iterable[str] | None) -> list[tuple[Any, int]]:
        sql = f"SELECT {key}, sum(n) AS total FROM {table} WHERE profile = ?"
        params: list[object] = [profile]
        if kinds is not None:
            kinds = _check_kinds(kinds)
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            params += kinds
        sql += f" GROUP BY {key} HAVING total > 0 ORDER BY total DESC, {key}"
        with self._reading(f"read {table} of {profile!r}") as conn:
            self._require_profiles(conn, [profile])
            return conn.execute(sql, params).fetchall()

    # -- retention ---------------------------------------------------------------------------

    def enforce_retention(self, profile: str | None = None, now: float | None = None) -> int:
        """Delete events beyond the caps (``max_events_per_profile``, ``max_age_days``),
        oldest first, :data:`RETENTION_CHUNK` per transaction so other writers wait only
        briefly; readers are never blocked. :meth:`record_many` calls this for the profiles it
        wrote, allowing :data:`RETENTION_SLACK` over the count cap before trimming.

        :param now: Unix seconds the age cap counts from (default now).
        :returns: how many events were deleted.
        :raises HistoryError: an unknown profile, or a write that failed (what was deleted
            before stays deleted, with its aggregates).
        """
        now = time.time() if now is None else now
        if profile is not None:
            with self._reading("check profile") as conn:
                self._require_profiles(conn, [profile])
        return sum(self._trim(p, now, slack=False) for p in ([profile] if profile is not None else self.profiles()))

    def _trim(self, profile: str, now: float, slack: bool) -> int:
        cap = self.max_events_per_profile
        cutoff = None if self.max_age_days is None else now - self.max_age_days * 86400
        if cap is None and cutoff is None:
            return 0
        with self._lock:  # cheap read-only check first: most inserts need no trimming
            try:
                conn = self._conn()
                excess = 0
                if cap is not None:
                    count = conn.execute("SELECT coalesce(sum(n), 0) FROM hour_counts WHERE profile = ?", [profile]).fetchone()[0]
                    excess = count - cap if count > cap + (int(cap * RETENTION_SLACK) if slack else 0) else 0
                old = False
                if cutoff is not None:
                    oldest = conn.execute("SELECT min(timestamp) FROM events WHERE profile = ?", [profile]).fetchone()[0]
                    old = oldest is not None and oldest < cutoff
            except sqlite3.Error as exc:
                raise self._error(f"check retention of {profile!r}", exc) from None
        if excess <= 0 and not old:
            return 0
        deleted = 0
        while True:
            with self._write(f"enforce retention on {profile!r}") as conn:
                rows: list = []
                if cutoff is not None:
                    rows = conn.execute(
                        "SELECT id, profile, kind, hour, tags FROM events WHERE profile = ? AND timestamp < ? ORDER BY timestamp, id LIMIT ?",
                        [profile, cutoff, RETENTION_CHUNK],
                    ).fetchall()
                if not rows and cap is not None:
                    count = conn.execute("SELECT coalesce(sum(n), 0) FROM hour_counts WHERE profile = ?", [profile]).fetchone()[0]
                    if count > cap:
                        rows = conn.execute(
                            "SELECT id, profile, kind, hour, tags FROM events WHERE profile = ? ORDER BY timestamp, id LIMIT ?",
                            [profile, min(RETENTION_CHUNK, count - cap)],
                        ).fetchall()
                if rows:
                    conn.executemany("DELETE FROM events WHERE id = ?", [(r[0],) for r in rows])
                    aggregates.subtract(conn, *aggregates.deltas(r[1:] for r in rows))
            if not rows:
                return deleted
            deleted += len(rows)

    # -- local items -------------------------------------------------------------------------

    def add_local_item(
        self,
        item_id: str,
        embedding: np.ndarray | Sequence[float],
        profile: str | None = None,
        kind: str | None = None,
        title: str | None = None,
    ) -> None:
        """Store (or replace) content the device found itself, with its embedding.

        :param embedding: 1-D, finite; stored as float32.
        :param profile: the owner, removed with it by :meth:`forget`; None for the household.
        :param kind: ``"audio"``, ``"video"`` or None.
        :param title: shown in the UI (content metadata, not personal data).
        :raises HistoryError: an unknown profile, a malformed id, kind or title, a bad
            embedding, or an id already used by another profile's item.
        """
        check_id("item_id", item_id)
        if profile is not None:
            check_id("profile", profile)
        if kind is not None and kind not in LOCAL_ITEM_KINDS:
            raise HistoryError(f"local item kind {kind!r}; expected one of {list(LOCAL_ITEM_KINDS)} or None")
        if title is not None:
            check_id("title", title, MAX_TITLE_LEN)
        dim, blob = encode_embedding(item_id, embedding)
        with self._write(f"add local item {item_id!r}") as conn:
            if profile is not None:
                self._require_profiles(conn, [profile])
            row = conn.execute("SELECT profile FROM local_items WHERE item_id = ?", [item_id]).fetchone()
            if row is not None and row[0] != profile:
                owner = "the household" if row[0] is None else f"profile {row[0]!r}"
                raise HistoryError(f"local item {item_id!r} already belongs to {owner}; use another id or remove_local_item() first")
            self.db["local_items"].upsert(
                {"item_id": item_id, "profile": profile, "kind": kind, "title": title, "added_at": time.time(), "dim": dim, "embedding": blob},
                pk="item_id",
            )

    def remove_local_item(self, item_id: str) -> bool:
        """Delete one local item. Returns whether it existed."""
        with self._write(f"remove local item {item_id!r}") as conn:
            return conn.execute("DELETE FROM local_items WHERE item_id = ?", [item_id]).rowcount > 0

    def local_items(self, profile: str | None = None) -> list[LocalItem]:
        """Local items visible to ``profile`` (its own and the household's), or with None
        the household's shared ones; oldest first.

        :raises HistoryError: an unknown profile.
        """
        with self._reading("read local items") as conn:
            rows = self._local_rows(conn, profile)
        return [LocalItem(r[0], r[1], r[2], r[3], r[4], decode_embedding(r[5], r[6])) for r in rows]

    def local_embeddings(self, profile: str | None = None, dim: int | None = None) -> tuple[list[str], np.ndarray]:
        """Ids and float32 ``(n, dim)`` embeddings of the local items visible to ``profile``
        (as :meth:`local_items`), ready to score next to the catalogue.

        :param dim: keep only items of this dimension (items embedded by an older bundle).
        :raises HistoryError: an unknown profile, or mixed dimensions without ``dim``.
        """
        with self._reading("read local items") as conn:
            rows = self._local_rows(conn, profile)
        if dim is not None:
            rows = [r for r in rows if r[5] == dim]
        dims = sorted({r[5] for r in rows})
        if len(dims) > 1:
            raise HistoryError(f"local items have embeddings of dims {dims}; pass dim= to pick the current bundle's")
        width = dims[0] if dims else (dim or 0)
        matrix = np.empty((len(rows), width), dtype=np.float32)
        for i, r in enumerate(rows):
            matrix[i] = decode_embedding(r[5], r[6])
        return [r[0] for r in rows], matrix

    def _local_rows(self, conn: sqlite3.Connection, profile: str | None) -> list[tuple]:
        sql = "SELECT item_id, profile, kind, title, added_at, dim, embedding FROM local_items WHERE profile IS NULL"
        params: list[object] = []
        if profile is not None:
            self._require_profiles(conn, [profile])
            sql += " OR profile = ?"
            params.append(profile)
        return conn.execute(sql + " ORDER BY added_at, item_id", params).fetchall()

    # -- settings ----------------------------------------------------------------------------

    def setting(self, key: str, profile: str | None = None, default: str | None = None) -> str | None:
        """A household setting, or ``profile``'s own; ``default`` when unset."""
        with self._lock:
            try:
                row = self._conn().execute("SELECT value FROM settings WHERE profile = ? AND key = ?", [profile or HOUSEHOLD, key]).fetchone()
            except sqlite3.Error as exc:
                raise self._error(f"read setting {key!r}", exc) from None
        return default if row is None else row[0]

    def set_setting(self, key: str, value: str, profile: str | None = None) -> None:
        """Set a household setting, or ``profile``'s own (removed by :meth:`forget`).

        :raises HistoryError: a malformed key or value, the reserved key ``schema_version`` or a
            key starting ``edgerec.`` (the store's own records the privacy receipt reads), or an
            unknown profile.
        """
        check_id("setting key", key)
        check_id("setting value", value, MAX_SETTING_LEN)
        if (key == VERSION_KEY and profile is None) or key.startswith("edgerec."):
            raise HistoryError(f"{key!r} is reserved for the store; choose another key")
        with self._write(f"set {key!r}") as conn:
            if profile is not None:
                check_id("profile", profile)
                self._require_profiles(conn, [profile])
            self.db["settings"].upsert({"profile": profile or HOUSEHOLD, "key": key, "value": value}, pk=("profile", "key"))

    # -- privacy -----------------------------------------------------------------------------

    def forget(self, profile: str) -> Forgotten:
        """Remove every trace of ``profile``: its events, aggregates, local items, settings and
        the profile itself (the guest profile stays, emptied). Then VACUUM rewrites the file
        without free pages and a ``wal_checkpoint(TRUNCATE)`` empties the WAL file, so the
        deleted bytes are gone from the database and its WAL. The household keeps only a
        count and the time of the last forget (:data:`FORGOTTEN_KEY`), never the name.

        :raises HistoryError: an unknown profile, or a write that failed (then nothing changed).
        """
        check_id("profile", profile)
        with self._write(f"forget {profile!r}") as conn:
            self._require_profiles(conn, [profile])
            n_events = conn.execute("DELETE FROM events WHERE profile = ?", [profile]).rowcount
            conn.execute("DELETE FROM tag_counts WHERE profile = ?", [profile])
            conn.execute("DELETE FROM hour_counts WHERE profile = ?", [profile])
            n_local = conn.execute("DELETE FROM local_items WHERE profile = ?", [profile]).rowcount
            n_settings = conn.execute("DELETE FROM settings WHERE profile = ?", [profile]).rowcount
            if profile != GUEST_PROFILE:
                conn.execute("DELETE FROM profiles WHERE profile = ?", [profile])
            # In the deleting transaction, so the count cannot miss a forget; the name is
            # never written: it would itself be data about the person.
            self._bump(conn, FORGOTTEN_KEY, time.time())
        with self._lock:
            try:
                conn = self._conn()
                conn.execute("VACUUM")
                busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.Error as exc:
                raise self._error(
                    f"vacuum after forgetting {profile!r}", exc,
                    "the profile is already removed and its rows zeroed in place (secure_delete), but the file was not compacted",
                ) from None
        if busy:
            log.warning("forgot %r but another connection kept the WAL busy; its old pages go at the next checkpoint", profile)
        return Forgotten(profile, n_events, n_local, n_settings, wal_truncated=not busy)

    def export(self, profile: str, path: str | Path | None = None) -> dict[str, Any]:
        """Everything stored about ``profile`` as a JSON-ready dict: the profile, its events
        (oldest first), aggregates, local items (embeddings as lists) and settings, read in
        one snapshot. With ``path``, also written there as UTF-8 JSON (atomically).

        The time (and the absolute path, when written) is recorded as the profile's
        :data:`LAST_EXPORT_KEY` and counted in the household's :data:`EXPORTS_KEY`, for the
        privacy receipt; a read-only history cannot record it (a warning is logged).

        :raises HistoryError: an unknown profile, or a path that cannot be written.
        """
        with self._reading(f"export {profile!r}") as conn:
            self._require_profiles(conn, [profile])
            prof = conn.execute("SELECT profile, created_at, age_limit, is_guest FROM profiles WHERE profile = ?", [profile]).fetchone()
            events = [event_from_row(r) for r in conn.execute(f"{_SELECT_EVENTS} WHERE profile = ? ORDER BY timestamp, id", [profile])]
            tags: dict[str, dict[str, int]] = {}
            for tag, kind, n in conn.execute("SELECT tag, kind, n FROM tag_counts WHERE profile = ? ORDER BY tag, kind", [profile]):
                tags.setdefault(tag, {})[kind] = n
            hours: dict[str, dict[str, int]] = {}
            for hour, kind, n in conn.execute("SELECT hour, kind, n FROM hour_counts WHERE profile = ? ORDER BY hour, kind", [profile]):
                hours.setdefault(str(hour), {})[kind] = n
            local = conn.execute(
                "SELECT item_id, kind, title, added_at, dim, embedding FROM local_items WHERE profile = ? ORDER BY added_at, item_id", [profile]
            ).fetchall()
            settings = dict(conn.execute("SELECT key, value FROM settings WHERE profile = ? ORDER BY key", [profile]).fetchall())
            version = schema_version(conn)
        doc = {
            "format": EXPORT_FORMAT,
            "schema_version": version,
            "exported_at": time.time(),
            "profile": {"profile": prof[0], "created_at": prof[1], "age_limit": prof[2], "is_guest": bool(prof[3])},
            "events": [{k: (list(v) if k == "tags" else v) for k, v in asdict(e).items() if k != "profile"} for e in events],
            "aggregates": {"tags": tags, "hours": hours},
            "local_items": [
                {"item_id": r[0], "kind": r[1], "title": r[2], "added_at": r[3], "embedding": decode_embedding(r[4], r[5]).tolist()} for r in local
            ],
            "settings": settings,
        }
        if path is not None:
            try:
                atomic_write(path, json.dumps(doc, ensure_ascii=False, indent=1))
            except OSError as exc:
                raise HistoryError(f"cannot write the export to {path} ({exc}); check the folder and free space") from None
        self._record_export(profile, doc["exported_at"], None if path is None else str(Path(path).absolute()))
        return doc

    def _record_export(self, profile: str, at: float, path: str | None) -> None:
        # The export already happened (and may be on disk): failing it now would hide that,
        # so a record that cannot be written is logged instead.
        if self.read_only:
            log.warning("export of %r not recorded for the privacy receipt: the history is read-only", profile)
            return
        try:
            with self._write(f"record the export of {profile!r}") as conn:
                if conn.execute("SELECT 1 FROM profiles WHERE profile = ?", [profile]).fetchone() is None:
                    return  # forgotten between the export's snapshot and now
                conn.execute(
                    "INSERT OR REPLACE INTO settings (profile, key, value) VALUES (?, ?, ?)",
                    [profile, LAST_EXPORT_KEY, json.dumps({"at": at, "path": path}, ensure_ascii=False)],
                )
                self._bump(conn, EXPORTS_KEY, at)
        except HistoryError as exc:
            log.warning("export of %r not recorded for the privacy receipt: %s", profile, exc)

    @staticmethod
    def _bump(conn: sqlite3.Connection, key: str, at: float) -> None:
        """Count one more in the household record ``key`` (``{"count", "last_at"}``)."""
        row = conn.execute("SELECT value FROM settings WHERE profile = ? AND key = ?", [HOUSEHOLD, key]).fetchone()
        old = _record(None if row is None else row[0])
        new = {"count": old["count"] + 1, "last_at": at if old["last_at"] is None else max(at, old["last_at"])}
        conn.execute("INSERT OR REPLACE INTO settings (profile, key, value) VALUES (?, ?, ?)", [HOUSEHOLD, key, json.dumps(new)])

    def privacy_usage(self, profile: str | None = None) -> dict[str, Any]:
        """What is stored, per profile (``profile`` or all), read in one snapshot, for
        :func:`edge.privacy.privacy_receipt`.

        ``approx_bytes`` of a profile is the payload of its rows in every table (profiles,
        events, tag_counts, hour_counts, local_items, settings): UTF-8 bytes of text and
        bytes of blobs (SQLite ``length()``), 8 per number (``typeof()``); indexes, page
        headers and free space are not included (the file sizes in the receipt cover them).

        :returns: ``{"profiles": [{"profile", "created_at", "age_limit", "is_guest",
            "events_by_kind", "oldest_event", "newest_event", "local_items", "settings",
            "approx_bytes", "last_export"}], "shared_local_items", "exports", "forgotten",
            "schema_version", "secure_delete", "journal_mode"}``; ``settings`` counts the app's settings, not the store's own
            records (:data:`STORE_KEYS`).
        :raises HistoryError: an unknown profile, or a file that cannot be read.
        """
        marks = ",".join("?" * len(STORE_KEYS))
        with self._reading("read what is stored") as conn:
            if profile is not None:
                self._require_profiles(conn, [profile])
                names = [profile]
            else:
                names = [r[0] for r in conn.execute("SELECT profile FROM profiles ORDER BY rowid")]
            out = []
            for name in names:
                created, age, guest = conn.execute("SELECT created_at, age_limit, is_guest FROM profiles WHERE profile = ?", [name]).fetchone()
                # From the running aggregates: no scan of the events table.
                by_kind = dict(conn.execute("SELECT kind, sum(n) FROM hour_counts WHERE profile = ? GROUP BY kind HAVING sum(n) > 0", [name]).fetchall())
                oldest, newest = conn.execute("SELECT min(timestamp), max(timestamp) FROM events WHERE profile = ?", [name]).fetchone()
                local = conn.execute("SELECT count(*) FROM local_items WHERE profile = ?", [name]).fetchone()[0]
                n_settings = conn.execute(f"SELECT count(*) FROM settings WHERE profile = ? AND key NOT IN ({marks})", [name, *STORE_KEYS]).fetchone()[0]
                row = conn.execute("SELECT value FROM settings WHERE profile = ? AND key = ?", [name, LAST_EXPORT_KEY]).fetchone()
                out.append({
                    "profile": name, "created_at": created, "age_limit": age, "is_guest": bool(guest),
                    "events_by_kind": by_kind, "oldest_event": oldest, "newest_event": newest,
                    "local_items": local, "settings": n_settings,
                    "approx_bytes": int(sum(conn.execute(sql, [name]).fetchone()[0] or 0 for sql in _ROW_BYTES)),
                    "last_export": _last_export(None if row is None else row[0]),
                })
            shared = conn.execute("SELECT count(*) FROM local_items WHERE profile IS NULL").fetchone()[0]
            house = dict(conn.execute(f"SELECT key, value FROM settings WHERE profile = ? AND key IN ({marks})", [HOUSEHOLD, *STORE_KEYS]).fetchall())
            version = schema_version(conn)
            secure = bool(conn.execute("PRAGMA secure_delete").fetchone()[0])
            journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        return {
            "profiles": out, "shared_local_items": shared, "schema_version": version,
            "secure_delete": secure, "journal_mode": journal,
            "exports": _record(house.get(EXPORTS_KEY)), "forgotten": _record(house.get(FORGOTTEN_KEY)),
        }


def _payload(table: str, columns: Sequence[str]) -> str:
    # The bytes a row's values take in SQLite's record format, near enough (integers may
    # take fewer than 8).
    size = " + ".join(
        f"(CASE typeof({c}) WHEN 'null' THEN 0 WHEN 'integer' THEN 8 WHEN 'real' THEN 8 ELSE length(CAST({c} AS BLOB)) END)" for c in columns
    )
    return f"SELECT sum({size}) FROM {table} WHERE profile = ?"


_ROW_BYTES = tuple(
    _payload(table, columns)
    for table, columns in (
        ("profiles", ("profile", "created_at", "age_limit", "is_guest")),
        ("events", ("id", *EVENT_COLUMNS)),
        ("tag_counts", ("profile", "tag", "kind", "n")),
        ("hour_counts", ("profile", "hour", "kind", "n")),
        ("local_items", ("item_id", "profile", "kind", "title", "added_at", "dim", "embedding")),
        ("settings", ("profile", "key", "value")),
    )
)


def _record(value: str | None) -> dict[str, Any]:
    """A household ``{"count", "last_at"}`` record; an absent or unreadable one counts 0."""
    try:
        doc = json.loads(value) if value else {}
        last = doc.get("last_at")
        return {"count": max(int(doc.get("count", 0)), 0), "last_at": float(last) if isinstance(last, (int, float)) else None}
    except (ValueError, TypeError, AttributeError):
        return {"count": 0, "last_at": None}


def _last_export(value: str | None) -> dict[str, Any] | None:
    """A profile's ``{"at", "path"}`` export record, None when absent or unreadable."""
    try:
        doc = json.loads(value) if value else None
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("at"), (int, float)):
        return None
    return {"at": float(doc["at"]), "path": doc["path"] if isinstance(doc.get("path"), str) else None}


class _Holder:

    """A shared ``flock`` on ``<history>.lock`` for as long as a store has the file open, so
    recovery can tell whether it is alone: moving a damaged file aside while another process
    writes to it would lose that process's acknowledged events."""

    def __init__(self, path: Path, read_only: bool) -> None:
        self.fd: int | None = None
        if read_only:
            return  # nothing is moved aside from a read-only history
        lock = Path(f"{path}.lock")
        try:
            existed = lock.exists()
            self.fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            if not existed:
                _give_to_folder_owner(lock)
            fcntl.flock(self.fd, fcntl.LOCK_SH)
        except OSError:
            self.release()  # no lock file (a folder without write access): recovery is not attempted alone

    def sole(self) -> bool:
        """Whether no other store holds the file (takes the lock exclusively, then shares it again)."""
        if self.fd is None:
            return False
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fcntl.flock(self.fd, fcntl.LOCK_SH)
            return False
        fcntl.flock(self.fd, fcntl.LOCK_SH)
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _give_to_folder_owner(path: Path) -> None:
    # A CLI run as root must not leave a history the service (another user, owning the
    # folder) cannot write; SQLite gives -wal and -shm the database file's owner in turn.
    if os.geteuid() != 0:
        return
    try:
        folder = path.parent.stat()
        if folder.st_uid != 0:
            os.chown(path, folder.st_uid, folder.st_gid)
    except OSError as exc:
        log.warning("could not give %s to the owner of its folder: %s", path, exc)


def _cannot_write(path: Path) -> bool:
    # os.access also answers False on a read-only mount (EROFS); root passes mode bits.
    if path.exists():
        return not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK)
    return path.parent.is_dir() and not os.access(path.parent, os.W_OK | os.X_OK)


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back an open transaction. After SQLITE_FULL or an I/O error SQLite may have rolled
    back already, or the ROLLBACK itself may fail; the original error is the one to report."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _is_write_failure(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` is SQLite's "database or disk is full" or "disk I/O error"."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name == "SQLITE_FULL" or name.startswith("SQLITE_IOERR") or "disk is full" in str(exc) or "disk I/O error" in str(exc)


def _check_kinds(kinds: Iterable[str]) -> list[str]:
    if isinstance(kinds, str):
        kinds = [kinds]
    kinds = list(kinds)
    bad = [k for k in kinds if k not in EVENT_KINDS]
    if bad:
        raise HistoryError(f"unknown event kind {bad[0]!r}; expected some of {list(EVENT_KINDS)}")
    return kinds

