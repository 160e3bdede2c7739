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
#: Largest magnitude of a quantised query. The integer scorer multiplies the offset-binary
#: catalogue (uint8, up to 255) by the query; x86 CPUs without VNNI (AVX2 only) add pairs of
#: those products in int16 and saturate above 32,767, so the query keeps to 7 bits
#: (2 x 255 x 63 = 32,130). ARM's dot-product kernels do not need it; it costs nothing there.
QUERY_MAX = 63


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
