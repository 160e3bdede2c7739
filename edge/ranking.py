"""Scoring the catalogue for a user vector: int8 dot products in bounded chunks, exclusions,
partial-sort top-k, cold-start priors and one explanation per recommendation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.contract.int8 import quantize_query
from edge.contract.vectors import unit_rows

#: Rows scored per chunk: bounds the float32 temporary to chunk × 4 bytes per query.
CHUNK_ROWS = 65536


def score_int8(emb_int8: np.ndarray, scales: np.ndarray, user: np.ndarray, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """Inner products of a float user vector with int8 rows scaled per row.

    :param emb_int8: ``(n, d)`` int8 (may be a memory map).
    :param scales: ``(n,)`` float32 per-row scales.
    :param user: ``(d,)`` float32.
    :returns: ``(n,)`` float32 scores.
    """
    n = emb_int8.shape[0]
    out = np.empty(n, dtype=np.float32)
    u = np.asarray(user, dtype=np.float32)
    for start in range(0, n, chunk_rows):
        stop = min(n, start + chunk_rows)
        out[start:stop] = emb_int8[start:stop].astype(np.float32) @ u
    out *= scales
    return out


class Int8Scorer:
    """Scores a user vector against an int8 catalogue with per-row scales.

    With a bundle's scorer model (onnxruntime ``MatMulInteger``), the user vector is quantised
    to int8 too and the product runs in integer kernels on an offset-binary copy of the
    catalogue (uint8 = int8 + 128: the u8s8 kernel is the fast one); the memory-mapped int8 file
    is then not touched, so the catalogue is held once, at one byte per value. Without it,
    :func:`score_int8` in numpy. Only the ``(n,)`` scores are float.
    """

    def __init__(self, emb_int8: np.ndarray, scales: np.ndarray, session: object | None = None) -> None:
        self.emb, self.scales, self.session = emb_int8, np.asarray(scales, np.float32), session
        self.backend = "onnxruntime MatMulInteger" if session is not None else "numpy"
        # XOR 0x80 turns two's complement into offset binary exactly (x + 128).
        self._u8 = np.bitwise_xor(np.asarray(emb_int8).view(np.uint8), np.uint8(0x80)) if session is not None else None

    @classmethod
    def for_bundle(cls, bundle: "object", threads: int = 1) -> "Int8Scorer":
        """Use the bundle's ``scorer`` model when onnxruntime can load it, else numpy."""
        session = None
        try:
            path = bundle.model_paths("scorer").get("onnx")  # type: ignore[attr-defined]
            if path is not None:
                from edge.backends.onnx import ort_session

                session = ort_session(path, threads)
                if [i.type for i in session.get_inputs()] != ["tensor(uint8)", "tensor(int8)"]:
                    session = None  # a scorer of another layout: numpy ranks the same
        except Exception:  # an older bundle or no onnxruntime: numpy gives the same ranking
            session = None
        return cls(bundle.embeddings_int8, bundle.scales, session)  # type: ignore[attr-defined]

    def scores(self, user: np.ndarray) -> np.ndarray:
        """``(n,)`` float32 inner products of ``user`` with every catalogue row."""
        u = np.asarray(user, dtype=np.float32)
        if self.session is None:
            return score_int8(self.emb, self.scales, u)
        query = quantize_query(u)
        if query is None:
            return score_int8(self.emb, self.scales, u)
        uq, step = query[0].reshape(-1, 1), query[1]
        raw = self.session.run(None, {"catalog": self._u8, "user": uq})[0]  # type: ignore[attr-defined]
        out = raw.reshape(-1).astype(np.float32)
        out *= self.scales
        out *= step
        return out


def top_k(scores: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first, skipping ``exclude`` (an index array)
    and non-finite scores. Uses a partial sort, so cost is O(n + k log k)."""
    s = np.array(scores, dtype=np.float32, copy=True)
    if exclude is not None and len(exclude):
        s[np.asarray(exclude, dtype=np.int64)] = -np.inf
    s[~np.isfinite(s)] = -np.inf
    valid = int(np.count_nonzero(s > -np.inf))
    k = min(k, valid)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    # Partition on the copy itself (no negated temporary): the k largest end up at the back.
    part = np.argpartition(s, len(s) - k)[len(s) - k :]
    return part[np.argsort(-s[part], kind="stable")]


@dataclass(frozen=True)
class RankingConfig:
    """How the candidate list becomes the final list.

    ``candidates``: how many top-scored items the re-ranker considers. ``mmr_lambda``: 1.0 ranks
    by score alone, lower trades score for dissimilarity to what is already in the list.
    ``tag_cap``: at most this many items sharing one tag (0: no cap). ``negative_weight``: how
    much an item's similarity to recently skipped/disliked items lowers its score.
    ``explore_slots``: list positions given to an item from further down the ranking, so the
    profile keeps discovering (0: none).
    """

    candidates: int = 200
    mmr_lambda: float = 0.7
    tag_cap: int = 3
    negative_weight: float = 0.3
    explore_slots: int = 1
    explore_depth: int = 100

    def __post_init__(self) -> None:
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise ValueError(f"mmr_lambda must be in [0, 1], got {self.mmr_lambda}")
        if self.candidates < 1 or self.tag_cap < 0 or self.explore_slots < 0 or self.explore_depth < 1:
            raise ValueError("candidates and explore_depth must be >= 1; tag_cap and explore_slots >= 0")


def negative_penalty(cand_vecs: np.ndarray, negative_vecs: np.ndarray, weight: float) -> np.ndarray:
    """``weight`` times each candidate's highest positive cosine to a skipped/disliked item:
    "not this" also lowers what is like it."""
    if len(negative_vecs) == 0 or weight == 0 or len(cand_vecs) == 0:
        return np.zeros(len(cand_vecs), np.float32)
    sims = unit_rows(cand_vecs) @ unit_rows(negative_vecs).T
    return (weight * np.clip(sims.max(axis=1), 0.0, None)).astype(np.float32)


def mmr(scores: np.ndarray, vecs: np.ndarray, k: int, lam: float, tags: list[tuple[str, ...]] | None = None, tag_cap: int = 0) -> np.ndarray:
    """Maximal marginal relevance over candidates (positions into ``scores``/``vecs``).

    Greedy: each step takes the candidate maximising ``lam * score - (1 - lam) * max cosine to
    the items already taken``; a candidate whose tag already appears ``tag_cap`` times is
    skipped while others remain. Scores are min-max scaled first so ``lam`` means the same for
    any model.

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
    use_cap = tags is not None and tag_cap > 0
    if use_cap:
        vocab: dict[str, int] = {}
        width = max((len(t) for t in tags), default=0) or 1  # type: ignore[union-attr]
        tag_ids = np.full((n, width), -1, np.int64)
        for i, ts in enumerate(tags):  # type: ignore[arg-type]
            for j, t in enumerate(ts):
                tag_ids[i, j] = vocab.setdefault(t, len(vocab))
        counts = np.zeros(len(vocab) + 1, np.int64)  # the last slot counts padding, never capped
        tag_ids[tag_ids < 0] = len(vocab)
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


@dataclass(frozen=True)
class Recommendation:
    """One recommended item with its score and a human-readable reason."""

    item_id: str
    title: str
    kind: str
    score: float
    reason: str


def explain(candidates: np.ndarray, cand_vecs: np.ndarray, hist_vecs: np.ndarray, hist_titles: list[str], hist_kinds: list[str] | None = None) -> list[str]:
    """For each candidate, "because you watched X" (or "listened to" for audio) with X the
    history item nearest to it (cosine)."""
    if len(hist_titles) == 0:
        return ["popular now" for _ in candidates]
    kinds = hist_kinds or ["video"] * len(hist_titles)
    sims = unit_rows(cand_vecs) @ unit_rows(hist_vecs).T
    verbs = {"audio": "listened to"}
    return [f"because you {verbs.get(kinds[int(j)], 'watched')} {hist_titles[int(j)]}" for j in sims.argmax(axis=1)]
