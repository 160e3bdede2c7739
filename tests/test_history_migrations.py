"""Forward migrations: a real file of every earlier schema version opens, keeps every event and
ends up structurally identical to a fresh file; failures leave the old file as it was."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

import edge.history.migrations as migrations
from edge.errors import HistoryError
from edge.history import GUEST_PROFILE, SCHEMA_VERSION, HistoryStore
from edge.history.migrations import SCHEMA_DDL

T0 = 1_760_000_000.0  # 2025-10-09T08:53:20Z


def _fill_v1(conn: sqlite3.Connection) -> list[tuple]:
    """Rows as edgerec 0.1.0 wrote them, including what its API allowed but v2 requires
    (missing hour/weekday) and what it never enforced (an event of a profile never created)."""
    conn.executemany("INSERT INTO profiles VALUES (?, ?, ?)", [("alice", T0, None), ("it'em; 🎬", T0, 12), ("guest", None, None)])
    events = [
        (1, "alice", "v1", "play", T0 + 10, 0.5, 20, 3, "tv"),
        (2, "alice", "v2", "complete", T0 + 20, None, None, None, None),
        (3, "it'em; 🎬", "x\"; DROP TABLE events;--", "like", T0 + 30, None, 7, 6, "speaker"),
        (7, "orphan", "v3", "skip", T0 + 40, 0.05, None, None, "tv"),
    ]
    conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", events)
    conn.execute("INSERT INTO settings VALUES ('ui_language', 'fr')")
    return events


def _fill_v2(conn: sqlite3.Connection) -> list[tuple]:
    """Rows as edgerec wrote them before events had a client id."""
    conn.executemany("INSERT INTO profiles VALUES (?, ?, ?, 0)", [("alice", T0, None), ("kid", T0, 7)])
    events = [
        (1, "alice", "v1", "play", T0 + 10, 0.5, 12.0, "home", 20, 3, "tv", '["drama"]'),
        (2, "kid", "v2", "complete", T0 + 20, None, None, None, 8, 4, "speaker", None),
    ]
    conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", events)
    conn.executemany("INSERT INTO hour_counts VALUES (?, ?, ?, 1)", [("alice", 20, "play"), ("kid", 8, "complete")])
    conn.execute("INSERT INTO tag_counts VALUES ('alice', 'drama', 'play', 1)")
    return events


#: How to fill a file of each earlier version with representative rows.
FILLERS = {1: _fill_v1, 2: _fill_v2}


def _old_file(tmp_path, version: int):
    path = tmp_path / f"v{version}.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_DDL[version])
    rows = FILLERS[version](conn)
    conn.commit()
    conn.close()
    return path, rows


def _structure(path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    finally:
        conn.close()


def test_every_earlier_version_has_its_ddl_and_a_filler():
    assert set(SCHEMA_DDL) == set(range(1, SCHEMA_VERSION)), "keep the DDL of every earlier version in migrations.SCHEMA_DDL"
    assert set(FILLERS) == set(range(1, SCHEMA_VERSION)) and set(migrations.MIGRATIONS) == set(range(1, SCHEMA_VERSION))


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_old_file_migrates_to_the_fresh_structure(tmp_path, version):
    path, _ = _old_file(tmp_path, version)
    HistoryStore(path).close()
    HistoryStore(tmp_path / "fresh.db").close()
    assert _structure(path) == _structure(tmp_path / "fresh.db")


def test_v2_file_keeps_every_event_and_profile_and_takes_client_ids(tmp_path):
    path, rows = _old_file(tmp_path, 2)
    with HistoryStore(path) as h:
        assert h.schema_version == SCHEMA_VERSION and h.age_limit("kid") == 7
        got = {e.id: e for e in h.recent("alice", 10) + h.recent("kid", 10)}
        assert {i: (e.item_id, e.timestamp, e.tags, e.client_id) for i, e in got.items()} == {
            1: ("v1", T0 + 10, ("drama",), None), 2: ("v2", T0 + 20, (), None)}
        first = h.record("alice", "v3", "play", T0 + 30, client_id="tv-app:17")
        assert h.record("alice", "v3", "play", T0 + 30, client_id="tv-app:17") == first == 3
        assert h.tag_counts("alice") == {"drama": 1}


def test_v1_file_keeps_every_event_and_gains_aggregates(tmp_path):
    path, rows = _old_file(tmp_path, 1)
    h = HistoryStore(path)
    assert h.schema_version == SCHEMA_VERSION and h.recovered_from is None
    got = {e.id: e for e in h.recent("alice", 10) + h.recent("it'em; 🎬", 10) + h.recent("orphan", 10)}
    assert sorted(got) == [r[0] for r in rows]
    for id_, profile, item, kind, ts, value, hour, weekday, device in rows:
        e = got[id_]
        assert (e.profile, e.item_id, e.kind, e.timestamp, e.value, e.device) == (profile, item, kind, ts, value, device)
        # Missing context is filled from the timestamp (UTC), present context is kept.
        assert (e.hour, e.weekday) == ((hour, weekday) if hour is not None else (8, 3))  # T0 is a Thursday, 08:53 UTC
    assert h.profiles() == ["alice", "it'em; 🎬", GUEST_PROFILE, "orphan"]
    assert h.db.conn.execute("SELECT is_guest FROM profiles WHERE profile = 'guest'").fetchone()[0] == 1
    assert h.hour_counts("alice")[20] == 1 and h.hour_counts("alice")[8] == 1 and h.count() == 4
    assert h.setting("ui_language") == "fr"
    new_id = h.record("alice", "v9", "play", T0 + 50, tags=["drama"])
    assert new_id == 8 and h.tag_counts("alice") == {"drama": 1}
    assert h.db.conn.execute("PRAGMA foreign_key_check").fetchall() == []
    h.close()


def test_failed_migration_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path, rows = _old_file(tmp_path, 1)
    before = _structure(path)
    real = migrations.MIGRATIONS[1]

    def half_then_crash(db):
        real(db)
        raise RuntimeError("power cut")

    monkeypatch.setitem(migrations.MIGRATIONS, 1, half_then_crash)
    with pytest.raises(RuntimeError, match="power cut"):
        HistoryStore(path)
    assert _structure(path) == before
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == len(rows)
    conn.close()
    monkeypatch.setitem(migrations.MIGRATIONS, 1, real)
    assert HistoryStore(path).count() == len(rows)


def test_two_stores_opening_an_old_file_at_once_migrate_it_once(tmp_path):
    path, rows = _old_file(tmp_path, 1)
    stores, errors = [], []

    def open_it():
        try:
            stores.append(HistoryStore(path, busy_timeout_ms=10_000))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and [s.count() for s in stores] == [len(rows)] * 3
    assert sum(stores[0].hour_counts("alice")) == 2
    for s in stores:
        s.close()


def test_newer_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "h.db"
    HistoryStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")  # switching it back to WAL would rewrite the header
    conn.execute("UPDATE settings SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(HistoryError, match="schema version 99, newer than this edgerec reads .*upgrade edgerec"):
        HistoryStore(path)
    assert path.read_bytes() == before and not list(tmp_path.glob("*.corrupt-*"))


def test_another_applications_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "photos.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO photos (name) VALUES (?)", [json.dumps("beach")])
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(HistoryError, match=r"not an edgerec history database: it has tables \['photos'\]"):
        HistoryStore(path)
    assert path.read_bytes() == before
