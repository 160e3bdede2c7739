"""The bundle's int8 rule: symmetric quantisation with one float32 scale per row.

``catalog/embeddings.int8.npy`` holds ``q`` and ``catalog/scales.npy`` holds ``scale``, with
``x ≈ q * scale[:, None]``. The server writes with :func:`quantize_rows`; the device reads
with :func:`dequantize_rows` and scores with the integer kernel, whose query is
:func:`quantize_query`. Keeping both ends here means the format cannot drift.
"""

from __future__ import annotations

import numpy as np

#: Largest magnitude of a quantised value: symmetric, so -128 is never used.
INT8_MAX = 127
#: Largest magnitude of a quantised query. x86 CPUs without VNNI (AVX2 only) add pairs of
#: uint8 x int8 products in int16 and saturate above 32,767: the legacy scorer multiplies the
#: offset-binary catalogue (up to 255) by the query, so the query keeps to 7 bits
#: (2 x 255 x 63 = 32,130); the current one multiplies the offset-binary query (1..127) by the
#: int8 catalogue (2 x 127 x 127 = 32,258). ARM's dot-product kernels do not need it.
QUERY_MAX = 63
#: What the current scorer adds to each query value so it is a uint8 of 1..127.
QUERY_OFFSET = QUERY_MAX + 1


def quantize_rows(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: ``m ≈ q * scale[:, None]``; an all-zero row gets scale 1.

    :param m: ``(n, d)`` float.
    :returns: ``(q, scale)``: int8 ``(n, d)`` and float32 ``(n,)``.
    """
    m = np.asarray(m, dtype=np.float32)
    scale = np.abs(m).max(axis=1) / np.float32(INT8_MAX) if m.size else np.ones(len(m), np.float32)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.rint(m / scale[:, None]), -INT8_MAX, INT8_MAX).astype(np.int8)
    return q, scale


def dequantize_rows(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The float vectors a device computes with: ``q * scale[:, None]``, float32 ``(n, d)``."""
    return np.asarray(q).astype(np.float32) * np.asarray(scale, np.float32)[:, None]


def quantize_query(v: np.ndarray) -> tuple[np.ndarray, float] | None:
    """One query vector as int8 for the integer scorer: ``v ≈ q * step``, ``|q| <= QUERY_MAX``.

    :param v: ``(d,)`` float.
    :returns: ``(q, step)`` with ``q`` int8 ``(d,)``, or None when ``v`` is all zero or not
        finite (the caller scores in float instead).
    """
    v = np.asarray(v, dtype=np.float32)
    peak = float(np.abs(v).max()) if v.size else 0.0
    if peak == 0.0 or not np.isfinite(peak):
        return None
    step = peak / QUERY_MAX
    return np.clip(np.rint(v / step), -QUERY_MAX, QUERY_MAX).astype(np.int8), step



def query_offset_binary(q: np.ndarray) -> np.ndarray:
    """uint8 ``(1, d)``: an int8 query from :func:`quantize_query` plus ``QUERY_OFFSET``.

    The integer kernel then computes ``q . row + QUERY_OFFSET * sum(row)`` per catalogue row
    with no zero point (a zero point makes onnxruntime sum the whole catalogue on every call);
    :func:`catalog_offsets` is the second term, computed once per catalogue."""
    return (np.asarray(q, np.int16) + QUERY_OFFSET).astype(np.uint8).reshape(1, -1)


def catalog_offsets(emb_int8: np.ndarray) -> np.ndarray:
    """int32 ``(n,)``: ``QUERY_OFFSET * sum(row)`` for each int8 catalogue row (see
    :func:`query_offset_binary`)."""
    return (QUERY_OFFSET * np.asarray(emb_int8).sum(axis=1, dtype=np.int64)).astype(np.int32)
