"""The current schema of the history database, created with sqlite-utils.

Tables (version 3):

- ``profiles``: one row per person in the household, plus the built-in guest profile.
- ``events``: what a profile did with an item, with its context; ``idx_events_recent``
  answers "the last N events of a profile" by walking one index backwards; ``client_id``
  is the caller's id for an event (unique per profile, ``idx_events_client``), so a retried
  batch is stored once.
- ``tag_counts``, ``hour_counts``: running per-profile counts by (tag, kind) and
  (hour, kind), maintained in the transaction that inserts or deletes events.
- ``local_items``: content the device found itself, with a float32 embedding; ``profile``
  is NULL for items shared by the household.
- ``settings``: key/value pairs, household-wide (``profile = ''``) or per profile; the row
  ``('', 'schema_version')`` says which version the file has.

An older file is brought here by :mod:`edge.history.migrations`, whose steps carry their own
frozen definitions. Never edit a table here without adding a migration step; the migration
test checks that every earlier version ends up with exactly this structure.
"""

from __future__ import annotations

import time

import sqlite_utils

SCHEMA_VERSION = 3
#: The profile every household has, for whoever has not picked one.
GUEST_PROFILE = "guest"
#: ``settings.profile`` of household-wide settings.
HOUSEHOLD = ""
VERSION_KEY = "schema_version"


def create_schema(db: sqlite_utils.Database) -> None:
    """Create every table and index of :data:`SCHEMA_VERSION` in an empty database, the guest
    profile and the version row. Runs inside the caller's transaction."""
    db["profiles"].create(
        {"profile": str, "created_at": float, "age_limit": int, "is_guest": int},
        pk="profile",
        not_null={"created_at", "is_guest"},
        defaults={"is_guest": 0},
    )
    db["events"].create(
        {
            "id": int,
            "profile": str,
            "item_id": str,
            "kind": str,
            "timestamp": float,
            "value": float,
            "position_s": float,
            "surface": str,
            "hour": int,
            "weekday": int,
            "device": str,
            "tags": str,
            "client_id": str,
        },
        pk="id",
        not_null={"profile", "item_id", "kind", "timestamp", "hour", "weekday"},
        foreign_keys=[("profile", "profiles", "profile")],
    )
    # (profile, timestamp) plus the implicit rowid orders "newest first, ties by id" with no sort.
    db["events"].create_index(["profile", "timestamp"], index_name="idx_events_recent")
    # NULLs are distinct in a SQLite unique index: events without a client id never collide.
    db["events"].create_index(["profile", "client_id"], index_name="idx_events_client", unique=True)
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
    db.execute("INSERT INTO settings (profile, key, value) VALUES (?, ?, ?)", [HOUSEHOLD, VERSION_KEY, str(SCHEMA_VERSION)])
    db.execute("INSERT INTO profiles (profile, created_at, is_guest) VALUES (?, ?, 1)", [GUEST_PROFILE, time.time()])
