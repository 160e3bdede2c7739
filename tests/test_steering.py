"""Steering a request by words and measured content (recommend(query=, max_duration_s=, kind=,
where=)): the query goes through the device's text features and the fusion student, is
blended with the profile's taste, constraints keep only what was asked for, and bad queries
get a QueryError; the CLI and the service give the facade's answer."""

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
from edge.contract.content import CONTENT_COLUMNS, measured_content
from edge.errors import QueryError
from edge.features import FeatureSpec, item_vector, text_item_vector
from edge.ranking import RankingConfig
from edge.ranking.steering import TAG_MATCH_BOOST, Constraints, TagMatcher, blend, query_words
from edge.recommender import Recommender
from tests.test_service import Client, serve

T = 1_750_000_000
PLAIN = RankingConfig(mmr_lambda=1.0, tag_cap=0, explore_slots=0)  # score order, so a brute-force answer exists


@pytest.fixture
def rec(device_bundle, tmp_path):
    r = Recommender.open(device_bundle.bundle, tmp_path / "h.db", backends=["onnx"], ranking=PLAIN)
    yield r
    r.close()


def _expected(rec: Recommender, vector: np.ndarray, k: int, gone: set[str] = frozenset(), only=None, query: str = "") -> list[str]:
    scores = rec.scorer.scores(vector)
    boost = rec._tags().boost(rec._tags().named(query_words(query))) if query else None
    scores = (scores + boost if boost is not None else scores).astype(np.float64)
    bias = rec._filters.bias(Context.at(T, "tv"), None, T).astype(np.float64)
    if only is not None:
        bias[~only] = -np.inf
    for i in gone:
        bias[rec.bundle.index[i]] = -np.inf
    order = np.lexsort((np.arange(len(scores)), -(scores + bias)))
    return [rec.bundle.items.item_ids[r] for r in order[:k] if np.isfinite(bias[r])]


def _query_vector(rec: Recommender, query: str) -> np.ndarray:
    vec = text_item_vector(query, query_words(query), spec=rec.bundle.feature_spec)
    return rec._fusion_model().run({"features": vec[None]})[0].reshape(-1)


def test_a_query_alone_ranks_by_the_fusion_students_text_vector(rec):
    rec.add_profile("new")
    for query in ("calm", "loud songs", "a night show"):
        got = [r.item_id for r in rec.recommend("new", k=6, query=query, timestamp=T)]
        assert got == _expected(rec, blend(None, _query_vector(rec, query)), 6, query=query), query


def test_a_query_is_blended_with_the_profiles_taste(rec):
    rec.record("alice", "i002", "complete", timestamp=T - 100)
    rec.record("alice", "i006", "complete", timestamp=T - 50)
    user = rec._user_state("alice", Context.at(T, "tv")).vector
    got = [r.item_id for r in rec.recommend("alice", k=6, query="loud", timestamp=T)]
    assert got == _expected(rec, blend(user, _query_vector(rec, "loud")), 6, gone={"i002", "i006"}, query="loud")
    plain = [r.item_id for r in rec.recommend("alice", k=6, timestamp=T)]
    assert got != plain  # the words moved the list
    assert all("for “loud”" in r.reason and "watched" in r.reason for r in rec.recommend("alice", k=3, query="loud", timestamp=T))


def test_tags_the_query_names_come_first_and_uncapped():
    tags = [("jazz", "calm"), ("hip hop",), ("piano",), ("jazz",), ("children's",), ()]
    vocab = list(dict.fromkeys(t for ts in tags for t in ts))
    ids = np.full((len(tags) + 1, 2), -1, np.int64)
    for r, ts in enumerate(tags):
        ids[r, : len(ts)] = [vocab.index(t) for t in ts]
    m = TagMatcher(vocab, ids, len(tags))
    assert m.named(query_words("some Jazz for dinner")) == ["jazz"]
    assert m.named(query_words("calm pianos")) == ["calm", "piano"]  # stems: a plural names the tag
    assert m.named(query_words("hip hop tonight")) == ["hip hop"] and m.named(query_words("hip")) == []  # every word of a tag
    assert m.named(query_words("children's films")) == ["children's"]
    assert m.boost([]) is None
    np.testing.assert_array_equal(m.boost(["jazz", "calm"]), np.array([2, 0, 0, 1, 0, 0], np.float32) * TAG_MATCH_BOOST)


def test_a_named_tag_fills_the_list_past_the_tag_cap(device_bundle, tmp_path):
    with Recommender.open(device_bundle.bundle, tmp_path / "d.db", backends=["onnx"]) as rec:  # default re-ranker: 3 per tag
        assert rec.ranking.tag_cap == 3
        rec.add_profile("new")
        got = rec.recommend("new", k=8, query="calm", timestamp=T)
        calm = [r for r in got if "calm" in rec.bundle.items.tags[rec.bundle.index[r.item_id]]]
        assert len(calm) >= 6 and all("(tags calm)" in r.reason for r in got)
        plain = rec.recommend("new", k=8, timestamp=T)
        assert sum("calm" in rec.bundle.items.tags[rec.bundle.index[r.item_id]] for r in plain) <= 3


def test_the_words_reach_the_items_that_carry_them(rec):
    # The fixture's two taste groups: calm songs and night shows, loud songs and day shows.
    rec.add_profile("new")
    for query, group in (("calm", ("calm", "night")), ("night", ("calm", "night")), ("loud", ("loud", "day")), ("day", ("loud", "day"))):
        tags = [rec.bundle.items.tags[rec.bundle.index[r.item_id]] for r in rec.recommend("new", k=5, query=query, timestamp=T)]
        assert sum(bool(set(t) & set(group)) for t in tags) >= 4, (query, tags)


def test_constraints_keep_only_what_was_asked_for(rec, tmp_path):
    rec.record("alice", "i002", "complete", timestamp=T - 100)
    items = rec.bundle.items
    content = items.content
    tempo = content[:, CONTENT_COLUMNS.index("tempo_bpm")]
    limit = float(np.nanmedian(tempo))
    local = tmp_path / "tone.wav"
    import soundfile as sf

    sf.write(local, (0.2 * np.sin(np.arange(16000) / 10)).astype(np.float32), 16000)
    rec.add_item(local, "My tone", kind="audio", profile="alice")
    for kwargs, check in (
        ({"kind": "audio"}, lambda r: items.is_audio[r]),
        ({"kind": "video"}, lambda r: not items.is_audio[r]),
        ({"max_duration_s": 30}, lambda r: items.durations[r] <= 30),
        ({"where": {"tempo_bpm": [None, limit]}}, lambda r: tempo[r] <= limit),
        ({"where": {"motion": [0.0, None]}, "kind": "video"}, lambda r: not items.is_audio[r] and np.isfinite(content[r, CONTENT_COLUMNS.index("motion")])),
    ):
        recs = rec.recommend("alice", k=40, timestamp=T, **kwargs)
        assert recs, kwargs
        catalogue = [r for r in recs if r.item_id in rec.bundle.index]
        assert all(check(rec.bundle.index[r.item_id]) for r in catalogue), kwargs
        # A local item is never measured here: it can only meet a kind.
        assert all(r.kind == kwargs.get("kind") and set(kwargs) == {"kind"} for r in recs if r not in catalogue), kwargs
        assert all(r.reason.startswith("only ") for r in recs)
    # Unmeasured content fails a constraint on it: no video has a tempo.
    assert all(items.is_audio[rec.bundle.index[r.item_id]] for r in rec.recommend("alice", k=40, timestamp=T, where={"tempo_bpm": [0, None]}))
    # A local item of the right kind stays when only the kind is asked for.
    assert any(r.item_id.startswith("local:") for r in rec.recommend("alice", k=40, timestamp=T, kind="audio"))
    mask = Constraints.checked("audio", 30, {"tempo_bpm": [None, limit]}).mask(items)
    got = [r.item_id for r in rec.recommend("alice", k=5, timestamp=T, query="calm", kind="audio", max_duration_s=30, where={"tempo_bpm": [None, limit]})]
    assert all(mask[rec.bundle.index[i]] for i in got)


def test_bundles_carry_what_the_content_measured(rec):
    # The fixture's first item is audio: its tempo and loudness are the features' own, rounded to float16.
    spec: FeatureSpec = rec.bundle.feature_spec
    items = rec.bundle.items
    row = next(r for r in range(len(items)) if items.is_audio[r])
    assert np.isfinite(items.content[row, CONTENT_COLUMNS.index("tempo_bpm")])
    assert np.isnan(items.content[row, CONTENT_COLUMNS.index("motion")])  # a song has no frames
    frames = np.zeros((4, 18, 32, 3), np.uint8)
    got = measured_content(item_vector("x", frames=frames, spec=spec), spec)[0]
    assert np.isnan(got[CONTENT_COLUMNS.index("tempo_bpm")]) and got[CONTENT_COLUMNS.index("brightness")] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("query, match", [
    ("", "no word"), ("   ", "no word"), ("?!…", "no word"), ("привет мир", "CYRILLIC"), ("東京の夜", "CJK"),
    ("x" * 600, "at most"), (3, "text"),
])
def test_bad_queries_are_refused_with_a_reason(rec, query, match):
    rec.add_profile("p")
    with pytest.raises(QueryError, match=match):
        rec.recommend("p", query=query)  # type: ignore[arg-type]


def test_a_query_mixing_a_known_script_is_answered(rec):
    rec.add_profile("p")
    assert rec.recommend("p", k=3, query="calm привет", timestamp=T)


@pytest.mark.parametrize("kwargs, match", [
    ({"kind": "podcast"}, "kind"), ({"max_duration_s": -5}, "max_duration_s"), ({"max_duration_s": float("nan")}, "max_duration_s"),
    ({"where": {"bpm": [1, 2]}}, "unknown descriptor"), ({"where": {"tempo_bpm": [200, 100]}}, "above"),
    ({"where": {"tempo_bpm": [1]}}, "low, high"), ({"where": {"tempo_bpm": ["a", None]}}, "number"), ({"where": [1, 2]}, "map"),
])
def test_bad_constraints_are_refused(rec, kwargs, match):
    rec.add_profile("p")
    with pytest.raises(QueryError, match=match):
        rec.recommend("p", **kwargs)


def test_cli_and_service_give_the_facades_answer(device_bundle, tmp_path):
    db = tmp_path / "h.db"
    with Recommender.open(device_bundle.bundle, db, backends=["onnx"]) as rec:
        rec.record("alice", "i002", "complete", timestamp=T - 100)
        direct = [dataclasses.asdict(r) for r in rec.recommend("alice", k=4, context=Context.at(T, "tv"), query="calm songs",
                                                                 kind="audio", where={"tempo_bpm": [None, 400]})]
        folder = Path(tempfile.mkdtemp(prefix="edgerec-steer-"))
        svc = serve(rec, folder)
        try:
            c = Client(svc.socket_path, svc.token)
            assert c.result("recommend", profile="alice", k=4, timestamp=T, query="calm songs", kind="audio",
                            where={"tempo_bpm": [None, 400]}) == direct
            for params, kind in (({"query": ""}, "QueryError"), ({"where": {"tempo_bpm": 3}}, "RequestError"),
                                 ({"where": {"nope": [1, 2]}}, "QueryError")):
                answer = c.call("recommend", profile="alice", **params)
                assert answer is not None and answer["ok"] is False and answer["error"]["type"] == kind, (params, answer)
            c.close()
        finally:
            svc.stop()
    out = subprocess.run([sys.executable, "-m", "edge.cli", "recommend", "--bundle", str(device_bundle.bundle), "--db", str(db),
                          "--profile", "alice", "-k", "4", "--timestamp", str(T), "--query", "calm songs", "--kind", "audio",
                          "--where", "tempo_bpm=:400", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == direct
    bad = subprocess.run([sys.executable, "-m", "edge.cli", "recommend", "--bundle", str(device_bundle.bundle), "--db", str(db),
                          "--profile", "alice", "--where", "tempo_bpm"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "NAME=LOW:HIGH" in bad.stderr and "Traceback" not in bad.stderr
