"""Forward migrations of the history database, one step per schema version.

Each step brings version ``v`` to ``v + 1`` inside the caller's write transaction, so a power
cut mid-migration leaves the old version intact. A step carries its own frozen table
definitions instead of calling :mod:`edge.history.schema`, which describes only the newest
version: a later edit there must not change what an old step produces. ``SCHEMA_DDL`` keeps
the exact DDL of every earlier version, so the tests can build a real old file and migrate
it (``tests/test_history_migrations.py`` walks every version below the current one).
"""

from __future__ import annotations

import sqlite3
from typing import Callable

import sqlite_utils

from edge.errors import HistoryError
from edge.history.schema import GUEST_PROFILE, HOUSEHOLD, SCHEMA_VERSION, VERSION_KEY, create_schema

#: Version 1: what edgerec 0.1.0 wrote (sqlite-utils 4 DDL, verbatim from sqlite_master).
V1_DDL = """
CREATE TABLE "profiles" (
   "profile" TEXT PRIMARY KEY,
   "created_at" REAL,
   "age_limit" INTEGER
);
CREATE TABLE "events" (
   "id" INTEGER PRIMARY KEY,
   "profile" TEXT REFERENCES "profiles"("profile"),
   "item_id" TEXT,
   "kind" TEXT,
   "timestamp" REAL,
   "value" REAL,
   "hour" INTEGER,
   "weekday" INTEGER,
   "device" TEXT
);
CREATE INDEX "idx_events_profile_timestamp"
    ON "events" ("profile", "timestamp");
CREATE TABLE "settings" (
   "key" TEXT PRIMARY KEY,
   "value" TEXT
);
INSERT INTO "settings" ("key", "value") VALUES ('schema_version', '1');
"""

#: Version 2: what edgerec wrote before events carried a client id (verbatim from sqlite_master).
V2_DDL = """
CREATE TABLE "profiles" (
   "profile" TEXT PRIMARY KEY,
   "created_at" REAL NOT NULL,
   "age_limit" INTEGER,
   "is_guest" INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE "events" (
   "id" INTEGER PRIMARY KEY,
   "profile" TEXT NOT NULL REFERENCES "profiles"("profile"),
   "item_id" TEXT NOT NULL,
   "kind" TEXT NOT NULL,
   "timestamp" REAL NOT NULL,
   "value" REAL,
   "position_s" REAL,
   "surface" TEXT,
   "hour" INTEGER NOT NULL,
   "weekday" INTEGER NOT NULL,
   "device" TEXT,
   "tags" TEXT
);
CREATE INDEX "idx_events_recent"
    ON "events" ("profile", "timestamp");
CREATE TABLE "tag_counts" (
   "profile" TEXT REFERENCES "profiles"("profile"),
   "tag" TEXT,
   "kind" TEXT,
   "n" INTEGER NOT NULL,
   PRIMARY KEY ("profile", "tag", "kind")
);
CREATE TABLE "hour_counts" (
   "profile" TEXT REFERENCES "profiles"("profile"),
   "hour" INTEGER,
   "kind" TEXT,
   "n" INTEGER NOT NULL,
   PRIMARY KEY ("profile", "hour", "kind")
);
CREATE TABLE "local_items" (
   "item_id" TEXT PRIMARY KEY,
   "profile" TEXT REFERENCES "profiles"("profile"),
   "kind" TEXT,
   "title" TEXT,
   "added_at" REAL NOT NULL,
   "dim" INTEGER NOT NULL,
   "embedding" BLOB NOT NULL
);
CREATE INDEX "idx_local_items_profile"
    ON "local_items" ("profile");
CREATE TABLE "settings" (
   "profile" TEXT DEFAULT '',
   "key" TEXT,
   "value" TEXT NOT NULL,
   PRIMARY KEY ("profile", "key")
);
INSERT INTO "settings" ("profile", "key", "value") VALUES ('', 'schema_version', '2');
INSERT INTO "profiles" ("profile", "created_at", "is_guest") VALUES ('guest', 1760000000.0, 1);
"""

#: DDL of every version older than :data:`SCHEMA_VERSION`, by version.
SCHEMA_DDL: dict[int, str] = {1: V1_DDL, 2: V2_DDL}


def _v1_to_v2(db: sqlite_utils.Database) -> None:
    # Rename the old tables aside and create the new ones under their final names, so the
    # migrated file's sqlite_master is identical to a fresh one's.
    for name in ("events", "profiles", "settings"):
        db.execute(f'ALTER TABLE "{name}" RENAME TO "_v1_{name}"')
    db["profiles"].create(
        {"profile": str, "created_at": float, "age_limit": int, "is_guest": int},
        pk="profile",
        not_null={"created_at", "is_guest"},
        defaults={"is_guest": 0},
    )
    db["events"].create(
        {
            "id": int, "profile": str, "item_id": str, "kind": str, "timestamp": float, "value": float,
            "position_s": float, "surface": str, "hour": int, "weekday": int, "device": str, "tags": str,
        },
        pk="id",
        not_null={"profile", "item_id", "kind", "timestamp", "hour", "weekday"},
        foreign_keys=[("profile", "profiles", "profile")],
    )
    db["events"].create_index(["profile", "timestamp"], index_name="idx_events_recent")
    for name, key, type_ in (("tag_counts", "tag", str), ("hour_counts", "hour", int)):
        db[name].create(
            {"profile": str, key: type_, "kind": str, "n": int},
            pk=("profile", key, "kind"),
            not_null={"n"},
            foreign_keys=[("profile", "profiles", "profile")],
        )
    db["local_items"].create(
        {"item_id": str, "profile": str, "kind": str, "title": str, "added_at": float, "dim": int, "embedding": bytes},
        pk="item_id",
        not_null={"added_at", "dim", "embedding"},
        foreign_keys=[("profile", "profiles", "profile")],
    )
    db["local_items"].create_index(["profile"], index_name="idx_local_items_profile")
    db["settings"].create(
        {"profile": str, "key": str, "value": str},
        pk=("profile", "key"),
        not_null={"value"},
        defaults={"profile": HOUSEHOLD},
    )

    db.execute(
        "INSERT INTO profiles (profile, created_at, age_limit, is_guest) "
        "SELECT profile, coalesce(created_at, CAST(strftime('%s', 'now') AS REAL)), age_limit, 0 FROM _v1_profiles"
    )
    # Version 1 never enforced its foreign key: keep events of profiles that were never
    # created by creating those profiles, rather than losing the events.
    db.execute(
        "INSERT OR IGNORE INTO profiles (profile, created_at, is_guest) "
        "SELECT profile, min(timestamp), 0 FROM _v1_events WHERE profile IS NOT NULL GROUP BY profile"
    )
    db.execute("INSERT OR IGNORE INTO profiles (profile, created_at, is_guest) VALUES (?, CAST(strftime('%s', 'now') AS REAL), 1)", [GUEST_PROFILE])
    db.execute("UPDATE profiles SET is_guest = 1 WHERE profile = ?", [GUEST_PROFILE])
    # Hour and weekday become required: fill the missing ones from the timestamp in UTC,
    # the way edge.context.hour_weekday does.
    db.execute(
        "INSERT INTO events (id, profile, item_id, kind, timestamp, value, hour, weekday, device) "
        "SELECT id, profile, item_id, kind, timestamp, value, "
        "coalesce(hour, (CAST(timestamp AS INTEGER) / 3600) % 24), "
        "coalesce(weekday, (CAST(timestamp AS INTEGER) / 86400 + 3) % 7), device "
        "FROM _v1_events ORDER BY id"
    )
    db.execute("INSERT INTO hour_counts (profile, hour, kind, n) SELECT profile, hour, kind, count(*) FROM events GROUP BY profile, hour, kind")
    db.execute("INSERT INTO settings (profile, key, value) SELECT ?, key, value FROM _v1_settings WHERE key != ?", [HOUSEHOLD, VERSION_KEY])
    db.execute("INSERT INTO settings (profile, key, value) VALUES (?, ?, '2')", [HOUSEHOLD, VERSION_KEY])
    for name in ("events", "profiles", "settings"):
        db.execute(f'DROP TABLE "_v1_{name}"')


def _v2_to_v3(db: sqlite_utils.Database) -> None:
    # Events gain client_id. Rebuilt rather than ALTERed so sqlite_master reads exactly as in a
    # fresh file (ALTER TABLE ADD COLUMN splices the column into the old CREATE text).
    db.execute('ALTER TABLE "events" RENAME TO "_v2_events"')
    db.execute('DROP INDEX "idx_events_recent"')
    db["events"].create(
        {
            "id": int, "profile": str, "item_id": str, "kind": str, "timestamp": float, "value": float,
            "position_s": float, "surface": str, "hour": int, "weekday": int, "device": str, "tags": str,
            "client_id": str,
        },
        pk="id",
        not_null={"profile", "item_id", "kind", "timestamp", "hour", "weekday"},
        foreign_keys=[("profile", "profiles", "profile")],
    )
    db.execute(
        "INSERT INTO events (id, profile, item_id, kind, timestamp, value, position_s, surface, hour, weekday, device, tags) "
        "SELECT id, profile, item_id, kind, timestamp, value, position_s, surface, hour, weekday, device, tags FROM _v2_events ORDER BY id"
    )
    db.execute('DROP TABLE "_v2_events"')
    db["events"].create_index(["profile", "timestamp"], index_name="idx_events_recent")
    db["events"].create_index(["profile", "client_id"], index_name="idx_events_client", unique=True)
    db.execute("UPDATE settings SET value = '3' WHERE profile = ? AND key = ?", [HOUSEHOLD, VERSION_KEY])


#: ``MIGRATIONS[v]`` brings a version ``v`` file to ``v + 1``.
MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {1: _v1_to_v2, 2: _v2_to_v3}


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version of an open history database; 0 for an empty file.

    :raises HistoryError: a SQLite file of some other application, or an unreadable version.
    """
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return 0
    row = None
    if "settings" in tables:
        row = conn.execute("SELECT value FROM settings WHERE key = ?", [VERSION_KEY]).fetchone()
    if row is None:
        raise HistoryError(
            f"not an edgerec history database: it has tables {sorted(tables)[:8]} but no schema version; "
            "point --db at another file (this one is left untouched)"
        )
    try:
        return int(row[0])
    except ValueError:
        raise HistoryError(f"unreadable schema version {row[0]!r} in settings; the file was edited by hand") from None


def readable_version(conn: sqlite3.Connection) -> int:
    """:func:`schema_version`, refusing a file newer than this edgerec (read-only).

    :raises HistoryError: a newer file, or one of another application.
    """
    found = schema_version(conn)
    if found > SCHEMA_VERSION:
        raise HistoryError(
            f"the history database has schema version {found}, newer than this edgerec reads ({SCHEMA_VERSION}); "
            "upgrade edgerec (the file is left untouched)"
        )
    return found


def upgrade(db: sqlite_utils.Database) -> int:
    """Create the schema in an empty file, or migrate an older one to :data:`SCHEMA_VERSION`.

    One ``BEGIN IMMEDIATE`` transaction, so two processes opening the same old file migrate it
    once, and a crash leaves the old version. Returns the version the file had.

    :raises HistoryError: a file newer than this edgerec, or of another application.
    """
    conn = db.conn
    found = readable_version(conn)
    if found == SCHEMA_VERSION:
        return found
    # Table rebuilds drop and recreate parents of foreign keys; the check runs before commit.
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = schema_version(conn)  # another process may have migrated meanwhile
            if found == 0:
                create_schema(db)
            elif found > SCHEMA_VERSION:
                raise HistoryError(f"the history database became schema version {found} while opening; upgrade edgerec")
            for v in range(found or SCHEMA_VERSION, SCHEMA_VERSION):
                MIGRATIONS[v](db)
            bad = conn.execute("PRAGMA foreign_key_check").fetchall()
            if bad:
                raise HistoryError(f"migration from version {found} left {len(bad)} rows without their profile; nothing was changed")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
    return found
