"""The one entry point of ranking: candidates from the catalogue and local items, filters,
"not this" penalties, MMR with a tag cap, an exploration slot and a reason for each item."""

from __future__ import annotations

import hashlib
import time
from typing import Protocol

import numpy as np

from edge.context import Context
from edge.ranking.catalogue import Catalogue, item_vectors
from edge.ranking.config import RankingConfig, Recommendation
from edge.ranking.diversity import mmr, negative_penalty
from edge.ranking.explain import REASON_EXPLORE, REASON_POPULAR, explain
from edge.ranking.filters import allowed_rows, excluded_rows, playable_local
from edge.ranking.priors import prior_scores
from edge.ranking.scoring import top_k
from edge.ranking.user import UserState


class Scorer(Protocol):
    """Scores a user vector against every catalogue row (see :class:`~edge.ranking.scoring.Int8Scorer`)."""

    def scores(self, user: np.ndarray) -> np.ndarray: ...


def exploration_seed(profile: str, context: Context) -> int:
    """Seed of the exploration pick: fixed per profile, weekday and hour, so the list stays
    stable while the person browses."""
    return int.from_bytes(hashlib.sha256(f"{profile}\x1f{context.weekday}\x1f{context.hour}".encode()).digest()[:8], "little")


def rank(catalogue: Catalogue, scorer: Scorer, user: UserState, context: Context, k: int,
         config: RankingConfig | None = None, now_s: float | None = None, timings: dict[str, float] | None = None) -> list[Recommendation]:
    """Top-``k`` catalogue and local items for ``user``, best first, each with a reason.

    Left out: ``user.gone``; rows above ``user.age_limit`` or outside their availability window
    at ``now_s`` (default: ``context.timestamp``, else now); on a speaker, everything that is
    not audio. With no user vector the bundle's priors for the device and hour rank the
    catalogue (local items then have no score and are left out).

    :param timings: when given, ``scoring_s`` and ``rerank_s`` are written into it.
    :returns: at most ``k`` recommendations.
    """
    cfg = config or RankingConfig()
    t0 = time.perf_counter()
    if now_s is None:
        now_s = context.timestamp if context.timestamp is not None else time.time()
    allowed = allowed_rows(catalogue, context, user.age_limit, now_s)
    everything = {it.item_id: it.embedding for it in user.local}
    playable = [it for it, ok in zip(user.local, playable_local([it.kind for it in user.local], context)) if ok]
    local = {it.item_id: it.embedding for it in playable}
    exclude = excluded_rows(catalogue, user.gone, allowed)
    local_ids = [i for i in local if i not in user.gone]
    local_vecs = np.stack([local[i] for i in local_ids]) if local_ids else np.zeros((0, catalogue.embedding_dim), np.float32)

    if user.vector is None:
        scores = prior_scores(catalogue.priors, len(catalogue.items.item_ids), context)
        local_scores = np.full(len(local_ids), -np.inf, np.float32)
    else:
        scores = scorer.scores(user.vector)
        local_scores = local_vecs @ user.vector
    pool = top_k(scores, cfg.candidates, exclude)
    # Candidates: catalogue rows then local items, one index space for the re-ranker.
    ids = catalogue.items.item_ids
    cand_ids = [ids[r] for r in pool] + local_ids
    cand_scores = np.concatenate([scores[pool], local_scores]).astype(np.float32)
    keep = np.isfinite(cand_scores)
    cand_ids = [c for c, ok in zip(cand_ids, keep) if ok]
    cand_scores = cand_scores[keep]
    cand_vecs = item_vectors(catalogue, cand_ids, local)
    if user.vector is not None and user.negative_ids:
        cand_scores = cand_scores - negative_penalty(cand_vecs, item_vectors(catalogue, user.negative_ids, everything), cfg.negative_weight)
    t1 = time.perf_counter()

    order = np.argsort(-cand_scores, kind="stable")
    explore = min(cfg.explore_slots, max(k - 1, 0)) if user.vector is not None else 0
    head = order[: max(cfg.candidates, k)]
    tags = [catalogue.items.tags[catalogue.index[c]] if c in catalogue.index else () for c in cand_ids]
    picked = head[mmr(cand_scores[head], cand_vecs[head], k - explore, cfg.mmr_lambda, [tags[i] for i in head], cfg.tag_cap)]
    chosen = list(picked)
    reasons: dict[int, str] = {}
    if explore:
        taken = set(chosen)
        rest = [i for i in order[k - explore : cfg.explore_depth] if i not in taken]
        rng = np.random.default_rng(exploration_seed(user.profile, context))
        for j in rng.permutation(len(rest))[:explore]:
            chosen.append(rest[j])
            reasons[rest[j]] = REASON_EXPLORE
    if user.vector is None:
        for i in chosen:
            reasons[i] = REASON_POPULAR
    else:
        todo = [i for i in chosen if i not in reasons]
        titles = [_title(catalogue, h, user.local) for h in user.history_ids]
        kinds = [_kind(catalogue, h, user.local) for h in user.history_ids]
        for i, text in zip(todo, explain(np.array(todo), cand_vecs[todo], user.history_vecs, titles, kinds)):
            reasons[i] = text
    if timings is not None:
        timings["scoring_s"], timings["rerank_s"] = t1 - t0, time.perf_counter() - t1
    return [Recommendation(cand_ids[i], _title(catalogue, cand_ids[i], playable), _kind(catalogue, cand_ids[i], playable),
                           float(cand_scores[i]), reasons[i]) for i in chosen]


def _title(catalogue: Catalogue, item_id: str, local: list) -> str:
    if item_id in catalogue.index:
        return catalogue.items.titles[catalogue.index[item_id]]
    return next((it.title or item_id for it in local if it.item_id == item_id), item_id)


def _kind(catalogue: Catalogue, item_id: str, local: list) -> str:
    if item_id in catalogue.index:
        return "audio" if catalogue.items.is_audio[catalogue.index[item_id]] else "video"
    return next((it.kind or "video" for it in local if it.item_id == item_id), "video")
