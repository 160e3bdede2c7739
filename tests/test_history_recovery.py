"""A damaged history file is detected on open, moved aside with a timestamped name (with its
-wal/-shm), a fresh history is started, a warning is logged and recommendations go on from
cold start. Nothing is overwritten."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from edge.errors import HistoryError
from edge.history import GUEST_PROFILE, Event, HistoryStore
from edge.history.recovery import move_aside

NOW = time.time()


def _full_db(path, n=3000):
    h = HistoryStore(path, synchronous="NORMAL")
    h.add_profile("alice")
    for b in range(n // 500):
        h.record_many([Event("alice", f"item-{b}-{i}", "play", NOW - 10_000 + b * 500 + i, tags=("drama",)) for i in range(500)])
    h.close()
    return path


def _garble_pages(path):
    raw = bytearray(path.read_bytes())
    page = int.from_bytes(raw[16:18], "big")
    for start in range(2 * page, len(raw) - page, 3 * page):  # every third page after the schema
        raw[start + 8 : start + page - 8] = os.urandom(page - 16)
    path.write_bytes(bytes(raw))


def _truncate(path):
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3])


def _bad_header(path):
    path.write_bytes(b"this is not sqlite at all\n" * 200)


@pytest.mark.parametrize("damage", [_bad_header, _garble_pages, _truncate], ids=["not-a-database", "garbled-pages", "truncated"])
def test_damaged_file_is_moved_aside_and_a_fresh_history_starts(tmp_path, caplog, damage):
    db = _full_db(tmp_path / "history.db")
    damage(db)
    Path = type(db)
    Path(f"{db}-wal").write_bytes(b"wal bytes kept for forensics")
    Path(f"{db}-shm").write_bytes(b"shm bytes")
    damaged = {s: Path(f"{db}{s}").read_bytes() for s in ("", "-wal", "-shm")}
    with caplog.at_level(logging.WARNING, logger="edge.history"):
        h = HistoryStore(db)
    aside = h.recovered_from
    assert aside is not None and aside.parent == tmp_path
    assert aside.name.startswith("history.db.corrupt-") and aside.name.endswith("Z")
    for suffix, content in damaged.items():  # every byte kept, under one timestamp
        assert Path(f"{aside}{suffix}").read_bytes() == content
    assert any("damaged" in r.message and str(aside) in r.message and "start cold" in r.message for r in caplog.records)
    # Profiles may be salvaged where the damaged file still reads them; events never are.
    assert set(h.profiles()) <= {GUEST_PROFILE, "alice"} and GUEST_PROFILE in h.profiles() and h.count() == 0
    h.add_profile("alice")
    h.record("alice", "new", "play", NOW)
    h.close()
    again = HistoryStore(db)
    assert again.recovered_from is None and again.count("alice") == 1
    assert again.db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    again.close()


def test_without_recover_a_damaged_file_raises_and_stays_in_place(tmp_path):
    db = tmp_path / "history.db"
    _bad_header(db)
    before = db.read_bytes()
    with pytest.raises(HistoryError, match="is damaged .*recover=True"):
        HistoryStore(db, recover=False)
    # Only the (empty) lock file that tells processes of each other is new beside it.
    assert db.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["history.db", "history.db.lock"]


def test_moving_aside_never_overwrites_an_earlier_copy(tmp_path):
    at = datetime(2026, 11, 23, 13, 40, 12, tzinfo=timezone.utc)
    db = tmp_path / "history.db"
    names = []
    for n in range(3):
        db.write_bytes(f"damaged {n}".encode())
        (tmp_path / "history.db-wal").write_bytes(f"wal {n}".encode())
        names.append(move_aside(db, now=at).name)
    assert names == ["history.db.corrupt-20261123T134012Z", "history.db.corrupt-20261123T134012Z-2", "history.db.corrupt-20261123T134012Z-3"]
    for n, name in enumerate(names):
        assert (tmp_path / name).read_bytes() == f"damaged {n}".encode()
        assert (tmp_path / f"{name}-wal").read_bytes() == f"wal {n}".encode()
    assert not db.exists()


def test_a_crash_leftover_wal_is_not_mistaken_for_damage(tmp_path):
    db = _full_db(tmp_path / "history.db", n=500)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("INSERT INTO profiles (profile, created_at, is_guest) VALUES ('bob', 0, 0)")
    conn.commit()
    # Copy the files while the WAL holds a commit, as a power cut would leave them.
    crashed = tmp_path / "crashed.db"
    crashed.write_bytes(db.read_bytes())
    (tmp_path / "crashed.db-wal").write_bytes((tmp_path / "history.db-wal").read_bytes())
    conn.close()
    h = HistoryStore(crashed)
    assert h.recovered_from is None and "bob" in h.profiles() and h.count("alice") == 500
    h.close()


def test_recommendations_go_on_from_cold_start_after_recovery(device_bundle, tmp_path, caplog):
    from edge.recommender import Recommender

    db = tmp_path / "history.db"
    _bad_header(db)
    with caplog.at_level(logging.WARNING, logger="edge.history"):
        rec = Recommender.open(device_bundle.bundle, db)
    try:
        assert rec.history.recovered_from is not None
        # The profiles went with the damaged file: the app re-creates them and gets cold start.
        with pytest.raises(HistoryError, match="unknown profile 'alice'"):
            rec.recommend("alice", k=5)
        rec.history.add_profile("alice")
        recs = rec.recommend("alice", k=5)
        assert len(recs) == 5 and all(r.reason == "popular at this hour" for r in recs)
        rec.record("alice", recs[0].item_id, "complete")
        assert rec.history.count("alice") == 1
        tags = rec.bundle.items[rec.bundle.index[recs[0].item_id]].tags
        assert tags and rec.history.tag_counts("alice") == {t: 1 for t in tags}  # the facade feeds the aggregates
    finally:
        rec.close()


def test_recovery_keeps_profiles_age_limits_and_settings(tmp_path, device_bundle):
    """Issue 14 item 3: a damaged history must not bring the kid's profile back without its
    age limit, and the app learns that a recovery happened."""
    from edge.recommender import Recommender

    db = tmp_path / "history.db"
    with Recommender.open(device_bundle.bundle, db) as rec:
        rec.add_profile("kid", age_limit=7)
        items = [it.item_id for it in rec.bundle.items]
        rec.block("kid", items[0])
        rec.history.set_setting("ui_language", "fr")
        rec.history.record_many([Event("kid", items[i % len(items)], "play", NOW - 5000 + i) for i in range(3000)])
    _truncate(db)  # the tail, where the events' pages are, is gone
    with Recommender.open(device_bundle.bundle, db) as rec:
        health = rec.health()["history"]
        assert health["recovered_from"] is not None and health["salvaged"]["profiles"] >= 1
        assert rec.history.age_limit("kid") == 7
        assert rec.blocked("kid") == [items[0]] and rec.history.setting("ui_language") == "fr"
        assert rec.history.count("kid") == 0
        rec.record("kid", items[1], "play")  # the profile is not recreated without its limit
        assert rec.history.age_limit("kid") == 7


HOLDER = r"""
import sys
from edge.history import HistoryStore
h = HistoryStore(sys.argv[1])
print("open", flush=True)
sys.stdin.readline()  # held open until the test says so
h.close()
"""


def test_a_damaged_file_another_process_holds_is_not_moved_aside(tmp_path):
    """Issue 14 item 6: recovery beside a writer would leave that writer appending to the
    moved-aside file, losing what it acknowledges; the second opener refuses instead."""
    import subprocess
    import sys

    db = _full_db(tmp_path / "history.db", n=500)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "open"
        _bad_header(db)
        with pytest.raises(HistoryError, match="another process has it open; it was not moved aside"):
            HistoryStore(db)
        assert not list(tmp_path.glob("history.db.corrupt-*"))
    finally:
        holder.communicate("done\n", timeout=60)
    h = HistoryStore(db)  # alone now: recovered
    assert h.recovered_from is not None
    h.close()
