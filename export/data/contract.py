"""The data contract: ``interactions.csv`` and ``items.csv``, loaded and validated.

``interactions.csv``: ``user_id,item_id,timestamp[,event][,value]``. The timestamp is Unix
seconds or ISO 8601; ``event`` is one of :data:`EVENT_KINDS` (default ``play``); ``value`` is a
rating or a watched fraction.

``items.csv``: ``item_id,title[,tags][,kind][,duration_s][,audio][,frames][,description]``
``[,age_rating][,available_from][,available_until][,series_id][,episode]``.
Tags are separated by ``|``; kind is ``audio`` or ``video``; ``audio`` and ``frames`` are paths
relative to a media root (frames: a folder of images or an ``.npy`` of uint8 RGB frames).
``age_rating`` is a minimum viewer age (0-21); ``available_from``/``available_until`` bound the
item's availability window (Unix seconds or ISO 8601, either may be empty). ``series_id`` names
the series an episode belongs to and ``episode`` its number in it (a whole number; "continue
watching" offers the next one), unique within the series.

Every validation error is a :class:`edge.errors.DataError` naming file, line and column.
Writers go through a temporary file and an atomic rename, so a failed write never leaves a
half-written CSV behind.
"""

from __future__ import annotations

import csv
import math
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from edge.atomic import atomic_file
from edge.contract.events import EVENT_KINDS, kind_code
from edge.errors import DataError
from export.data import columnar
from export.data.interactions import INTERACTION_COLUMNS, INTERACTION_REQUIRED, Interactions, parse_timestamp

ITEM_KINDS: tuple[str, ...] = ("audio", "video")

ITEM_COLUMNS = ("item_id", "title", "tags", "kind", "duration_s", "audio", "frames", "description",
                "age_rating", "available_from", "available_until", "series_id", "episode")
MAX_AGE_RATING = 21
ITEM_REQUIRED = ("item_id", "title")


@dataclass(frozen=True)
class Item:
    """One catalogue item. ``audio``/``frames`` are absolute paths once loaded (or None)."""

    item_id: str
    title: str
    tags: tuple[str, ...] = ()
    kind: str = "video"
    duration_s: float | None = None
    audio: Path | None = None
    frames: Path | None = None
    description: str = ""
    age_rating: int | None = None
    available_from: int | None = None
    available_until: int | None = None
    series_id: str | None = None
    episode: int | None = None


@dataclass
class Dataset:
    """A catalogue plus an interaction log, both validated against each other."""

    items: list[Item]
    interactions: Interactions
    media_root: Path | None = None
    name: str = "dataset"
    item_index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.item_index = {it.item_id: i for i, it in enumerate(self.items)}


def _err(path: Path, line: int, column: str | None, msg: str) -> DataError:
    where = f"{path}, line {line}" + (f", column '{column}'" if column else "")
    return DataError(f"{where}: {msg}")


def _records(reader: csv.DictReader, path: Path) -> Iterator[tuple[int, dict]]:
    """``(line number, record)`` for each data row; text that is not UTF-8 or not CSV is a
    :class:`DataError` naming the line."""
    lineno = 1
    rows = iter(reader)
    while True:
        try:
            rec = next(rows)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise _err(path, lineno + 1, None, f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8") from None
        except csv.Error as exc:
            raise _err(path, lineno + 1, None, f"not valid CSV ({exc})") from None
        lineno += 1
        yield lineno, rec


def _open_csv(path: Path, required: Sequence[str], known: Sequence[str]) -> tuple[csv.DictReader, object]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    handle = open(path, newline="", encoding="utf-8-sig")
    reader = csv.DictReader(handle)
    try:
        header = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as exc:
        handle.close()
        raise _err(path, 1, None, f"cannot read the header: not UTF-8 CSV text ({exc}); save the file as UTF-8 CSV") from None
    missing = [c for c in required if c not in header]
    if missing:
        handle.close()
        raise _err(path, 1, missing[0], f"missing required column; header has {header}, expected at least {list(required)}")
    unknown = [c for c in header if c not in known]
    if unknown:
        handle.close()
        raise _err(path, 1, unknown[0], f"unknown column; allowed columns are {list(known)}")
    return reader, handle


def load_interactions(path: str | Path, known_items: set[str] | None = None) -> Interactions:
    """Load and validate an interaction log: ``interactions.csv`` or a Parquet file (``.parquet``
    / ``.pq``) with the same columns.

    Both are read in column batches (pyarrow's streaming CSV reader, Parquet row groups) and
    validated batch by batch, so memory is the encoded columns, never per-row objects. A CSV
    the columnar reader cannot take as it is (ragged rows, bad bytes, a bad value) is re-read
    row by row, which names the first bad line exactly and accepts what the contract accepts.

    :param path: the CSV or Parquet file.
    :param known_items: if given, every ``item_id`` must be in it.
    :returns: :class:`Interactions` with one row per data line, in file order.
    :raises DataError: naming file, line (CSV) or row (Parquet) and column for the first bad row.
    """
    path = Path(path)
    if path.suffix.lower() in columnar.PARQUET_SUFFIXES:
        return columnar.read_parquet_interactions(path, known_items)
    _, handle = _open_csv(path, INTERACTION_REQUIRED, INTERACTION_COLUMNS)  # header errors, exactly
    handle.close()  # type: ignore[attr-defined]
    try:
        return columnar.read_csv_interactions(path, known_items)
    except columnar.NotColumnar:
        return _load_interactions_rows(path, known_items)


def _load_interactions_rows(path: Path, known_items: set[str] | None) -> Interactions:
    """The row-by-row reader: the reference semantics and the exact error messages."""
    reader, handle = _open_csv(path, INTERACTION_REQUIRED, INTERACTION_COLUMNS)
    users: dict[str, int] = {}
    items: dict[str, int] = {}
    cols: dict[str, array] = {"u": array("i"), "i": array("i"), "t": array("q"), "k": array("b"), "v": array("f")}
    codes = {kind: kind_code(kind) for kind in EVENT_KINDS}
    with handle:  # type: ignore[attr-defined]
        for lineno, rec in _records(reader, path):
            if None in rec:
                raise _err(path, lineno, None, f"row has more fields than the header ({len(reader.fieldnames or [])})")
            for col in INTERACTION_REQUIRED:
                if rec.get(col) is None or not rec[col].strip():
                    raise _err(path, lineno, col, "empty value")
            user, item = rec["user_id"].strip(), rec["item_id"].strip()
            try:
                ts = parse_timestamp(rec["timestamp"])
            except ValueError as exc:
                raise _err(path, lineno, "timestamp", f"cannot parse {rec['timestamp']!r}: {exc}") from None
            event = (rec.get("event") or "play").strip() or "play"
            if event not in EVENT_KINDS:
                raise _err(path, lineno, "event", f"unknown event kind {event!r}; expected one of {list(EVENT_KINDS)}")
            raw_value = (rec.get("value") or "").strip()
            value = math.nan
            if raw_value:
                try:
                    value = float(raw_value)
                except ValueError:
                    raise _err(path, lineno, "value", f"not a number: {raw_value!r}") from None
                if not math.isfinite(value):
                    raise _err(path, lineno, "value", f"not a finite number: {raw_value!r}")
            if known_items is not None and item not in known_items:
                raise _err(path, lineno, "item_id", f"item {item!r} is not in the catalogue")
            cols["u"].append(users.setdefault(user, len(users)))
            cols["i"].append(items.setdefault(item, len(items)))
            cols["t"].append(ts)
            cols["k"].append(codes[event])
            cols["v"].append(value)
    # The typecodes are the column dtypes (i: int32, q: int64, b: int8, f: float32).
    arr = {k: np.frombuffer(v, dtype=v.typecode).copy() if len(v) else np.zeros(0, v.typecode) for k, v in cols.items()}
    return Interactions(np.array(list(users), dtype=object), arr["u"], np.array(list(items), dtype=object), arr["i"], arr["t"],
                        arr["k"], arr["v"])


def _resolve_media(path: Path, lineno: int, column: str, raw: str, media_root: Path | None) -> Path:
    if media_root is None:
        raise _err(path, lineno, column, f"media path {raw!r} given but no media root (pass --media-root)")
    rel = Path(raw)
    if rel.is_absolute():
        raise _err(path, lineno, column, f"media path {raw!r} is absolute; it must be relative to the media root {media_root}")
    root = media_root.resolve()
    full = (root / rel).resolve()
    # resolve() follows symlinks, so a link pointing outside the root is caught too.
    if not full.is_relative_to(root):
        raise _err(path, lineno, column, f"media path {raw!r} escapes the media root {root}")
    if not full.exists():
        raise _err(path, lineno, column, f"media file {raw!r} not found under {root}")
    return full


def load_items(path: str | Path, media_root: str | Path | None = None) -> list[Item]:
    """Load and validate ``items.csv``.

    :param path: the CSV file.
    :param media_root: folder that ``audio``/``frames`` paths are relative to; defaults to the
        CSV's folder.
    :returns: items in file order.
    :raises DataError: naming file, line and column for the first bad row.
    """
    path = Path(path)
    root = Path(media_root) if media_root is not None else path.parent
    reader, handle = _open_csv(path, ITEM_REQUIRED, ITEM_COLUMNS)
    items: list[Item] = []
    seen: dict[str, int] = {}
    episodes_seen: dict[tuple[str, int], int] = {}
    with handle:  # type: ignore[attr-defined]
        for lineno, rec in _records(reader, path):
            if None in rec:
                raise _err(path, lineno, None, f"row has more fields than the header ({len(reader.fieldnames or [])})")
            item_id = (rec.get("item_id") or "").strip()
            if not item_id:
                raise _err(path, lineno, "item_id", "empty value")
            if item_id in seen:
                raise _err(path, lineno, "item_id", f"duplicate item id {item_id!r} (first on line {seen[item_id]})")
            seen[item_id] = lineno
            title = (rec.get("title") or "").strip()
            if not title:
                raise _err(path, lineno, "title", "empty value")
            kind = (rec.get("kind") or "video").strip() or "video"
            if kind not in ITEM_KINDS:
                raise _err(path, lineno, "kind", f"unknown kind {kind!r}; expected one of {list(ITEM_KINDS)}")
            duration = None
            raw_dur = (rec.get("duration_s") or "").strip()
            if raw_dur:
                try:
                    duration = float(raw_dur)
                except ValueError:
                    raise _err(path, lineno, "duration_s", f"not a number: {raw_dur!r}") from None
                if not math.isfinite(duration) or duration < 0:
                    raise _err(path, lineno, "duration_s", f"expected a duration >= 0 s, got {raw_dur!r}")
            media: dict[str, Path | None] = {}
            for col in ("audio", "frames"):
                raw = (rec.get(col) or "").strip()
                media[col] = _resolve_media(path, lineno, col, raw, root) if raw else None
            tags = tuple(t.strip() for t in (rec.get("tags") or "").split("|") if t.strip())
            age = None
            raw_age = (rec.get("age_rating") or "").strip()
            if raw_age:
                if not raw_age.isdigit() or int(raw_age) > MAX_AGE_RATING:
                    raise _err(path, lineno, "age_rating", f"expected a whole number of years 0..{MAX_AGE_RATING}, got {raw_age!r}")
                age = int(raw_age)
            window: dict[str, int | None] = {}
            for col in ("available_from", "available_until"):
                raw = (rec.get(col) or "").strip()
                try:
                    window[col] = parse_timestamp(raw) if raw else None
                except ValueError as exc:
                    raise _err(path, lineno, col, f"cannot parse {raw!r}: {exc}") from None
            if None not in window.values() and window["available_until"] <= window["available_from"]:  # type: ignore[operator]
                raise _err(path, lineno, "available_until", "the availability window ends before it starts")
            series = (rec.get("series_id") or "").strip() or None
            episode = None
            raw_ep = (rec.get("episode") or "").strip()
            if raw_ep:
                if not raw_ep.isdigit() or int(raw_ep) > 2**31 - 1:
                    raise _err(path, lineno, "episode", f"expected a whole episode number >= 0, got {raw_ep!r}")
                if series is None:
                    raise _err(path, lineno, "episode", "an episode number needs a series_id")
                episode = int(raw_ep)
                first = episodes_seen.setdefault((series, episode), lineno)
                if first != lineno:
                    raise _err(path, lineno, "episode", f"episode {episode} of series {series!r} is already on line {first}")
            items.append(
                Item(item_id, title, tags, kind, duration, media["audio"], media["frames"], (rec.get("description") or "").strip(),
                     age, window["available_from"], window["available_until"], series, episode)
            )
    return items


def load_dataset(interactions: str | Path, items: str | Path, media_root: str | Path | None = None) -> Dataset:
    """Load both files and check every interaction names a catalogue item."""
    item_list = load_items(items, media_root)
    inter = load_interactions(interactions, known_items={it.item_id for it in item_list})
    root = Path(media_root) if media_root is not None else Path(items).parent
    return Dataset(item_list, inter, root, name=Path(interactions).parent.name or "dataset")


def _atomic_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def write_interactions(path: str | Path, inter: Interactions) -> None:
    """Write ``interactions.csv`` atomically (temporary file, fsync, rename)."""

    def rows():
        for u, i, t, e, v in zip(inter.user_ids, inter.item_ids, inter.timestamps, inter.events, inter.values):
            yield (u, i, int(t), e, "" if math.isnan(v) else f"{v:g}")

    _atomic_csv(Path(path), INTERACTION_COLUMNS, rows())


def write_items(path: str | Path, items: Sequence[Item], media_root: str | Path) -> None:
    """Write ``items.csv`` atomically, with media paths relative to ``media_root``."""
    root = Path(media_root).resolve()

    def rel(p: Path | None) -> str:
        return "" if p is None else Path(p).resolve().relative_to(root).as_posix()

    rows = (
        (
            it.item_id,
            it.title,
            "|".join(it.tags),
            it.kind,
            "" if it.duration_s is None else f"{it.duration_s:.3f}",
            rel(it.audio),
            rel(it.frames),
            it.description,
            "" if it.age_rating is None else it.age_rating,
            "" if it.available_from is None else it.available_from,
            "" if it.available_until is None else it.available_until,
            it.series_id or "",
            "" if it.episode is None else it.episode,
        )
        for it in items
    )
    _atomic_csv(Path(path), ITEM_COLUMNS, rows)
