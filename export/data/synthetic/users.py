"""Simulated users: Dirichlet-mixture genre tastes, time-of-day habits, sessions that stay in a
genre or follow a series, skips, likes and dislikes over the 90 days before
:data:`EPOCH_END_S`."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np

from edge.context import hour_weekday
from export.data.contract import Interactions
from export.data.synthetic.catalogue import _STREAM_USER, _Catalogue
from export.data.synthetic.genres import GENRES

#: The simulated history ends here (2026-06-01T00:00:00Z), so it does not depend on the clock.
EPOCH_END_S = int(datetime(2026, 6, 1, tzinfo=timezone.utc).timestamp())
HISTORY_DAYS = 90
MIN_POSITIVE_EVENTS = 5

# Hours (UTC) when each genre is watched or heard more: (peak hour, width h, weight) on top of
# a flat 0.25, so genre and time of day are visibly linked (news in the morning, kids in the
# afternoon, drama late).
_GENRE_HOURS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "classical": ((10, 2, 1.0), (22, 2, 1.5)), "rock": ((17, 3, 1.5),), "electronic": ((22, 2.5, 2.0),),
    "jazz": ((21, 2, 2.0),), "ambient": ((23, 2, 2.0), (6, 1.5, 1.0)), "hiphop": ((17, 3, 1.5),),
    "talk": ((10, 2, 2.0),), "news": ((7.5, 1.2, 4.0), (19, 1, 1.5)), "podcast": ((8, 1.2, 2.5), (17.5, 1.2, 2.0)),
    "sports": ((20, 2, 2.5), (15, 2, 1.0)), "cartoons": ((16, 1.5, 3.0), (8, 1, 1.0)), "drama": ((21, 1.5, 3.0),),
    "nature": ((19, 2.5, 1.5),), "documentary": ((21, 2, 2.0),), "kids": ((16, 1.5, 3.5), (8, 1, 1.5)),
}


def _circular_bump(peak_h: float, width_h: float) -> np.ndarray:
    """Gaussian bump over the 24 hours of a day, wrapping at midnight; shape (24,)."""
    d = np.abs(np.arange(24) + 0.5 - peak_h)
    d = np.minimum(d, 24 - d)
    return np.exp(-0.5 * (d / width_h) ** 2)


_HOUR_AFFINITY = np.array(
    [0.25 + sum(w * _circular_bump(p, s) for p, s, w in _GENRE_HOURS[g]) for g in GENRES]
)  # (n_genres, 24)

# Dirichlet mixture over genres: each user draws an archetype, then tastes from its Dirichlet.
_ARCHETYPES: tuple[dict[str, float], ...] = (
    {"rock": 1, "electronic": 1, "hiphop": 1, "jazz": 0.4, "sports": 0.3},  # music fan
    {"classical": 1, "jazz": 1, "ambient": 1, "nature": 0.5, "documentary": 0.5},  # mellow
    {"news": 1, "talk": 1, "podcast": 1, "documentary": 0.6, "sports": 0.3},  # informed
    {"kids": 1, "cartoons": 1, "nature": 0.6, "classical": 0.2},  # family
    {"sports": 1, "rock": 0.6, "news": 0.5, "hiphop": 0.4},  # sports fan
    {"drama": 1, "documentary": 0.8, "nature": 0.6, "jazz": 0.4, "podcast": 0.3},  # evening viewer
)
_ARCHETYPE_ALPHA = np.array([[0.08 + 1.5 * a.get(g, 0.0) for g in GENRES] for a in _ARCHETYPES])
_HABIT_HOURS = np.array([7.5, 12.5, 16.5, 20.5, 22.5])
_HABIT_WEIGHTS = np.array([0.2, 0.1, 0.2, 0.35, 0.15])
_HABIT_FLOOR = 0.08  # even a strict evening user sometimes turns the TV on at breakfast

_P_CONTINUE_GENRE = 0.7  # next pick in a session stays in the genre
_P_NEXT_IN_GROUP = 0.35  # ... and is the next episode/track of the series/album
_P_EXPLORE = 0.1  # a pick from any genre, usually off-taste: most skips and dislikes
# Watched fraction = sigmoid(gain * affinity + bias + noise); below 0.25 is a skip.
_WATCH_GAIN, _WATCH_BIAS = 0.9, -0.5
_P_LIKE = 0.25  # at most; scaled down for items the user only half likes


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _simulate_user(rng: np.random.Generator, cat: _Catalogue, genre_cdf: list[np.ndarray | None],
                   genre_members: list[np.ndarray], has_items: np.ndarray) -> list[tuple[int, int, str, float]]:
    """One user's history as ``(timestamp, item index, event, value)``, strictly increasing in time."""
    n_genres = len(GENRES)
    archetype = int(rng.integers(len(_ARCHETYPES)))
    taste = rng.dirichlet(_ARCHETYPE_ALPHA[archetype] * rng.uniform(0.7, 1.5))
    taste = 0.97 * taste + 0.03 / n_genres
    log_taste = np.log(taste * n_genres)  # 0 for a genre liked as much as under uniform taste

    n_peaks = int(rng.integers(1, 4))
    peaks = rng.choice(len(_HABIT_HOURS), n_peaks, replace=False, p=_HABIT_WEIGHTS)
    habit = _HABIT_FLOOR + sum(
        _circular_bump(_HABIT_HOURS[p] + rng.normal(0, 0.75), rng.uniform(0.8, 2.0)) for p in peaks
    )
    # A session's opening (hour, genre) is drawn jointly from habit x taste x genre-hour
    # affinity, so a news lover's news sessions drift to the morning even if they mostly
    # watch in the evening.
    opening = habit[:, None] * (taste * has_items)[None, :] * _HOUR_AFFINITY.T  # (24, n_genres)
    opening_cdf = np.cumsum(opening.ravel())

    n_target = int(np.clip(round(rng.lognormal(math.log(45), 0.6)), 8, 300))
    lengths = []
    while sum(lengths) < n_target:
        lengths.append(min(12, 1 + int(rng.poisson(3.5)), n_target - sum(lengths)))
    history_start = EPOCH_END_S - HISTORY_DAYS * 86400
    days = np.sort(rng.integers(0, HISTORY_DAYS - 1, len(lengths)))
    hour_genre = np.searchsorted(opening_cdf, rng.random(len(lengths)) * opening_cdf[-1])
    hours, openers = np.divmod(hour_genre, n_genres)
    starts = history_start + days * 86400 + hours * 3600 + rng.integers(0, 3600, len(lengths))
    order = np.argsort(starts, kind="stable")
    starts, openers = starts[order], openers[order]

    def choose_genre(hour: int) -> int:
        w = taste * _HOUR_AFFINITY[:, hour] * has_items
        return int(np.searchsorted(np.cumsum(w), rng.random() * w.sum()))

    def choose_item(g: int) -> int:
        cdf = genre_cdf[g]
        return int(genre_members[g][np.searchsorted(cdf, rng.random() * cdf[-1])])

    events: list[tuple[int, int, str, float]] = []
    primaries: list[tuple[int, float]] = []  # (index into events, affinity) of play/complete/skip
    clock = -1
    for start, opener, length in zip(starts, openers, np.array(lengths)[order]):
        t = max(int(start), clock + 1800)  # sessions at least half an hour apart
        genre, prev = int(opener), -1
        for j in range(length):
            hour = int(hour_weekday(t)[0])  # UTC hour, bucketed as the device buckets it
            if j > 0 and rng.random() >= _P_CONTINUE_GENRE:
                genre = choose_genre(hour)
            if rng.random() < _P_EXPLORE:
                pick_genre = int(rng.choice(np.flatnonzero(has_items)))
                item = choose_item(pick_genre)
            elif (prev >= 0 and cat.next_in_group[prev] >= 0 and cat.genre[prev] == genre
                  and rng.random() < _P_NEXT_IN_GROUP):
                item = int(cat.next_in_group[prev])
            else:
                item = choose_item(genre)
                if item == prev:
                    item = choose_item(genre)
            affinity = log_taste[cat.genre[item]] + 0.7 * cat.quality[item] + rng.normal(0, 0.6)
            # Rounded first, so the value written and the event kind agree (a skip is < 0.25).
            watched = max(0.001, round(_sigmoid(_WATCH_GAIN * affinity + _WATCH_BIAS + rng.normal(0, 0.8)), 3))
            if watched < 0.25:
                event = "skip"
            elif watched >= 0.9:
                event = "complete"
            else:
                event = "play"
            primaries.append((len(events), affinity))
            events.append((t, item, event, watched))
            # Minutes apart: long items are not followed to the end before the next pick, and
            # a like/dislike lands 5 s after that point, always before the next pick (>= 60 s).
            advance_s = int(min(watched * cat.runtime_s[item], 1500.0))
            if event == "skip" and affinity < -1.0 and rng.random() < 0.3:
                events.append((t + advance_s + 5, item, "dislike", math.nan))
            elif watched >= 0.6 and rng.random() < _P_LIKE * _sigmoid(2.0 * (affinity - 0.5)):
                events.append((t + advance_s + 5, item, "like", math.nan))
            t += advance_s + int(rng.integers(60, 300))
            prev = item
        clock = t

    events = [e for e in events if e[0] < EPOCH_END_S]
    primaries = [p for p in primaries if p[0] < len(events)]
    # Guarantee MIN_POSITIVE_EVENTS: turn the user's best-liked skips into plays.
    positives = sum(e[2] in ("play", "complete", "like") for e in events)
    for idx, _ in sorted(primaries, key=lambda p: -p[1]):
        if positives >= MIN_POSITIVE_EVENTS:
            break
        t, item, event, _value = events[idx]
        if event == "skip":
            events[idx] = (t, item, "play", round(float(rng.uniform(0.3, 0.6)), 3))
            positives += 1
    events = [e for k, e in enumerate(events) if not (e[2] == "dislike" and k > 0 and events[k - 1][2] != "skip")]
    while positives < MIN_POSITIVE_EVENTS:  # only if almost nothing fell inside the window
        favourite = choose_item(int(np.argmax(taste * has_items)))
        events.insert(0, (events[0][0] - 600 if events else EPOCH_END_S - 86400, favourite, "play", 0.8))
        positives += 1
    return events


def _simulate_users(seed: int, cat: _Catalogue, n_users: int) -> Interactions:
    """Every user's history as one chronological log (sorted by timestamp, then user)."""
    n_genres = len(GENRES)
    genre_members = [np.flatnonzero(cat.genre == g) for g in range(n_genres)]
    # Within a genre, picks follow popularity x quality: a long tail of rarely played items.
    weight = cat.popularity * np.exp(0.5 * cat.quality)
    genre_cdf = [np.cumsum(weight[m]) if len(m) else None for m in genre_members]
    has_items = np.array([len(m) > 0 for m in genre_members], dtype=np.float64)
    width = max(4, len(str(n_users)))
    rows = []
    for u in range(n_users):
        rng = np.random.default_rng([seed, _STREAM_USER, u])
        user_id = f"u{u + 1:0{width}d}"
        for t, item, event, value in _simulate_user(rng, cat, genre_cdf, genre_members, has_items):
            rows.append((t, u, user_id, cat.items[item].item_id, event, value))
    rows.sort(key=lambda r: (r[0], r[1]))  # one chronological log, like a real export
    return Interactions.from_rows((uid, iid, t, ev, val) for t, _, uid, iid, ev, val in rows)
