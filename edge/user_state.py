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
#: Profiles and contexts kept; past these the oldest entries are dropped.
MAX_PROFILES = 64
MAX_CONTEXTS = 8


@dataclass
class ProfileView:
    """A profile's request-independent state (see :class:`~edge.ranking.UserState`), and its
    user vectors by context."""

    state: UserState  # with vector None: the per-context vector is filled in per request
    vectors: dict[tuple[int, int, str], np.ndarray] = field(default_factory=dict)


def read_profile_view(history: HistoryStore, bundle: Bundle, profile: str, blocked: list[str]) -> ProfileView:
    """Read everything a request needs about ``profile`` from the history.

    :param blocked: the profile's blocked item ids.
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
    feedback = history.recent_items(profile, FEEDBACK_WINDOW, kinds=[*NEGATIVE_KINDS, "complete"])
    gone = {item for item, _ in feedback} | set(hist_ids) | set(blocked)
    negative_ids = negative_history(feedback, bundle.history_len)
    titles, kinds = titles_and_kinds(bundle, hist_ids, local)
    state = UserState(profile, None, hist_ids, hist_vecs, gone, negative_ids, age_limit, local,
                      gone_rows=catalogue_rows(bundle, gone),
                      negative_vecs=item_vectors(bundle, negative_ids, local_vecs), history_titles=titles, history_kinds=kinds)
    return ProfileView(state)


class UserStateCache:
    """:class:`ProfileView` per profile, valid while the history's change token holds."""

    def __init__(self) -> None:
        self._views: dict[str, tuple[tuple, ProfileView]] = {}

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
            if len(self._views) >= MAX_PROFILES:
                self._views.pop(next(iter(self._views)))
            self._views[profile] = (token, view)
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
