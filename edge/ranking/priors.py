"""Cold start: the bundle's popularity lists for the request's device kind and hour.

``priors`` holds ``global``, ``by_hour[str(hour)]`` and ``by_device_hour[device][str(hour)]``,
each ``[[row, weight], ...]`` best first (written by the server's bundle writer).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from edge.context import Context


def prior_scores(priors: Mapping[str, Any], n_items: int, context: Context) -> np.ndarray:
    """float32 ``(n_items,)``: the most specific list that exists (device and hour, then hour,
    then global) as scores; rows it does not list are ``-inf``."""
    scores = np.full(n_items, -np.inf, dtype=np.float32)
    ranked = (priors.get("by_device_hour", {}).get(context.device, {}).get(str(context.hour))
              or priors.get("by_hour", {}).get(str(context.hour)) or priors.get("global", []))
    for row, weight in ranked:
        scores[int(row)] = float(weight)
    return scores
