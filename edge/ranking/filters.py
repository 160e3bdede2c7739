"""Which catalogue rows and local items a request may see at all."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from edge.context import Context
from edge.ranking.catalogue import Catalogue


def allowed_rows(catalogue: Catalogue, context: Context, age_limit: int | None, now_s: float) -> np.ndarray:
    """bool ``(n,)``: rows within the profile's age limit, inside their availability window at
    ``now_s`` (Unix s), and playable on the device (a speaker plays audio only)."""
    ok = np.ones(len(catalogue.items.item_ids), bool)
    if age_limit is not None:
        ok &= np.asarray(catalogue.age_ratings) <= age_limit
    ok &= (np.asarray(catalogue.available_from) <= now_s) & (now_s < np.asarray(catalogue.available_until))
    if context.device == "speaker":
        ok[catalogue.video_rows] = False
    return ok


def excluded_rows(catalogue: Catalogue, gone: Iterable[str], allowed: np.ndarray) -> np.ndarray:
    """Sorted int64 rows never to recommend: those of ``gone`` (finished, skipped, disliked,
    blocked, in the history window) and those ``allowed`` refuses."""
    rows = np.array(sorted({catalogue.index[i] for i in gone if i in catalogue.index}), dtype=np.int64)
    return np.union1d(rows, np.flatnonzero(~allowed))


def playable_local(kinds: Sequence[str | None], context: Context) -> np.ndarray:
    """bool per local item: a speaker plays only audio ones (an unknown kind counts as video)."""
    return np.array([context.device != "speaker" or k == "audio" for k in kinds], bool)
