"""The baselines every model is compared with in the same run: popularity, item-kNN, EASE, a
first-order Markov chain (order-aware), implicit's confidence-weighted ALS when the ``dev`` extra is
installed, and SASRec (:mod:`export.evaluate.sasrec`, torch) on request. Each is a
:class:`~export.evaluate.report.Scorer`.
"""

from __future__ import annotations

import numpy as np
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


def _spd_inverse(a: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix by Cholesky, in torch.

    Not ``scipy.linalg.inv``: on an 18,357-item catalogue (amazon-sports) its LU inverse
    segfaulted inside scipy's bundled OpenBLAS in a process that also holds torch; Cholesky is
    also half the work and needs no pivoting for a Gram matrix plus a ridge.
    """
    import torch

    t = torch.from_numpy(a)
    factor, info = torch.linalg.cholesky_ex(t)
    if int(info):
        raise ValueError(f"the Gram matrix plus l2 is not positive definite (Cholesky failed at column {int(info)}); raise l2")
    return torch.cholesky_inverse(factor).numpy()


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
        p = _spd_inverse(gram)
        p /= -np.diag(p)[None, :]
        np.fill_diagonal(p, 0.0)
        self._b = p.astype(np.float32)
        self._train = split.train.astype(np.float32).tocsr()

    def score(self, users: np.ndarray) -> np.ndarray:
        """:returns: ``(len(users), n_items)`` float32 scores ``x_u B``."""
        if self._b is None or self._train is None:
            raise RuntimeError("EASEScorer.score called before fit")
        return np.asarray(self._train[users] @ self._b, dtype=np.float32)


class MarkovScorer:
    """First-order Markov chain on each user's ordered training sequence (an order-aware baseline).

    Transitions are counted over consecutive training events ``(s[t], s[t+1])`` of each user's
    ``split.train_sequences[u]`` (repeats kept, time order, same-second events in log order);
    self-transitions ``i -> i`` are skipped, so a run of repeats ``a a b`` counts once as
    ``a -> b`` (the same as counting consecutive *distinct* items). ``P(j | i)`` is the count of
    ``i -> j`` over the count of all transitions out of ``i``. The score of user ``u`` is

        ``score(u)[j] = P(j | last(u)) + pop_weight * pop(j) / max(pop)``

    with ``last(u)`` the user's last training item and ``pop(j)`` item j's number of training
    users. The popularity term (at most ``pop_weight``, 1e-3 by default, below any transition
    probability out of an item with fewer than 1,000 transitions) orders the items the chain
    has never seen after ``last(u)``, and every item for a user whose last item has no
    transitions out of it.
    """

    name = "markov"

    def __init__(self, pop_weight: float = 1e-3) -> None:
        """:param pop_weight: weight of the max-normalised popularity add-on (>= 0)."""
        if not pop_weight >= 0:
            raise ValueError(f"pop_weight must be >= 0, got {pop_weight}")
        self.pop_weight = float(pop_weight)
        self._transitions: sp.csr_matrix | None = None
        self._pop: np.ndarray | None = None
        self._last: np.ndarray | None = None

    def fit(self, split: LeaveLastOut) -> None:
        """Count the transitions and each user's last item. :param split: the split to learn from."""
        n = split.n_items
        lengths = np.array([len(s) for s in split.train_sequences], dtype=np.int64)
        seq = np.concatenate(split.train_sequences).astype(np.int64) if lengths.sum() else np.zeros(0, np.int64)
        owner = np.repeat(np.arange(len(lengths)), lengths)
        src, dst = seq[:-1], seq[1:]
        keep = (owner[:-1] == owner[1:]) & (src != dst)
        counts = sp.csr_matrix((np.ones(int(keep.sum()), np.float64), (src[keep], dst[keep])), shape=(n, n))
        counts.sum_duplicates()
        out = np.asarray(counts.sum(axis=1)).ravel()
        inv = np.divide(1.0, out, out=np.zeros_like(out), where=out > 0)
        self._transitions = (sp.diags(inv) @ counts).astype(np.float32).tocsr()
        pop = np.asarray(split.train.sum(axis=0), dtype=np.float64).ravel()
        self._pop = (self.pop_weight * pop / max(pop.max(), 1.0)).astype(np.float32) if n else np.zeros(0, np.float32)
        ends = np.cumsum(lengths) - 1
        self._last = np.where(lengths > 0, seq[np.maximum(ends, 0)] if len(seq) else -1, -1)

    def score(self, users: np.ndarray) -> np.ndarray:
        """:returns: ``(len(users), n_items)`` float32 transition probabilities from each user's
        last training item plus the popularity add-on (the add-on only for a user without one)."""
        if self._transitions is None or self._pop is None or self._last is None:
            raise RuntimeError("MarkovScorer.score called before fit")
        last = self._last[np.asarray(users, dtype=np.int64)]
        out = np.tile(self._pop, (len(last), 1))
        has = last >= 0
        if has.any():
            out[has] += self._transitions[last[has]].toarray()
        return out


class ALSScorer:
    """implicit's ALS (Hu, Koren & Volinsky 2008) as a peer baseline; needs the ``dev`` extra.

    The binary training matrix ``X`` is turned into confidences ``c_ui = 1 + alpha * x_ui``
    (1 on unobserved pairs, ``1 + alpha`` on observed ones) and handed to implicit, which reads
    a stored value as the confidence of a preference of 1 (its own ``alpha`` stays at 1).
    ``alpha=0, regularization=0.01, factors=64`` is the unweighted factorisation this class ran
    before (every pair weight 1, implicit's defaults). The defaults (128 factors, alpha 10,
    lambda 10) were chosen on the *validation* targets of ML-100K and amazon-sports: NDCG@10
    0.079 and 0.030 there, against 0.075 and 0.015 for the old setting (amazon: 6,000 sampled
    validation users); tune them on the validation target of the data at hand.

    :raises ImportError: from ``fit`` when implicit is not installed.
    """

    def __init__(
        self,
        factors: int = 128,
        iterations: int = 15,
        alpha: float = 10.0,
        regularization: float = 10.0,
        seed: int = 0,
        threads: int = 0,
    ) -> None:
        """:param factors: latent dimensions. :param iterations: ALS sweeps. :param alpha:
        confidence slope (>= 0). :param regularization: L2 penalty lambda (>= 0). :param seed:
        factor initialisation seed. :param threads: implicit's threads (0: all cores)."""
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if not regularization >= 0:
            raise ValueError(f"regularization must be >= 0, got {regularization}")
        self.factors, self.iterations, self.seed, self.threads = factors, iterations, seed, threads
        self.alpha, self.regularization = float(alpha), float(regularization)
        self.name = f"als (implicit, alpha={self.alpha:g})"
        self.model = None

    def fit(self, split: LeaveLastOut) -> None:
        """Factorise the confidence-weighted training matrix."""
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        confidence = split.train.astype(np.float32).tocsr(copy=True)
        confidence.data = 1.0 + self.alpha * confidence.data
        # implicit parallelises itself and asks for a single-threaded BLAS underneath; it checks
        # the BLAS configuration when the model is constructed.
        with threadpool_limits(1, "blas"):
            self.model = AlternatingLeastSquares(
                factors=self.factors, regularization=self.regularization, iterations=self.iterations,
                random_state=self.seed, num_threads=self.threads,
            )
            self.model.fit(confidence, show_progress=False)

    def score(self, users: np.ndarray) -> np.ndarray:
        """:returns: user-factor by item-factor dot products."""
        if self.model is None:
            raise RuntimeError("ALSScorer.score called before fit")
        return (self.model.user_factors[users] @ self.model.item_factors.T).astype(np.float32)


def default_baselines() -> list[Scorer]:
    """The baselines every model is compared with: popularity, item-kNN (k=100), EASE (l2=250)."""
    return [PopularityScorer(), ItemKNNScorer(), EASEScorer()]


def sasrec_baseline(steps: int = 12_000, seed: int = 0, threads: int = 1) -> Scorer:
    """A :class:`~export.evaluate.sasrec.SASRecScorer` with its default settings (imports torch).

    :param steps: training steps (12,000 take about 9 minutes on one core for ML-100K).
    :param seed: numpy and torch seed. :param threads: torch threads (0: torch's setting)."""
    from export.evaluate.sasrec import SASRecScorer

    return SASRecScorer(steps=steps, seed=seed, threads=threads)


def build_baselines(sasrec_steps: int = 0, seed: int = 0, threads: int = 0) -> list[Scorer]:
    """The peers a build's quality section reports: :func:`default_baselines`, the first-order
    Markov chain, confidence-weighted ALS when implicit (the ``dev`` extra) is installed, and
    SASRec when asked for.

    :param sasrec_steps: SASRec training steps; 0 (the default) leaves SASRec out (it needs
        torch and minutes of training).
    :param seed: seed for ALS and SASRec. :param threads: ALS's threads (0: all cores) and
        SASRec's torch threads (0: one; more threads than free cores slow torch badly).
    """
    scorers = [*default_baselines(), MarkovScorer()]
    try:
        import implicit  # noqa: F401  (dev extra; the build runs without it)

        scorers.append(ALSScorer(seed=seed, threads=threads))
    except ImportError:
        pass
    if sasrec_steps > 0:
        scorers.append(sasrec_baseline(sasrec_steps, seed, threads if threads > 0 else 1))
    return scorers
