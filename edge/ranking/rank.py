"""The one entry point of ranking: candidates from the catalogue and local items, filters,
"not this" penalties, MMR with a tag cap, an exploration slot and a reason for each item."""

from __future__ import annotations

import hashlib
import time
from typing import Callable, Protocol, Sequence

import numpy as np

from edge.context import Context
from edge.ranking.catalogue import Catalogue, item_vectors
from edge.ranking.config import RankingConfig, Recommendation
from edge.ranking.diversity import mmr, negative_penalty
from edge.ranking.explain import REASON_EXPLORE, REASON_POPULAR, explain
from edge.ranking.filters import RowFilters, catalogue_rows, playable_local
from edge.ranking.priors import prior_scores
from edge.ranking.scoring import top_k
from edge.ranking.user import LocalCandidate, UserState


class Scorer(Protocol):
    """Scores a user vector against every catalogue row (see :class:`~edge.ranking.scoring.Int8Scorer`)."""

    def scores(self, user: np.ndarray) -> np.ndarray: ...


def exploration_seed(profile: str, context: Context) -> int:
    """Seed of the exploration pick: fixed per profile, weekday and hour, so the list stays
    stable while the person browses."""
    return int.from_bytes(hashlib.sha256(f"{profile}\x1f{context.weekday}\x1f{context.hour}".encode()).digest()[:8], "little")


def rank(catalogue: Catalogue, scorer: Scorer, user: UserState, context: Context, k: int,
         config: RankingConfig | None = None, now_s: float | None = None, timings: dict[str, float] | None = None,
         filters: RowFilters | None = None, only: np.ndarray | None = None,
         local_ok: Callable[[LocalCandidate], bool] | None = None, boost: np.ndarray | None = None) -> list[Recommendation]:
    """Top-``k`` catalogue and local items for ``user``, best first, each with a reason.

    Left out: ``user.gone``; rows above ``user.age_limit`` or outside their availability window
    at ``now_s`` (default: ``context.timestamp``, else now); on a speaker, everything that is
    not audio. With no user vector the bundle's priors for the device and hour rank the
    catalogue (local items then have no score and are left out).

    :param timings: when given, ``scoring_s`` and ``rerank_s`` are written into it.
    :param filters: the catalogue's :class:`RowFilters`, kept between requests (default: built
        for this one).
    :param only: bool ``(n,)``: when given, only these catalogue rows (a steered request's
        constraints, :class:`~edge.ranking.steering.Constraints`); ``local_ok`` likewise says
        which local items may be recommended. ``boost``: float32 ``(n,)`` added to the catalogue's
        scores (the tags a query names, :class:`~edge.ranking.steering.TagMatcher`).
    :returns: at most ``k`` recommendations.
    """
    cfg = config or RankingConfig()
    filters = filters or RowFilters(catalogue)
    t0 = time.perf_counter()
    if now_s is None:
        now_s = context.timestamp if context.timestamp is not None else time.time()
    playable = [it for it, ok in zip(user.local, playable_local([it.kind for it in user.local], context))
                if ok and it.item_id not in user.gone and (local_ok is None or local_ok(it))]
    gone_rows = user.gone_rows if user.gone_rows is not None else catalogue_rows(catalogue, user.gone)
    if user.vector is None:
        scores = prior_scores(catalogue.priors, len(catalogue.items.item_ids), context)
        local_scores = np.full(len(playable), -np.inf, np.float32)
    else:
        scores = scorer.scores(user.vector)
        if boost is not None:
            scores = scores + boost
        local_scores = np.array([float(it.embedding @ user.vector) for it in playable], np.float32)
    bias = filters.bias_without(context, user.age_limit, now_s, gone_rows)
    if only is not None:
        bias = np.where(only, bias, np.float32(-np.inf)).astype(np.float32)
    pool = top_k(scores, cfg.candidates, bias=bias)
    # Candidates by position: catalogue rows, then the local items that have a score.
    local = [it for it, ok in zip(playable, np.isfinite(local_scores)) if ok]
    n_pool = len(pool)
    cand_scores = np.concatenate([scores[pool], local_scores[np.isfinite(local_scores)]]).astype(np.float32)
    cand_vecs = np.concatenate([catalogue.item_embeddings(pool).reshape(n_pool, catalogue.embedding_dim),
                                np.array([it.embedding for it in local], np.float32).reshape(len(local), catalogue.embedding_dim)])
    if user.vector is not None and user.negative_ids:
        negative_vecs = user.negative_vecs
        if negative_vecs is None:
            negative_vecs = item_vectors(catalogue, user.negative_ids, {it.item_id: it.embedding for it in user.local})
        cand_scores = cand_scores - negative_penalty(cand_vecs, negative_vecs, cfg.negative_weight)
    t1 = time.perf_counter()

    order = np.argsort(-cand_scores, kind="stable")
    explore = min(cfg.explore_slots, max(k - 1, 0)) if user.vector is not None else 0
    head = order[: max(cfg.candidates, k)]
    # Local items take the tag matrix's last row: no tags.
    tag_rows = np.concatenate([pool, np.full(len(local), len(catalogue.items.item_ids), np.int64)])[head]
    picked = head[mmr(cand_scores[head], cand_vecs[head], k - explore, cfg.mmr_lambda, tag_cap=cfg.tag_cap, tag_ids=filters.tag_ids[tag_rows])]
    chosen = [int(i) for i in picked]
    reasons: dict[int, str] = {}
    if explore:
        taken = set(chosen)
        rest = [int(i) for i in order[k - explore : cfg.explore_depth] if i not in taken]
        rng = np.random.default_rng(exploration_seed(user.profile, context))
        for j in rng.permutation(len(rest))[:explore]:
            chosen.append(rest[j])
            reasons[rest[j]] = REASON_EXPLORE
    if user.vector is None:
        for i in chosen:
            reasons[i] = REASON_POPULAR
    else:
        todo = [i for i in chosen if i not in reasons]
        titles, kinds = user.history_titles, user.history_kinds
        if titles is None or kinds is None:
            titles, kinds = titles_and_kinds(catalogue, user.history_ids, user.local)
        for i, text in zip(todo, explain(np.array(todo), cand_vecs[todo], user.history_vecs, titles, kinds)):
            reasons[i] = text
    if timings is not None:
        timings["scoring_s"], timings["rerank_s"] = t1 - t0, time.perf_counter() - t1
    out = []
    for i in chosen:
        if i < n_pool:
            out.append(catalogue_recommendation(catalogue, int(pool[i]), float(cand_scores[i]), reasons[i]))
        else:
            it = local[i - n_pool]
            out.append(Recommendation(it.item_id, it.title or it.item_id, it.kind or "video", float(cand_scores[i]), reasons[i]))
    return out


def catalogue_recommendation(catalogue: Catalogue, row: int, score: float, reason: str) -> Recommendation:
    """The :class:`Recommendation` of catalogue row ``row``."""
    items = catalogue.items
    return Recommendation(items.item_ids[row], items.titles[row], "audio" if items.is_audio[row] else "video", float(score), reason)


def titles_and_kinds(catalogue: Catalogue, item_ids: Sequence[str], local: Sequence[LocalCandidate]) -> tuple[list[str], list[str]]:
    """Title and kind (``audio``/``video``) of catalogue or local items, as the reasons name them."""
    return [_title(catalogue, i, local) for i in item_ids], [_kind(catalogue, i, local) for i in item_ids]


def _title(catalogue: Catalogue, item_id: str, local: Sequence[LocalCandidate]) -> str:
    if item_id in catalogue.index:
        return catalogue.items.titles[catalogue.index[item_id]]
    return next((it.title or item_id for it in local if it.item_id == item_id), item_id)


def _kind(catalogue: Catalogue, item_id: str, local: Sequence[LocalCandidate]) -> str:
    if item_id in catalogue.index:
        return "audio" if catalogue.items.is_audio[catalogue.index[item_id]] else "video"
    return next((it.kind or "video" for it in local if it.item_id == item_id), "video")
