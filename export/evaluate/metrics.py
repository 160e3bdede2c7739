"""Ranking metrics, the one implementation: the held-out evaluation (one target per user,
:func:`export.evaluate.evaluate`) and the cold-item probe (a set of relevant items per user,
:mod:`export.evaluate.cold`) rank and score with the functions here.

Items are ranked by score descending, ties broken by item index (lower first). With 0-based
ranks ``r`` of a user's relevant items:

* ``hr@k``: 1 if any ``r < k``.
* ``ndcg@k``: ``sum(1 / log2(r + 2) for r < k)`` over the ideal ``sum(1 / log2(i + 2) for i <
  min(n_relevant, k))``; with one target this is ``1 / log2(r + 2)`` when ``r < k``, else 0.
* ``mrr`` (one target): ``1 / (r + 1)`` over the full ranking.

:class:`RankingAccumulator` adds coverage, diversity and novelty for the held-out evaluation.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from edge.contract.vectors import unit_rows
from export.data.split import LeaveLastOut

#: Rank given to padding where rows have fewer relevant items than others (never within k).
PAD_RANK = np.iinfo(np.int64).max


def ranks(scores: np.ndarray, items: np.ndarray) -> np.ndarray:
    """0-based rank of ``items[r, j]`` in row ``r`` of ``scores`` under (score descending, index
    ascending).

    :param scores: ``(B, n_items)`` float, no NaN (-inf ranks last).
    :param items: ``(B, m)`` int column indices.
    :returns: ``(B, m)`` int64.
    """
    items = np.asarray(items, dtype=np.int64)
    if items.shape[1] == 1:
        # One target per row: count the items ranked before it (no sort needed).
        targets = items[:, 0]
        target_scores = scores[np.arange(len(targets)), targets][:, None]
        before = (scores > target_scores) | ((scores == target_scores) & (np.arange(scores.shape[1]) < targets[:, None]))
        return before.sum(axis=1)[:, None].astype(np.int64)
    # Many per row: the position of every column in the stable descending sort.
    order = np.argsort(-scores, axis=1, kind="stable")
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.arange(scores.shape[1])[None, :].repeat(len(scores), 0), axis=1)
    return np.take_along_axis(position, items, axis=1).astype(np.int64)


def relevant_ranks(scores: np.ndarray, relevant: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ranks` of each row's set of relevant columns.

    :param relevant: per row, a non-empty array of column indices.
    :returns: ``(ranks, counts)``: ``(B, max count)`` int64 padded with :data:`PAD_RANK`, and
        ``(B,)`` the number of relevant columns per row.
    """
    counts = np.array([len(r) for r in relevant], dtype=np.int64)
    cols = np.zeros((len(relevant), max(int(counts.max(initial=0)), 1)), np.int64)
    for i, rel in enumerate(relevant):
        cols[i, : len(rel)] = rel
    r = ranks(scores, cols)
    r[np.arange(cols.shape[1])[None, :] >= counts[:, None]] = PAD_RANK
    return r, counts


def hits_at_k(r: np.ndarray, k: int) -> np.ndarray:
    """``(B,)`` bool: some relevant item of the row ranks below ``k``. :param r: ``(B, m)`` ranks."""
    return (r < k).any(axis=1)


def ndcg_at_k(r: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """``(B,)`` float64 NDCG@k of each row.

    :param r: ``(B, m)`` 0-based ranks of the row's relevant items (padding >= k).
    :param n_relevant: ``(B,)`` how many items are relevant, at least 1.
    """
    gains = np.where(r < k, 1.0 / np.log2(np.minimum(r, k) + 2.0), 0.0).sum(axis=1)
    ideal = np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))[np.minimum(n_relevant, k) - 1]
    return gains / ideal


def set_metrics(scores: np.ndarray, relevant: Sequence[np.ndarray], k: int = 10) -> tuple[float, float]:
    """Mean NDCG@k and HR@k over rows that each have a set of relevant columns.

    :param scores: ``(B, n)``. :param relevant: per row, a non-empty array of column indices.
    :returns: ``(ndcg, hr)``.
    """
    r, counts = relevant_ranks(scores, relevant)
    return float(np.mean(ndcg_at_k(r, counts, k))), float(np.mean(hits_at_k(r, k)))


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` per row by (score descending, index ascending).

    :returns: ``(top, valid)``, both ``(rows, k)``: item indices, and whether the score is
        above -inf (masked items fill the list only when fewer than k remain).
    """
    b = scores.shape[0]
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1]  # k-th largest score per row
    above = scores > kth[:, None]
    tied = scores == kth[:, None]
    need = k - above.sum(axis=1)
    # Among items tied with the k-th score, the lowest indices fill the remaining slots.
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= need[:, None]))
    cols = np.nonzero(chosen)[1].reshape(b, k)  # exactly k per row, ascending index
    vals = np.take_along_axis(scores, cols, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1), np.take_along_axis(vals, order, axis=1) > -np.inf


def unit_vectors(vectors: np.ndarray | sp.spmatrix) -> np.ndarray | sp.csr_matrix:
    """L2-normalise rows (float64); zero rows stay zero."""
    if sp.issparse(vectors):
        v = sp.csr_matrix(vectors, dtype=np.float64)
        norms = np.sqrt(np.asarray(v.multiply(v).sum(axis=1)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return (sp.diags(inv) @ v).tocsr()
    if np.ndim(vectors) != 2:
        raise ValueError(f"item_vectors must be 2-D (n_items, dim), got shape {np.shape(vectors)}")
    return unit_rows(vectors, np.float64)


class RankingAccumulator:
    """Running sums of the held-out metrics (one target per user) for one model."""

    def __init__(self, split: LeaveLastOut, k: int, vectors: np.ndarray | sp.csr_matrix) -> None:
        self.k = k
        self.n_items = split.n_items
        counts = np.asarray(split.train.sum(axis=0)).ravel()
        n_train = max(float(counts.sum()), 1.0)
        self.self_info = -np.log2(np.maximum(counts, 1.0) / n_train)
        self.vectors = vectors
        if sp.issparse(vectors):
            self.sq_norms = np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel()
        else:
            self.sq_norms = np.einsum("ij,ij->i", vectors, vectors)
        self.seen = np.zeros(split.n_items, dtype=bool)
        self.n = 0
        self.hits = self.ndcg = self.rr = self.novelty = 0.0
        self.div_sum = 0.0
        self.div_n = 0
        self._per_user: list[np.ndarray] = []

    def add(self, scores: np.ndarray, targets: np.ndarray) -> None:
        """Add a batch: ``scores`` ``(B, n_items)`` with training items at -inf, ``targets`` ``(B,)``."""
        k = self.k
        r = ranks(scores, targets[:, None])
        self.n += len(targets)
        self.hits += float(hits_at_k(r, k).sum())
        user_ndcg = ndcg_at_k(r, np.ones(len(targets), np.int64), k)
        self._per_user.append(np.asarray(user_ndcg, np.float64))
        self.ndcg += float(user_ndcg.sum())
        self.rr += float((1.0 / (r[:, 0] + 1.0)).sum())

        top, valid = top_k(scores, min(k, self.n_items))
        m = valid.sum(axis=1)
        self.seen[top[valid]] = True
        info = np.where(valid, self.self_info[top], 0.0).sum(axis=1)
        self.novelty += float(np.divide(info, m, out=np.zeros(len(m)), where=m > 0).sum())

        # Sum over ordered pairs i != j of v_i . v_j = |sum_i v_i|^2 - sum_i |v_i|^2.
        rows = np.repeat(np.arange(len(top)), top.shape[1])[valid.ravel()]
        picks = sp.csr_matrix((np.ones(len(rows)), (rows, top[valid])), shape=(len(top), self.n_items))
        summed = picks @ self.vectors
        if sp.issparse(summed):
            sq_sum = np.asarray(summed.multiply(summed).sum(axis=1)).ravel()
        else:
            sq_sum = np.einsum("ij,ij->i", summed, summed)
        pair_sum = sq_sum - np.where(valid, self.sq_norms[top], 0.0).sum(axis=1)
        ok = m >= 2
        self.div_sum += float((1.0 - pair_sum[ok] / (m[ok] * (m[ok] - 1.0))).sum())
        self.div_n += int(ok.sum())

    def per_user_ndcg(self) -> np.ndarray:
        """NDCG@k of every user added so far, in the order added (for paired statistics)."""
        return np.concatenate(self._per_user) if self._per_user else np.zeros(0)

    def result(self) -> dict:
        """The metrics so far, keyed as :func:`export.evaluate.evaluate` reports them."""
        k = self.k
        return {
            f"hr@{k}": self.hits / self.n,
            f"ndcg@{k}": self.ndcg / self.n,
            "mrr": self.rr / self.n,
            f"coverage@{k}": float(self.seen.sum()) / self.n_items,
            f"diversity@{k}": self.div_sum / self.div_n if self.div_n else math.nan,
            f"novelty@{k}": self.novelty / self.n,
        }


