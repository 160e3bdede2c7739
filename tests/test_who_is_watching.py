"""Who is watching through the facade, the CLI and the service: ``who_is_watching``, and
``recommend``/``home`` with ``profile="auto"`` (the likeliest viewer, said in the reasons, a
plausible kid's age limit applied); the privacy receipt through the same three entry points."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from edge.context import Context
from edge.errors import HistoryError, QueryError
from edge.recommender import AUTO, PLAUSIBLE_VIEWER, Recommender
from tests.test_service import Client, serve

DAY = 86_400
T0 = 1_750_000_000 - 1_750_000_000 % DAY  # a midnight (UTC)
LATER = T0 + 20 * DAY


@pytest.fixture
def rec(device_bundle, tmp_path):
    r = Recommender.open(device_bundle.bundle, tmp_path / "h.db", backends=["onnx"])
    yield r
    r.close()


def household(rec: Recommender) -> None:
    """A kid (limit 7) who watches night shows at 16:00 and a parent who plays loud songs and
    day shows at 21:00, ten days each."""
    rec.add_profile("kid", age_limit=7)
    for day in range(10):
        for j, item in enumerate(["i002", "i006", "i014", "i022"]):
            rec.record("kid", item, "complete", timestamp=T0 + day * DAY + 16 * 3600 + j * 600)
        for j, item in enumerate(["i003", "i007", "i011", "i013"]):
            rec.record("parent", item, "complete", timestamp=T0 + day * DAY + 21 * 3600 + j * 600)


def test_the_guess_follows_the_hour_and_the_session(rec):
    household(rec)
    at16 = rec.who_is_watching(timestamp=LATER + 16 * 3600)
    at21 = rec.who_is_watching(timestamp=LATER + 21 * 3600)
    assert [g.profile for g in at16][0] == "kid" and [g.profile for g in at21][0] == "parent"
    assert {g.profile for g in at16} == {"kid", "parent"}  # the empty guest profile is no candidate
    assert sum(g.probability for g in at16) == pytest.approx(1.0)
    # At an hour nobody has watched, the session's items decide.
    noon = LATER + 12 * 3600
    assert rec.who_is_watching(timestamp=noon, session_items=["i002", "i006"])[0].profile == "kid"
    assert rec.who_is_watching(timestamp=noon, session_items=["i003", "i011"])[0].profile == "parent"


def test_auto_recommends_for_the_likeliest_viewer_and_says_so(rec):
    household(rec)
    when = Context.at(LATER + 21 * 3600, "tv")
    guess = rec.who_is_watching(when)[0]
    auto = rec.recommend(AUTO, k=5, context=when)
    assert all(r.reason.startswith(f"probably {guess.profile} (") for r in auto)
    own = rec.recommend(guess.profile, k=5, context=when)
    if rec.who_is_watching(when)[1].probability < PLAUSIBLE_VIEWER:
        assert [r.item_id for r in auto] == [r.item_id for r in own]
    rows = rec.home(AUTO, context=when, per_row=3)
    assert rows and all(r.reason.startswith(f"probably {guess.profile}") for r in rows)


def test_a_plausible_kid_keeps_the_age_limit_on(rec):
    household(rec)
    ages = rec.bundle.items.age_ratings
    # An hour both watch at: both are plausible, so the kid's limit applies to the parent's list.
    for day in range(10):
        rec.record("kid", "i026", "complete", timestamp=T0 + day * DAY + 21 * 3600 + 1)
    when = Context.at(LATER + 21 * 3600, "tv")
    guesses = {g.profile: g.probability for g in rec.who_is_watching(when)}
    assert guesses["kid"] >= PLAUSIBLE_VIEWER
    recs = rec.recommend(AUTO, k=30, context=when)
    assert recs and all(ages[rec.bundle.index[r.item_id]] <= 7 for r in recs if r.item_id in rec.bundle.index)
    items = [it.item_id for row in rec.home(AUTO, context=when) for it in row.items]
    assert items and all(ages[rec.bundle.index[i]] <= 7 for i in items)
    if max(guesses, key=guesses.get) != "kid":
        assert "kid's age limit 7 applies" in recs[0].reason


def test_auto_is_reserved_and_needs_history(rec):
    with pytest.raises(QueryError, match="no household profile has any event"):
        rec.recommend(AUTO)
    with pytest.raises(QueryError):
        rec.who_is_watching()
    with pytest.raises(HistoryError, match="reserved"):
        rec.record(AUTO, "i002")
    with pytest.raises(HistoryError, match="reserved"):
        rec.add_profile(AUTO)


def test_cli_and_service_give_the_facades_answers(device_bundle, tmp_path):
    db = tmp_path / "h.db"
    with Recommender.open(device_bundle.bundle, db, backends=["onnx"]) as rec:
        household(rec)
        when = Context.at(LATER + 12 * 3600, "tv")
        guesses = [dataclasses.asdict(g) for g in rec.who_is_watching(when, session_items=["i002"])]
        auto = [dataclasses.asdict(r) for r in rec.recommend(AUTO, k=4, context=when, session_items=["i002"])]
        receipt = rec.privacy("kid")
        folder = Path(tempfile.mkdtemp(prefix="edgerec-who-"))
        svc = serve(rec, folder)
        try:
            c = Client(svc.socket_path, svc.token)
            assert json.loads(json.dumps(guesses)) == c.result("who_is_watching", timestamp=LATER + 12 * 3600, session_items=["i002"])
            assert c.result("recommend", profile=AUTO, k=4, timestamp=LATER + 12 * 3600, session_items=["i002"]) == auto
            served = c.result("privacy", profile="kid")
            assert served["profiles"] == receipt["profiles"] and served["household"] == receipt["household"]
            bad = c.call("privacy", profile="nobody")
            assert bad is not None and bad["ok"] is False and bad["error"]["type"] == "HistoryError"
            c.close()
        finally:
            svc.stop()
    base = [sys.executable, "-m", "edge.cli"]
    where = ["--bundle", str(device_bundle.bundle), "--db", str(db)]
    out = subprocess.run(base + ["who-is-watching", *where, "--timestamp", str(LATER + 12 * 3600), "--session-item", "i002", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == json.loads(json.dumps(guesses))
    out = subprocess.run(base + ["recommend", *where, "--profile", AUTO, "-k", "4", "--timestamp", str(LATER + 12 * 3600),
                                 "--session-item", "i002", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == auto
    out = subprocess.run(base + ["privacy", *where], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "kid" in out.stdout and "parent" in out.stdout, out.stderr
    out = subprocess.run(base + ["privacy", *where, "--profile", "kid", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and json.loads(out.stdout)["profiles"] == receipt["profiles"]
    bad = subprocess.run(base + ["privacy", *where, "--profile", "nobody"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "nobody" in bad.stderr and "Traceback" not in bad.stderr
