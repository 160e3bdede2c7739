"""The baselines every model is compared with in the same run: popularity, item-kNN, EASE, and
implicit's ALS when the ``dev`` extra is installed. Each is a :class:`~export.evaluate.report.Scorer`.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from export.data.split import LeaveLastOut
from export.evaluate.report import Scorer


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


def build_baselines() -> list[Scorer]:
    """:func:`default_baselines`, plus ALS when implicit (the ``dev`` extra) is installed: the
    peers a build's quality section reports."""
    scorers = default_baselines()
    try:
        import implicit  # noqa: F401  (dev extra; the build runs without it)

        scorers.append(ALSScorer())
    except ImportError:
        pass
    return scorers
