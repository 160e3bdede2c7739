"""Scoring the catalogue for a user vector: int8 dot products in bounded chunks (onnxruntime's
integer kernel or numpy) and partial-sort top-k with exclusions."""

from __future__ import annotations

import numpy as np

from edge.contract.inputs import SCORER_INPUTS
from edge.contract.int8 import quantize_query

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
        raw = self.session.run(None, dict(zip(SCORER_INPUTS, (self._u8, uq))))[0]  # type: ignore[attr-defined]
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
