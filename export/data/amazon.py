"""Amazon "Sports and Outdoors" adapter: read the S3-Rec sequential release into the data contract.

The Amazon review data (McAuley et al., UCSD) is for research use: read it from where it lies
(``shared/datasets/amazon-sports/``), never copy it into the repository or a committed bundle.
There is deliberately no converter to CSV here.

Files read:

* ``Sports_and_Outdoors.txt``: one user per line, ``user item item ...`` (integer ids, separated
  by whitespace), items in the order of the user's reviews, earliest first. Each item becomes
  one ``rate`` interaction (a review; the release carries no rating, so ``value`` is NaN).
* ``Sports_and_Outdoors_item2attributes.json`` (optional): ``{"item id": [attribute id, ...]}``
  (brand and categories) -> the item's tags, as the attribute ids' decimal strings in file
  order without repeats. Items it lacks get no tags.

Timestamps: the release has none; the position in the line is the order. Event ``p``
(0-based) of every user gets ``BASE_TIMESTAMP + p`` seconds, so each user's events are strictly
increasing in time and any stable sort by time keeps the file order. These times carry no
information: every user's history starts at the same instant, and the hour and weekday of
every event are the same (those of ``BASE_TIMESTAMP``), so time-of-day contexts and
time-based popularity are meaningless on this dataset.

Items: every item named in the (kept) lines, ordered by integer id, kind ``video`` (the
contract's default; the products are neither audio nor video and have no media), a constant
title (:data:`TITLE`: the release has no titles, and an id in the title would put the ids'
character n-grams into the text features; ids are numbered by first appearance, so nearby ids
are items of the same users), no description: the text features come from the tags alone.

Usage::

    dataset = load_amazon("../shared/datasets/amazon-sports")
    small = load_amazon("../shared/datasets/amazon-sports", limit_users=1000)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edge.contract.events import kind_code
from edge.errors import DataError
from export.data.contract import Dataset, Interactions, Item

__all__ = ["BASE_TIMESTAMP", "INTERACTIONS_FILE", "ATTRIBUTES_FILE", "TITLE", "load_amazon"]

INTERACTIONS_FILE = "Sports_and_Outdoors.txt"
ATTRIBUTES_FILE = "Sports_and_Outdoors_item2attributes.json"
#: Unix seconds of every user's first event (2001-09-09 01:46:40 UTC); event p is this + p.
BASE_TIMESTAMP = 1_000_000_000
#: The title of every item (the release has none; see the module docstring).
TITLE = "Sports and Outdoors product"


def _bad_token(lines: list[str]) -> DataError:
    """The first line holding a token that is not a non-negative integer (slow path: errors only)."""
    for lineno, line in enumerate(lines, start=1):
        for token in line.split():
            if not token.isdigit():
                return DataError(f"line {lineno}: {token!r} is not an integer id")
    return DataError("a token is not an integer id")  # unreachable when called after a failed parse


def _read_lines(path: Path, limit_users: int | None) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """``(user_ids, line_of_event, item_of_event, position_of_event)`` of the kept lines.

    ``user_ids`` in file order (str); per event, the index of its user, its integer item id and
    its 0-based position in the user's line.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected the amazon-sports folder with {INTERACTIONS_FILE})")
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not ASCII text ({exc})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if limit_users is not None:
        if limit_users < 1:
            raise ValueError(f"limit_users must be >= 1, got {limit_users}")
        lines = lines[:limit_users]
    if not lines:
        raise DataError(f"{path}: no users")
    split = [line.split() for line in lines]
    counts = np.array([len(t) - 1 for t in split], dtype=np.int64)  # items per line
    try:
        values = np.array([tok for t in split for tok in t], dtype=np.int64)
    except (ValueError, OverflowError):
        raise DataError(f"{path}, {_bad_token(lines)}") from None
    if (values < 0).any():
        raise DataError(f"{path}, {_bad_token(lines)}")
    starts = np.concatenate([[0], np.cumsum(counts + 1)[:-1]]).astype(np.int64)
    users = [str(u) for u in values[starts].tolist()]
    seen: dict[str, int] = {}
    for lineno, user in enumerate(users, start=1):
        if user in seen:
            raise DataError(f"{path}, line {lineno}: duplicate user {user} (first on line {seen[user]})")
        seen[user] = lineno
    is_item = np.ones(len(values), dtype=bool)
    is_item[starts] = False
    line_of = np.repeat(np.arange(len(lines), dtype=np.int64), counts)
    position = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return users, line_of, values[is_item], position


def _read_attributes(path: Path) -> dict[str, tuple[str, ...]]:
    """Tags per item id from the attributes JSON ({} when the file is absent)."""
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a JSON object of item id -> attribute ids ({exc})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object of item id -> attribute ids, found {type(raw).__name__}")
    tags: dict[str, tuple[str, ...]] = {}
    for key, attrs in raw.items():
        if not isinstance(attrs, list) or not all(isinstance(a, int) and not isinstance(a, bool) for a in attrs):
            raise DataError(f"{path}: item {key!r}: expected a list of integer attribute ids, found {attrs!r}")
        tags[str(int(key)) if str(key).strip().isdigit() else str(key)] = tuple(dict.fromkeys(str(a) for a in attrs))
    return tags


def load_amazon(folder: str | Path, limit_users: int | None = None) -> Dataset:
    """Read the amazon-sports folder into a :class:`~export.data.contract.Dataset`.

    :param folder: the folder holding ``Sports_and_Outdoors.txt`` and (optionally)
        ``Sports_and_Outdoors_item2attributes.json``.
    :param limit_users: keep only the first this many users (lines) of the file; the catalogue
        is then the items those users name. None keeps everyone.
    :returns: a Dataset named after the folder: one ``rate`` interaction per item in a line
        (``value`` NaN, timestamp ``BASE_TIMESTAMP`` + its 0-based position in the line, in
        seconds), items as the module docstring describes, ``media_root`` None. The full file
        (35,598 users, 18,357 items, 296,337 interactions) loads in about a second.
    :raises DataError: naming the file (and line): a missing file, a token that is not a
        non-negative integer, a duplicate user, a malformed attributes file.
    :raises ValueError: if ``limit_users < 1``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (expected the amazon-sports folder with {INTERACTIONS_FILE})")
    users, line_of, item_values, position = _read_lines(folder / INTERACTIONS_FILE, limit_users)
    tags = _read_attributes(folder / ATTRIBUTES_FILE)
    catalogue, item_codes = np.unique(item_values, return_inverse=True)
    catalogue_ids = [str(int(i)) for i in catalogue]
    items = [Item(iid, TITLE, tags.get(iid, ()), "video") for iid in catalogue_ids]
    n = len(item_values)
    interactions = Interactions(
        np.array(users, dtype=object),
        np.asarray(line_of, dtype=np.int32),
        np.array(catalogue_ids, dtype=object),
        item_codes.ravel().astype(np.int32),
        BASE_TIMESTAMP + np.asarray(position, dtype=np.int64),
        np.full(n, kind_code("rate"), dtype=np.int8),
        np.full(n, np.nan, dtype=np.float32),
    )
    return Dataset(items, interactions, None, name=folder.name or "amazon")
