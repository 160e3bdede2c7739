"""The interaction log as columns of codes, and the timestamp rule of the data contract.

Its own module so that both readers (the row reader in :mod:`export.data.contract`, the
columnar one in :mod:`export.data.columnar`) build the same :class:`Interactions`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Sequence

import numpy as np

from edge.contract.events import EVENT_KINDS, kind_code

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "event", "value")
INTERACTION_REQUIRED = ("user_id", "item_id", "timestamp")
# Timestamps before this are almost certainly milliseconds or garbage; after it, the future.
_MIN_TS = 0
_MAX_TS = 4_102_444_800  # 2100-01-01


#: Event names by kind code (:func:`edge.contract.events.kind_code`); code 0 is padding.
_KIND_NAMES = np.array(("",) + EVENT_KINDS, dtype=object)


def encode_ids(ids: Sequence[object] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(vocabulary, codes)``: the distinct ids as str (object array, first-seen order) and an
    int32 code per element such that ``vocabulary[codes]`` gives the ids back."""
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(str(x), len(index)) for x in ids), dtype=np.int32, count=len(ids))
    return np.array(list(index), dtype=object), codes


@dataclass
class Interactions:
    """Column-oriented interaction log of N events, stored as codes, never per-row objects.

    ``user_codes``/``item_codes`` (int32) index the distinct ids in ``user_vocab``/
    ``item_vocab`` (object arrays of str; a vocabulary may hold ids no row uses after
    :meth:`select`); ``kinds`` (int8) are event kind codes
    (:func:`edge.contract.events.kind_code`, so 0 never occurs); ``timestamps`` int64 Unix
    seconds; ``values`` float32 (NaN where absent). At 20M events this is 21 bytes per event.
    """

    user_vocab: np.ndarray
    user_codes: np.ndarray
    item_vocab: np.ndarray
    item_codes: np.ndarray
    timestamps: np.ndarray
    kinds: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.user_codes)

    @property
    def user_ids(self) -> np.ndarray:
        """Each event's user id (object array; materialised per call, for small logs and tests)."""
        return self.user_vocab[self.user_codes]

    @property
    def item_ids(self) -> np.ndarray:
        """Each event's item id (object array; materialised per call)."""
        return self.item_vocab[self.item_codes]

    @property
    def events(self) -> np.ndarray:
        """Each event's kind name (object array; materialised per call)."""
        return _KIND_NAMES[self.kinds]

    @classmethod
    def from_columns(cls, user_ids: Sequence[object] | np.ndarray, item_ids: Sequence[object] | np.ndarray,
                     timestamps: Sequence[int] | np.ndarray, events: Sequence[str] | np.ndarray,
                     values: Sequence[float] | np.ndarray) -> "Interactions":
        """Encode per-event columns of ids and event names (names must be in ``EVENT_KINDS``)."""
        user_vocab, user_codes = encode_ids(user_ids)
        item_vocab, item_codes = encode_ids(item_ids)
        names, name_codes = encode_ids(events)
        unknown = [n for n in names if n not in EVENT_KINDS]
        if unknown:
            raise ValueError(f"unknown event kind {unknown[0]!r}; expected one of {list(EVENT_KINDS)}")
        lookup = np.array([kind_code(n) for n in names], dtype=np.int8)
        return cls(user_vocab, user_codes, item_vocab, item_codes, np.asarray(timestamps, dtype=np.int64).reshape(-1),
                   lookup[name_codes] if len(name_codes) else np.zeros(0, np.int8),
                   np.asarray(values, dtype=np.float32).reshape(-1))

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, int, str, float | None]]) -> "Interactions":
        """Build from ``(user_id, item_id, timestamp, event, value)`` tuples (small logs, tests)."""
        rows = list(rows)
        if not rows:
            return cls.from_columns([], [], [], [], [])
        users, items, ts, events, values = zip(*rows)
        return cls.from_columns(users, items, ts, events, [math.nan if v is None else v for v in values])

    def select(self, mask: np.ndarray) -> "Interactions":
        """Rows where ``mask`` (bool array of length N, or row indices) selects; vocabularies kept."""
        return Interactions(self.user_vocab, self.user_codes[mask], self.item_vocab, self.item_codes[mask],
                            self.timestamps[mask], self.kinds[mask], self.values[mask])


def parse_timestamp(text: str) -> int:
    """Parse Unix seconds (int or float) or ISO 8601 into int Unix seconds (UTC if naive).

    Raises ValueError when neither form parses or the instant is outside 1970..2100.
    """
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        iso = text[:-1] + "+00:00" if text.endswith("Z") else text
        dt = datetime.fromisoformat(iso)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        value = dt.timestamp()
    if not math.isfinite(value) or not (_MIN_TS <= value < _MAX_TS):
        raise ValueError(f"{text!r} is outside 1970..2100 (expected Unix seconds or ISO 8601)")
    return int(value)
