"""Who is watching: which household profile a request most likely comes from.

A shared TV often does not know its viewer. :class:`ViewerModel` reads each profile's recent
events once (per history change: cache it by :meth:`HistoryStore.change_token`) and answers
:meth:`ViewerModel.estimate` from the request context and the first items of the session with
a probability per profile.

The model is naive Bayes with smoothing, chosen because a household has a handful of profiles
and a few hundred events each: it needs no training step, no server and no extra files, and
``estimate`` costs O(profiles x session items).

``P(profile | context, session) ∝ P(profile) · P(hour | p) · P(weekday | p) · P(device | p)
· Π_items [P(item | p)^item_weight · Π_tags P(tag | p)^(1/n_tags) · exp(emb_weight · cos)]^session_weight``

- prior: each profile's share of the household's events (add-one).
- hour: the profile's counts per hour, each hour also lending ``hour_spread`` of its count to
  both neighbours (21:00 habits say something about 22:00), plus ``hour_alpha`` per hour.
- weekday, device: counts plus ``alpha`` per value; a device kind no event names gives no
  evidence (every profile the same factor).
- session item: whether the profile's history has it (Dirichlet smoothing towards the
  household's counts with strength ``item_beta``; an item no profile has seen gives no
  identity evidence, since "new to everyone" says nothing about who), its tags (the
  profile's tag distribution smoothed towards the household's with ``tag_gamma``, averaged
  over the item's tags so an item with many tags does not count more), and, with a catalogue
  that has embeddings, the cosine of the item to the profile's history centroid.
  ``session_weight`` < 1 tempers the items: the items of one session are not independent,
  and naive Bayes that treats them as independent is overconfident.

The smoothing strengths are knobs (:class:`ViewerConfig`); ``benchmarks/who_is_watching.py``
chooses them on a validation split of MovieLens households and reports the test split once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from edge.context import DEVICE_KINDS, Context
from edge.contract.events import NEGATIVE_KINDS
from edge.errors import QueryError
from edge.history.events import Event
from edge.history.store import HistoryStore

__all__ = ["ViewerGuess", "ViewerConfig", "ViewerModel", "DEFAULT_WINDOW"]

#: Events read per profile: recent habits matter more than old ones, and reading is bounded.
DEFAULT_WINDOW = 2000


@dataclass(frozen=True)
class ViewerGuess:
    """One candidate viewer. ``probability`` over the household's candidates (they sum to 1);
    ``evidence`` is each source's log-likelihood relative to the candidates' mean (positive:
    it speaks for this profile), ``reason`` the same in words."""

    profile: str
    probability: float
    reason: str = ""
    evidence: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class ViewerConfig:
    """Smoothing strengths and evidence weights of :class:`ViewerModel` (see the module
    docstring). ``hour_alpha``, ``hour_spread``, ``weekday_alpha``, ``tag_gamma``,
    ``item_weight`` and ``session_weight`` are what ``benchmarks/who_is_watching.py`` chose on
    its MovieLens validation households. ``item_weight`` is 0 there because a MovieLens user
    rates a film once, so a session never repeats its viewer's history; raise it where
    rewatching is common (series), once data with rewatches can measure it. ``device_alpha``,
    ``item_beta`` and ``emb_weight`` are not tuned (MovieLens has no device and no embeddings)."""

    hour_alpha: float = 32.0
    hour_spread: float = 1.0
    weekday_alpha: float = 16.0
    device_alpha: float = 2.0
    item_beta: float = 5.0
    item_weight: float = 0.0
    tag_gamma: float = 80.0
    emb_weight: float = 2.0
    session_weight: float = 1.0

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise QueryError(f"ViewerConfig.{name}={value!r}; expected a finite number >= 0")
        for name in ("hour_alpha", "weekday_alpha", "device_alpha", "item_beta", "tag_gamma"):
            if getattr(self, name) == 0:
                raise QueryError(f"ViewerConfig.{name}=0; a smoothing strength must be > 0 (a profile never seen at an hour is not impossible)")


@dataclass
class _Profiles:
    """What the model keeps per profile, as arrays over the candidate profiles (axis 0)."""

    names: list[str]
    log_prior: np.ndarray  # (P,)
    log_hour: np.ndarray  # (P, 24)
    log_weekday: np.ndarray  # (P, 7)
    log_device: np.ndarray  # (P, len(DEVICE_KINDS))
    item_counts: dict[str, np.ndarray]  # item -> (P,) taste-event counts
    taste_totals: np.ndarray  # (P,)
    tag_log: dict[str, np.ndarray]  # tag -> (P,) log P(tag | p)
    tag_floor: np.ndarray  # (P,) log P(tag | p) of a tag no profile has
    item_tags: dict[str, tuple[str, ...]]  # tags of items seen in the history
    centroids: np.ndarray | None  # (P, dim) unit rows, or None without embeddings
    n_events: np.ndarray = field(default_factory=lambda: np.zeros(0))


class ViewerModel:
    """Estimates which profile is watching; build once per history change.

    >>> model = ViewerModel.from_history(store, catalogue=bundle)
    >>> model.estimate(Context(hour=21, weekday=4, device="tv"), ["v00012", "v00340"])
    [ViewerGuess(profile='alice', probability=0.83, ...), ViewerGuess(profile='bob', ...)]
    """

    def __init__(self, profiles: _Profiles, catalogue: Any = None, config: ViewerConfig = ViewerConfig()) -> None:
        self._p = profiles
        self._catalogue = catalogue
        self.config = config

    @property
    def profiles(self) -> list[str]:
        """The candidate profiles, in the household's order."""
        return list(self._p.names)

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def from_history(cls, history: HistoryStore, catalogue: Any = None, profiles: Sequence[str] | None = None,
                     window: int = DEFAULT_WINDOW, config: ViewerConfig = ViewerConfig()) -> "ViewerModel":
        """Read each profile's last ``window`` events from ``history`` and build the model.

        :param catalogue: an :class:`~edge.bundle.reader.Bundle` (or anything with ``index``
            (item id -> row), ``items.tags[row]`` and optionally ``item_embeddings(rows)``):
            tags of session items the history has not seen, and embedding evidence.
        :param profiles: the candidates (default: every profile with events; the built-in
            guest profile only when it has events).
        :param window: events read per profile (>= 1).
        :raises QueryError: no candidate has any event, or a bad ``window``.
        :raises HistoryError: an unknown profile in ``profiles``, or the history cannot be read.
        """
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise QueryError(f"window={window!r}; expected a whole number of events >= 1")
        if isinstance(profiles, str):
            raise QueryError(f"profiles={profiles!r}; expected a list of profile ids, not one string")
        names = list(dict.fromkeys(profiles)) if profiles is not None else history.profiles()
        events = {p: history.recent(p, window) for p in names}
        return cls.from_events(events, catalogue, config)

    @classmethod
    def from_events(cls, events: Mapping[str, Iterable[Event]], catalogue: Any = None,
                    config: ViewerConfig = ViewerConfig()) -> "ViewerModel":
        """Build the model from each profile's events (any order): what :meth:`from_history`
        does after reading the store, exposed so a benchmark runs the same code.

        Profiles without events are left out (nothing to recognise them by), which is how
        the built-in guest profile drops out unless someone watched as guest.

        :raises QueryError: no profile has any event.
        """
        per = {p: list(evs) for p, evs in events.items()}
        names = [p for p, evs in per.items() if evs]
        if not names:
            given = list(per) or "none"
            raise QueryError(f"no household profile has any event to guess the viewer from (profiles: {given}); "
                             "record some events first, or pass profile= explicitly")
        return cls(_build(names, per, catalogue, config), catalogue, config)

    # -- estimating --------------------------------------------------------------------------

    def estimate(self, context: Context, session_items: Sequence[str | tuple[str, str]] = ()) -> list[ViewerGuess]:
        """Every candidate profile with its probability, best first (ties: household order).

        :param context: the request's hour, weekday and device.
        :param session_items: the session's first items, oldest first: item ids, or
            ``(item_id, kind)`` pairs; items of a negative kind (skip, dislike) say nothing
            about taste and are left out; item ids neither the history nor the catalogue
            knows are ignored (not an error: a local or newly added item).
        :raises QueryError: a context that is not a :class:`Context` or out of range, or
            ``session_items`` given as one string.
        """
        cfg, p = self.config, self._p
        hour, weekday, device = _check_context(context)
        if isinstance(session_items, str):
            raise QueryError(f"session_items={session_items!r}; expected a list of item ids, not one string")
        ev: dict[str, np.ndarray] = {
            "activity": p.log_prior.copy(),
            "hour": p.log_hour[:, hour].copy(),
            "weekday": p.log_weekday[:, weekday].copy(),
        }
        if device in DEVICE_KINDS:
            ev["device"] = p.log_device[:, DEVICE_KINDS.index(device)].copy()
        items = np.zeros(len(p.names))
        used = ignored = 0
        for entry in session_items:
            item_id, kind = _item_kind(entry)
            if kind in NEGATIVE_KINDS:
                continue
            ll = self._item_loglik(item_id)
            if ll is None:
                ignored += 1
                continue
            items += ll
            used += 1
        if used:
            ev["session items"] = cfg.session_weight * items
        total = sum(ev.values())
        prob = np.exp(total - total.max())
        prob /= prob.sum()
        order = sorted(range(len(p.names)), key=lambda i: (-prob[i], i))
        centred = {k: v - v.mean() for k, v in ev.items()}
        guesses = []
        for i in order:
            evidence = tuple((k, float(v[i])) for k, v in centred.items())
            guesses.append(ViewerGuess(p.names[i], float(prob[i]), _reason(evidence, used, ignored), evidence))
        return guesses

    def _item_loglik(self, item_id: str) -> np.ndarray | None:
        """Per-profile log-likelihood of one session item, or None for an unknown item."""
        cfg, p = self.config, self._p
        if not isinstance(item_id, str):
            return None
        row = _row(self._catalogue, item_id)
        if item_id in p.item_tags:
            tags = p.item_tags[item_id]
        elif row is not None:
            tags = tuple(self._catalogue.items.tags[row])
        else:
            return None
        ll = np.zeros(len(p.names))
        counts = p.item_counts.get(item_id)
        if counts is not None and cfg.item_weight > 0:
            background = counts.sum() / max(p.taste_totals.sum(), 1.0)
            ll += cfg.item_weight * np.log((counts + cfg.item_beta * background) / (p.taste_totals + cfg.item_beta))
        if tags:
            ll += np.mean([p.tag_log.get(t, p.tag_floor) for t in tags], axis=0)
        if p.centroids is not None and row is not None and cfg.emb_weight > 0:
            vec = _unit(np.asarray(self._catalogue.item_embeddings(np.array([row])), dtype=np.float64))[0]
            ll += cfg.emb_weight * (p.centroids @ vec)
        return ll


def _build(names: list[str], per: Mapping[str, list[Event]], catalogue: Any, cfg: ViewerConfig) -> _Profiles:
    n = len(names)
    hours = np.zeros((n, 24))
    weekdays = np.zeros((n, 7))
    devices = np.zeros((n, len(DEVICE_KINDS)))
    n_events = np.zeros(n)
    item_counts: dict[str, np.ndarray] = {}
    tag_counts: dict[str, np.ndarray] = {}
    item_tags: dict[str, tuple[str, ...]] = {}
    taste_rows: list[list[int]] = [[] for _ in names]
    for i, name in enumerate(names):
        for e in per[name]:
            n_events[i] += 1
            # Context counts every kind: a skip still says who sat at the TV, and when.
            if e.hour is not None:
                hours[i, int(e.hour) % 24] += 1
            if e.weekday is not None:
                weekdays[i, int(e.weekday) % 7] += 1
            if e.device in DEVICE_KINDS:
                devices[i, DEVICE_KINDS.index(e.device)] += 1
            if e.kind in NEGATIVE_KINDS:
                continue  # taste counts only what the profile chose to keep watching
            item_counts.setdefault(e.item_id, np.zeros(n))[i] += 1
            row = _row(catalogue, e.item_id)
            tags = tuple(e.tags) if e.tags else (tuple(catalogue.items.tags[row]) if row is not None else ())
            if tags:
                item_tags.setdefault(e.item_id, tags)
            # Each event spreads one unit over its tags, matching estimate()'s mean over tags.
            for t in tags:
                tag_counts.setdefault(t, np.zeros(n))[i] += 1.0 / len(tags)
            if row is not None:
                taste_rows[i].append(row)
    taste_totals = np.zeros(n)
    for c in item_counts.values():
        taste_totals += c
    # Hours are circular: 23:00 neighbours 00:00.
    spread = hours + cfg.hour_spread * (np.roll(hours, 1, axis=1) + np.roll(hours, -1, axis=1))
    tag_mass = np.zeros(n)
    for c in tag_counts.values():
        tag_mass += c
    household = tag_mass.sum()
    vocab = len(tag_counts) + 1  # one slot for a tag no profile has
    tag_log = {}
    for t, c in tag_counts.items():
        bg = (c.sum() + 1.0) / (household + vocab)
        tag_log[t] = np.log((c + cfg.tag_gamma * bg) / (tag_mass + cfg.tag_gamma))
    tag_floor = np.log(cfg.tag_gamma * (1.0 / (household + vocab)) / (tag_mass + cfg.tag_gamma))
    return _Profiles(
        names=names,
        log_prior=np.log((n_events + 1) / (n_events + 1).sum()),
        log_hour=_log_rows(spread, cfg.hour_alpha),
        log_weekday=_log_rows(weekdays, cfg.weekday_alpha),
        log_device=_log_rows(devices, cfg.device_alpha),
        item_counts=item_counts,
        taste_totals=taste_totals,
        tag_log=tag_log,
        tag_floor=tag_floor,
        item_tags=item_tags,
        centroids=_centroids(catalogue, taste_rows),
        n_events=n_events,
    )


def _log_rows(counts: np.ndarray, alpha: float) -> np.ndarray:
    return np.log((counts + alpha) / (counts.sum(axis=1, keepdims=True) + alpha * counts.shape[1]))


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def _centroids(catalogue: Any, rows: list[list[int]]) -> np.ndarray | None:
    """Unit centroid of each profile's unit item embeddings; None without embeddings."""
    if catalogue is None or not hasattr(catalogue, "item_embeddings") or not any(rows):
        return None
    out = None
    for i, r in enumerate(rows):
        if not r:
            continue
        emb = _unit(np.asarray(catalogue.item_embeddings(np.asarray(r, dtype=np.int64)), dtype=np.float64))
        if out is None:
            out = np.zeros((len(rows), emb.shape[1]))
        out[i] = _unit(emb.mean(axis=0))
    return out  # a profile without catalogue items keeps a zero row: cosine 0, no evidence


def _row(catalogue: Any, item_id: str) -> int | None:
    if catalogue is None:
        return None
    index = catalogue.index
    return int(index[item_id]) if item_id in index else None


def _item_kind(entry: object) -> tuple[Any, str | None]:
    if isinstance(entry, tuple) and len(entry) == 2:
        return entry[0], entry[1]
    return entry, None


def _check_context(context: object) -> tuple[int, int, str]:
    if not isinstance(context, Context):
        raise QueryError(f"context={context!r}; expected an edge.context.Context (Context.at(timestamp, device))")
    hour, weekday = context.hour, context.weekday
    if isinstance(hour, bool) or not isinstance(hour, (int, np.integer)) or not 0 <= hour <= 23:
        raise QueryError(f"context.hour={hour!r}; expected a whole number 0..23")
    if isinstance(weekday, bool) or not isinstance(weekday, (int, np.integer)) or not 0 <= weekday <= 6:
        raise QueryError(f"context.weekday={weekday!r}; expected a whole number 0..6 (0 = Monday)")
    return int(hour), int(weekday), context.device


def _reason(evidence: tuple[tuple[str, float], ...], used: int, ignored: int) -> str:
    # The two strongest sources in this profile's favour, in words: enough for a UI line.
    strong = [k for k, v in sorted(evidence, key=lambda kv: -kv[1]) if v > 0.05][:2]
    text = ("mostly " + " and ".join(strong)) if strong else "no source favours this profile"
    if used or ignored:
        text += f"; {used} session item(s) used"
        if ignored:
            text += f", {ignored} unknown ignored"
    return text
