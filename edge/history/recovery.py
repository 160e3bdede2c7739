"""Detecting a damaged history file and moving it aside, never overwriting anything.

A damaged file is renamed with a UTC timestamp (``history.db.corrupt-20261123T134012Z``),
together with its ``-wal``, ``-shm`` and ``-journal`` companions under the same stamp, so
SQLite can still open the moved copy with its WAL for forensics. The caller then creates a
fresh file and recommendations start cold.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

#: Files up to this size get ``PRAGMA integrity_check`` on open, which also cross-checks
#: every index against its table; bigger ones get ``quick_check`` (every page, record and
#: freelist, but not the index contents), about 2.5x faster on a file of a million events
#: (0.3 s against 0.75 s on the development VM) and still finds torn, garbled or truncated
#: pages. See benchmarks/README.md.
FULL_CHECK_MAX_BYTES = 32 * 1024 * 1024

#: SQLite primary result codes that mean the file's bytes are damaged.
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
COMPANIONS: tuple[str, ...] = ("-wal", "-shm", "-journal")


class Corrupt(Exception):
    """Internal: the file is damaged (the reason is the message). ``shm`` holds the bytes the
    ``-shm`` file had before SQLite rebuilt its index while checking, to be kept as they were."""

    def __init__(self, reason: str, shm: bytes | None = None) -> None:
        super().__init__(reason)
        self.shm = shm


def is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """Whether a SQLite error says the file is damaged (as opposed to locked, missing,
    read-only or full)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    msg = str(exc).lower()
    return "malformed" in msg or "not a database" in msg or "corrupt" in msg


def check_existing(path: Path, busy_timeout_ms: int, version_check: Callable[[sqlite3.Connection], object]) -> None:
    """Check an existing file through a read-only connection, which neither checkpoints nor
    deletes the WAL when it closes, so a damaged file's WAL survives to be moved aside.

    :raises Corrupt: the file is damaged.
    :raises sqlite3.Error: it cannot be read for another reason (locked, permissions).
    """
    shm_path = Path(f"{path}-shm")
    try:
        shm = shm_path.read_bytes() if shm_path.exists() and shm_path.stat().st_size <= 16 * 1024 * 1024 else None
    except OSError:
        shm = None
    size = sum(os.path.getsize(f) for f in (path, Path(f"{path}-wal")) if f.exists())
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=busy_timeout_ms / 1000, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        check_integrity(conn, size)
        version_check(conn)
    except Corrupt as exc:
        raise Corrupt(str(exc), shm) from None
    except sqlite3.DatabaseError as exc:
        if is_corruption(exc):
            raise Corrupt(str(exc), shm) from None
        raise
    except UnicodeDecodeError as exc:
        # sqlite3 decodes SQLite's message as UTF-8; a damaged schema quoted in it may not be.
        raise Corrupt(bytes(exc.object[:200]).decode("utf-8", "replace"), shm) from None
    finally:
        conn.close()


def check_integrity(conn: sqlite3.Connection, size_bytes: int) -> None:
    """Run ``integrity_check`` (small files) or ``quick_check`` (large ones).

    :raises Corrupt: with the first problems SQLite reports.
    """
    pragma = "integrity_check" if size_bytes <= FULL_CHECK_MAX_BYTES else "quick_check"
    try:
        rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}(5)")]
    except sqlite3.DatabaseError as exc:
        if is_corruption(exc):
            raise Corrupt(str(exc)) from None
        raise
    if rows != ["ok"]:
        raise Corrupt(f"{pragma}: " + "; ".join(rows))


def move_aside(path: Path, now: datetime | None = None, shm: bytes | None = None) -> Path:
    """Rename ``path`` and its companions to ``<name>.corrupt-<UTC stamp>[-N]``.

    Never replaces an existing file: the stamp gets ``-2``, ``-3``... until every target name
    is free. ``shm``: the original bytes of the ``-shm`` file, written back into the moved
    copy. Returns the new path of the main file.

    :raises OSError: when a file cannot be renamed (read-only folder...).
    """
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    sources = [Path(f"{path}{s}") for s in ("", *COMPANIONS)]
    n = 1
    while True:
        base = f"{path}.corrupt-{stamp}" + (f"-{n}" if n > 1 else "")
        targets = [Path(f"{base}{s}") for s in ("", *COMPANIONS)]
        if not any(t.exists() for t in targets):
            break
        n += 1
    for src, dst in zip(sources, targets):
        if src.exists():
            _move_no_clobber(src, dst)
    if shm is not None:
        targets[2].write_bytes(shm)
    return targets[0]


def _move_no_clobber(src: Path, dst: Path) -> None:
    # os.rename silently replaces dst on POSIX; a hard link fails instead when dst exists.
    try:
        os.link(src, dst)
    except (OSError, NotImplementedError) as exc:
        if isinstance(exc, FileExistsError):
            raise
        # Filesystems without hard links (FAT on a USB stick): check, then rename.
        if dst.exists():
            raise FileExistsError(dst) from None
        os.rename(src, dst)
        return
    os.unlink(src)


def salvage_household(damaged: Path, conn: sqlite3.Connection) -> dict[str, int]:
    """Copy what the household set up (profiles with their age limits, settings such as the
    blocked items) from a damaged file, moved aside, into the fresh one ``conn`` writes to;
    events are not copied (their pages are the likeliest damage, and a wrong event is worse than
    none). Rows SQLite can still read are kept, one table at a time, so a damaged ``events``
    table does not cost the kid's age limit.

    :returns: rows salvaged per table (``profiles``, ``settings``); 0 where nothing was readable.
    """
    got = {"profiles": 0, "settings": 0}
    # Read from a scratch copy, so the moved-aside files stay byte for byte as found. A file
    # cut short is extended (sparsely, with zeros) to the size its header claims: SQLite
    # refuses a file shorter than its header says even where the pages asked for are intact.
    try:
        fd, scratch = tempfile.mkstemp(prefix=".salvage-", dir=damaged.parent)
        os.close(fd)
    except OSError:
        return got
    try:
        shutil.copyfile(damaged, scratch)
        with open(scratch, "rb") as fh:
            head = fh.read(100)
        page = int.from_bytes(head[16:18], "big") if len(head) == 100 else 0
        page = 65536 if page == 1 else page
        claimed = page * int.from_bytes(head[28:32], "big") if len(head) == 100 else 0
        if page in {1 << k for k in range(9, 17)} and os.path.getsize(scratch) < claimed <= 4 * os.path.getsize(scratch) + (64 << 20):
            os.truncate(scratch, claimed)
        # immutable: no locks, no -wal or -shm of the scratch copy created or read.
        old = sqlite3.connect(f"file:{scratch}?mode=ro&immutable=1", uri=True, timeout=1.0)
    except (OSError, sqlite3.Error, ValueError):
        os.unlink(scratch)
        return got

    def rows(sql: str) -> list[tuple]:
        # A damaged file fails in any way SQLite can: errors, or messages that are not UTF-8.
        try:
            return old.execute(sql).fetchall()
        except (sqlite3.Error, ValueError, MemoryError, RecursionError):
            return []

    try:
        for profile, created, age, guest in rows("SELECT profile, created_at, age_limit, is_guest FROM profiles"):
            if not isinstance(profile, str) or not profile:
                continue
            age = age if isinstance(age, int) and 0 <= age <= 120 else None
            created = float(created) if isinstance(created, (int, float)) and created == created else 0.0
            cur = conn.execute("INSERT INTO profiles (profile, created_at, age_limit, is_guest) VALUES (?, ?, ?, ?) "
                               "ON CONFLICT (profile) DO UPDATE SET age_limit = excluded.age_limit",
                               [profile, created, age, 1 if guest else 0])
            got["profiles"] += cur.rowcount > 0
        known = {r[0] for r in conn.execute("SELECT profile FROM profiles")} | {""}
        for profile, key, value in rows("SELECT profile, key, value FROM settings WHERE key != 'schema_version'"):
            if isinstance(profile, str) and profile in known and isinstance(key, str) and isinstance(value, str):
                conn.execute("INSERT OR REPLACE INTO settings (profile, key, value) VALUES (?, ?, ?)", [profile, key, value])
                got["settings"] += 1
    finally:
        old.close()
        os.unlink(scratch)
    return got
