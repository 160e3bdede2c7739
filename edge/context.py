"""The request context (time of day, weekday, device kind) as the models see it.

Encoded here once so the server's training code and the device's runtime cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from edge.errors import EdgeError

DEVICE_KINDS: tuple[str, ...] = ("tv", "speaker")
CONTEXT_DIM = 5


@dataclass(frozen=True)
class Context:
    """When and where a recommendation is asked for. ``hour`` 0..23, ``weekday`` 0=Monday;
    ``timestamp`` (Unix s) when known, for availability windows (None: the current time)."""

    hour: int
    weekday: int
    device: str = "tv"
    timestamp: float | None = None

    @classmethod
    def at(cls, timestamp: float | None = None, device: str = "tv") -> "Context":
        """Context at a Unix time (UTC; now when None) on the given device kind.

        :raises EdgeError: a timestamp outside what a calendar date can hold (about years 1..9999).
        """
        try:
            dt = datetime.fromtimestamp(timestamp, tz=timezone.utc) if timestamp is not None else datetime.now(timezone.utc)
        except (OverflowError, OSError, ValueError) as exc:
            raise EdgeError(f"timestamp {timestamp!r} is not a usable Unix time in seconds ({exc})") from None
        return cls(dt.hour, dt.weekday(), device, dt.timestamp())

    def vector(self) -> np.ndarray:
        """float32 ``(CONTEXT_DIM,)``: hour and weekday on the unit circle, then 1.0 for a speaker."""
        return _encode(np.array([self.hour]), np.array([self.weekday]), self.device)[0]


def hour_weekday(timestamps: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """The time features of Unix timestamps (UTC): hour 0..23 and weekday 0=Monday, int64.

    The one definition: the device's events, the server's training contexts and the bundle's
    per-hour popularity priors all bucket time this way.
    """
    ts = np.floor(np.asarray(timestamps, dtype=np.float64)).astype(np.int64)
    return (ts // 3600) % 24, (ts // 86400 + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)


def context_matrix(timestamps: np.ndarray, device: str = "tv") -> np.ndarray:
    """Vectorised :meth:`Context.vector` for many Unix timestamps (UTC); shape ``(n, CONTEXT_DIM)``."""
    hour, weekday = hour_weekday(timestamps)
    return _encode(hour, weekday, device)


def _encode(hour: np.ndarray, weekday: np.ndarray, device: str) -> np.ndarray:
    # The one definition of the encoding: training (context_matrix) and the device
    # (Context.vector) must never drift apart.
    h = 2 * np.pi * (hour % 24) / 24
    d = 2 * np.pi * (weekday % 7) / 7
    speaker = np.full(h.shape, float(device == "speaker"))
    return np.stack([np.sin(h), np.cos(h), np.sin(d), np.cos(d), speaker], axis=1).astype(np.float32)
