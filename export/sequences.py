"""Event sequences for the sequence models: each user's training events, positive and negative,
interleaved in time, with their kinds and contexts.

The teacher reads every event (a skip is information: "not this"); the student, like the device,
reads the recent positive items. Both are built here from one :class:`LeaveLastOut`, so their
examples line up: example ``i`` is "user ``users[i]`` just did event ``pos[i]`` and then
positively engaged with ``target[i]``".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.context import context_matrix
from edge.contract.events import DEFAULT_KIND, POSITIVE_KINDS, kind_code
from edge.contract.inputs import history_window
from export.data.split import LeaveLastOut

#: Event codes are :func:`edge.contract.events.kind_code`; 0 pads.
POSITIVE_CODES = frozenset(kind_code(k) for k in POSITIVE_KINDS)
_DEFAULT_POSITIVE = kind_code(DEFAULT_KIND)


@dataclass
class UserEvents:
    """One user's training events in time order (positives and negatives interleaved)."""

    items: np.ndarray  # int64 catalogue rows
    kinds: np.ndarray  # int64 event codes
    timestamps: np.ndarray  # int64 Unix seconds

    @property
    def positive(self) -> np.ndarray:
        return np.isin(self.kinds, list(POSITIVE_CODES))


def user_events(split: LeaveLastOut, exclude_items: np.ndarray | None = None) -> list[UserEvents]:
    """Interleave each user's positive training events with their skips/dislikes by time.

    Same-second events keep the order they were recorded in (the split's ``train_order`` /
    ``negative_order``); a split without those ranks puts positives first.

    :param exclude_items: catalogue rows dropped from every sequence (cold-item hold-out).
    """
    out = []
    drop = None if exclude_items is None or len(exclude_items) == 0 else np.asarray(exclude_items)
    for u in range(split.n_users):
        pi, pt = split.train_sequences[u], split.train_timestamps[u]
        pk = split.train_kinds[u] if split.train_kinds is not None else np.full(len(pi), _DEFAULT_POSITIVE)
        ni = split.negatives[u]
        nt = split.negative_timestamps[u] if split.negative_timestamps is not None else np.zeros(0, np.int64)
        nk = split.negative_kinds[u] if split.negative_kinds is not None else np.zeros(0, np.int64)
        if len(nt) != len(ni):  # a split without negative times: negatives cannot be placed
            ni, nt, nk = ni[:0], nt[:0], nk[:0]
        items = np.concatenate([pi, ni]).astype(np.int64)
        kinds = np.concatenate([pk, nk]).astype(np.int64)
        ts = np.concatenate([pt, nt]).astype(np.int64)
        if split.train_order is not None and split.negative_order is not None and len(ni) == len(split.negative_order[u]):
            order = np.argsort(np.concatenate([split.train_order[u], split.negative_order[u]]), kind="stable")
        else:
            order = np.lexsort((np.r_[np.zeros(len(pi)), np.ones(len(ni))], ts))
        ev = UserEvents(items[order], kinds[order], ts[order])
        if drop is not None:
            keep = ~np.isin(ev.items, drop)
            ev = UserEvents(ev.items[keep], ev.kinds[keep], ev.timestamps[keep])
        out.append(ev)
    return out


@dataclass
class Window:
    """Left-padded event windows of length ``L + 1`` for causal training (0/-1 pad)."""

    items: np.ndarray  # (B, L+1) int64, -1 pad
    kinds: np.ndarray  # (B, L+1) int64, 0 pad
    context: np.ndarray  # (B, L+1, CONTEXT_DIM) float32


def window(events: list[UserEvents], users: np.ndarray, ends: np.ndarray, length: int) -> Window:
    """Events ``[end - length, end)`` of each ``(user, end)`` pair, left-padded to ``length``."""
    B = len(users)
    items = np.full((B, length), -1, np.int64)
    kinds = np.zeros((B, length), np.int64)
    ts = np.zeros((B, length), np.int64)
    for j, (u, e) in enumerate(zip(users, ends)):
        ev = events[u]
        s = max(0, e - length)
        n = e - s
        items[j, length - n :] = ev.items[s:e]
        kinds[j, length - n :] = ev.kinds[s:e]
        ts[j, length - n :] = ev.timestamps[s:e]
    ctx = context_matrix(ts.ravel()).reshape(B, length, -1)
    return Window(items, kinds, ctx)


@dataclass
class StudentExamples:
    """Next-positive-item examples in the device's terms, aligned with teacher positions.

    ``users[i]``/``ends[i]``: the teacher reads events ``[ends[i] - L, ends[i])`` of the user and
    predicts ``target[i]`` at context ``context[i]``; the student reads ``history[i]`` (the last
    ``L`` positive items before it, right-aligned) with ``mask[i]``.
    """

    users: np.ndarray
    ends: np.ndarray
    history: np.ndarray  # (N, L) int64, -1 pad
    mask: np.ndarray  # (N, L) float32
    context: np.ndarray  # (N, CONTEXT_DIM) float32
    target: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.target)


def student_examples(events: list[UserEvents], history_len: int) -> StudentExamples:
    """One example per positive event that has at least one positive event before it."""
    users, ends, hist, masks, ts, targets = [], [], [], [], [], []
    for u, ev in enumerate(events):
        pos = ev.positive
        seen: list[int] = []
        for t in range(len(ev.items)):
            if pos[t] and seen:
                idx, m = history_window(np.array(seen[-history_len:], np.int64), history_len)
                users.append(u)
                ends.append(t)
                hist.append(idx)
                masks.append(m)
                ts.append(ev.timestamps[t])
                targets.append(ev.items[t])
            if pos[t]:
                seen.append(int(ev.items[t]))
    if not targets:
        raise ValueError("no training examples: every user needs at least two positive interactions")
    return StudentExamples(
        np.array(users, np.int64), np.array(ends, np.int64), np.stack(hist), np.stack(masks),
        context_matrix(np.array(ts, np.int64)), np.array(targets, np.int64),
    )
