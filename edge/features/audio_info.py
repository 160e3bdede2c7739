"""What an audio source declares, and where the spec's excerpt windows fall in it: shared by
audio files (:mod:`edge.features.audio`) and video soundtracks (:mod:`edge.features.soundtrack`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge.errors import FeatureError
from edge.features.audio_stream import MAX_CHANNELS, MAX_RATE_HZ, MIN_RATE_HZ
from edge.features.spec import FeatureSpec

#: Anything declaring more than a day is a broken header, not a recording.
MAX_DURATION_S = 24 * 3600.0


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file's header declares."""

    path: Path
    rate_hz: int
    channels: int
    frames: int  #: samples per channel
    format: str  #: libsndfile's container name, e.g. ``WAV``, ``OGG``

    @property
    def duration_s(self) -> float:
        """Declared duration (s)."""
        return self.frames / self.rate_hz


def check_header(info: AudioInfo, what: str = "") -> AudioInfo:
    """Refuse a header no recording has: a rate outside 8..192 kHz, channels outside 1..8, or
    more than a day declared. ``what`` prefixes the field in messages (e.g. ``"soundtrack "``).

    :returns: ``info``. :raises FeatureError: naming ``info.path``.
    """
    path = info.path
    if not MIN_RATE_HZ <= info.rate_hz <= MAX_RATE_HZ:
        raise FeatureError(f"{path}: {what}sample rate {info.rate_hz} Hz is outside {MIN_RATE_HZ}..{MAX_RATE_HZ} Hz")
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise FeatureError(f"{path}: {what}{info.channels} channels; expected 1..{MAX_CHANNELS}")
    if info.duration_s > MAX_DURATION_S:
        raise FeatureError(
            f"{path}: declared duration {info.duration_s / 3600:.1f} h exceeds {MAX_DURATION_S / 3600:.0f} h; the header is broken"
        )
    return info


def excerpt_ranges(frames: int, rate_hz: int, spec: FeatureSpec) -> list[tuple[int, int]]:
    """The ``(start, length)`` sample ranges the spec reads from a file of ``frames`` samples.

    Windows are placed at their position and shifted left to fit; overlapping ones merge. A
    clip no longer than the windows together is read once, whole; with ``excerpt_windows=None``
    the whole clip is read, up to ``spec.max_read_s``.
    """
    if spec.excerpt_windows is None:
        return [(0, min(frames, int(spec.max_read_s * rate_hz)))]
    lengths = [max(1, int(round(length_s * rate_hz))) for _, length_s in spec.excerpt_windows]
    if sum(lengths) >= frames:
        return [(0, frames)]
    spans = sorted((min(int(pos * frames), frames - n), n) for (pos, _), n in zip(spec.excerpt_windows, lengths))
    merged: list[list[int]] = []
    for start, n in spans:
        if merged and start <= merged[-1][0] + merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], start + n - merged[-1][0])
        else:
            merged.append([start, n])
    return [(s, n) for s, n in merged]
