"""Offline evaluation: ranking metrics on a leave-last-out split, baselines in the same run.

Every model is a :class:`Scorer`: ``fit(split)`` once, then ``score(users)`` returns one row of
scores per user over the whole catalogue. :func:`evaluate` ranks *all* items except the user's
training positives (masked to -inf), ties broken by item index (lower first), and reports at
``k`` (10 by default):

* ``hr@k``: share of users whose target is in their top k.
* ``ndcg@k``: mean of ``1 / log2(rank + 2)`` when the 0-based rank is below k, else 0.
* ``mrr``: mean of ``1 / (rank + 1)`` over the full ranking (not truncated at k).
* ``coverage@k``: distinct items across all top-k lists / catalogue size.
* ``diversity@k``: mean over users of ``1 - mean pairwise cosine`` of their top-k items'
  vectors (content vectors if given, else the items' L2-normalised training columns; an item
  with a zero vector has cosine 0 with every other).
* ``novelty@k``: mean over users and top-k items of ``-log2 p(i)``, ``p(i) = train count of i /
  n_train``, where a count of 0 is taken as 1.

Usage::

    split = leave_last_out(load_movielens("ml-100k"))
    report = evaluate(default_baselines(), split)
    print(report.format_table())
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from edge.contract.vectors import unit_rows
from edge.errors import DataError
from export.data.split import PROTOCOL, LeaveLastOut

__all__ = [
    "Scorer",
    "PopularityScorer",
    "ItemKNNScorer",
    "EASEScorer",
    "EvalReport",
    "evaluate",
    "default_baselines",
]

METRICS = ("hr", "ndcg", "mrr", "coverage", "diversity", "novelty")


class Scorer(Protocol):
    """A model under evaluation.

    ``fit`` learns from ``split.train`` (and may use the sequences); ``score`` returns a
    ``(len(users), n_items)`` float32 array, higher is better, for user indices ``users``.
    Returning -inf for an item removes it from that user's ranking.
    """

    name: str

    def fit(self, split: LeaveLastOut) -> None: ...

    def score(self, users: np.ndarray) -> np.ndarray: ...


class PopularityScorer:
    """Scores every item by its number of training users (the same list for everyone)."""

    name = "popularity"

    def __init__(self) -> None:
        self._counts: np.ndarray | None = None

    def fit(self, split: LeaveLastOut) -> None:
        """Count each item's training users. :param split: the split to learn from."""
        self._counts = np.asarray(split.train.sum(axis=0), dtype=np.float32).ravel()

    def score(self, users: np.ndarray) -> np.ndarray:
        """:returns: ``(len(users), n_items)`` float32 training counts."""
        if self._counts is None:
            raise RuntimeError("PopularityScorer.score called before fit")
        return np.tile(self._counts, (len(users), 1))


class ItemKNNScorer:
    """Item-item cosine similarity on the binary training matrix, top-``k_neighbours`` per item.

    ``score(u)[j] = sum over the user's training items i of sim(i, j)``, where ``sim(i, .)``
    keeps only item i's ``k_neighbours`` most similar items.
    """

    def __init__(self, k_neighbours: int = 100, chunk_items: int = 1024) -> None:
        """:param k_neighbours: neighbours kept per item. :param chunk_items: rows densified at
        a time while pruning (memory: ``chunk_items * n_items * 4`` bytes)."""
        if k_neighbours < 1:
            raise ValueError(f"k_neighbours must be >= 1, got {k_neighbours}")
        self.name = "item-knn"
        self.k_neighbours = k_neighbours
        self.chunk_items = chunk_items
        self._train: sp.csr_matrix | None = None
        self._sim: sp.csr_matrix | None = None

    def fit(self, split: LeaveLastOut) -> None:
        """Compute the pruned cosine similarity matrix. :param split: the split to learn from."""
        x = split.train.astype(np.float32).tocsr()
        n = x.shape[1]
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())  # binary: sqrt of item counts
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0).astype(np.float32)
        cooc = (x.T @ x).tocsr()
        cos = (sp.diags(inv) @ cooc @ sp.diags(inv)).tocsr()
        k = min(self.k_neighbours, max(n - 1, 1))
        rows, cols, vals = [], [], []
        for start in range(0, n, self.chunk_items):
            dense = cos[start : start + self.chunk_items].toarray()
            dense[np.arange(len(dense)), np.arange(start, start + len(dense))] = 0.0  # no self-similarity
            top = np.argpartition(-dense, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(dense), 1))
            v = np.take_along_axis(dense, top, axis=1)
            r = np.repeat(np.arange(start, start + len(dense)), top.shape[1])
            keep = v.ravel() > 0
            rows.append(r[keep])
            cols.append(top.ravel()[keep])
            vals.append(v.ravel()[keep])
        self._sim = sp.csr_matrix(
            (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        )
        self._train = x

    def score(self, users: np.ndarray) -> np.ndarray:
        """:returns: ``(len(users), n_items)`` float32 summed similarities."""
        if self._sim is None or self._train is None:
            raise RuntimeError("ItemKNNScorer.score called before fit")
        return np.asarray((self._train[users] @ self._sim).toarray(), dtype=np.float32)


class EASEScorer:
    """EASE (Steck 2019): closed-form linear item-item model with an L2 penalty.

    ``B = I - P diagMat(1 / diag(P))`` with ``P = (X^T X + l2 I)^-1`` and a zero diagonal;
    ``score(u) = x_u B``. Needs a dense ``n_items x n_items`` float64 matrix (8 n^2 bytes, about
    twice that at peak), so catalogues above ``max_items`` are refused.
    """

    def __init__(self, l2: float = 250.0, max_items: int = 20_000) -> None:
        """:param l2: L2 penalty lambda (> 0). :param max_items: largest catalogue to accept."""
        if not l2 > 0:
            raise ValueError(f"l2 must be > 0, got {l2}")
        self.name = "ease"
        self.l2 = float(l2)
        self.max_items = max_items
        self._train: sp.csr_matrix | None = None
        self._b: np.ndarray | None = None

    def fit(self, split: LeaveLastOut) -> None:
        """Solve for the item-item weights.

        :param split: the split to learn from.
        :raises ValueError: if ``split.n_items > max_items``.
        """
        n = split.n_items
        if n > self.max_items:
            raise ValueError(
                f"EASE needs a dense {n} x {n} matrix (about {16 * n * n / 1e9:.1f} GB at peak) and the "
                f"catalogue has {n} items, above max_items={self.max_items}; pass a larger max_items "
                f"if the memory is there, or use ItemKNNScorer"
            )
        x = split.train.astype(np.float64).tocsr()
        gram = (x.T @ x).toarray()
        gram[np.diag_indices(n)] += self.l2
        p = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
        p /= -np.diag(p)[None, :]
        np.fill_diagonal(p, 0.0)
        self._b = p.astype(np.float32)
        self._train = split.train.astype(np.float32).tocsr()

    def score(self, users: np.ndarray) -> np.ndarray:
        """:returns: ``(len(users), n_items)`` float32 scores ``x_u B``."""
        if self._b is None or self._train is None:
            raise RuntimeError("EASEScorer.score called before fit")
        return np.asarray(self._train[users] @ self._b, dtype=np.float32)


class ALSScorer:
    """implicit's ALS (64 factors by default) as a peer baseline; needs the ``dev`` extra.

    :raises ImportError: from ``fit`` when implicit is not installed.
    """

    name = "als (implicit)"

    def __init__(self, factors: int = 64, iterations: int = 15, seed: int = 0) -> None:
        self.factors, self.iterations, self.seed = factors, iterations, seed

    def fit(self, split: LeaveLastOut) -> None:
        """Factorise the binary training matrix."""
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        # implicit parallelises itself and asks for a single-threaded BLAS underneath; it checks
        # the BLAS configuration when the model is constructed.
        with threadpool_limits(1, "blas"):
            self.model = AlternatingLeastSquares(factors=self.factors, iterations=self.iterations, random_state=self.seed)
            self.model.fit(split.train.tocsr(), show_progress=False)

    def score(self, users: np.ndarray) -> np.ndarray:
        """:returns: user-factor by item-factor dot products."""
        return (self.model.user_factors[users] @ self.model.item_factors.T).astype(np.float32)


def default_baselines() -> list[Scorer]:
    """The baselines every model is compared with: popularity, item-kNN (k=100), EASE (l2=250)."""
    return [PopularityScorer(), ItemKNNScorer(), EASEScorer()]


@dataclass
class EvalReport:
    """Results of one :func:`evaluate` run: one row per model plus the dataset it ran on."""

    rows: list[dict]
    dataset: str
    n_users: int
    n_items: int
    n_train: int
    n_test_users: int
    k: int
    protocol: str = PROTOCOL
    columns: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """:returns: a JSON-serialisable dict: dataset info, protocol, k and the rows."""
        return {
            "dataset": self.dataset,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_train": self.n_train,
            "n_test_users": self.n_test_users,
            "k": self.k,
            "protocol": self.protocol,
            "rows": [dict(r) for r in self.rows],
        }

    def format_table(self) -> str:
        """:returns: an aligned plain-text table, one row per model."""
        if not self.rows:
            return "(no models evaluated)"
        cols = self.columns or list(self.rows[0])

        def fmt(col: str, v: object) -> str:
            if isinstance(v, float):
                return f"{v:.2f}" if col.startswith(("novelty", "fit_s", "score_s")) else f"{v:.4f}"
            return str(v)

        cells = [[fmt(c, r[c]) for c in cols] for r in self.rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cols, widths)))]
        lines.append("  ".join("-" * w for w in widths))
        for row in cells:
            lines.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))))
        return "\n".join(lines)


def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
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


def _ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each row's target under (score descending, index ascending)."""
    target_scores = scores[np.arange(len(targets)), targets][:, None]
    before = (scores > target_scores) | ((scores == target_scores) & (np.arange(scores.shape[1]) < targets[:, None]))
    return before.sum(axis=1)


def _unit_rows(vectors: np.ndarray | sp.spmatrix) -> np.ndarray | sp.csr_matrix:
    """L2-normalise rows (float64); zero rows stay zero."""
    if sp.issparse(vectors):
        v = sp.csr_matrix(vectors, dtype=np.float64)
        norms = np.sqrt(np.asarray(v.multiply(v).sum(axis=1)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return (sp.diags(inv) @ v).tocsr()
    if np.ndim(vectors) != 2:
        raise ValueError(f"item_vectors must be 2-D (n_items, dim), got shape {np.shape(vectors)}")
    return unit_rows(vectors, np.float64)


class _Accumulator:
    """Running sums of the per-user metrics for one model."""

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

    def add(self, scores: np.ndarray, targets: np.ndarray) -> None:
        k = self.k
        ranks = _ranks(scores, targets)
        hit = ranks < k
        self.n += len(targets)
        self.hits += float(hit.sum())
        self.ndcg += float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).sum())
        self.rr += float((1.0 / (ranks + 1.0)).sum())

        top, valid = _top_k(scores, min(k, self.n_items))
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

    def result(self) -> dict:
        k = self.k
        return {
            f"hr@{k}": self.hits / self.n,
            f"ndcg@{k}": self.ndcg / self.n,
            "mrr": self.rr / self.n,
            f"coverage@{k}": float(self.seen.sum()) / self.n_items,
            f"diversity@{k}": self.div_sum / self.div_n if self.div_n else math.nan,
            f"novelty@{k}": self.novelty / self.n,
        }


def evaluate(
    scorers: Sequence[Scorer],
    split: LeaveLastOut,
    k: int = 10,
    item_vectors: np.ndarray | sp.spmatrix | None = None,
    progress: Callable[[str], None] | None = None,
    batch_size: int = 256,
) -> EvalReport:
    """Fit and score every model on ``split`` and compute the ranking metrics at ``k``.

    :param scorers: the models, fitted here in order.
    :param split: the leave-last-out split; only ``split.test_users`` are scored.
    :param k: list length for HR/NDCG/coverage/diversity/novelty (MRR uses the full ranking);
        lists are cut to the catalogue size when k exceeds it.
    :param item_vectors: ``(n_items, dim)`` dense or sparse item vectors for diversity (e.g.
        content features); None uses the training matrix's item columns.
    :param progress: called with one line of text per stage; the library never prints.
    :param batch_size: users scored at a time; memory is about ``batch_size * n_items * 8``
        bytes several times over.
    :returns: an :class:`EvalReport` with one row per scorer: model, the metrics, ``fit_s`` and
        ``score_s`` (seconds spent in ``fit`` and in ``score``), ``n_users`` (users evaluated).
    :raises DataError: if the split has no test users.
    :raises ValueError: on a bad ``k``/``item_vectors``, or a scorer returning the wrong shape
        or NaN.
    """
    n_items = split.n_items
    if len(split.test_users) == 0:
        raise DataError(f"{split.name}: no user has 2 or more distinct positive items, so there is nothing to evaluate")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    raw_vectors = split.train.T.tocsr() if item_vectors is None else item_vectors
    if raw_vectors.shape[0] != n_items:
        raise ValueError(f"item_vectors has {raw_vectors.shape[0]} rows, expected one per item ({n_items})")
    vectors = _unit_rows(raw_vectors)
    train = split.train.tocsr()
    say = progress or (lambda _msg: None)

    rows: list[dict] = []
    for scorer in scorers:
        name = getattr(scorer, "name", type(scorer).__name__)
        say(f"{name}: fitting on {split.n_train} training interactions")
        t0 = time.perf_counter()
        scorer.fit(split)
        fit_s = time.perf_counter() - t0
        acc = _Accumulator(split, k, vectors)
        score_s = 0.0
        for start in range(0, len(split.test_users), batch_size):
            users = split.test_users[start : start + batch_size]
            t0 = time.perf_counter()
            raw = scorer.score(users)
            score_s += time.perf_counter() - t0
            scores = np.array(raw, dtype=np.float64)  # a copy: masking must not touch the model's array
            if scores.shape != (len(users), n_items):
                raise ValueError(f"{name}: score() returned shape {scores.shape}, expected {(len(users), n_items)}")
            if np.isnan(scores).any():
                raise ValueError(f"{name}: score() returned NaN for some items")
            sub = train[users]
            scores[np.repeat(np.arange(len(users)), np.diff(sub.indptr)), sub.indices] = -np.inf
            acc.add(scores, split.test_items[start : start + batch_size])
        row = {"model": name, **acc.result(), "fit_s": fit_s, "score_s": score_s, "n_users": acc.n}
        say(f"{name}: fit {fit_s:.2f} s, score {score_s:.2f} s, ndcg@{k} {row[f'ndcg@{k}']:.4f}")
        rows.append(row)

    return EvalReport(
        rows=rows,
        dataset=split.name,
        n_users=split.n_users,
        n_items=n_items,
        n_train=split.n_train,
        n_test_users=len(split.test_users),
        k=k,
        columns=["model", *(f"{m}@{k}" if m != "mrr" else m for m in METRICS), "fit_s", "score_s", "n_users"],
    )
