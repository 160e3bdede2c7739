"""The user side of a request: the interest student's vector over the profile's recent
positive history, and the state the filters and explanations read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from edge.context import Context
from edge.contract.events import NEGATIVE_KINDS, POSITIVE_KINDS
from edge.contract.inputs import interest_feed
from edge.ranking.catalogue import Catalogue, item_vectors


@dataclass(frozen=True)
class LocalCandidate:
    """A local item (content the device embedded itself) the ranker may recommend."""

    item_id: str
    embedding: np.ndarray  # float32 (d,)
    kind: str | None = None
    title: str | None = None


@dataclass
class UserState:
    """What the ranker knows about the person asking.

    ``vector`` is None for a profile without usable history (cold start). ``history_ids`` are
    the positive history items the vector was built from, oldest first, with their vectors.
    ``gone`` are never recommended (finished, skipped, disliked, blocked, in the history).
    ``negative_ids`` are recent skips/dislikes, newest first: items like them are lowered.
    ``local`` are the local items embedded with this bundle's dimension (any kind).

    The last four are derived from the ones above; a caller that keeps a profile's state
    between requests (:class:`edge.recommender.Recommender`) fills them once, and :func:`rank`
    computes whichever is None.
    """

    profile: str
    vector: np.ndarray | None
    history_ids: list[str] = field(default_factory=list)
    history_vecs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    gone: set[str] = field(default_factory=set)
    negative_ids: list[str] = field(default_factory=list)
    age_limit: int | None = None
    local: list[LocalCandidate] = field(default_factory=list)
    gone_rows: np.ndarray | None = None  # sorted int64 catalogue rows of ``gone``
    negative_vecs: np.ndarray | None = None  # (len(negative_ids), d)
    history_titles: list[str] | None = None
    history_kinds: list[str] | None = None


def positive_history(events: Sequence, catalogue: Catalogue, local: Mapping[str, np.ndarray], length: int) -> list[str]:
    """Ids of the last ``length`` positive events on known items, oldest first.

    :param events: the profile's recent events, newest first (as ``HistoryStore.recent`` returns).
    """
    ids = [e.item_id for e in reversed(events) if e.kind in POSITIVE_KINDS and (e.item_id in catalogue.index or e.item_id in local)]
    return ids[-length:]


def user_vector(model, catalogue: Catalogue, history_len: int, events: Sequence, context: Context,
                local: Mapping[str, np.ndarray] | None = None) -> tuple[np.ndarray | None, list[str], np.ndarray]:
    """The interest model's vector for a profile now.

    :param model: the bundle's interest student (an :class:`edge.backends.Model`).
    :param events: the profile's recent events, newest first (at least ``2 * history_len``
        so skips between plays do not shorten the window).
    :param local: local item id -> embedding, for local items in the history.
    :returns: ``(vector or None, history ids oldest first, their (n, d) vectors)``; None when
        the profile has no usable positive history.
    """
    local = local or {}
    ids = positive_history(events, catalogue, local, history_len)
    if not ids:
        return None, [], np.zeros((0, catalogue.embedding_dim), np.float32)
    vecs = item_vectors(catalogue, ids, local)
    return interest_vector(model, vecs, context, history_len), ids, vecs


def interest_vector(model, history_vecs: np.ndarray, context: Context, history_len: int) -> np.ndarray:
    """The interest student's user vector for positive history vectors (oldest first) in ``context``."""
    return model.run(interest_feed(history_vecs, [np.arange(len(history_vecs))], context.vector()[None], history_len))[0]


def negative_history(feedback: Sequence[tuple[str, str]], length: int) -> list[str]:
    """Distinct item ids of the skips and dislikes in ``feedback`` (``(item_id, kind)`` pairs,
    newest first, as ``HistoryStore.recent_items`` returns), at most ``length``."""
    return list(dict.fromkeys(item for item, kind in feedback if kind in NEGATIVE_KINDS))[:length]
