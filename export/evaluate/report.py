"""Held-out evaluation: ranking metrics on a leave-last-out split, baselines in the same run.

Every model is a :class:`Scorer`: ``fit(split)`` once, then ``score(users)`` returns one row of
scores per user over the whole catalogue. :func:`evaluate` ranks *all* items except the user's
training positives (masked to -inf), ties broken by item index (lower first), and reports at
``k`` (10 by default), computed by :mod:`export.evaluate.metrics`:

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

import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np
import scipy.sparse as sp

from edge.errors import DataError
from export.data.split import PROTOCOL, LeaveLastOut
from export.evaluate.metrics import RankingAccumulator, unit_vectors

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
    #: NDCG@k of each test user (``split.test_users`` order) per model name, for paired statistics.
    per_user: dict[str, np.ndarray] = field(default_factory=dict)
    target: str = "test"

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
            "target": self.target,
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
    vectors = unit_vectors(raw_vectors)
    train = split.train.tocsr()
    say = progress or (lambda _msg: None)

    rows: list[dict] = []
    per_user: dict[str, np.ndarray] = {}
    for scorer in scorers:
        name = getattr(scorer, "name", type(scorer).__name__)
        say(f"{name}: fitting on {split.n_train} training interactions")
        t0 = time.perf_counter()
        scorer.fit(split)
        fit_s = time.perf_counter() - t0
        acc = RankingAccumulator(split, k, vectors)
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
        per_user[name] = acc.per_user_ndcg()

    return EvalReport(
        rows=rows,
        dataset=split.name,
        n_users=split.n_users,
        n_items=n_items,
        n_train=split.n_train,
        n_test_users=len(split.test_users),
        k=k,
        columns=["model", *(f"{m}@{k}" if m != "mrr" else m for m in METRICS), "fit_s", "score_s", "n_users"],
        per_user=per_user,
        target=split.target,
    )
