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


def row_of(catalogue: Catalogue, ids: Iterable[str]) -> np.ndarray:
    """int64 catalogue row of each id, in order, -1 for an id not in the catalogue."""
    index = catalogue.index
    if hasattr(index, "rows"):  # edge.bundle.columns.ItemIndex: one search for all ids
        return index.rows(list(ids))
    return np.array([index.get(i, -1) for i in ids], dtype=np.int64)


def catalogue_rows(catalogue: Catalogue, ids: Iterable[str]) -> np.ndarray:
    """Sorted int64 catalogue rows of ``ids`` (ids not in the catalogue, e.g. local items, are
    left out)."""
    rows = row_of(catalogue, ids)
    return np.unique(rows[rows >= 0])


def excluded_rows(catalogue: Catalogue, gone: Iterable[str], allowed: np.ndarray) -> np.ndarray:
    """Sorted int64 rows never to recommend: those of ``gone`` (finished, skipped, disliked,
    blocked, in the history window) and those ``allowed`` refuses."""
    return np.union1d(catalogue_rows(catalogue, gone), np.flatnonzero(~allowed))


def playable_local(kinds: Sequence[str | None], context: Context) -> np.ndarray:
    """bool per local item: a speaker plays only audio ones (an unknown kind counts as video)."""
    return np.array([context.device != "speaker" or k == "audio" for k in kinds], bool)


class RowFilters:
    """:func:`allowed_rows` as a cached additive mask (0 allowed, ``-inf`` refused) for one
    catalogue, plus the catalogue's tags as an id matrix for the tag cap.

    The mask of a request depends only on the age limit, whether the device is a speaker and
    which availability edges lie behind ``now_s``; between two edges (any ``available_from`` or
    ``available_until`` of the catalogue) it cannot change, so a request reuses it instead of
    comparing every row again.
    """

    #: Masks kept (age limits x device kinds x windows seen recently).
    MAX_MASKS = 16

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        edges = np.concatenate([np.asarray(catalogue.available_from, np.float64), np.asarray(catalogue.available_until, np.float64)])
        self._edges = np.unique(edges[np.isfinite(edges)])
        self._masks: dict[tuple, np.ndarray] = {}
        self._with_rows: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._tag_ids: np.ndarray | None = None

    def bias(self, context: Context, age_limit: int | None, now_s: float) -> np.ndarray:
        """float32 ``(n,)``: 0 where :func:`allowed_rows` allows the row, ``-inf`` elsewhere."""
        key = (age_limit, context.device == "speaker", int(np.searchsorted(self._edges, now_s, side="right")))
        mask = self._masks.get(key)
        if mask is None:
            if len(self._masks) >= self.MAX_MASKS:
                self._masks.clear()
            mask = np.where(allowed_rows(self.catalogue, context, age_limit, now_s), np.float32(0), np.float32(-np.inf)).astype(np.float32)
            mask.setflags(write=False)
            self._masks[key] = mask
        return mask

    def bias_without(self, context: Context, age_limit: int | None, now_s: float, rows: np.ndarray) -> np.ndarray:
        """:meth:`bias` with ``rows`` (a profile's finished, skipped, blocked items) set to
        ``-inf`` as well; kept for the same ``rows`` array, so a profile whose history has not
        changed pays one addition per request, not a scatter of thousands of rows."""
        mask = self.bias(context, age_limit, now_s)
        if len(rows) == 0:
            return mask
        key = (id(mask), id(rows))
        kept = self._with_rows.get(key)
        if kept is not None and kept[0] is mask and kept[1] is rows:  # both held, so their ids are not reused
            return kept[2]
        if len(self._with_rows) >= self.MAX_MASKS:
            self._with_rows.clear()
        out = mask.copy()
        out[rows] = -np.inf
        out.setflags(write=False)
        self._with_rows[key] = (mask, rows, out)
        return out

    @property
    def tag_ids(self) -> np.ndarray:
        """int64 ``(n + 1, width)``: each row's tags as ids, padded with -1; the last row (no
        tags) stands for local items."""
        if self._tag_ids is None:
            items = self.catalogue.items
            # A bundle's items build it from their tag codes; other catalogues from the strings.
            matrix = getattr(items, "tag_matrix", None)
            self._tag_ids = matrix(extra_rows=1) if matrix is not None else tag_id_matrix(list(items.tags) + [()])
        return self._tag_ids


def tag_vocabulary(items) -> list[str]:
    """The catalogue's tag names in the order of their ids in :attr:`RowFilters.tag_ids`."""
    vocab = getattr(items.tags, "vocabulary", None)  # a bundle's TagColumn: ids are its codes
    return list(vocab) if vocab is not None else list(dict.fromkeys(t for ts in items.tags for t in ts))


def tag_id_matrix(tags: Sequence[tuple[str, ...]]) -> np.ndarray:
    """int64 ``(len(tags), width)``: tag strings as ids (by first appearance), -1 for padding."""
    vocab: dict[str, int] = {}
    width = max((len(t) for t in tags), default=0) or 1
    out = np.full((len(tags), width), -1, np.int64)
    for i, ts in enumerate(tags):
        for j, t in enumerate(ts):
            out[i, j] = vocab.setdefault(t, len(vocab))
    return out
