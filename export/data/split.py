"""Leave-last-out split by time, the evaluation protocol of ``shared/datasets/SANITY.md``.

Only positive events (:data:`~edge.contract.events.POSITIVE_KINDS`) are interactions; skips
and dislikes are kept aside per user as negative feedback and are never targets or positives.
Each user's events are sorted by timestamp; events with the same timestamp keep the order in
which they appear in the interaction log (the order a device records them in: its history
store orders by ``(timestamp, insertion id)``). No global item order breaks ties: in MovieLens
the ids track popularity, and any fixed item order is a rule an order-aware model can learn
that a device never sees. The last new item is the test target, every earlier event is
training data. Users with fewer than two distinct positive items have no target and are kept
as training data only.

Repeats: the model ranks only items the user has not interacted with in training, so a target
the user had already consumed could never be hit (a ``play`` then ``complete`` of one item is
the common case). The target is therefore the last *first* interaction with an item: the user's
most recently discovered item, at the time of its first positive event. Training is every
event before it; positive events after it (repeats of items already seen) are dropped.
Without repeats (MovieLens) this is exactly "the last interaction is the target".

Validation: ``leave_last_out(ds, target="validation")`` applies the same rule to the test
split's training events, so each user's *second-to-last* new item is the target and nothing at
or after it is seen. Settings are tuned there; the test target is scored once.

Usage::

    split = leave_last_out(dataset)               # test target
    valid = leave_last_out(dataset, "validation")  # for tuning
    split.train            # (n_users, n_items) binary CSR
    split.test_users, split.test_items
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from edge.bundle.columns import RowColumn
from edge.errors import DataError
from edge.contract.events import POSITIVE_KINDS, kind_code
from export.data.contract import Dataset

__all__ = ["PROTOCOL", "TARGETS", "LeaveLastOut", "Ragged", "leave_last_out"]

PROTOCOL = (
    "leave-last-out by time: positive events (play, complete, like, rate) only; each user's "
    "events sorted by timestamp, same-timestamp events in interaction-log order; the user's most "
    "recently discovered item is the test target (the one before it the validation target), "
    "earlier events are training; users with < 2 distinct positive items have no target; "
    "skips/dislikes are negative feedback only"
)

#: Which held-out item a split targets.
TARGETS = ("test", "validation")


@dataclass
class LeaveLastOut:
    """A leave-last-out split; users and items are addressed by index.

    ``train_sequences[u]``/``train_timestamps[u]`` hold user ``u``'s positive training events in
    time order (int64 item indices, int64 Unix seconds; repeats kept; same-second events in log
    order). ``test_users`` (int64, ascending), ``test_items`` (int64) and ``test_timestamps``
    (int64 Unix s) are parallel arrays, one entry per user with a target. ``negatives[u]`` holds
    the item indices of the user's skip/dislike events before their target (all of them for
    users without one), in time order with repeats. ``train_kinds[u]`` (parallel to
    ``train_sequences[u]``) and ``negative_kinds[u]`` hold event codes (``EVENT_KINDS.index(kind)
    + 1``; 0 is padding), ``negative_timestamps[u]`` the negatives' times, and
    ``train_order[u]``/``negative_order[u]`` each event's rank in the sorted log, so sequence
    models interleave positives and negatives exactly as they happened.
    ``target`` says which held-out item this split scores ("test" or "validation").
    """

    n_users: int
    n_items: int
    user_ids: list[str]
    item_ids: list[str]
    train: sp.csr_matrix
    train_sequences: Sequence[np.ndarray]
    train_timestamps: Sequence[np.ndarray]
    test_users: np.ndarray
    test_items: np.ndarray
    test_timestamps: np.ndarray
    negatives: Sequence[np.ndarray]
    name: str = "dataset"
    train_kinds: Sequence[np.ndarray] | None = None
    negative_kinds: Sequence[np.ndarray] | None = None
    negative_timestamps: Sequence[np.ndarray] | None = None
    train_order: Sequence[np.ndarray] | None = None
    negative_order: Sequence[np.ndarray] | None = None
    target: str = "test"

    @property
    def n_train(self) -> int:
        """Number of distinct (user, item) training pairs (non-zeros of ``train``)."""
        return int(self.train.nnz)


def _sort_ranks(ids: np.ndarray) -> np.ndarray:
    """Rank of each id in the order "numeric if all ids are integers, else as strings" (used
    for user order only: users are independent, so their order cannot leak)."""
    ids = [str(x) for x in ids]
    try:
        keys: list = [int(x) for x in ids]
    except ValueError:
        keys = ids
    order = sorted(range(len(ids)), key=keys.__getitem__)  # Python's sort is stable
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[np.array(order, dtype=np.int64)] = np.arange(len(ids))
    return ranks


class Ragged(RowColumn):
    """One array per user as a view into one flat array: ``ragged[u]`` is
    ``values[offsets[u]:offsets[u + 1]]``. A list of a million small arrays costs ~100 bytes of
    object header each; this costs one offset."""

    def __init__(self, values: np.ndarray, offsets: np.ndarray) -> None:
        self.values, self.offsets = values, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _at(self, u: int) -> np.ndarray:
        return self.values[self.offsets[u]:self.offsets[u + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        for lo, hi in zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist()):
            yield self.values[lo:hi]


def _split_by_user(values: np.ndarray, users: np.ndarray, n_users: int) -> Ragged:
    """Cut ``values`` (already grouped by ascending ``users``) into one view per user."""
    counts = np.bincount(users, minlength=n_users)[:n_users]
    return Ragged(np.ascontiguousarray(values), np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))


def _targets(users: np.ndarray, items: np.ndarray, positive: np.ndarray, n_users: int, n_items: int) -> np.ndarray:
    """Position (into the sorted event arrays) of each user's target: the last first positive
    event of an item, for users with >= 2 distinct positive items; ``len(users)`` otherwise
    ("no target, keep everything")."""
    n = len(users)
    pos_at = np.flatnonzero(positive)
    # First positive event of each (user, item): np.unique's return_index is the first occurrence.
    _, first = np.unique(users[pos_at] * n_items + items[pos_at], return_index=True)
    first_positions = np.sort(pos_at[first])
    first_users = users[first_positions]
    distinct = np.bincount(first_users, minlength=n_users)
    # first_positions ascend and are grouped by user: a user's target is their last entry.
    is_last = np.append(first_users[1:] != first_users[:-1], True) if len(first_users) else np.zeros(0, bool)
    last_of_user = np.zeros(n_users, dtype=np.int64)
    last_of_user[first_users[is_last]] = first_positions[is_last]
    target_pos = np.full(n_users, n, dtype=np.int64)
    has_target = distinct >= 2
    target_pos[has_target] = last_of_user[has_target]
    return target_pos


def leave_last_out(dataset: Dataset, target: str = "test") -> LeaveLastOut:
    """Split a dataset by time, leaving each user's last new positive item out as the target.

    :param dataset: a validated dataset; every interaction's item must be in its catalogue.
    :param target: ``"test"`` (the last new item) or ``"validation"`` (the one before it; the
        test target and everything at or after the validation target are left out).
    :returns: a :class:`LeaveLastOut` over every user in the log (ordered numerically if all
        user ids are integers, else as strings) and every catalogue item (in
        ``dataset.items`` order).
    :raises DataError: if an interaction names an item that is not in the catalogue.
    :raises ValueError: on an unknown ``target``.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    inter = dataset.interactions
    item_ids = [it.item_id for it in dataset.items]
    n_items = len(item_ids)

    # Users: every user in the log, even one with only skips (a vocabulary may hold ids that
    # no row uses after Interactions.select: those are not users of this log).
    present = np.flatnonzero(np.bincount(inter.user_codes, minlength=len(inter.user_vocab)))
    uniq_users = inter.user_vocab[present]
    user_order = np.argsort(_sort_ranks(uniq_users), kind="stable")  # position -> unique index
    user_pos = np.full(len(inter.user_vocab), -1, dtype=np.int64)
    user_pos[present[user_order]] = np.arange(len(present))
    users = user_pos[inter.user_codes]
    user_ids = [str(u) for u in uniq_users[user_order]]
    n_users = len(user_ids)

    # Items: the dict lookup runs once per distinct item id of the log.
    used = np.flatnonzero(np.bincount(inter.item_codes, minlength=len(inter.item_vocab)))
    lookup = np.full(len(inter.item_vocab), -1, dtype=np.int64)
    for j in used.tolist():
        item = inter.item_vocab[j]
        idx = dataset.item_index.get(item)
        if idx is None:
            raise DataError(f"{dataset.name}: interaction item {item!r} is not in the catalogue")
        lookup[j] = idx
    items = lookup[inter.item_codes]

    timestamps = np.asarray(inter.timestamps, dtype=np.int64)
    kinds = inter.kinds.astype(np.int64)
    positive = np.isin(kinds, [kind_code(k) for k in sorted(POSITIVE_KINDS)])

    # Sort by (user, timestamp); the log position breaks ties, so same-second events keep the
    # order they were recorded in. lexsort's last key is the primary one.
    order = np.lexsort((np.arange(len(users)), timestamps, users))
    users, items, timestamps, positive, kinds = users[order], items[order], timestamps[order], positive[order], kinds[order]
    rank = np.arange(len(users), dtype=np.int64)  # each event's place in the sorted log

    rounds = 2 if target == "validation" else 1
    for _ in range(rounds):
        target_pos = _targets(users, items, positive, n_users, n_items)
        cut = target_pos[users]
        before = np.arange(len(users)) < cut
        has_target = target_pos < len(users)
        test_users = np.flatnonzero(has_target).astype(np.int64)
        test_items = items[target_pos[test_users]].astype(np.int64)
        test_timestamps = timestamps[target_pos[test_users]].astype(np.int64)
        # The next round (validation) splits what this round left as training.
        kept = before
        users, items, timestamps, positive, kinds, rank = (a[kept] for a in (users, items, timestamps, positive, kinds, rank))

    tr = positive
    tr_users, tr_items = users[tr], items[tr]
    train = sp.csr_matrix((np.ones(len(tr_users), dtype=np.float32), (tr_users, tr_items)), shape=(n_users, n_items))
    train.sum_duplicates()
    train.data[:] = 1.0
    neg = ~positive

    def per_user(values: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
        return _split_by_user(values[mask], users[mask], n_users)

    return LeaveLastOut(
        n_users=n_users,
        n_items=n_items,
        user_ids=user_ids,
        item_ids=item_ids,
        train=train,
        train_sequences=per_user(items, tr),
        train_timestamps=per_user(timestamps, tr),
        test_users=test_users,
        test_items=test_items,
        test_timestamps=test_timestamps,
        negatives=per_user(items, neg),
        name=dataset.name,
        train_kinds=per_user(kinds, tr),
        negative_kinds=per_user(kinds, neg),
        negative_timestamps=per_user(timestamps, neg),
        train_order=per_user(rank, tr),
        negative_order=per_user(rank, neg),
        target=target,
    )
