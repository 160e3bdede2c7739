"""One human-readable reason per recommendation."""

from __future__ import annotations

import numpy as np

from edge.contract.vectors import unit_rows

#: Reasons that do not name a history item.
REASON_POPULAR = "popular at this hour"
REASON_EXPLORE = "something different"


def explain(candidates: np.ndarray, cand_vecs: np.ndarray, hist_vecs: np.ndarray, hist_titles: list[str], hist_kinds: list[str] | None = None) -> list[str]:
    """For each candidate, "because you watched X" (or "listened to" for audio) with X the
    history item nearest to it (cosine)."""
    if len(hist_titles) == 0:
        return ["popular now" for _ in candidates]
    kinds = hist_kinds or ["video"] * len(hist_titles)
    sims = unit_rows(cand_vecs) @ unit_rows(hist_vecs).T
    verbs = {"audio": "listened to"}
    return [f"because you {verbs.get(kinds[int(j)], 'watched')} {hist_titles[int(j)]}" for j in sims.argmax(axis=1)]
