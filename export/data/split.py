"""Leave-last-out split by time, the evaluation protocol of ``shared/datasets/SANITY.md``.

Only positive events (:data:`~edge.contract.events.POSITIVE_KINDS`) are interactions; skips
and dislikes are kept aside per user as negative feedback and are never targets or positives.
Each user's positive events are sorted by timestamp, ties broken by item id (numerically when
every catalogue id is an integer, else as strings). The last one is the test target and every
earlier one is training data. Users with fewer than two positive interactions have no target
and are kept as training data only.

Repeats: the model ranks only items the user has not interacted with in training, so a target
the user had already consumed could never be hit (a ``play`` then ``complete`` of one item is
the common case). The target is therefore the last *first* interaction with an item: the user's
most recently discovered item, at the time of its first positive event. Training is every
positive event before it; positive events after it (repeats of items already seen) are dropped.
Without repeats (MovieLens) this is exactly "the last interaction is the target".

Usage::

    split = leave_last_out(dataset)
    split.train            # (n_users, n_items) binary CSR
    split.test_users, split.test_items
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from edge.errors import DataError
from edge.contract.events import EVENT_KINDS, POSITIVE_KINDS, kind_code
from export.data.contract import Dataset

__all__ = ["PROTOCOL", "LeaveLastOut", "leave_last_out"]

PROTOCOL = (
    "leave-last-out by time: positive events (play, complete, like, rate) only; each user's "
    "events sorted by timestamp, ties by item id; the user's most recently discovered item is "
    "the test target, earlier events are training; users with < 2 distinct positive items have "
    "no target; skips/dislikes are negative feedback only"
)


@dataclass
class LeaveLastOut:
    """A leave-last-out split; users and items are addressed by index.

    ``train_sequences[u]``/``train_timestamps[u]`` hold user ``u``'s positive training events in
    time order (int64 item indices, int64 Unix seconds; repeats kept). ``test_users`` (int64,
    ascending), ``test_items`` (int64) and ``test_timestamps`` (int64 Unix s) are parallel
    arrays, one entry per user with a target. ``negatives[u]`` holds the item indices of the
    user's skip/dislike events before their target (all of them for users without one), in time
    order with repeats. ``train_kinds[u]`` (parallel to ``train_sequences[u]``) and
    ``negative_kinds[u]`` hold event codes (``EVENT_KINDS.index(kind) + 1``; 0 is padding), and
    ``negative_timestamps[u]`` the negatives' times, so sequence models can interleave them.
    """

    n_users: int
    n_items: int
    user_ids: list[str]
    item_ids: list[str]
    train: sp.csr_matrix
    train_sequences: list[np.ndarray]
    train_timestamps: list[np.ndarray]
    test_users: np.ndarray
    test_items: np.ndarray
    test_timestamps: np.ndarray
    negatives: list[np.ndarray]
    name: str = "dataset"
    train_kinds: list[np.ndarray] | None = None
    negative_kinds: list[np.ndarray] | None = None
    negative_timestamps: list[np.ndarray] | None = None

    @property
    def n_train(self) -> int:
        """Number of distinct (user, item) training pairs (non-zeros of ``train``)."""
        return int(self.train.nnz)


def _sort_ranks(ids: np.ndarray) -> np.ndarray:
    """Rank of each id in the order "numeric if all ids are integers, else as strings"."""
    ids = [str(x) for x in ids]
    try:
        keys: list = [int(x) for x in ids]
    except ValueError:
        keys = ids
    order = sorted(range(len(ids)), key=keys.__getitem__)  # Python's sort is stable
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[np.array(order, dtype=np.int64)] = np.arange(len(ids))
    return ranks


def _split_by_user(values: np.ndarray, users: np.ndarray, n_users: int) -> list[np.ndarray]:
    """Cut ``values`` (already grouped by ascending ``users``) into one array per user."""
    if n_users == 0:
        return []
    counts = np.bincount(users, minlength=n_users)
    return np.split(values, np.cumsum(counts)[:-1])


def leave_last_out(dataset: Dataset) -> LeaveLastOut:
    """Split a dataset by time, leaving each user's last new positive item out as the target.

    :param dataset: a validated dataset; every interaction's item must be in its catalogue.
    :returns: a :class:`LeaveLastOut` over every user in the log (ordered numerically if all
        user ids are integers, else as strings) and every catalogue item (in
        ``dataset.items`` order).
    :raises DataError: if an interaction names an item that is not in the catalogue.
    """
    inter = dataset.interactions
    item_ids = [it.item_id for it in dataset.items]
    n_items = len(item_ids)

    # Users: every user in the log, even one with only skips.
    uniq_users, user_codes = np.unique(inter.user_ids.astype(str), return_inverse=True)
    user_order = np.argsort(_sort_ranks(uniq_users), kind="stable")  # position -> unique index
    user_pos = np.empty(len(uniq_users), dtype=np.int64)
    user_pos[user_order] = np.arange(len(uniq_users))
    users = user_pos[user_codes.ravel()]
    user_ids = [str(u) for u in uniq_users[user_order]]
    n_users = len(user_ids)

    # Items: map through the unique ids so the dict lookup runs once per distinct item.
    uniq_items, item_codes = np.unique(inter.item_ids.astype(str), return_inverse=True)
    lookup = np.empty(len(uniq_items), dtype=np.int64)
    for j, item in enumerate(uniq_items.tolist()):
        idx = dataset.item_index.get(item)
        if idx is None:
            raise DataError(f"{dataset.name}: interaction item {item!r} is not in the catalogue")
        lookup[j] = idx
    items = lookup[item_codes.ravel()]
    item_rank = _sort_ranks(np.array(item_ids, dtype=object))

    timestamps = np.asarray(inter.timestamps, dtype=np.int64)
    events = inter.events.astype(str)
    positive = np.isin(events, sorted(POSITIVE_KINDS))
    kinds = np.zeros(len(events), dtype=np.int64)
    for kind in EVENT_KINDS:
        kinds[events == kind] = kind_code(kind)

    # Sort every event by (user, timestamp, item id); lexsort's last key is the primary one.
    order = np.lexsort((item_rank[items], timestamps, users))
    users, items, timestamps, positive, kinds = users[order], items[order], timestamps[order], positive[order], kinds[order]

    pos_users, pos_items, pos_ts, pos_kinds = users[positive], items[positive], timestamps[positive], kinds[positive]
    neg_users, neg_items, neg_ts, neg_kinds = users[~positive], items[~positive], timestamps[~positive], kinds[~positive]

    # First positive event of each (user, item): np.unique's return_index is the first occurrence.
    n_pos = len(pos_users)
    _, first_idx = np.unique(pos_users * n_items + pos_items, return_index=True)
    is_first = np.zeros(n_pos, dtype=bool)
    is_first[first_idx] = True
    first_positions = np.flatnonzero(is_first)
    distinct = np.bincount(pos_users[first_positions], minlength=n_users)

    # The target is each user's last first-occurrence: first_positions ascend and are grouped
    # by user, so it is the entry just before the user changes.
    first_users = pos_users[first_positions]
    is_last = np.append(first_users[1:] != first_users[:-1], True) if len(first_users) else np.zeros(0, bool)
    last_of_user = np.zeros(n_users, dtype=np.int64)
    last_of_user[first_users[is_last]] = first_positions[is_last]
    target_pos = np.full(n_users, n_pos, dtype=np.int64)  # n_pos: "no target, keep everything"
    has_target = distinct >= 2
    target_pos[has_target] = last_of_user[has_target]

    test_users = np.flatnonzero(has_target).astype(np.int64)
    test_items = pos_items[target_pos[test_users]].astype(np.int64)
    test_timestamps = pos_ts[target_pos[test_users]].astype(np.int64)

    keep = np.arange(n_pos) < target_pos[pos_users]
    tr_users, tr_items, tr_ts, tr_kinds = pos_users[keep], pos_items[keep], pos_ts[keep], pos_kinds[keep]
    train = sp.csr_matrix(
        (np.ones(len(tr_users), dtype=np.float32), (tr_users, tr_items)), shape=(n_users, n_items)
    )
    train.sum_duplicates()
    train.data[:] = 1.0

    # Negatives before the user's target time (all of them for users without a target).
    cutoff = np.full(n_users, np.iinfo(np.int64).max, dtype=np.int64)
    cutoff[test_users] = test_timestamps
    neg_keep = neg_ts < cutoff[neg_users]

    return LeaveLastOut(
        n_users=n_users,
        n_items=n_items,
        user_ids=user_ids,
        item_ids=item_ids,
        train=train,
        train_sequences=_split_by_user(tr_items, tr_users, n_users),
        train_timestamps=_split_by_user(tr_ts, tr_users, n_users),
        test_users=test_users,
        test_items=test_items,
        test_timestamps=test_timestamps,
        negatives=_split_by_user(neg_items[neg_keep], neg_users[neg_keep], n_users),
        name=dataset.name,
        train_kinds=_split_by_user(tr_kinds, tr_users, n_users),
        negative_kinds=_split_by_user(neg_kinds[neg_keep], neg_users[neg_keep], n_users),
        negative_timestamps=_split_by_user(neg_ts[neg_keep], neg_users[neg_keep], n_users),
    )
