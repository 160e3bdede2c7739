"""A home screen: titled rows, each explained, no item in two rows.

*Continue watching* (started, not finished; the next episode of a series the profile is
following), *Because you watched X* (one row per recent anchor), *Popular now* (the bundle's
priors for the hour and device), *New for you* (availability started recently, ranked for the
profile) and *Something different* (good items whose tags the profile has never played).
Every row sees only what :func:`~edge.ranking.rank` would allow (age limit, availability,
device kind, finished/skipped/blocked items), so a kid profile's screen is a kid's screen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Sequence

import numpy as np

from edge.context import Context
from edge.contract.events import NEGATIVE_KINDS
from edge.ranking.catalogue import Catalogue
from edge.ranking.config import Recommendation
from edge.ranking.filters import RowFilters, catalogue_rows, row_of
from edge.ranking.priors import prior_scores
from edge.ranking.rank import Scorer, catalogue_recommendation, exploration_seed
from edge.ranking.scoring import top_k
from edge.ranking.user import UserState

__all__ = ["HomeConfig", "Row", "HomeIndex", "home_rows"]

DAY_S = 86_400.0
_DEVICE_WORDS = {"tv": "TVs", "speaker": "speakers"}


@dataclass(frozen=True)
class HomeConfig:
    """How the home screen is cut.

    ``per_row``: items per row. ``anchors``: "Because you watched" rows (one per distinct
    recent positive item). ``finished_fraction``: a play at or past this watched fraction
    counts as finished. ``new_days``: an item is new for this many days after its
    availability starts. ``pool``: how far down the profile's ranking "Something different"
    looks for items with unfamiliar tags.
    """

    per_row: int = 10
    anchors: int = 2
    finished_fraction: float = 0.9
    new_days: float = 14.0
    pool: int = 2000

    def __post_init__(self) -> None:
        if self.per_row < 1 or self.anchors < 0 or self.pool < 1 or not self.new_days > 0:
            raise ValueError("per_row and pool must be >= 1, anchors >= 0 and new_days > 0")
        if not 0.0 < self.finished_fraction <= 1.0:
            raise ValueError(f"finished_fraction must be in (0, 1], got {self.finished_fraction}")


@dataclass(frozen=True)
class Row:
    """One row of the home screen: ``kind`` (``continue``, ``because``, ``popular``, ``new``,
    ``different``), the title shown, why the row is there, and its items best first."""

    kind: str
    title: str
    reason: str
    items: list[Recommendation] = field(default_factory=list)


class HomeIndex:
    """What the home screen looks up in a catalogue, built once per catalogue: each series' rows
    in episode order, and the rows by availability start (for "new")."""

    def __init__(self, series_codes: np.ndarray, episodes: np.ndarray, available_from: np.ndarray) -> None:
        start = np.asarray(available_from, np.float64)
        self._by_start = np.argsort(start, kind="stable")
        self._starts = start[self._by_start]
        codes = np.asarray(series_codes, np.int64)
        eps = np.asarray(episodes, np.int64)
        order = np.lexsort((eps, codes))
        order = order[codes[order] >= 0]
        self.rows, self._codes, self.episodes = order, codes[order], eps[order]
        self.code_of = codes

    @classmethod
    def of(cls, catalogue: Catalogue) -> "HomeIndex":
        items = catalogue.items
        return cls(items.series_codes, items.episodes, catalogue.available_from)  # type: ignore[attr-defined]

    def started(self, after: float, until: float) -> np.ndarray:
        """Rows whose availability started in ``(after, until]``."""
        lo, hi = np.searchsorted(self._starts, [after, until], side="right")
        return self._by_start[lo:hi]

    def episodes_of(self, code: int) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, episode numbers)`` of series ``code``, in episode order."""
        lo, hi = np.searchsorted(self._codes, [code, code + 1])
        return self.rows[lo:hi], self.episodes[lo:hi]


def _verb(catalogue: Catalogue, row: int) -> str:
    return "listened to" if catalogue.items.is_audio[row] else "watched"


def continue_watching(catalogue: Catalogue, series: HomeIndex, events: Sequence, allowed: np.ndarray, finished: float,
                      limit: int) -> list[tuple[int, str]]:
    """``(row, reason)`` of what the profile started and did not finish, newest first, and for
    each series it is following the next episode it has never played (skipping those the
    request may not show).

    An item's newest event decides: a play with a watched fraction below ``finished`` is
    unfinished; ``complete``, a play past ``finished``, or a positive event without a fraction
    (a like, a rating) means it was seen, and its series is followed from it.

    :param events: the profile's recent events, newest first.
    :param allowed: bool per catalogue row: may the request show it.
    """
    latest: dict[int, object] = {}
    for e, row in zip(events, row_of(catalogue, [e.item_id for e in events]).tolist()):  # one search for all
        if row >= 0 and row not in latest:
            latest[row] = e
    out: list[tuple[int, str]] = []
    taken: set[int] = set()
    followed: set[int] = set()
    for row, e in latest.items():
        if len(out) >= limit:
            break
        kind, value = e.kind, e.value  # type: ignore[attr-defined]
        if kind in NEGATIVE_KINDS or kind == "search":
            continue
        fraction = value if kind in ("play", "complete") and value is not None and 0.0 <= value <= 1.0 else None
        if kind == "play" and fraction is not None and fraction < finished:
            if fraction > 0.0 and allowed[row] and row not in taken:
                out.append((row, f"{int(fraction * 100)}% {_verb(catalogue, row)}; pick up where you left off"))
                taken.add(row)
            continue
        code = int(series.code_of[row])
        if code < 0 or code in followed:
            continue
        followed.add(code)
        rows, eps = series.episodes_of(code)
        after = rows[eps > int(catalogue.items.episodes[row])]  # type: ignore[attr-defined]
        nxt = next((int(r) for r in after if allowed[r] and int(r) not in latest and int(r) not in taken), None)
        if nxt is not None:
            out.append((nxt, f"next episode (episode {int(catalogue.items.episodes[nxt])}) after {catalogue.items.titles[row]}"))  # type: ignore[attr-defined]
            taken.add(nxt)
    return out


def home_rows(catalogue: Catalogue, scorer: Scorer, user: UserState, events: Sequence, context: Context,
              config: HomeConfig | None = None, filters: RowFilters | None = None, index: HomeIndex | None = None,
              now_s: float | None = None, timings: dict[str, float] | None = None) -> list[Row]:
    """The home screen for ``user`` in ``context``: the rows that have items, in screen order.

    :param events: the profile's recent events, newest first (for *Continue watching*).
    :param index: the catalogue's :class:`HomeIndex`, kept between requests (default: built for this one).
    :param now_s: Unix s deciding availability and what is new (default: the context's time).
    :param timings: when given, ``home_s`` is written into it.
    """
    t0 = time.perf_counter()
    cfg = config or HomeConfig()
    filters = filters or RowFilters(catalogue)
    items = catalogue.items
    index = index or HomeIndex.of(catalogue)
    if now_s is None:
        now_s = context.timestamp if context.timestamp is not None else time.time()
    n = len(items.item_ids)
    allowed = filters.bias(context, user.age_limit, now_s) == 0
    gone_rows = user.gone_rows if user.gone_rows is not None else catalogue_rows(catalogue, user.gone)
    # One mask for every row after the first: each row's picks are refused to the rows below it.
    free = filters.bias_without(context, user.age_limit, now_s, gone_rows).copy()
    rows: list[Row] = []

    def add(kind: str, title: str, reason: str, picked: list[tuple[int, float, str]]) -> None:
        if picked:
            free[[r for r, _, _ in picked]] = -np.inf
            rows.append(Row(kind, title, reason, [catalogue_recommendation(catalogue, r, s, why) for r, s, why in picked]))

    resume = continue_watching(catalogue, index, events, allowed, cfg.finished_fraction, cfg.per_row)
    add("continue", "Continue watching", "started and not finished, and the next episode of what you follow",
        [(r, 1.0 - j / max(len(resume), 1), why) for j, (r, why) in enumerate(resume)])

    # One full scoring: anchors and "something different" re-rank the profile's top ``pool``.
    personal = scorer.scores(user.vector) if user.vector is not None else None
    pool = top_k(personal, cfg.pool, bias=free) if personal is not None else None
    if pool is not None and len(pool):
        pool_vecs = np.asarray(catalogue.item_embeddings(pool), np.float32).reshape(len(pool), -1)
        anchors = list(dict.fromkeys(reversed(user.history_ids)))[: cfg.anchors]  # newest distinct first
        for anchor in anchors:
            row = catalogue.index.get(anchor)
            if row is None:
                continue
            sims = pool_vecs @ np.asarray(catalogue.item_embeddings(np.array([row])), np.float32).reshape(-1)
            js = top_k(sims.astype(np.float32), cfg.per_row, bias=free[pool])
            title = items.titles[row]
            add("because", f"Because you {_verb(catalogue, row)} {title}", f"items close to {title} in the bundle's item space",
                [(int(pool[j]), float(sims[j]), f"like {title}") for j in js])

    popular = prior_scores(catalogue.priors, n, context)
    picked = top_k(popular, cfg.per_row, bias=free)
    add("popular", "Popular now", f"most played around {context.hour:02d}:00 on {_DEVICE_WORDS.get(context.device, context.device)}",
        [(int(r), float(popular[r]), "popular at this hour") for r in picked])

    start = catalogue.available_from
    fresh = np.sort(index.started(now_s - cfg.new_days * DAY_S, now_s))
    if len(fresh):
        ranked = personal if personal is not None else popular
        sub = np.where(np.isfinite(ranked[fresh]), ranked[fresh], np.float32(-1e30)).astype(np.float32)
        order = fresh[top_k(sub, cfg.per_row, bias=free[fresh])]
        add("new", "New for you", f"available since the last {cfg.new_days:g} days, " + ("ranked for you" if personal is not None else "most played first"),
            [(int(r), float(ranked[r]), "new since " + datetime.fromtimestamp(start[r], timezone.utc).strftime("%d %b")) for r in order])

    add("different", "Something different", "well-liked items with tags you rarely or never play",
        _different(catalogue, filters, user, personal, pool, popular, free, context, cfg))
    if timings is not None:
        timings["home_s"] = time.perf_counter() - t0
    return rows


def _different(catalogue: Catalogue, filters: RowFilters, user: UserState, personal: np.ndarray | None, pool: np.ndarray | None,
               popular: np.ndarray, free: np.ndarray, context: Context, cfg: HomeConfig) -> list[tuple[int, float, str]]:
    """Items whose tags the profile's history carries least (never, where the catalogue has such
    tags), one per leading tag, the best for the profile first among equally unfamiliar ones
    (or, cold, a seeded draw from the most played)."""
    tag_ids = filters.tag_ids
    n = len(catalogue.items.item_ids)
    hist = catalogue_rows(catalogue, user.history_ids)
    known_tags = tag_ids[hist].ravel()
    if personal is not None and pool is not None:
        pool = pool[free[pool] == 0]  # what the rows above took is gone
        scores = personal
    else:
        finite = np.isfinite(popular) & (free == 0)
        pool = np.flatnonzero(finite) if finite.any() else top_k(np.zeros(n, np.float32), cfg.pool, bias=free)
        rng = np.random.default_rng(exploration_seed(user.profile, context))
        pool = pool[rng.permutation(len(pool))]
        scores = np.where(np.isfinite(popular), popular, np.float32(0))
    tags = tag_ids[pool]
    # How often the profile's history carries each of the candidate's tags: least familiar first.
    # One slot past the largest id seen stays 0: padding (-1) reads it.
    size = int(max(tags.max(initial=-1), known_tags.max(initial=-1))) + 2
    familiarity = np.bincount(known_tags[known_tags >= 0], minlength=size)[tags].sum(axis=1)
    out: list[tuple[int, float, str]] = []
    leads: set[int] = set()
    names = catalogue.items.tags
    for j in np.lexsort((np.arange(len(pool)), familiarity)).tolist():
        r, t = int(pool[j]), int(tags[j, 0])
        if t in leads:
            continue
        leads.add(t)
        lead = names[r][0] if names[r] else "untagged"
        out.append((r, float(scores[r]), f"something different: {lead}"))
        if len(out) >= cfg.per_row:
            break
    return out
