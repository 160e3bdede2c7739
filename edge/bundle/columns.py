"""The catalogue's item metadata as binary columns (``catalog/items.npz``): what the server
writes and the device reads, defined once here.

A million items as JSON cost seconds to parse into lists and a dict before the first
recommendation; as columns they are a few arrays read whole. The archive is an uncompressed
``.npz`` (no pickles) holding:

* ``id_sorted`` ``(n,) S<w>``: the item ids, UTF-8, in byte order, and ``id_row`` ``(n,)``
  int64: the catalogue row of each. Ids are looked up by binary search
  (:class:`ItemIndex`); row ``i``'s id is the one whose ``id_row`` is ``i`` (one source, so
  ids and index cannot disagree). Ids hold no NUL (the fixed-width bytes pad with it).
* ``title_blob`` uint8 / ``title_offsets`` ``(n + 1,)`` int64: titles, UTF-8, decoded on use.
* ``tag_blob`` / ``tag_offsets``: the distinct tag strings; ``item_tag_offsets`` ``(n + 1,)``
  and ``item_tags`` int32: each item's tags as codes into them.
* ``is_audio`` bool, ``duration_s`` float32 (NaN: unknown), ``age_rating`` int8 (-1: none),
  ``available_from``/``available_until`` float64 (-inf/+inf: open).
* Optional (bundles before them lack them and read as "none"): ``series_blob`` /
  ``series_offsets`` (the distinct series ids) and ``series_code`` int32 (-1: not an episode),
  ``episode`` int32 (-1: none); ``content`` float16 ``(n, len(CONTENT_COLUMNS))``: the measured
  descriptors of :mod:`edge.contract.content` (NaN: not measured).

The file is written byte for byte the same for the same columns (fixed member times), so a
catalogue rebuilt on the device from a delta hashes as the server's (:mod:`edge.bundle.delta`).

Every array is checked against the others at open (lengths, offsets, code ranges, UTF-8
boundaries, unique sorted ids), so a damaged file fails install with a :class:`ValueError`
(the reader turns it into a BundleError), never a later request.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from edge.contract.content import CONTENT_COLUMNS

__all__ = ["ItemIndex", "RowColumn", "StringColumn", "TagColumn", "read_item_columns", "write_item_columns"]


class RowColumn(Sequence):
    """A read-only sequence with one value per catalogue row, decoded on access: subclasses
    give ``__len__`` and ``_at(i)`` for ``0 <= i < len``; indexing, negative indices and
    slices are handled here."""

    def _at(self, i: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._at(j) for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._at(i)


class StringColumn(RowColumn):
    """UTF-8 strings in one blob; ``column[i]`` decodes one."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray) -> None:
        self._blob, self._offsets = blob.tobytes(), offsets

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def _at(self, i: int) -> str:
        return self._blob[self._offsets[i]:self._offsets[i + 1]].decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        blob = self._blob
        for lo, hi in zip(self._offsets[:-1].tolist(), self._offsets[1:].tolist()):
            yield blob[lo:hi].decode("utf-8")


class TagColumn(RowColumn):
    """Each item's tags as codes into one vocabulary; ``column[i]`` is a tuple of strings."""

    def __init__(self, vocabulary: list[str], offsets: np.ndarray, codes: np.ndarray) -> None:
        self.vocabulary, self._offsets, self._codes = vocabulary, offsets, codes

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def _at(self, i: int) -> tuple[str, ...]:
        vocab = self.vocabulary
        return tuple(vocab[c] for c in self._codes[self._offsets[i]:self._offsets[i + 1]].tolist())

    def id_matrix(self, extra_rows: int = 0) -> np.ndarray:
        """int64 ``(n + extra_rows, width)``: each item's tag codes, -1 padded (the extra rows
        have no tags); built with array operations, not a loop over items."""
        counts = np.diff(self._offsets)
        width = int(counts.max(initial=0)) or 1
        out = np.full((len(self) + extra_rows, width), -1, np.int64)
        rows = np.repeat(np.arange(len(self)), counts)
        cols = np.arange(len(self._codes)) - np.repeat(self._offsets[:-1], counts)
        out[rows, cols] = self._codes
        return out


class ItemIndex(Mapping[str, int]):
    """Item id -> catalogue row by binary search over the sorted UTF-8 ids."""

    def __init__(self, id_sorted: np.ndarray, id_row: np.ndarray) -> None:
        self._sorted, self._row = id_sorted, id_row

    def _find(self, key: object) -> int | None:
        if not isinstance(key, str) or "\x00" in key:
            return None
        raw = key.encode("utf-8")
        if len(raw) > self._sorted.dtype.itemsize:
            return None
        pos = int(np.searchsorted(self._sorted, raw))
        if pos < len(self._sorted) and self._sorted[pos] == raw:
            return int(self._row[pos])
        return None

    def rows(self, keys: Iterable[str]) -> np.ndarray:
        """int64 row of each key, -1 where absent: one vectorised search for many ids."""
        raw = [k.encode("utf-8") if isinstance(k, str) and "\x00" not in k else b"\x00" for k in keys]
        if not raw or not len(self._sorted):
            return np.full(len(raw), -1, np.int64)
        query = np.array(raw)  # its own width: a longer id cannot be truncated into a match
        pos = np.minimum(np.searchsorted(self._sorted, query.astype(self._sorted.dtype)), len(self._sorted) - 1)
        hit = self._sorted[pos] == query
        return np.where(hit, self._row[pos], -1).astype(np.int64)

    def __getitem__(self, key: str) -> int:
        row = self._find(key)
        if row is None:
            raise KeyError(key)
        return row

    def __contains__(self, key: object) -> bool:
        return self._find(key) is not None

    def __len__(self) -> int:
        return len(self._sorted)

    def __iter__(self) -> Iterator[str]:
        order = np.argsort(self._row, kind="stable")
        for raw in self._sorted[order]:
            yield raw.decode("utf-8")


def _blob(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [s.encode("utf-8") for s in strings]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


def _write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed ``.npz`` whose bytes depend only on ``arrays`` (``np.savez`` stamps each
    member with the current time)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(arr), allow_pickle=False)


def write_item_columns(path: str | Path, item_ids: Sequence[str], titles: Sequence[str], kinds: Sequence[str],
                       tags: Sequence[Sequence[str]], durations: Sequence[float | None], age_ratings: Sequence[int | None],
                       available_from: Sequence[float | None], available_until: Sequence[float | None],
                       series_ids: Sequence[str | None] | None = None, episodes: Sequence[int | None] | None = None,
                       content: np.ndarray | None = None) -> None:
    """Write ``items.npz`` (catalogue order).

    :param series_ids: each item's series (None: not an episode); ``episodes`` its number in it.
    :param content: ``(n, len(CONTENT_COLUMNS))`` measured descriptors, NaN where unknown.
    :raises ValueError: columns of different lengths, duplicate ids, an id holding NUL, an
        unknown kind, an episode number without a series.
    """
    n = len(item_ids)
    series_ids = [None] * n if series_ids is None else list(series_ids)
    episodes = [None] * n if episodes is None else list(episodes)
    content = np.full((n, len(CONTENT_COLUMNS)), np.nan, np.float16) if content is None else np.asarray(content, np.float16)
    if not all(len(c) == n for c in (titles, kinds, tags, durations, age_ratings, available_from, available_until, series_ids,
                                     episodes, content)):
        raise ValueError("item columns have different lengths")
    if content.shape != (n, len(CONTENT_COLUMNS)):
        raise ValueError(f"content is {content.shape}, expected ({n}, {len(CONTENT_COLUMNS)})")
    if any("\x00" in i for i in item_ids):
        raise ValueError("an item id holds NUL")
    bad = sorted({k for k in kinds if k not in ("audio", "video")})
    if bad:
        raise ValueError(f"unknown item kinds {bad[:3]}")
    if any(e is not None and s is None for s, e in zip(series_ids, episodes)):
        raise ValueError("an episode number without a series id")
    raw = np.array([i.encode("utf-8") for i in item_ids], dtype=f"S{max([len(i.encode()) for i in item_ids], default=0) or 1}")
    order = np.argsort(raw, kind="stable")
    if n > 1 and not np.all(raw[order][1:] > raw[order][:-1]):
        raise ValueError("item ids are not unique")
    title_blob, title_offsets = _blob(titles)
    vocab: dict[str, int] = {}
    codes = [vocab.setdefault(str(t), len(vocab)) for ts in tags for t in ts]
    tag_blob, tag_offsets = _blob(list(vocab))
    item_tag_offsets = np.zeros(n + 1, np.int64)
    np.cumsum([len(ts) for ts in tags], out=item_tag_offsets[1:])
    series: dict[str, int] = {}
    series_code = np.array([-1 if s is None else series.setdefault(str(s), len(series)) for s in series_ids], np.int32)
    series_blob, series_offsets = _blob(list(series))
    opt = lambda col, empty, dtype: np.array([empty if v is None else v for v in col], dtype=dtype)  # noqa: E731
    _write_npz(path, dict(
        id_sorted=raw[order], id_row=order.astype(np.int64), title_blob=title_blob, title_offsets=title_offsets,
        tag_blob=tag_blob, tag_offsets=tag_offsets, item_tag_offsets=item_tag_offsets,
        item_tags=np.asarray(codes, dtype=np.int32), is_audio=np.array([k == "audio" for k in kinds], dtype=bool),
        duration_s=opt(durations, np.nan, np.float32), age_rating=opt(age_ratings, -1, np.int8),
        available_from=opt(available_from, -np.inf, np.float64), available_until=opt(available_until, np.inf, np.float64),
        series_blob=series_blob, series_offsets=series_offsets, series_code=series_code, episode=opt(episodes, -1, np.int32),
        content=content,
    ))


_ARRAYS = {"id_sorted": "S", "id_row": "i", "title_blob": "u", "title_offsets": "i", "tag_blob": "u", "tag_offsets": "i",
           "item_tag_offsets": "i", "item_tags": "i", "is_audio": "b", "duration_s": "f", "age_rating": "i",
           "available_from": "f", "available_until": "f"}
#: Arrays older bundles lack (read as "none"), and their kinds.
_OPTIONAL = {"series_blob": "u", "series_offsets": "i", "series_code": "i", "episode": "i", "content": "f"}


def _check_offsets(offsets: np.ndarray, length: int, rows: int, name: str) -> None:
    if offsets.shape != (rows + 1,) or offsets[0] != 0 or offsets[-1] != length or np.any(np.diff(offsets) < 0):
        raise ValueError(f"{name} do not cut their blob into {rows} pieces")


def _check_utf8(blob: np.ndarray, offsets: np.ndarray, name: str) -> None:
    starts = offsets[:-1][np.diff(offsets) > 0]
    if len(starts) and np.any((blob[starts] & 0xC0) == 0x80):
        raise ValueError(f"{name} cut a UTF-8 character")
    _decode(blob.tobytes(), name)


def _decode(raw: bytes, name: str) -> None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name} hold bytes that are not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def read_item_columns(path: str | Path) -> dict[str, object]:
    """Read and check ``items.npz``: the keyword arguments of
    :meth:`edge.bundle.catalogue.CatalogItems.from_columns`.

    :raises ValueError: a missing array, a wrong dtype or shape, arrays that disagree.
    """
    with np.load(path, allow_pickle=False) as npz:
        missing = [k for k in _ARRAYS if k not in npz.files]
        if missing:
            raise ValueError(f"items.npz lacks {missing}")
        a = {k: npz[k] for k in _ARRAYS}
        a.update({k: npz[k] for k in _OPTIONAL if k in npz.files})
    for key, kind in {**_ARRAYS, **_OPTIONAL}.items():
        if key in a and (a[key].ndim != (2 if key == "content" else 1) or a[key].dtype.kind != kind):
            raise ValueError(f"items.npz {key} is {a[key].dtype}{a[key].shape}, expected a {2 if key == 'content' else 1}-d array of kind {kind!r}")
    n = len(a["id_row"])
    series_keys = ("series_blob", "series_offsets", "series_code", "episode")
    if any(k in a for k in series_keys) and not all(k in a for k in series_keys):
        raise ValueError(f"items.npz holds only some of {list(series_keys)}")
    if "series_code" not in a:
        a.update(series_blob=np.zeros(0, np.uint8), series_offsets=np.zeros(1, np.int64), series_code=np.full(n, -1, np.int32),
                 episode=np.full(n, -1, np.int32))
    if "content" not in a:
        a["content"] = np.full((n, len(CONTENT_COLUMNS)), np.nan, np.float16)
    if a["content"].shape != (n, len(CONTENT_COLUMNS)):
        raise ValueError(f"items.npz content is {a['content'].shape}, expected ({n}, {len(CONTENT_COLUMNS)})")
    n_series = len(a["series_offsets"]) - 1
    _check_offsets(a["series_offsets"], len(a["series_blob"]), n_series, "series offsets")
    _check_utf8(a["series_blob"], a["series_offsets"], "series offsets")
    if len(a["series_code"]) != n or len(a["episode"]) != n:
        raise ValueError(f"items.npz series_code/episode have {len(a['series_code'])}/{len(a['episode'])} entries for {n} items")
    if n and not (a["series_code"].min() >= -1 and a["series_code"].max() < n_series):
        raise ValueError("items.npz series_code names series that are not in the vocabulary")
    if np.any((a["episode"] >= 0) & (a["series_code"] < 0)) or np.any(a["episode"] < -1):
        raise ValueError("items.npz holds an episode number without a series, or a negative one")
    for key in ("id_sorted", "is_audio", "duration_s", "age_rating", "available_from", "available_until"):
        if len(a[key]) != n:
            raise ValueError(f"items.npz {key} has {len(a[key])} entries for {n} items")
    rows = a["id_row"]
    if n and not (rows.min() >= 0 and rows.max() < n and np.bincount(rows, minlength=n).max() == 1):
        raise ValueError("items.npz id_row is not a permutation of the rows")
    ids = a["id_sorted"]
    if n > 1 and not np.all(ids[1:] > ids[:-1]):
        raise ValueError("items.npz ids are not unique and sorted")
    if n:
        first = ids.view(np.uint8).reshape(n, ids.dtype.itemsize)[:, 0]
        if np.any((first & 0xC0) == 0x80):
            raise ValueError("items.npz ids cut a UTF-8 character")
        _decode(ids.tobytes(), "items.npz ids")  # each id is NUL-padded: a cut character fails here
    _check_offsets(a["title_offsets"], len(a["title_blob"]), n, "title offsets")
    _check_utf8(a["title_blob"], a["title_offsets"], "title offsets")
    n_tags = len(a["tag_offsets"]) - 1
    _check_offsets(a["tag_offsets"], len(a["tag_blob"]), n_tags, "tag offsets")
    _check_utf8(a["tag_blob"], a["tag_offsets"], "tag offsets")
    _check_offsets(a["item_tag_offsets"], len(a["item_tags"]), n, "item tag offsets")
    if len(a["item_tags"]) and not (0 <= a["item_tags"].min() and a["item_tags"].max() < n_tags):
        raise ValueError("items.npz item_tags name tags that are not in the vocabulary")
    position = np.empty(n, np.int64)
    position[a["id_row"]] = np.arange(n)
    tags = StringColumn(a["tag_blob"], a["tag_offsets"])
    return {
        "item_ids": _SortedIds(ids, position),
        "titles": StringColumn(a["title_blob"], a["title_offsets"]),
        "tags": TagColumn(list(tags), a["item_tag_offsets"], a["item_tags"].astype(np.int64)),
        "is_audio": a["is_audio"], "durations": a["duration_s"].astype(np.float64),
        "age_ratings": a["age_rating"].astype(np.int32), "available_from": a["available_from"],
        "available_until": a["available_until"], "index": ItemIndex(ids, a["id_row"]),
        "series_names": list(StringColumn(a["series_blob"], a["series_offsets"])), "series_codes": a["series_code"].astype(np.int32),
        "episodes": a["episode"].astype(np.int32), "content": a["content"].astype(np.float32),
    }


class _SortedIds(RowColumn):
    """Row -> item id, read from the sorted ids."""

    def __init__(self, id_sorted: np.ndarray, position: np.ndarray) -> None:
        self._sorted, self._position = id_sorted, position

    def __len__(self) -> int:
        return len(self._position)

    def _at(self, i: int) -> str:
        return self._sorted[self._position[i]].decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        for raw in self._sorted[self._position]:
            yield raw.decode("utf-8")
