"""Row L2-normalisation, the one definition (the server's evaluation, distillation and parity
checks and the device's re-ranker all divide by the same guarded norm)."""

from __future__ import annotations

import numpy as np

#: Norms below this are treated as zero: the row stays (near) zero instead of exploding.
NORM_EPS = 1e-12


def unit_rows(m: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """``m`` with every row (last axis) scaled to unit L2 length; zero rows stay zero.

    :param m: ``(..., d)`` of any numeric dtype.
    :param dtype: the result's dtype (float64 where evaluation sums many products).
    :returns: an array of ``m``'s shape.
    """
    m = np.asarray(m, dtype=dtype)
    return m / np.maximum(np.linalg.norm(m, axis=-1, keepdims=True), dtype(NORM_EPS))
