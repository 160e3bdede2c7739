"""Scoring the catalogue for a user vector: int8 dot products in bounded chunks, exclusions,
partial-sort top-k, cold-start priors and one explanation per recommendation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Rows scored per chunk: bounds the float32 temporary to chunk × 4 bytes per query.
CHUNK_ROWS = 65536


def history_window(seq: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The last ``length`` entries of ``seq`` (oldest first), right-aligned.

    :param seq: item indices in time order, shape ``(n,)``.
    :returns: ``(idx, mask)``: int64 ``(length,)`` with -1 where padded, float32 ``(length,)``
        with 1.0 for real entries. Training and the device both use this, so the model sees
        the same layout in both places.
    """
    seq = np.asarray(seq, dtype=np.int64)[-length:]
    idx = np.full(length, -1, dtype=np.int64)
    mask = np.zeros(length, dtype=np.float32)
    if seq.size:
        idx[length - seq.size :] = seq
        mask[length - seq.size :] = 1.0
    return idx, mask


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
    part = np.argpartition(-s, k - 1)[:k]
    return part[np.argsort(-s[part], kind="stable")]


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
    def unit(m: np.ndarray) -> np.ndarray:
        return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-9)
    sims = unit(cand_vecs) @ unit(hist_vecs).T
    verbs = {"audio": "listened to"}
    return [f"because you {verbs.get(kinds[int(j)], 'watched')} {hist_titles[int(j)]}" for j in sims.argmax(axis=1)]
