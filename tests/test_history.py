"""The SQLite history store: events, context, aggregates, retention, local items, settings,
export and forget, and refusing bad input with the store left consistent."""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time

import numpy as np
import pytest

from edge.errors import HistoryError
from edge.history import EVENT_KINDS, GUEST_PROFILE, SCHEMA_VERSION, Event, HistoryStore
from edge.history.events import MAX_BATCH_EVENTS

NOW = time.time()
WEIRD_IDS = ["it'em", 'say "hi"', "a; DROP TABLE events;--", "🎬🍿 film", "ünï/cödé\\x", "tab\there", "%_like*?"]


@pytest.fixture
def store(tmp_path):
    h = HistoryStore(tmp_path / "h.db", synchronous="NORMAL")
    h.add_profile("p1")
    yield h
    h.close()


def consistent(h: HistoryStore) -> None:
    """Aggregates agree with the events they count, and SQLite finds nothing wrong."""
    conn = h.db.conn
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    by_hour = dict(((p, hr, k), n) for p, hr, k, n in conn.execute("SELECT profile, hour, kind, n FROM hour_counts"))
    assert by_hour == {(p, hr, k): n for p, hr, k, n in conn.execute("SELECT profile, hour, kind, count(*) FROM events GROUP BY 1, 2, 3")}
    by_tag: dict = {}
    for p, k, tags in conn.execute("SELECT profile, kind, tags FROM events WHERE tags IS NOT NULL"):
        for t in json.loads(tags):
            by_tag[p, t, k] = by_tag.get((p, t, k), 0) + 1
    assert dict(((p, t, k), n) for p, t, k, n in conn.execute("SELECT profile, tag, kind, n FROM tag_counts")) == by_tag


def test_record_and_recent_newest_first(tmp_path):
    h = HistoryStore(tmp_path / "h.db")
    h.add_profile("p1")
    h.record_many([Event("p1", f"i{n}", "play", NOW - 100 + n) for n in range(5)])
    h.record("p1", "i9", "complete", NOW, value=0.95, hour=20)
    got = h.recent("p1", 3)
    assert [e.item_id for e in got] == ["i9", "i4", "i3"]
    assert got[0].value == pytest.approx(0.95) and got[0].hour == 20
    assert [e.item_id for e in h.recent("p1", 10, kinds=["complete"])] == ["i9"]
    assert h.db.execute("pragma journal_mode").fetchone()[0] == "wal"
    h.close()
    assert HistoryStore(tmp_path / "h.db").count("p1") == 6  # survives reopening


def test_recent_returns_context_and_breaks_timestamp_ties_by_id(store):
    ids = store.record_many([Event("p1", f"i{n}", "play", NOW - 10) for n in range(3)])
    eid = store.record("p1", "x", "skip", NOW, 0.1, weekday=6, device="speaker", position_s=12.5, surface="home", tags=["news", "talk", "news"])
    got = store.recent("p1", 10)
    assert [e.id for e in got] == [eid, *reversed(ids)]
    e = got[0]
    assert (e.kind, e.value, e.position_s, e.surface, e.device, e.weekday, e.tags) == ("skip", 0.1, 12.5, "home", "speaker", 6, ("news", "talk"))
    assert e.hour == time.gmtime(NOW).tm_hour  # derived from the timestamp (UTC) when not given
    assert store.recent("p1", 0) == []
    assert store.recent("p1", 10, kinds=[]) == []


def test_recent_is_one_indexed_query_without_a_sort(store):
    plan = store.db.conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM events WHERE profile = ? AND kind IN ('play') ORDER BY timestamp DESC, id DESC LIMIT 5", ["p1"]
    ).fetchall()
    text = " ".join(r[-1] for r in plan)
    assert "idx_events_recent" in text and "TEMP B-TREE" not in text


def test_aggregates_are_maintained_on_insert_by_tag_hour_and_kind(store):
    store.add_profile("p2")
    t0 = 1_750_000_000.0 - (1_750_000_000 % 86400)  # midnight UTC
    store.record_many(
        [
            Event("p1", "a", "play", t0 + 3600 * 20, tags=("drama", "crime")),
            Event("p1", "b", "complete", t0 + 3600 * 20 + 5, tags=("drama",)),
            Event("p1", "c", "skip", t0 + 3600 * 7, tags=("news",)),
            Event("p2", "a", "play", t0 + 3600 * 9, tags=("drama",)),
        ]
    )
    assert store.tag_counts("p1") == {"drama": 2, "crime": 1, "news": 1}
    assert store.tag_counts("p1", kinds=["skip"]) == {"news": 1}
    hours = store.hour_counts("p1")
    assert len(hours) == 24 and hours[20] == 2 and hours[7] == 1 and sum(hours) == 3
    assert store.hour_counts("p1", kinds=["play", "complete"])[7] == 0
    assert store.tag_counts("p2") == {"drama": 1}
    consistent(store)


@pytest.mark.parametrize(
    "event, words",
    [
        (Event("ghost", "i1", "play", NOW), "unknown profile 'ghost'"),
        (Event("p1", "i1", "binge", NOW), "unknown event kind 'binge'"),
        (Event("p1", "i1", "play", 100.0), "before 2000"),
        (Event("p1", "i1", "play", NOW + 3 * 86400), "in the future"),
        (Event("p1", "i1", "play", math.nan), "finite"),
        (Event("p1", "i1", "play", NOW, value=math.nan), "value is nan"),
        (Event("p1", "i1", "play", NOW, value=math.inf), "value is inf"),
        (Event("p1", "i1", "play", NOW, position_s=-1.0), "position_s"),
        (Event("p1", "i1", "play", NOW, hour=24), "hour"),
        (Event("p1", "i1", "play", NOW, weekday=2.5), "weekday"),
        (Event("p1", "i1", "play", NOW, device="fridge"), "unknown device kind"),
        (Event("p1", "a\x00b", "play", NOW), "NUL"),
        (Event("p1\x00", "i1", "play", NOW), "NUL"),
        (Event("p1", "x" * 300, "play", NOW), "at most 256"),
        (Event("p1", "", "play", NOW), "non-empty"),
        (Event("p1", 42, "play", NOW), "non-empty string"),
        (Event("p1", "\ud800", "play", NOW), "not valid Unicode"),
        (Event("p1", "i1", "play", NOW, surface="s" * 1000), "surface is 1000 characters"),
        (Event("p1", "i1", "play", NOW, tags=tuple(f"t{n}" for n in range(40))), "at most 32"),
        (Event("p1", "i1", "play", NOW, tags=("t" * 100,)), "tag is 100 characters"),
        (Event("p1", "i1", "play", NOW, tags="drama"), "list of strings"),
    ],
)
def test_bad_events_are_refused_and_batch_is_all_or_nothing(store, event, words):
    with pytest.raises(HistoryError, match=words):
        store.record_many([Event("p1", "ok", "play", NOW, tags=("fine",)), event])
    assert store.count() == 0 and store.tag_counts("p1") == {} and sum(store.hour_counts("p1")) == 0
    store.record("p1", "ok", "play", NOW)  # still usable afterwards
    consistent(store)


def test_oversized_batch_is_refused_with_the_limit(store):
    with pytest.raises(HistoryError, match=f"at most {MAX_BATCH_EVENTS}"):
        store.record_many([Event("p1", "i", "play", NOW)] * (MAX_BATCH_EVENTS + 1))
    assert store.count() == 0


def test_unknown_profile_is_refused_by_every_query(store):
    for call in (
        lambda: store.recent("ghost", 5),
        lambda: store.tag_counts("ghost"),
        lambda: store.hour_counts("ghost"),
        lambda: store.forget("ghost"),
        lambda: store.export("ghost"),
        lambda: store.local_items("ghost"),
        lambda: store.add_local_item("L", [1.0], profile="ghost"),
        lambda: store.set_setting("k", "v", profile="ghost"),
        lambda: store.enforce_retention("ghost"),
    ):
        with pytest.raises(HistoryError, match="unknown profile 'ghost'; create it with add_profile"):
            call()
    with pytest.raises(HistoryError, match="unknown event kind 'binge'"):
        store.recent("p1", 5, kinds=["play", "binge"])


@pytest.mark.parametrize("weird", WEIRD_IDS)
def test_ids_with_quotes_semicolons_and_emoji_round_trip(store, weird):
    store.add_profile(weird)
    store.record(weird, weird, "like", NOW, surface=weird, tags=[weird])
    store.add_local_item(weird, [0.5, -1.0], profile=weird, title=weird)
    store.set_setting(weird, weird, profile=weird)
    assert weird in store.profiles()
    e = store.recent(weird, 1)[0]
    assert (e.profile, e.item_id, e.surface, e.tags) == (weird, weird, weird, (weird,))
    assert store.tag_counts(weird) == {weird: 1}
    assert store.local_items(weird)[0].title == weird and store.setting(weird, profile=weird) == weird
    assert store.export(weird)["events"][0]["item_id"] == weird
    assert {"events", "profiles", "settings", "local_items"} <= set(store.db.table_names())
    store.forget(weird)
    assert weird not in store.profiles() and store.count() == 0
    consistent(store)


def test_guest_profile_always_exists_and_survives_forget(store):
    assert GUEST_PROFILE in store.profiles()
    store.record(GUEST_PROFILE, "i", "play", NOW)
    store.add_profile(GUEST_PROFILE)  # no-op
    assert store.forget(GUEST_PROFILE).events == 1
    assert GUEST_PROFILE in store.profiles() and store.count(GUEST_PROFILE) == 0


def test_event_cap_trims_oldest_first_and_keeps_aggregates_exact(tmp_path):
    h = HistoryStore(tmp_path / "h.db", synchronous="NORMAL", max_events_per_profile=1000)
    h.add_profile("p1")
    h.add_profile("p2")
    for b in range(6):
        h.record_many([Event("p1", f"i{b}-{n}", "play", NOW - 10_000 + b * 1000 + n, tags=(f"t{n % 3}",)) for n in range(500)])
    h.record("p2", "keep", "play", NOW - 20_000)
    # Allowed 1% over the cap between trims, then trimmed back to the cap.
    assert 1000 <= h.count("p1") <= 1010
    assert h.enforce_retention() >= 0 and h.count("p1") == 1000
    assert h.recent("p1", 1000)[-1].item_id == "i4-0"  # the oldest survivor
    assert sum(h.tag_counts("p1").values()) == 1000 and h.count("p2") == 1
    consistent(h)


def test_age_cap_deletes_old_events_in_small_transactions(tmp_path, monkeypatch):
    import edge.history.store as store_mod

    monkeypatch.setattr(store_mod, "RETENTION_CHUNK", 7)
    h = HistoryStore(tmp_path / "h.db", synchronous="NORMAL", max_events_per_profile=None, max_age_days=30)
    h.add_profile("p1")
    day = 86400
    h.record_many([Event("p1", f"old{n}", "play", NOW - 40 * day + n, tags=("x",)) for n in range(50)])
    assert h.count("p1") == 0  # trimmed right after the insert
    h.record_many([Event("p1", f"new{n}", "play", NOW - 20 * day + n) for n in range(50)])
    assert h.count("p1") == 50
    assert h.enforce_retention(now=NOW + 15 * day) == 50 and h.count("p1") == 0
    consistent(h)


def test_local_items_for_profile_and_household(store):
    store.add_profile("p2")
    rng = np.random.default_rng(0)
    vecs = {k: rng.standard_normal(8).astype(np.float32) for k in ("shared", "mine", "theirs")}
    store.add_local_item("shared", vecs["shared"], kind="audio", title="Kitchen radio")
    store.add_local_item("mine", vecs["mine"].tolist(), profile="p1", kind="video")
    store.add_local_item("theirs", vecs["theirs"], profile="p2")
    assert [i.item_id for i in store.local_items()] == ["shared"]
    items = store.local_items("p1")
    assert [i.item_id for i in items] == ["shared", "mine"] and items[1].profile == "p1" and items[1].dim == 8
    ids, matrix = store.local_embeddings("p1")
    assert ids == ["shared", "mine"] and matrix.dtype == np.float32 and matrix.shape == (2, 8)
    np.testing.assert_array_equal(matrix[1], vecs["mine"])
    store.add_local_item("mine", vecs["theirs"], profile="p1")  # replaced in place
    np.testing.assert_array_equal(store.local_embeddings("p1")[1][1], vecs["theirs"])
    with pytest.raises(HistoryError, match="already belongs to profile 'p2'"):
        store.add_local_item("theirs", vecs["mine"], profile="p1")
    store.add_local_item("old", np.ones(4), profile="p1")
    with pytest.raises(HistoryError, match=r"dims \[4, 8\]; pass dim="):
        store.local_embeddings("p1")
    assert store.local_embeddings("p1", dim=4)[0] == ["old"]
    assert store.local_embeddings("p1", dim=16)[1].shape == (0, 16)
    assert store.remove_local_item("old") and not store.remove_local_item("old")


@pytest.mark.parametrize(
    "embedding, words",
    [
        ([1.0, float("nan")], "NaN or infinite"),
        ([[1.0, 2.0]], "expected \\(dim,\\)"),
        ([], "expected \\(dim,\\)"),
        (np.ones(5000), "at most 4096"),
        (["a", "b"], "not numeric"),
        ([1e39], "overflows float32"),
    ],
)
def test_bad_local_items_are_refused(store, embedding, words):
    with pytest.raises(HistoryError, match=words):
        store.add_local_item("L", embedding)
    assert store.local_items() == []


def test_settings_household_and_per_profile(store):
    store.set_setting("autoplay", "on")
    store.set_setting("autoplay", "off", profile="p1")
    assert store.setting("autoplay") == "on" and store.setting("autoplay", profile="p1") == "off"
    assert store.setting("missing", default="x") == "x"
    with pytest.raises(HistoryError, match="reserved"):
        store.set_setting("schema_version", "99")
    with pytest.raises(HistoryError, match="at most 4096"):
        store.set_setting("big", "v" * 5000)
    assert store.schema_version == SCHEMA_VERSION


def test_export_writes_everything_about_one_profile_as_json(store, tmp_path):
    store.add_profile("p2")
    store.record("p1", "a", "play", NOW - 5, 0.5, device="tv", tags=["drama"], surface="home")
    store.record("p1", "b", "like", NOW)
    store.record("p2", "z", "play", NOW)
    store.add_local_item("L1", [0.25, 0.5], profile="p1", kind="video", title="Clip")
    store.set_setting("lang", "fr", profile="p1")
    out = tmp_path / "export.json"
    doc = store.export("p1", out)
    assert json.loads(out.read_text(encoding="utf-8")) == doc
    assert doc["profile"]["profile"] == "p1" and doc["schema_version"] == SCHEMA_VERSION
    assert [e["item_id"] for e in doc["events"]] == ["a", "b"]
    assert doc["events"][0]["tags"] == ["drama"] and doc["events"][0]["surface"] == "home"
    assert doc["aggregates"]["tags"] == {"drama": {"play": 1}}
    assert doc["local_items"] == [{"item_id": "L1", "kind": "video", "title": "Clip", "added_at": doc["local_items"][0]["added_at"], "embedding": [0.25, 0.5]}]
    assert doc["settings"] == {"lang": "fr"}
    assert "z" not in json.dumps(doc["events"])
    with pytest.raises(HistoryError, match="cannot write the export"):
        store.export("p1", tmp_path / "no-such-dir" / "x.json")


def test_forget_leaves_no_trace_in_the_file_bytes(tmp_path):
    db = tmp_path / "h.db"
    h = HistoryStore(db, synchronous="NORMAL")
    other = HistoryStore(db, synchronous="NORMAL")  # a second, idle connection (the UI)
    secret = "alice-7f3a9c"
    h.add_profile(secret)
    h.add_profile("bob")
    marker = np.array([1.2345678e-3, 8.765432e7, -3.3333e-9], dtype=np.float32)
    for b in range(20):
        h.record_many([Event(secret, f"{secret}-item-{b:02d}-{n:03d}", "play", NOW - 5000 + b * 100 + n, 0.9, surface=f"{secret}-surface", tags=(f"{secret}-tag",)) for n in range(50)])
        h.record_many([Event("bob", f"bob-item-{b:02d}-{n:03d}", "play", NOW - 5000 + b * 100 + n, tags=("drama",)) for n in range(50)])
    h.add_local_item(f"{secret}-local", marker, profile=secret, title=f"{secret}-title")
    h.set_setting(f"{secret}-key", f"{secret}-value", profile=secret)
    h.set_setting("household-key", "stays")
    gone = h.forget(secret)
    assert (gone.events, gone.local_items, gone.settings, gone.wal_truncated) == (1000, 1, 1, True)
    assert other.count("bob") == 1000 and other.profiles() == [GUEST_PROFILE, "bob"] and other.setting("household-key") == "stays"
    files = [p for p in tmp_path.iterdir() if p.name.startswith("h.db")]
    assert {p.name for p in files} >= {"h.db"}
    for path in files:
        raw = path.read_bytes()
        assert secret.encode() not in raw, path.name
        assert marker.tobytes() not in raw, path.name
    consistent(h)
    h.close()
    other.close()


def test_one_store_can_be_shared_between_threads(store):
    errors = []

    def write(t):
        try:
            for b in range(20):
                store.record_many([Event("p1", f"t{t}-{b}-{n}", "play", NOW - 1000 + n) for n in range(10)])
                store.recent("p1", 20)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and store.count("p1") == 800
    consistent(store)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"synchronous": "OFF"}, "OFF is refused"),
        ({"synchronous": "fast"}, "expected one of"),
        ({"busy_timeout_ms": -1}, "busy_timeout_ms"),
        ({"max_events_per_profile": 0}, "max_events_per_profile"),
        ({"max_age_days": math.nan}, "max_age_days"),
    ],
)
def test_bad_store_parameters_are_refused(tmp_path, kwargs, words):
    with pytest.raises(HistoryError, match=words):
        HistoryStore(tmp_path / "h.db", **kwargs)


def test_synchronous_is_applied_and_case_insensitive(tmp_path):
    for mode, level in (("normal", 1), ("FULL", 2), ("Extra", 3)):
        h = HistoryStore(tmp_path / f"{mode}.db", synchronous=mode)
        assert h.db.conn.execute("PRAGMA synchronous").fetchone()[0] == level
        assert h.db.conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
        h.close()


def test_bad_paths_and_closed_store_raise_history_error(tmp_path):
    with pytest.raises(HistoryError, match="does not exist; create the folder"):
        HistoryStore(tmp_path / "missing" / "h.db")
    with pytest.raises(HistoryError, match="is a folder"):
        HistoryStore(tmp_path)
    h = HistoryStore(tmp_path / "h.db")
    h.close()
    h.close()
    with pytest.raises(HistoryError, match="closed"):
        h.recent("guest", 1)


def test_every_kind_is_accepted(store):
    store.record_many([Event("p1", f"i-{k}", k, NOW) for k in EVENT_KINDS])
    assert sorted(e.kind for e in store.recent("p1", 20)) == sorted(EVENT_KINDS)


def test_a_second_writer_waits_instead_of_failing(tmp_path):
    db = tmp_path / "h.db"
    a = HistoryStore(db, synchronous="NORMAL")
    a.add_profile("p1")
    b = HistoryStore(db, synchronous="NORMAL", busy_timeout_ms=5000)
    a.db.conn.execute("BEGIN IMMEDIATE")  # a holds the write lock for a moment
    threading.Timer(0.3, lambda: a.db.conn.execute("COMMIT")).start()
    b.record("p1", "i", "play", NOW)
    assert b.count("p1") == 1
    blocked = HistoryStore(db, busy_timeout_ms=0)
    a.db.conn.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(HistoryError, match="held the write lock for more than 0 ms"):
            blocked.record("p1", "j", "play", NOW)
    finally:
        a.db.conn.execute("ROLLBACK")
    assert isinstance(a.db.conn, sqlite3.Connection)
