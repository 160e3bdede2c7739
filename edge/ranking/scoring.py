"""Scoring the catalogue for a user vector: int8 dot products in bounded chunks (onnxruntime's
integer kernel or numpy) and partial-sort top-k with exclusions."""

from __future__ import annotations

import numpy as np

from edge.contract.inputs import LEGACY_SCORER_INPUTS, SCORER_INPUTS
from edge.contract.int8 import catalog_offsets, quantize_query, query_offset_binary

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

    With a bundle's scorer model (onnxruntime ``MatMulInteger``, see
    :func:`export.bundle.scorer_onnx`), the user vector is quantised to int8 too (in offset
    binary, :func:`~edge.contract.int8.query_offset_binary`), and the product runs in integer
    kernels on a transposed copy of the catalogue (``(d, n)`` int8: the layout the GEMM kernel
    streams fastest) and four bytes a row of offsets; the
    memory-mapped row-major file is then only read for the few rows a request looks up, so the
    catalogue is held once, at one byte per value. A bundle of the legacy layout runs on an
    offset-binary copy (uint8 = int8 + 128) instead. Without onnxruntime, :func:`score_int8`
    in numpy. Only the ``(n,)`` scores are float.
    """

    def __init__(self, emb_int8: np.ndarray, scales: np.ndarray, session: object | None = None) -> None:
        self.emb, self.scales, self.session = emb_int8, np.asarray(scales, np.float32), session
        self.backend = "numpy"
        self._layout: tuple[str, ...] = ()
        if session is not None:
            self._layout = tuple(i.name for i in session.get_inputs())  # type: ignore[attr-defined]
            self.backend = "onnxruntime MatMulInteger"
        if self._layout == SCORER_INPUTS:
            self._catalog = np.ascontiguousarray(np.asarray(emb_int8).T)
            self._offsets = catalog_offsets(emb_int8)
        elif self._layout == LEGACY_SCORER_INPUTS:
            # XOR 0x80 turns two's complement into offset binary exactly (x + 128).
            self._catalog = np.bitwise_xor(np.asarray(emb_int8).view(np.uint8), np.uint8(0x80))

    @classmethod
    def for_bundle(cls, bundle: "object", threads: int = 1) -> "Int8Scorer":
        """Use the bundle's ``scorer`` model when onnxruntime can load it, else numpy."""
        session = None
        try:
            path = bundle.model_paths("scorer").get("onnx")  # type: ignore[attr-defined]
            if path is not None:
                from edge.backends.onnx import ort_session

                session = ort_session(path, threads)
                inputs = [(i.name, i.type) for i in session.get_inputs()]
                if inputs not in (_SCORER_TYPES, _LEGACY_TYPES):
                    session = None  # a scorer of another layout: numpy ranks the same
        except Exception:  # an older bundle or no onnxruntime: numpy gives the same ranking
            session = None
        return cls(bundle.embeddings_int8, bundle.scales, session)  # type: ignore[attr-defined]

    def scores(self, user: np.ndarray) -> np.ndarray:
        """``(n,)`` float32 inner products of ``user`` with every catalogue row."""
        u = np.asarray(user, dtype=np.float32)
        query = quantize_query(u) if self.session is not None else None
        if query is None:
            return score_int8(self.emb, self.scales, u)
        uq, step = query
        if self._layout == SCORER_INPUTS:
            raw = self.session.run(None, dict(zip(SCORER_INPUTS, (query_offset_binary(uq), self._catalog))))[0].reshape(-1)  # type: ignore[attr-defined]
            np.subtract(raw, self._offsets, out=raw)
            out = np.multiply(raw, self.scales, dtype=np.float32)
        else:
            raw = self.session.run(None, dict(zip(LEGACY_SCORER_INPUTS, (self._catalog, uq.reshape(-1, 1)))))[0]  # type: ignore[attr-defined]
            out = raw.reshape(-1).astype(np.float32)
            out *= self.scales
        out *= step
        return out


_SCORER_TYPES = list(zip(SCORER_INPUTS, ("tensor(uint8)", "tensor(int8)")))
_LEGACY_TYPES = list(zip(LEGACY_SCORER_INPUTS, ("tensor(uint8)", "tensor(int8)")))


def top_k(scores: np.ndarray, k: int, exclude: np.ndarray | None = None, bias: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first (ties: the lower index first), skipping
    ``exclude`` (an index array), rows where ``bias`` (float32 ``(n,)``, 0 or ``-inf``, added
    to the scores) is ``-inf``, and non-finite scores.

    Exact, in O(n + k log k): a threshold taken from a strided sample keeps only the rows that
    can be in the top ``k`` (a pass over the scores is ~10x cheaper than numpy's full
    ``argpartition`` at 100k rows); when the sample's threshold keeps fewer than ``k`` rows the
    full partial sort answers instead.
    """
    s = np.add(scores, bias, dtype=np.float32) if bias is not None else np.array(scores, dtype=np.float32, copy=True)
    if exclude is not None and len(exclude):
        s[np.asarray(exclude, dtype=np.int64)] = -np.inf
    s[~np.isfinite(s)] = -np.inf
    n = len(s)
    k = min(k, int(np.count_nonzero(s > -np.inf)))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    rows = _rows_above_sampled_threshold(s, k)
    if rows is None:
        # Partition on the copy itself (no negated temporary): the k largest end up at the back.
        rows = np.argpartition(s, n - k)[n - k :]
    return rows[np.lexsort((rows, -s[rows]))[:k]]


def _rows_above_sampled_threshold(s: np.ndarray, k: int, sample_factor: int = 16) -> np.ndarray | None:
    """Rows of ``s`` at or above a threshold that a strided sample expects about ``2k`` rows to
    reach; None when the sample does not pay (a small ``s``) or the threshold keeps fewer than
    ``k`` rows (then nothing is lost: the caller sorts partially)."""
    n = len(s)
    step = min(sample_factor, n // (8 * k)) if k else 0
    if n < 4096 or step < 2:
        return None
    sample = s[::step]
    above = min(len(sample) - 1, 2 * k // step + 8)  # sample rank whose expected count is ~2k
    threshold = np.partition(sample, len(sample) - 1 - above)[len(sample) - 1 - above]
    if not np.isfinite(threshold):
        return None
    rows = np.flatnonzero(s >= threshold)
    return rows if len(rows) >= k else None
