"""Every ranker and filter of edge.ranking against a brute-force answer, on small in-memory
catalogues (no bundle, no torch): scoring, top-k, filters, priors, penalties, MMR and the tag
cap, explanations, exploration, and rank() as a whole."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from edge.context import Context
from edge.contract.int8 import dequantize_rows, quantize_rows
from edge.ranking import (
    Int8Scorer,
    LocalCandidate,
    RankingConfig,
    UserState,
    allowed_rows,
    excluded_rows,
    explain,
    mmr,
    negative_penalty,
    prior_scores,
    rank,
    score_int8,
    top_k,
)
from edge.ranking.rank import exploration_seed

NOW = 1_750_000_000.0
PLAIN = RankingConfig(mmr_lambda=1.0, tag_cap=0, explore_slots=0, negative_weight=0.0)


@dataclass
class Items:
    item_ids: list[str]
    titles: list[str]
    tags: list[tuple[str, ...]]
    is_audio: np.ndarray


@dataclass
class ToyCatalogue:
    """The :class:`edge.ranking.Catalogue` protocol over plain arrays."""

    items: Items
    q: np.ndarray
    scales: np.ndarray
    age_ratings: np.ndarray
    available_from: np.ndarray
    available_until: np.ndarray
    priors: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {i: r for r, i in enumerate(self.items.item_ids)}
        self.video_rows = np.flatnonzero(~self.items.is_audio).astype(np.int64)

    @property
    def embedding_dim(self) -> int:
        return self.q.shape[1]

    def item_embeddings(self, rows: np.ndarray) -> np.ndarray:
        return dequantize_rows(self.q[rows], self.scales[rows])


def toy(n: int = 60, d: int = 8, seed: int = 0) -> ToyCatalogue:
    rng = np.random.default_rng(seed)
    q, s = quantize_rows(rng.standard_normal((n, d)).astype(np.float32))
    ids = [f"i{r:03d}" for r in range(n)]
    tags = [(f"g{r % 4}",) + ((f"x{r % 3}",) if r % 5 == 0 else ()) for r in range(n)]
    avail_from = np.where(np.arange(n) % 11 == 3, NOW + 1e6, 0.0)
    avail_until = np.where(np.arange(n) % 13 == 4, NOW - 1.0, np.inf)
    cat = ToyCatalogue(Items(ids, [f"Title {r}" for r in range(n)], tags, np.arange(n) % 3 == 0), q, s,
                       np.select([np.arange(n) % 7 == 2, np.arange(n) % 7 == 5], [18, 12], 0).astype(np.int32), avail_from, avail_until)
    by_hour = {str(h): [[int(r), float(n - r)] for r in rng.permutation(n)[:10]] for h in range(24)}
    cat.priors = {"global": [[r, 1.0 / (r + 1)] for r in range(n)], "by_hour": by_hour,
                  "by_device_hour": {"speaker": {"20": [[0, 0.9], [3, 0.5], [6, 0.1]]}}}
    return cat


def float_scores(cat: ToyCatalogue, user: np.ndarray) -> np.ndarray:
    return np.array([float(cat.item_embeddings(np.array([r]))[0] @ user) for r in range(len(cat.items.item_ids))])


# -- scoring and top-k ------------------------------------------------------------------------

def test_score_int8_is_the_dequantised_dot_product():
    cat = toy()
    u = np.random.default_rng(1).standard_normal(cat.embedding_dim).astype(np.float32)
    np.testing.assert_allclose(score_int8(cat.q, cat.scales, u, chunk_rows=7), float_scores(cat, u), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(Int8Scorer(cat.q, cat.scales).scores(u), float_scores(cat, u), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [0, 1, 5, 59, 60, 100])
def test_top_k_equals_a_full_sort_without_the_excluded(k):
    rng = np.random.default_rng(k)
    scores = rng.permutation(60).astype(np.float32)  # distinct, so the order is unique
    scores[[4, 9]] = [np.nan, -np.inf]
    exclude = np.array([0, 1, 2, 30])
    want = [i for i in np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")
            if i not in set(exclude) and np.isfinite(scores[i])][:k]
    assert top_k(scores, k, exclude).tolist() == want


# -- filters and priors -----------------------------------------------------------------------

@pytest.mark.parametrize("device,age_limit", [("tv", None), ("tv", 12), ("speaker", None), ("speaker", 12)])
def test_allowed_rows_match_a_per_item_check(device, age_limit):
    cat = toy()
    got = allowed_rows(cat, Context.at(NOW, device), age_limit, NOW)
    want = [(age_limit is None or cat.age_ratings[r] <= age_limit)
            and cat.available_from[r] <= NOW < cat.available_until[r]
            and (device != "speaker" or bool(cat.items.is_audio[r])) for r in range(len(cat.items.item_ids))]
    assert got.tolist() == want
    gone = {"i005", "i006", "local:x"}
    rows = excluded_rows(cat, gone, got)
    assert rows.tolist() == sorted({5, 6} | {r for r, ok in enumerate(want) if not ok})


def test_prior_scores_take_the_most_specific_list():
    cat = toy()
    n = len(cat.items.item_ids)
    speaker = prior_scores(cat.priors, n, Context(20, 2, "speaker"))
    assert {int(r) for r in np.flatnonzero(np.isfinite(speaker))} == {0, 3, 6}
    tv = prior_scores(cat.priors, n, Context(20, 2, "tv"))  # no tv list: the hour's
    assert {int(r) for r in np.flatnonzero(np.isfinite(tv))} == {r for r, _ in cat.priors["by_hour"]["20"]}
    assert np.isfinite(prior_scores({"global": cat.priors["global"]}, n, Context(3, 0, "tv"))).all()


# -- re-ranking -------------------------------------------------------------------------------

def brute_mmr(scores, vecs, k, lam, tags=None, cap=0):
    """Greedy MMR written out loop by loop."""
    s = np.asarray(scores, float)
    rel = (s - s.min()) / (s.max() - s.min()) if s.max() > s.min() else np.zeros(len(s))
    unit = [v / max(np.linalg.norm(v), 1e-12) for v in vecs]
    taken: list[int] = []
    counts: dict[str, int] = {}
    for _ in range(min(k, len(s))):
        free = [i for i in range(len(s)) if i not in taken]
        if cap and tags is not None:
            uncapped = [i for i in free if all(counts.get(t, 0) < cap for t in tags[i])]
            free = uncapped or free
        best, best_value = None, -np.inf
        for i in free:
            sim = max((float(unit[i] @ unit[j]) for j in taken), default=0.0)
            value = lam * rel[i] - (1 - lam) * sim
            if value > best_value:
                best, best_value = i, value
        taken.append(best)
        for t in (tags[best] if tags is not None else ()):
            counts[t] = counts.get(t, 0) + 1
    return taken


@pytest.mark.parametrize("lam,cap", [(1.0, 0), (0.7, 0), (0.3, 0), (0.7, 2), (0.0, 1)])
def test_mmr_matches_greedy_brute_force(lam, cap):
    rng = np.random.default_rng(int(lam * 10) + cap)
    scores = rng.standard_normal(30)
    vecs = rng.standard_normal((30, 6)).astype(np.float32)
    tags = [(f"t{i % 4}",) for i in range(30)]
    assert mmr(scores, vecs, 10, lam, tags, cap).tolist() == brute_mmr(scores, vecs, 10, lam, tags, cap)


def test_negative_penalty_is_weight_times_the_closest_positive_cosine():
    rng = np.random.default_rng(3)
    cand, neg = rng.standard_normal((12, 5)), rng.standard_normal((3, 5))
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    want = [0.4 * max(0.0, max(cos(c, n) for n in neg)) for c in cand]
    np.testing.assert_allclose(negative_penalty(cand, neg, 0.4), want, rtol=1e-5, atol=1e-6)
    assert not negative_penalty(cand, neg[:0], 0.4).any()


def test_explain_names_the_nearest_history_item_with_the_right_verb():
    rng = np.random.default_rng(4)
    cand, hist = rng.standard_normal((6, 5)), rng.standard_normal((3, 5))
    titles, kinds = ["Song", "Film", "Show"], ["audio", "video", "video"]
    got = explain(np.arange(6), cand, hist, titles, kinds)
    for c, text in zip(cand, got):
        j = int(np.argmax([c @ h / np.linalg.norm(h) for h in hist]))
        assert text == f"because you {'listened to' if kinds[j] == 'audio' else 'watched'} {titles[j]}"


# -- rank() as a whole ------------------------------------------------------------------------

def test_rank_without_reranking_is_the_filtered_score_order_with_local_items():
    cat = toy()
    rng = np.random.default_rng(5)
    u = rng.standard_normal(cat.embedding_dim).astype(np.float32)
    local = [LocalCandidate("local:a", rng.standard_normal(cat.embedding_dim).astype(np.float32), "audio", "Mine A"),
             LocalCandidate("local:v", rng.standard_normal(cat.embedding_dim).astype(np.float32) * 3, "video", None)]
    hist = ["i010", "i011"]
    user = UserState("alice", u, hist, cat.item_embeddings(np.array([10, 11])), gone={"i001", "i010", "i011", "local:gone"},
                     age_limit=12, local=local)
    for device in ("tv", "speaker"):
        ctx = Context.at(NOW, device)
        got = rank(cat, Int8Scorer(cat.q, cat.scales), user, ctx, 15, PLAIN)
        allowed = allowed_rows(cat, ctx, 12, NOW)
        pool = [(s, cat.items.item_ids[r]) for r, s in enumerate(float_scores(cat, u)) if allowed[r] and cat.items.item_ids[r] not in user.gone]
        pool += [(float(it.embedding @ u), it.item_id) for it in local if device == "tv" or it.kind == "audio"]
        want = [i for _, i in sorted(pool, key=lambda p: -p[0])][:15]
        assert [r.item_id for r in got] == want
        for r in got:
            assert r.reason.startswith("because you ")
            if r.item_id == "local:v":
                assert r.title == "local:v" and r.kind == "video"
            if r.item_id == "local:a":
                assert r.title == "Mine A" and r.kind == "audio"


def test_rank_cold_start_follows_the_priors_and_says_so():
    cat = toy()
    ctx = Context(20, 2, "tv", NOW)
    user = UserState("new", None, age_limit=None)
    got = rank(cat, Int8Scorer(cat.q, cat.scales), user, ctx, 5, RankingConfig())
    allowed = allowed_rows(cat, ctx, None, NOW)
    want = [cat.items.item_ids[r] for r, _ in sorted(cat.priors["by_hour"]["20"], key=lambda p: -p[1]) if allowed[r]][:5]
    # MMR with the default lambda may reorder, but cold start picks from the prior list only.
    assert set(r.item_id for r in got) <= set(cat.items.item_ids[r] for r, _ in cat.priors["by_hour"]["20"])
    assert [r.item_id for r in rank(cat, Int8Scorer(cat.q, cat.scales), user, ctx, 5, PLAIN)] == want
    assert {r.reason for r in got} == {"popular at this hour"}


def test_rank_exploration_slot_is_deterministic_and_from_deeper_in_the_list():
    cat = toy(n=200, seed=7)
    u = np.random.default_rng(8).standard_normal(cat.embedding_dim).astype(np.float32)
    cfg = RankingConfig(mmr_lambda=1.0, tag_cap=0, explore_slots=1, explore_depth=50, negative_weight=0.0)
    user = UserState("bob", u, ["i000"], cat.item_embeddings(np.array([0])))
    ctx = Context(21, 4, "tv", NOW)
    a = rank(cat, Int8Scorer(cat.q, cat.scales), user, ctx, 10, cfg)
    b = rank(cat, Int8Scorer(cat.q, cat.scales), user, ctx, 10, cfg)
    assert a == b
    assert [r.reason for r in a].count("something different") == 1
    plain = [r.item_id for r in rank(cat, Int8Scorer(cat.q, cat.scales), user, ctx, 50, PLAIN)]
    explored = next(r.item_id for r in a if r.reason == "something different")
    assert [r.item_id for r in a[:9]] == plain[:9]
    assert explored in plain[9:50]
    rest = [i for i in plain[9:50]]
    want = rest[int(np.random.default_rng(exploration_seed("bob", ctx)).permutation(len(rest))[0])]
    assert explored == want


def test_rank_lowers_items_like_recent_dislikes():
    cat = toy()
    u = np.random.default_rng(9).standard_normal(cat.embedding_dim).astype(np.float32)
    cfg = RankingConfig(mmr_lambda=1.0, tag_cap=0, explore_slots=0, negative_weight=0.5)
    user = UserState("c", u, ["i000"], cat.item_embeddings(np.array([0])), gone={"i002"}, negative_ids=["i002"])
    got = rank(cat, Int8Scorer(cat.q, cat.scales), user, Context.at(NOW), 10, cfg)
    neg = cat.item_embeddings(np.array([2]))[0]
    allowed = allowed_rows(cat, Context.at(NOW), None, NOW)
    adjusted = []
    for r, s in enumerate(float_scores(cat, u)):
        if allowed[r] and r != 2:
            v = cat.item_embeddings(np.array([r]))[0]
            adjusted.append((s - 0.5 * max(0.0, float(v @ neg / np.linalg.norm(v) / np.linalg.norm(neg))), cat.items.item_ids[r]))
    assert [r.item_id for r in got] == [i for _, i in sorted(adjusted, key=lambda p: -p[0])][:10]


# -- the fast paths against the plain ones ------------------------------------------------------

@pytest.mark.parametrize("case", ["random", "ties", "ascending", "descending", "mostly_refused", "few_valid"])
@pytest.mark.parametrize("k", [1, 10, 200])
def test_top_k_on_a_large_catalogue_equals_a_full_sort(case, k):
    """The sampled threshold must never change the answer, whatever the order of the scores."""
    rng = np.random.default_rng(k)
    n = 50_000
    scores = rng.standard_normal(n).astype(np.float32)
    bias = np.zeros(n, np.float32)
    if case == "ties":
        scores = np.round(scores * 3).astype(np.float32)  # a handful of distinct values
    elif case == "ascending":
        scores = np.sort(scores)
    elif case == "descending":
        scores = np.sort(scores)[::-1].copy()
    elif case == "mostly_refused":
        bias[rng.random(n) < 0.97] = -np.inf
    elif case == "few_valid":
        scores[rng.random(n) < 0.999] = np.nan
    exclude = rng.choice(n, 300, replace=False)
    masked = scores + bias
    masked[exclude] = -np.inf
    order = sorted((i for i in range(n) if np.isfinite(masked[i])), key=lambda i: (-masked[i], i))
    assert top_k(scores, k, exclude, bias).tolist() == order[:k]


def test_row_filters_mask_equals_allowed_rows_at_every_edge():
    """The kept mask changes exactly where allowed_rows changes: at each availability edge."""
    from edge.ranking.filters import RowFilters

    cat = toy()
    filters = RowFilters(cat)
    edges = np.concatenate([cat.available_from, cat.available_until])
    times = [t + dt for t in np.unique(edges[np.isfinite(edges)]) for dt in (-1.0, 0.0, 0.5)] + [NOW, NOW + 2e6]
    for now in times:
        for device in ("tv", "speaker"):
            for age in (None, 12, 18):
                ctx = Context.at(max(now, 0.0), device)
                want = allowed_rows(cat, ctx, age, now)
                assert (filters.bias(ctx, age, now) == 0).tolist() == want.tolist()
                rows = np.array([1, 7, 30])
                want[rows] = False
                assert (filters.bias_without(ctx, age, now, rows) == 0).tolist() == want.tolist()
