"""Re-ranking the candidate list: "not this" penalties and maximal marginal relevance with a
cap per tag."""

from __future__ import annotations

import numpy as np

from edge.contract.vectors import unit_rows
from edge.ranking.filters import tag_id_matrix


def negative_penalty(cand_vecs: np.ndarray, negative_vecs: np.ndarray, weight: float) -> np.ndarray:
    """``weight`` times each candidate's highest positive cosine to a skipped/disliked item:
    "not this" also lowers what is like it."""
    if len(negative_vecs) == 0 or weight == 0 or len(cand_vecs) == 0:
        return np.zeros(len(cand_vecs), np.float32)
    sims = unit_rows(cand_vecs) @ unit_rows(negative_vecs).T
    return (weight * np.clip(sims.max(axis=1), 0.0, None)).astype(np.float32)


def mmr(scores: np.ndarray, vecs: np.ndarray, k: int, lam: float, tags: list[tuple[str, ...]] | None = None, tag_cap: int = 0,
        tag_ids: np.ndarray | None = None) -> np.ndarray:
    """Maximal marginal relevance over candidates (positions into ``scores``/``vecs``).

    Greedy: each step takes the candidate maximising ``lam * score - (1 - lam) * max cosine to
    the items already taken``; a candidate whose tag already appears ``tag_cap`` times is
    skipped while others remain. Scores are min-max scaled first so ``lam`` means the same for
    any model.

    :param tag_ids: the tags as an id matrix (see :func:`~edge.ranking.filters.tag_id_matrix`),
        instead of ``tags``.

    :returns: up to ``k`` positions, in list order.
    """
    n = len(scores)
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, np.int64)
    s = np.asarray(scores, np.float64)
    span = s.max() - s.min()
    rel = (s - s.min()) / span if span > 0 else np.zeros(n)
    u = unit_rows(vecs)
    max_sim = np.full(n, -np.inf)
    taken = np.zeros(n, bool)
    # Tags as a padded id matrix: the cap check is one vectorised lookup per step.
    use_cap = (tags is not None or tag_ids is not None) and tag_cap > 0
    if use_cap:
        if tag_ids is None:
            tag_ids = tag_id_matrix(tags)  # type: ignore[arg-type]
        vocab_size = int(tag_ids.max(initial=-1)) + 1
        counts = np.zeros(vocab_size + 1, np.int64)  # the last slot counts padding, never capped
        tag_ids = np.where(tag_ids < 0, vocab_size, tag_ids)
    order: list[int] = []
    for _ in range(k):
        penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
        value = lam * rel - (1.0 - lam) * penalty
        value[taken] = -np.inf
        if use_cap:
            capped = (counts[tag_ids] >= tag_cap).any(axis=1)
            if (~capped & ~taken).any():
                value[capped] = -np.inf
        j = int(np.argmax(value))
        if not np.isfinite(value[j]):
            break
        order.append(j)
        taken[j] = True
        if use_cap:
            np.add.at(counts, tag_ids[j], 1)
            counts[-1] = 0
        max_sim = np.maximum(max_sim, u @ u[j])
    return np.array(order, np.int64)
