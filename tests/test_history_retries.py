"""Events that must be stored once and in order whatever the caller's luck (issue 14 items 5
and 10): client ids make retries safe, retention never fails after a commit, a damaged
blocked list does not break recommendations, and an unset or fast clock cannot reorder the
recent history."""

from __future__ import annotations

import logging
import time

import pytest

from edge.errors import HistoryError
from edge.history import Event, HistoryStore
from edge.history.events import MIN_TIMESTAMP

NOW = time.time()


def test_a_retried_batch_is_stored_once_and_answers_the_first_ids(tmp_path):
    with HistoryStore(tmp_path / "h.db") as h:
        h.add_profile("a")
        h.add_profile("b")
        batch = [Event("a", f"i{j}", "play", NOW - 10 + j, client_id=f"app:{j}", tags=("x",)) for j in range(3)]
        first = h.record_many(batch)
        again = h.record_many(batch + [Event("a", "i9", "like", NOW, client_id="app:9")])
        assert again[:3] == first and again[3] == first[-1] + 1
        assert h.count("a") == 4 and h.tag_counts("a") == {"x": 3}
        # The same client id twice in one batch, and the same id for another profile.
        ids = h.record_many([Event("b", "i1", "play", NOW, client_id="app:0"), Event("b", "i1", "play", NOW, client_id="app:0")])
        assert ids[0] == ids[1] and h.count("b") == 1
        assert [e.client_id for e in h.recent("a", 2)] == ["app:9", "app:2"]


def test_a_bad_client_id_refuses_the_batch(tmp_path):
    with HistoryStore(tmp_path / "h.db") as h:
        h.add_profile("a")
        with pytest.raises(HistoryError, match="client_id"):
            h.record_many([Event("a", "i1", "play", NOW), Event("a", "i2", "play", NOW, client_id="")])
        assert h.count("a") == 0


def test_retention_after_commit_survives_a_damaged_stored_tag(tmp_path, caplog):
    with HistoryStore(tmp_path / "h.db", max_events_per_profile=10) as h:
        h.add_profile("a")
        h.record_many([Event("a", f"i{j}", "play", NOW - 100 + j, tags=("x",)) for j in range(10)])
        # A torn record: the oldest event's tag list no longer parses.
        h.db.conn.execute("UPDATE events SET tags = '[\"x' WHERE id = 1")
        with caplog.at_level(logging.WARNING, logger="edge.history"):
            ids = h.record_many([Event("a", f"n{j}", "play", NOW - 50 + j, client_id=f"c{j}") for j in range(5)])
        assert len(ids) == 5
        assert h.count("a") == 10, "retention still trims the profile back to its cap"
        assert 1 not in {e.id for e in h.recent("a", 100)}
        # A retry after whatever happened stores nothing twice.
        assert h.record_many([Event("a", f"n{j}", "play", NOW - 50 + j, client_id=f"c{j}") for j in range(5)]) == ids


def test_an_unset_device_clock_keeps_insertion_order(tmp_path, monkeypatch):
    with HistoryStore(tmp_path / "h.db") as h:
        h.add_profile("a")
        h.record("a", "before", "play", NOW - 60)
        boot = 1234.0  # the box booted without network time: the clock reads 1970
        monkeypatch.setattr(time, "time", lambda: boot)
        h.record("a", "first", "play")  # the app stamps with the same unset clock
        h.record("a", "second", "play", boot - 5)  # even an earlier unset stamp comes after
        got = h.recent("a", 3)
        assert [e.item_id for e in got] == ["second", "first", "before"]
        assert all(e.timestamp >= MIN_TIMESTAMP for e in got)
        monkeypatch.setattr(time, "time", lambda: NOW + 5)  # network time arrives
        h.record("a", "after", "play")
        assert [e.item_id for e in h.recent("a", 4)] == ["after", "second", "first", "before"]


def test_an_event_from_a_fast_clock_cannot_stay_newest(tmp_path):
    with HistoryStore(tmp_path / "h.db") as h:
        h.add_profile("a")
        h.record("a", "ahead", "play", time.time() + 86400)  # a day ahead: accepted, stored as now
        h.record("a", "later", "play")
        assert [e.item_id for e in h.recent("a", 2)] == ["later", "ahead"]
        assert h.recent("a", 2)[1].timestamp <= time.time()


def test_a_damaged_blocked_list_is_salvaged_not_fatal(device_bundle, tmp_path, caplog):
    from edge.recommender import BLOCKED_KEY, Recommender

    with Recommender.open(device_bundle.bundle, tmp_path / "h.db") as rec:
        items = [it.item_id for it in rec.bundle.items]
        rec.record("a", items[0], "play")
        rec.block("a", items[1])
        rec.block("a", items[2])
        raw = rec.history.setting(BLOCKED_KEY, profile="a")
        rec.history.set_setting(BLOCKED_KEY, raw[:-2], profile="a")  # torn: '["v1", "v2' without its end
        with caplog.at_level(logging.WARNING, logger="edge"):
            recs = rec.recommend("a", k=len(items))
        assert items[1] not in {r.item_id for r in recs} and recs
        assert "damaged" in caplog.text
        # The torn id is lost; the next block writes the salvaged list back whole.
        assert rec.block("a", items[3]) == sorted({items[1], items[3]}) == rec.blocked("a")
