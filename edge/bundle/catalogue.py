"""The catalogue a bundle ships: item metadata held as columns, and the int8 embeddings, their
scales and the cold-start priors, read and checked against each other."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from edge.bundle.columns import TagColumn, read_item_columns
from edge.contract.content import CONTENT_COLUMNS
from edge.errors import BundleError

__all__ = ["CatalogItem", "CatalogItems", "check_priors", "read_catalogue"]


@dataclass(frozen=True)
class CatalogItem:
    """Metadata of one catalogue item as the device shows it."""

    item_id: str
    title: str
    kind: str
    tags: tuple[str, ...] = ()
    duration_s: float | None = None
    age_rating: int | None = None
    available_from: float | None = None
    available_until: float | None = None
    series_id: str | None = None
    episode: int | None = None


class CatalogItems(Sequence[CatalogItem]):
    """The catalogue's metadata held as columns (a 100k-item catalogue costs a few MB, not a
    dict per item); indexing builds a :class:`CatalogItem`.

    ``item_ids``, ``titles`` and ``tags`` are sequences (lists from ``items.json``, lazily
    decoded columns from ``items.npz``); ``index`` maps an id to its row. ``series_codes``
    (int32, -1: no series) index ``series_names``; ``episodes`` int32 (-1: none); ``content``
    float32 ``(n, len(CONTENT_COLUMNS))``, NaN where not measured.
    """

    def __init__(self, item_ids: list[str], titles: list[str], kinds: list[str], tags: list[list[str]],
                 durations: list[float | None], age: list[int | None], start: list[float | None], end: list[float | None],
                 series_ids: list[str | None] | None = None, episodes: list[int | None] | None = None,
                 content: np.ndarray | None = None) -> None:
        n = len(item_ids)
        series_ids = [None] * n if series_ids is None else series_ids
        episodes = [None] * n if episodes is None else episodes
        if not all(len(col) == n for col in (titles, kinds, tags, durations, age, start, end, series_ids, episodes)):
            raise ValueError("catalogue columns have different lengths")
        bad = sorted({k for k in kinds if k not in ("audio", "video")})
        if bad:
            raise ValueError(f"unknown item kinds {bad[:3]}")
        self.item_ids, self.titles = item_ids, titles
        self.is_audio = np.array([k == "audio" for k in kinds], dtype=bool)
        # Tag lists repeat across a catalogue: items with the same tags share one tuple.
        shared: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.tags = [shared.setdefault(t, t) for t in (tuple(str(x) for x in ts) for ts in tags)]
        self.durations = np.array([np.nan if d is None else float(d) for d in durations])
        self.age_ratings = np.array([-1 if a is None else int(a) for a in age], dtype=np.int32)
        self.available_from = np.array([-np.inf if t is None else float(t) for t in start])
        self.available_until = np.array([np.inf if t is None else float(t) for t in end])
        self.index: Mapping[str, int] = {item_id: i for i, item_id in enumerate(item_ids)}
        if len(self.index) != n:
            raise ValueError("catalogue item ids are not unique")
        names: dict[str, int] = {}
        self.series_codes = np.array([-1 if s is None else names.setdefault(str(s), len(names)) for s in series_ids], np.int32)
        self.series_names = list(names)
        self.episodes = np.array([-1 if e is None else int(e) for e in episodes], np.int32)
        self.content = (np.full((n, len(CONTENT_COLUMNS)), np.nan, np.float32) if content is None
                        else np.asarray(content, np.float32).reshape(n, len(CONTENT_COLUMNS)))

    @classmethod
    def from_columns(cls, item_ids: Sequence[str], titles: Sequence[str], tags: Sequence[tuple[str, ...]],
                     is_audio: np.ndarray, durations: np.ndarray, age_ratings: np.ndarray, available_from: np.ndarray,
                     available_until: np.ndarray, index: Mapping[str, int], series_names: list[str], series_codes: np.ndarray,
                     episodes: np.ndarray, content: np.ndarray) -> "CatalogItems":
        """Columns already checked against each other (:func:`edge.bundle.columns.read_item_columns`)."""
        self = cls.__new__(cls)
        self.item_ids, self.titles, self.tags, self.index = item_ids, titles, tags, index
        self.is_audio, self.durations, self.age_ratings = is_audio, durations, age_ratings
        self.available_from, self.available_until = available_from, available_until
        self.series_names, self.series_codes, self.episodes, self.content = series_names, series_codes, episodes, content
        return self

    def series_of(self, i: int) -> str | None:
        """The series id of row ``i`` (None: not an episode)."""
        code = int(self.series_codes[i])
        return None if code < 0 else self.series_names[code]

    def tag_matrix(self, extra_rows: int = 0) -> np.ndarray:
        """int64 ``(n + extra_rows, width)``: each item's tags as ids, -1 padded (see
        :func:`edge.ranking.filters.tag_id_matrix`); the extra rows have no tags."""
        if isinstance(self.tags, TagColumn):
            return self.tags.id_matrix(extra_rows)
        from edge.ranking.filters import tag_id_matrix

        return tag_id_matrix(list(self.tags) + [()] * extra_rows)

    def __len__(self) -> int:
        return len(self.item_ids)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        opt = lambda v, empty: None if v == empty or v != v else v  # noqa: E731  (v != v: NaN)
        age, episode = int(self.age_ratings[i]), int(self.episodes[i])
        return CatalogItem(self.item_ids[i], self.titles[i], "audio" if self.is_audio[i] else "video", self.tags[i],
                           opt(float(self.durations[i]), None), None if age < 0 else age,
                           opt(float(self.available_from[i]), -np.inf), opt(float(self.available_until[i]), np.inf),
                           self.series_of(i), None if episode < 0 else episode)

    @classmethod
    def from_json(cls, data: Any) -> "CatalogItems":
        """Read ``items.json``: columns (``{"item_id": [...], ...}``) or a list of item objects."""
        if isinstance(data, list):  # one object per item (bundles written before the columns)
            data = {key: [d.get(key) for d in data] for key in _ITEM_COLUMNS}
        if not isinstance(data, dict) or not isinstance(data.get("item_id"), list):
            raise ValueError("items.json holds neither item columns nor a list of items")
        n = len(data["item_id"])
        col = lambda key, default=None: data.get(key) if isinstance(data.get(key), list) else [default] * n  # noqa: E731
        return cls([str(x) for x in data["item_id"]], [str(x) for x in col("title", "")], [str(x) for x in col("kind", "video")],
                   [list(t or ()) for t in col("tags")], col("duration_s"), col("age_rating"), col("available_from"),
                   col("available_until"), col("series_id"), col("episode"))


_ITEM_COLUMNS = ("item_id", "title", "kind", "tags", "duration_s", "age_rating", "available_from", "available_until", "series_id",
                 "episode")


def read_catalogue(root: Path, catalog: dict[str, Any], embedding_dim: int) -> tuple[np.ndarray, np.ndarray, CatalogItems, dict[str, Any]]:
    """Read the catalogue files the manifest's ``catalog`` entry names (already verified).

    :returns: ``(embeddings_int8, scales, items, priors)``; the embeddings are memory-mapped,
        so a 100k-item catalogue costs page cache, not heap.
    :raises BundleError: the arrays disagree with each other, the items or ``embedding_dim``.
    :raises OSError, ValueError, KeyError, TypeError: a file cannot be read or parsed
        (:meth:`edge.bundle.Bundle.open` turns these into a BundleError).
    """
    embeddings: np.ndarray = np.load(root / catalog["embeddings"], mmap_mode="r", allow_pickle=False)
    scales: np.ndarray = np.load(root / catalog["scales"], allow_pickle=False).astype(np.float32)
    if str(catalog["items"]).endswith(".npz"):
        items = CatalogItems.from_columns(**read_item_columns(root / catalog["items"]))  # type: ignore[arg-type]
    else:  # items.json: bundles written before the binary columns
        items = CatalogItems.from_json(json.loads((root / catalog["items"]).read_text(encoding="utf-8")))
    priors: dict[str, Any] = json.loads((root / catalog["priors"]).read_text(encoding="utf-8"))
    n, dim = embeddings.shape if embeddings.ndim == 2 else (-1, -1)
    if embeddings.dtype != np.int8 or n != len(items) or scales.shape != (n,):
        raise BundleError(
            f"{root}: catalogue arrays disagree: embeddings {embeddings.dtype}{embeddings.shape}, "
            f"scales {scales.shape}, {len(items)} items"
        )
    if dim != embedding_dim:
        raise BundleError(f"{root}: embeddings have dim {dim}, manifest says {embedding_dim}")
    if n and not (np.all(np.isfinite(scales)) and np.all(scales > 0)):
        bad = int(np.flatnonzero(~(np.isfinite(scales) & (scales > 0)))[0])
        raise BundleError(f"{root}: catalog scale of row {bad} is {scales[bad]!r}; every scale must be a positive finite number "
                          "(rebuild the bundle)")
    check_priors(priors, n, root)
    return embeddings, scales, items, priors


def _check_ranked(ranked: Any, n: int, where: str) -> None:
    if not isinstance(ranked, list):
        raise BundleError(f"{where} is not a list of [row, weight] pairs")
    for entry in ranked:
        ok = isinstance(entry, list) and len(entry) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in entry)
        if not ok or entry[0] != int(entry[0]) or not 0 <= entry[0] < n or not np.isfinite(entry[1]):
            raise BundleError(f"{where} holds {str(entry)[:60]}: each entry must be [row, weight] with 0 <= row < {n} "
                              "and a finite weight (rebuild the bundle)")


def check_priors(priors: Any, n_items: int, root: Path | str = "bundle") -> None:
    """The cold-start lists (:mod:`edge.ranking.priors`) name only catalogue rows, with finite
    weights, in the shape the ranker reads; checked at open so a bad list fails install rather
    than a later ``recommend``.

    :raises BundleError: naming the list and the entry.
    """
    where = f"{root}: catalog priors"
    if not isinstance(priors, dict):
        raise BundleError(f"{where} is not an object")
    _check_ranked(priors.get("global", []), n_items, f"{where} 'global'")
    for key in ("by_hour", "by_device_hour"):
        table = priors.get(key, {})
        if not isinstance(table, dict):
            raise BundleError(f"{where} {key!r} is not an object")
        for name, value in table.items():
            if key == "by_hour":
                _check_ranked(value, n_items, f"{where} {key}[{name!r}]")
                continue
            if not isinstance(value, dict):
                raise BundleError(f"{where} {key}[{name!r}] is not an object of hourly lists")
            for hour, ranked in value.items():
                _check_ranked(ranked, n_items, f"{where} {key}[{name!r}][{hour!r}]")
