"""What the history says about a profile, read once and kept while the history is unchanged.

A request needs the profile's age limit, local items, recent positive history (and its
vectors), what it finished, skipped, disliked or blocked (up to :data:`FEEDBACK_WINDOW` events)
and its recent negatives. None of that depends on the request, so :class:`UserStateCache`
keeps it per profile until :meth:`~edge.history.HistoryStore.change_token` says the file
changed (a write by this process or any other); only the interest student's vector depends on
the request's context (hour, weekday, device), and it is kept per context as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from edge.bundle import Bundle
from edge.context import Context
from edge.contract.events import NEGATIVE_KINDS
from edge.history import HistoryStore
from edge.ranking import LocalCandidate, UserState, item_vectors, negative_history, positive_history
from edge.ranking.filters import catalogue_rows
from edge.ranking.rank import titles_and_kinds
from edge.ranking.user import interest_vector

#: Events read to find what a profile finished, disliked or skipped.
FEEDBACK_WINDOW = 10_000
#: The kinds of those events.
FEEDBACK_KINDS = (*sorted(NEGATIVE_KINDS), "complete")
#: Profiles and contexts kept; past these the oldest entries are dropped.
MAX_PROFILES = 64
MAX_CONTEXTS = 8


@dataclass
class Feedback:
    """The profile's last :data:`FEEDBACK_WINDOW` finished/skipped/disliked events, newest
    first, with the catalogue rows they name (kept so one new event updates them in O(1)
    lookups instead of re-reading the window)."""

    events: list[tuple[str, str]]  # (item_id, kind), newest first
    counts: dict[str, int]  # item id -> events of it in the window
    rows: np.ndarray  # sorted int64 catalogue rows of the window's items

    @classmethod
    def read(cls, history: HistoryStore, bundle: Bundle, profile: str) -> "Feedback":
        events = history.recent_items(profile, FEEDBACK_WINDOW, kinds=FEEDBACK_KINDS)
        counts: dict[str, int] = {}
        for item, _ in events:
            counts[item] = counts.get(item, 0) + 1
        return cls(events, counts, catalogue_rows(bundle, counts))

    def with_newest(self, bundle: Bundle, item_id: str, kind: str) -> "Feedback":
        """The window after one more event, newer than every event in it."""
        if kind not in FEEDBACK_KINDS:
            return self
        events = [(item_id, kind)] + self.events
        counts = dict(self.counts)
        counts[item_id] = counts.get(item_id, 0) + 1
        rows = self.rows
        if counts[item_id] == 1 and item_id in bundle.index:
            rows = np.union1d(rows, [bundle.index[item_id]]).astype(np.int64)
        if len(events) > FEEDBACK_WINDOW:
            old, _ = events.pop()
            counts[old] -= 1
            if counts[old] == 0:
                del counts[old]
                if old in bundle.index:
                    rows = np.setdiff1d(rows, [bundle.index[old]], assume_unique=True).astype(np.int64)
        return Feedback(events, counts, rows)


@dataclass
class ProfileView:
    """A profile's request-independent state (see :class:`~edge.ranking.UserState`), and its
    user vectors by context."""

    state: UserState  # with vector None: the per-context vector is filled in per request
    feedback: Feedback
    newest: tuple[float, int] | None  # (timestamp, id) of the profile's newest event when read
    #: False after this process's own write: only the feedback window is current, the rest
    #: (cheap to read: a few dozen rows) is read at the next request.
    complete: bool = True
    vectors: dict[tuple[int, int, str], np.ndarray] = field(default_factory=dict)


def read_profile_view(history: HistoryStore, bundle: Bundle, profile: str, blocked: list[str],
                      feedback: Feedback | None = None) -> ProfileView:
    """Read everything a request needs about ``profile`` from the history.

    :param blocked: the profile's blocked item ids.
    :param feedback: the feedback window when already known (updated by the caller after its
        own write); read from the history when None.
    :raises HistoryError: an unknown profile, or a history that cannot be read.
    """
    age_limit = history.age_limit(profile)  # raises HistoryError for an unknown profile
    # Local items embedded by another bundle (another dimension) wait for re-embedding.
    local = [LocalCandidate(it.item_id, it.embedding, it.kind, it.title)
             for it in history.local_items(profile) if it.dim == bundle.embedding_dim]
    local_vecs = {it.item_id: it.embedding for it in local}
    events = history.recent(profile, bundle.history_len * 2)
    hist_ids = positive_history(events, bundle, local_vecs, bundle.history_len)
    hist_vecs = item_vectors(bundle, hist_ids, local_vecs)
    if feedback is None:
        feedback = Feedback.read(history, bundle, profile)
    gone = set(feedback.counts) | set(hist_ids) | set(blocked)
    negative_ids = negative_history(feedback.events, bundle.history_len)
    titles, kinds = titles_and_kinds(bundle, hist_ids, local)
    state = UserState(profile, None, hist_ids, hist_vecs, gone, negative_ids, age_limit, local,
                      gone_rows=np.union1d(feedback.rows, catalogue_rows(bundle, [*hist_ids, *blocked])).astype(np.int64),
                      negative_vecs=item_vectors(bundle, negative_ids, local_vecs), history_titles=titles, history_kinds=kinds)
    newest = (events[0].timestamp, int(events[0].id)) if events else None
    return ProfileView(state, feedback, newest)


class UserStateCache:
    """:class:`ProfileView` per profile, valid while the history's change token holds."""

    def __init__(self) -> None:
        self._views: dict[str, tuple[tuple, ProfileView]] = {}

    def _keep(self, profile: str, token: tuple, view: ProfileView) -> None:
        self._views.pop(profile, None)
        if len(self._views) >= MAX_PROFILES:
            self._views.pop(next(iter(self._views)))
        self._views[profile] = (token, view)

    def recorded(self, history: HistoryStore, bundle: Bundle, profile: str, before: tuple, event_id: int,
                 item_id: str, kind: str, timestamp: float) -> None:
        """After this process recorded one event: update ``profile``'s kept state in place of
        re-reading its feedback window, when nothing else can have changed.

        That holds when the kept state was read at token ``before`` (taken just before the
        write), no other connection has written since (same ``data_version``), and the profile's
        two newest events are now the new one and the newest one the state was read with (so
        no other write of this connection slipped in, and the event is newest in time order).
        Anything else leaves the state to be read again on the next request. The rest of the
        state is read at that request (:attr:`ProfileView.complete`), so a write costs two rows.
        """
        entry = self._views.get(profile)
        if entry is None or entry[0] != before:
            return
        after = history.change_token()
        if after[:2] != before[:2] or after == before:
            return
        view = entry[1]
        newest = history.recent(profile, 2)
        expected = [event_id] + ([view.newest[1]] if view.newest is not None else [])
        if [ev.id for ev in newest] != expected:
            return
        feedback = view.feedback.with_newest(bundle, item_id, kind)
        self._keep(profile, after, ProfileView(view.state, feedback, (timestamp, event_id), complete=False))

    def user_state(self, history: HistoryStore, bundle: Bundle, model, profile: str, context: Context,
                   blocked: Callable[[str], list[str]]) -> UserState:
        """The :class:`~edge.ranking.UserState` of ``profile`` for a request in ``context``.

        :param model: the bundle's interest student.
        :param blocked: reads a profile's blocked ids (called only when the history changed).
        :raises HistoryError: an unknown profile, or a history that cannot be read.
        """
        # The token is read before the history: a write in between leaves a stale token, so
        # the next request reads again (never the other way round).
        token = history.change_token()
        entry = self._views.get(profile)
        if entry is None or entry[0] != token:
            view = read_profile_view(history, bundle, profile, blocked(profile))
            self._keep(profile, token, view)
        elif not entry[1].complete:
            view = read_profile_view(history, bundle, profile, blocked(profile), entry[1].feedback)
            self._keep(profile, token, view)
        else:
            view = entry[1]
        state = view.state
        if not state.history_ids:
            return state
        key = (context.hour, context.weekday, context.device)
        vector = view.vectors.get(key)
        if vector is None:
            vector = interest_vector(model, state.history_vecs, context, bundle.history_len)
            if len(view.vectors) >= MAX_CONTEXTS:
                view.vectors.pop(next(iter(view.vectors)))
            view.vectors[key] = vector
        return replace(state, vector=vector)
