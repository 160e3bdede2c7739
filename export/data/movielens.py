"""MovieLens-100K adapter: read an ``ml-100k`` folder into the data contract.

MovieLens is under the GroupLens research-use licence: read it from where it lies, never copy
it into a bundle or the repository. :func:`convert_movielens` writes the contract CSVs for a
user's own experiments.

Files read:

* ``u.data``: tab-separated ``user item rating timestamp`` -> one ``rate`` interaction per line,
  ``value`` = the rating.
* ``u.item``: latin-1, ``|``-separated ``id|title|release date|video release date|IMDb URL|``
  followed by one 0/1 flag per genre -> one ``video`` item per line, tags = the genres flagged.
* ``u.genre`` (optional): ``name|index`` per line; the standard 19 names are used when absent.

Usage::

    dataset = load_movielens("../shared/datasets/movielens-100k")
    interactions_csv, items_csv = convert_movielens("ml-100k", "out/")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.errors import DataError
from export.data.contract import (
    Dataset,
    Interactions,
    Item,
    write_interactions,
    write_items,
)

__all__ = ["GENRES", "load_movielens", "convert_movielens"]

#: The 19 genres of ml-100k in flag order, used when ``u.genre`` is absent.
GENRES: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip

# Fields of u.item before the genre flags: id, title, release date, video release date, URL.
_ITEM_FIXED_FIELDS = 5
# Same bounds as the contract's timestamps: 1970-01-01 .. 2100-01-01.
_MAX_TS = 4_102_444_800


def _err(path: Path, line: int, msg: str) -> DataError:
    return DataError(f"{path}, line {line}: {msg}")


def _read_lines(path: Path, encoding: str) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected a MovieLens-100K folder with u.data and u.item)")
    try:
        return path.read_text(encoding=encoding).splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not {encoding} text ({exc})") from None


def _parse_int(path: Path, lineno: int, field: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _err(path, lineno, f"{field} is not an integer: {text!r}") from None


def _read_genres(path: Path) -> tuple[str, ...]:
    """Genre names in flag order from ``u.genre`` (``name|index``), or :data:`GENRES` if absent."""
    if not path.is_file():
        return GENRES
    by_index: dict[int, str] = {}
    for lineno, line in enumerate(_read_lines(path, "latin-1"), start=1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 2:
            raise _err(path, lineno, f"expected 2 '|'-separated fields (name|index), found {len(fields)}")
        name, index = fields[0].strip(), _parse_int(path, lineno, "genre index", fields[1].strip())
        if not name:
            raise _err(path, lineno, "empty genre name")
        if index in by_index:
            raise _err(path, lineno, f"duplicate genre index {index}")
        by_index[index] = name
    if sorted(by_index) != list(range(len(by_index))) or not by_index:
        raise DataError(f"{path}: genre indices must be 0..n-1 without gaps, found {sorted(by_index)}")
    return tuple(by_index[i] for i in range(len(by_index)))


def _read_items(path: Path, genres: tuple[str, ...]) -> list[Item]:
    n_fields = _ITEM_FIXED_FIELDS + len(genres)
    items: list[Item] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(_read_lines(path, "latin-1"), start=1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != n_fields:
            expected = f"{n_fields} '|'-separated fields (5 + {len(genres)} genre flags)"
            raise _err(path, lineno, f"expected {expected}, found {len(fields)}")
        item_id = str(_parse_int(path, lineno, "item id", fields[0].strip()))
        if item_id in seen:
            raise _err(path, lineno, f"duplicate item id {item_id} (first on line {seen[item_id]})")
        seen[item_id] = lineno
        title = fields[1].strip()
        if not title:
            raise _err(path, lineno, "empty title")
        flags = [f.strip() for f in fields[_ITEM_FIXED_FIELDS:]]
        bad = next((f for f in flags if f not in ("0", "1")), None)
        if bad is not None:
            raise _err(path, lineno, f"genre flag must be 0 or 1, found {bad!r}")
        tags = tuple(g for g, f in zip(genres, flags) if f == "1")
        released = fields[2].strip()
        items.append(Item(item_id, title, tags, "video", None, None, None, f"released {released}" if released else ""))
    if not items:
        raise DataError(f"{path}: no items")
    return items


def _read_ratings(path: Path, known_items: set[str]) -> Interactions:
    users: list[str] = []
    items: list[str] = []
    timestamps: list[int] = []
    ratings: list[float] = []
    for lineno, line in enumerate(_read_lines(path, "latin-1"), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 4:
            expected = "4 tab-separated fields (user item rating timestamp)"
            raise _err(path, lineno, f"expected {expected}, found {len(fields)}")
        user = _parse_int(path, lineno, "user id", fields[0].strip())
        item = str(_parse_int(path, lineno, "item id", fields[1].strip()))
        try:
            rating = float(fields[2])
        except ValueError:
            raise _err(path, lineno, f"rating is not a number: {fields[2]!r}") from None
        if not np.isfinite(rating):
            raise _err(path, lineno, f"rating is not a finite number: {fields[2]!r}")
        ts = _parse_int(path, lineno, "timestamp", fields[3].strip())
        if not 0 <= ts < _MAX_TS:
            raise _err(path, lineno, f"timestamp {ts} is outside 1970..2100 (expected Unix seconds)")
        if item not in known_items:
            raise _err(path, lineno, f"item {item} is not in u.item")
        users.append(str(user))
        items.append(item)
        timestamps.append(ts)
        ratings.append(rating)
    n = len(users)
    return Interactions.from_columns(users, items, timestamps, np.full(n, "rate", dtype=object), ratings)


def load_movielens(folder: str | Path) -> Dataset:
    """Read a MovieLens-100K folder into a :class:`~export.data.contract.Dataset`.

    :param folder: the ``ml-100k`` folder holding ``u.data``, ``u.item`` and (optionally)
        ``u.genre``.
    :returns: a Dataset named after the folder: items in ``u.item`` order (kind ``video``, tags
        = genre names, description = ``"released <date>"``, no media), and one ``rate``
        interaction per ``u.data`` line with ``value`` = the rating (1..5) and Unix-second
        timestamps. ``media_root`` is None.
    :raises DataError: naming the file and line: a missing file, a wrong field count, a
        non-integer id or timestamp, a bad genre flag, a duplicate item id, or a rating for an
        item that ``u.item`` lacks.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (expected a MovieLens-100K folder with u.data and u.item)")
    genres = _read_genres(folder / "u.genre")
    items = _read_items(folder / "u.item", genres)
    interactions = _read_ratings(folder / "u.data", {it.item_id for it in items})
    return Dataset(items, interactions, None, name=folder.name or "movielens")


def convert_movielens(folder: str | Path, out_dir: str | Path) -> tuple[Path, Path]:
    """Convert a MovieLens-100K folder into ``interactions.csv`` and ``items.csv``.

    The output is under the GroupLens research-use licence like its input: keep it out of
    bundles and repositories.

    :param folder: the ``ml-100k`` folder.
    :param out_dir: folder to write into (created if needed); it is also the media root.
    :returns: ``(interactions_csv, items_csv)`` paths.
    :raises DataError: as :func:`load_movielens`.
    """
    dataset = load_movielens(folder)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    interactions_csv, items_csv = out / "interactions.csv", out / "items.csv"
    write_items(items_csv, dataset.items, media_root=out)
    write_interactions(interactions_csv, dataset.interactions)
    return interactions_csv, items_csv
