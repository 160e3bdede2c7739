"""Synthetic interaction logs at scale, without media: for measuring how the server's data path
(load, split, training) grows with millions of events.

SYNTHETIC, like the rest of this package, and built for shape, not quality: users have a home
genre and a long-tailed activity, items a Zipf popularity within their genre, events the mix
of a TV log (plays, completes, skips, likes, dislikes) in sessions over 90 days. Everything is
vectorised (no per-event Python), so 20M events take seconds to draw; the log is written as
Parquet (dictionary-encoded ids) or CSV through pyarrow, in chronological order like a real
export. Same seed, same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.contract.events import kind_code
from export.data.contract import Interactions, Item, write_items
from export.data.synthetic.genres import GENRES
from export.data.synthetic.users import EPOCH_END_S, HISTORY_DAYS

#: Event mix: kind, probability, and the watched-fraction range (None: no value).
_MIX = (("play", 0.72, (0.25, 0.9)), ("complete", 0.12, (0.9, 1.0)), ("skip", 0.09, (0.0, 0.25)),
        ("like", 0.04, None), ("dislike", 0.03, None))
_HOME_GENRE_SHARE = 0.7
FORMATS = ("parquet", "csv")


@dataclass
class ScaleData:
    """What :func:`generate_scale` wrote."""

    items_csv: Path
    interactions: Path
    n_users: int
    n_items: int
    n_events: int


def _items(rng: np.random.Generator, n_items: int) -> tuple[list[Item], np.ndarray, np.ndarray]:
    genre = rng.integers(0, len(GENRES), size=n_items)
    width = len(str(n_items))
    items = [Item(f"i{j:0{width}d}", f"{GENRES[g].title()} title {j}", (GENRES[g],), "audio" if j % 3 == 0 else "video",
                  float(120 + (j * 7919) % 3600)) for j, g in enumerate(genre.tolist())]
    # Zipf popularity within each genre: rank 1 is the genre's hit.
    popularity = np.empty(n_items)
    for g in range(len(GENRES)):
        members = np.flatnonzero(genre == g)
        popularity[members] = 1.0 / (1.0 + rng.permutation(len(members))) ** 0.9
    return items, genre, popularity


def _pick_items(rng: np.random.Generator, genre: np.ndarray, popularity: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """One item per entry of ``wanted`` (a genre per event), by popularity within the genre:
    one search over the genres' cumulative popularity laid end to end (genre g in [g, g+1))."""
    order = np.argsort(genre, kind="stable")
    g_sorted = genre[order]
    weight = popularity[order]
    totals = np.bincount(g_sorted, weights=weight, minlength=len(GENRES))
    starts = np.searchsorted(g_sorted, np.arange(len(GENRES)))
    within = np.cumsum(weight) - np.repeat(np.cumsum(totals) - totals, np.bincount(g_sorted, minlength=len(GENRES)))
    cdf = g_sorted + within / np.maximum(totals[g_sorted], 1e-300)
    present = np.flatnonzero(totals > 0)
    wanted = present[np.searchsorted(present, wanted) % len(present)]  # a genre with no items: the next one
    pos = np.searchsorted(cdf, wanted + rng.random(len(wanted)) * (1 - 1e-12), side="right")
    pos = np.clip(pos, starts[wanted], starts[wanted] + np.bincount(g_sorted, minlength=len(GENRES))[wanted] - 1)
    return order[pos]


def simulate(seed: int, n_users: int, n_items: int, n_events: int) -> tuple[list[Item], Interactions]:
    """The catalogue and a chronological log of ``n_events`` events (every user has >= 2)."""
    if n_users < 1 or n_items < 2 or n_events < 2 * n_users:
        raise ValueError(f"need users >= 1, items >= 2 and events >= 2 x users (got {n_users}, {n_items}, {n_events})")
    rng = np.random.default_rng(seed)
    items, genre, popularity = _items(rng, n_items)
    # Activity: long-tailed, every user at least two events.
    activity = rng.lognormal(0.0, 1.0, size=n_users)
    counts = 2 + rng.multinomial(n_events - 2 * n_users, activity / activity.sum())
    users = np.repeat(np.arange(n_users, dtype=np.int32), counts)
    home = rng.integers(0, len(GENRES), size=n_users)
    wanted = np.where(rng.random(n_events) < _HOME_GENRE_SHARE, home[users], rng.integers(0, len(GENRES), size=n_events))
    item_rows = _pick_items(rng, genre, popularity, wanted).astype(np.int32)
    # Time: each user starts somewhere in the window; gaps are minutes within a session and
    # a day or so between sessions.
    span = HISTORY_DAYS * 86_400
    start = EPOCH_END_S - span + rng.integers(0, span // 2, size=n_users)
    gaps = np.where(rng.random(n_events) < 0.8, rng.exponential(1_500, n_events), rng.exponential(86_400, n_events))
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    gaps[first] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[first], counts)
    timestamps = np.minimum(start[users] + elapsed.astype(np.int64), EPOCH_END_S - 1)
    probs = np.array([p for _, p, _ in _MIX])
    which = rng.choice(len(_MIX), size=n_events, p=probs / probs.sum())
    values = np.full(n_events, np.nan, dtype=np.float32)
    for j, (_, _, rng_range) in enumerate(_MIX):
        if rng_range is not None:
            sel = which == j
            values[sel] = rng.uniform(*rng_range, size=int(sel.sum()))
    kinds = np.array([kind_code(k) for k, _, _ in _MIX], dtype=np.int8)[which]
    order = np.lexsort((users, timestamps))  # one chronological log; a user's own order is kept
    width = len(str(n_users))
    user_vocab = np.array([f"u{u:0{width}d}" for u in range(n_users)], dtype=object)
    item_vocab = np.array([it.item_id for it in items], dtype=object)
    inter = Interactions(user_vocab, users[order], item_vocab, item_rows[order], timestamps[order], kinds[order], values[order])
    return items, inter


def generate_scale(out: str | Path, n_users: int, n_items: int, n_events: int, seed: int = 0,
                   fmt: str = "parquet") -> ScaleData:
    """Write ``items.csv`` and ``interactions.<parquet|csv>`` under ``out``.

    :raises ValueError: on an unknown format or sizes that cannot hold two events per user.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items, inter = simulate(seed, n_users, n_items, n_events)
    write_items(out / "items.csv", items, out)
    path = out / f"interactions.{fmt}"
    if fmt == "parquet":
        from export.data.columnar import write_parquet_interactions

        write_parquet_interactions(path, inter)
    else:
        from export.data.columnar import write_csv_interactions

        write_csv_interactions(path, inter)
    return ScaleData(out / "items.csv", path, n_users, n_items, n_events)
