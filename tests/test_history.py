"""The SQLite history store (first version): events kept, validated, newest first."""

from __future__ import annotations

import time

import pytest

from edge.errors import HistoryError
from edge.history import Event, HistoryStore

NOW = time.time()


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


@pytest.mark.parametrize(
    "event, words",
    [
        (Event("ghost", "i1", "play", NOW), "unknown profile 'ghost'"),
        (Event("p1", "i1", "binge", NOW), "unknown event kind"),
        (Event("p1", "i1", "play", 100.0), "before 2000"),
        (Event("p1", "i1", "play", NOW + 365 * 86400), "in the future"),
        (Event("p1", "a\x00b", "play", NOW), "NUL"),
        (Event("p1", "x" * 300, "play", NOW), "at most 256"),
    ],
)
def test_bad_events_are_refused_and_batch_is_all_or_nothing(tmp_path, event, words):
    h = HistoryStore(tmp_path / "h.db")
    h.add_profile("p1")
    with pytest.raises(HistoryError, match=words):
        h.record_many([Event("p1", "ok", "play", NOW), event])
    assert h.count() == 0


def test_ids_with_quotes_and_emoji_are_stored_verbatim(tmp_path):
    h = HistoryStore(tmp_path / "h.db")
    weird = "it'em\"; drop table events;--🎬"
    h.add_profile("p'1")
    h.record("p'1", weird, "like", NOW)
    assert h.recent("p'1", 1)[0].item_id == weird


def test_not_a_database_raises_history_error(tmp_path):
    p = tmp_path / "h.db"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError, match="cannot open the history database"):
        HistoryStore(p)
