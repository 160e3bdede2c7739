"""The home screen (Recommender.home): its rows, each explained, no item twice, the request's
filters on every row, series followed episode by episode, and the CLI and the service giving
the facade's answer."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from edge.context import Context
from edge.errors import HistoryError, QueryError
from edge.ranking.home import DAY_S, HomeConfig, HomeIndex, continue_watching
from edge.recommender import Recommender
from tests.conftest import NOT_YET
from tests.test_service import Client, serve

T = 1_750_000_000


@pytest.fixture
def rec(device_bundle, tmp_path):
    r = Recommender.open(device_bundle.bundle, tmp_path / "h.db", backends=["onnx"])
    yield r
    r.close()


def _watch(rec: Recommender, profile: str = "alice") -> None:
    rec.record(profile, "i002", "complete", timestamp=T)  # night-show episode 1
    rec.record(profile, "i004", "play", value=0.95, timestamp=T + 10)  # finished by fraction
    rec.record(profile, "i001", "play", value=0.4, timestamp=T + 20)  # started, not finished
    rec.record(profile, "i008", "like", timestamp=T + 30)


def _ids(rows) -> list[str]:
    return [it.item_id for row in rows for it in row.items]


def test_every_row_kind_is_there_titled_and_explained_with_no_item_twice(rec):
    _watch(rec)
    # Just after NOT_YET the items that became available then are new.
    rows = rec.home("alice", timestamp=NOT_YET + 3600, per_row=4)
    kinds = [r.kind for r in rows]
    assert kinds[0] == "continue" and kinds.count("because") == 2
    assert {"popular", "new"} <= set(kinds)
    assert all(r.title and r.reason and 1 <= len(r.items) <= 4 and all(it.reason for it in r.items) for r in rows)
    ids = _ids(rows)
    assert len(ids) == len(set(ids)), "an item appears in two rows"
    because = [r.title for r in rows if r.kind == "because"]
    titles = {rec.bundle.items.titles[rec.bundle.index[i]] for i in ("i008", "i001")}
    assert {next(x for x in titles if t.endswith(" " + x)) for t in because} == titles  # the two newest distinct positives
    new = next(r for r in rows if r.kind == "new")
    start = rec.bundle.items.available_from
    assert all(NOT_YET + 3600 - 14 * DAY_S < start[rec.bundle.index[it.item_id]] <= NOT_YET + 3600 for it in new.items)


def test_continue_watching_resumes_and_offers_the_next_episode(rec):
    _watch(rec)
    rows = rec.home("alice", timestamp=T + 100)
    cont = rows[0]
    assert cont.kind == "continue"
    got = {it.item_id: it.reason for it in cont.items}
    assert "40%" in got["i001"]  # started: pick up where you left off
    assert "i004" not in got and "i002" not in got  # finished, by event or by fraction
    assert "episode 2" in got["i006"]  # night-show: i002 is episode 1, i006 episode 2
    # Watching episode 2 moves the offer on to episode 3; an episode already played is never offered.
    rec.record("alice", "i006", "complete", timestamp=T + 200)
    got = {it.item_id for it in rec.home("alice", timestamp=T + 300)[0].items}
    assert "i010" in got and "i006" not in got and "i002" not in got


def test_next_episode_skips_those_the_request_may_not_show(rec):
    # night-show episode 3 (i010) is rated 18: a kid following the series is offered episode 4.
    rec.add_profile("kid", age_limit=7)
    rec.record("kid", "i002", "complete", timestamp=T)
    rec.record("kid", "i006", "complete", timestamp=T + 10)
    rows = rec.home("kid", timestamp=T + 100)
    offered = {it.item_id for it in rows[0].items} if rows and rows[0].kind == "continue" else set()
    assert "i010" not in offered and "i014" in offered
    ages = rec.bundle.items.age_ratings
    assert all(ages[rec.bundle.index[i]] <= 7 for i in _ids(rows))


def test_filters_apply_to_every_row(rec):
    _watch(rec)
    rec.block("alice", "i012")
    for device in ("tv", "speaker"):
        rows = rec.home("alice", device=device, timestamp=T + 100)
        items = rec.bundle.items
        for i in _ids(rows):
            row = rec.bundle.index[i]
            assert i != "i012" and items.available_until[row] > T + 100 and items.available_from[row] <= T + 100
            if device == "speaker":
                assert items.is_audio[row], f"{i} is video on a speaker"


def test_a_profile_without_history_gets_popular_and_no_anchor_rows(rec):
    rec.add_profile("new")
    rows = rec.home("new", timestamp=T)
    assert [r.kind for r in rows][0] == "popular" and "because" not in {r.kind for r in rows}
    assert rows == rec.home("new", timestamp=T)  # stable while nothing changed


def test_bad_requests_are_refused(rec):
    with pytest.raises(HistoryError, match="nobody"):
        rec.home("nobody")
    rec.add_profile("p")
    for bad in (0, -1, 10_000, 2.5, True):
        with pytest.raises(QueryError, match="per_row"):
            rec.home("p", per_row=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        HomeConfig(finished_fraction=0)


def test_series_index_orders_episodes_and_continue_watching_reads_the_newest_event_per_item(rec):
    items = rec.bundle.items
    series = HomeIndex.of(rec.bundle)
    code = int(items.series_codes[rec.bundle.index["i002"]])
    rows, eps = series.episodes_of(code)
    assert list(eps) == sorted(eps) and [items.item_ids[r] for r in rows[:3]] == ["i002", "i006", "i010"]
    ev = lambda item, kind, value=None: type("E", (), {"item_id": item, "kind": kind, "value": value})()  # noqa: E731
    allowed = np.ones(len(items), bool)
    # Newest first: i001 finished after a partial play earlier, so it is not resumed.
    out = continue_watching(rec.bundle, series, [ev("i001", "complete"), ev("i001", "play", 0.3), ev("nope", "play", 0.2)],
                            allowed, 0.9, 10)
    assert out == []


def test_cli_and_service_give_the_facade_rows(device_bundle, rec, tmp_path):
    _watch(rec)
    direct = [dataclasses.asdict(r) for r in rec.home("alice", context=Context.at(T + 100, "tv"), per_row=3)]
    out = subprocess.run([sys.executable, "-m", "edge.cli", "home", "--bundle", str(device_bundle.bundle), "--db", str(tmp_path / "h.db"),
                          "--profile", "alice", "--timestamp", str(T + 100), "--per-row", "3", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == direct
    folder = Path(tempfile.mkdtemp(prefix="edgerec-home-"))
    svc = serve(rec, folder)
    try:
        c = Client(svc.socket_path, svc.token)
        assert c.result("home", profile="alice", timestamp=T + 100, per_row=3) == direct
        bad = c.call("home", profile="alice", per_row=0)
        assert bad is not None and bad["ok"] is False and bad["error"]["type"] == "RequestError"
        c.close()
    finally:
        svc.stop()
