"""FeatureSpec: the one description of every content feature the device and server compute.

The spec is written into each bundle; a device refuses a bundle whose spec differs from its
own, because a model trained on one feature layout silently mis-reads another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

from edge.errors import BundleError

#: Bumped whenever a feature's definition changes, even if dimensions stay equal.
FEATURE_VERSION = 1


@dataclass(frozen=True)
class FeatureSpec:
    """Parameters of the audio, frame and text features (units in the names).

    ``excerpt_windows`` are ``(position, length_s)`` pairs: ``position`` is where the window
    starts as a fraction of the file's duration (0.0 = start, 0.5 = middle), so a two-hour
    recording costs the same as a short clip.
    """

    version: int = FEATURE_VERSION
    sample_rate_hz: int = 16000
    excerpt_windows: tuple[tuple[float, float], ...] = ((0.0, 4.0), (0.5, 4.0))
    winlen_s: float = 0.025
    winstep_s: float = 0.010
    n_mfcc: int = 13
    n_filters: int = 26
    nfft: int = 512
    silence_db: float = -50.0
    frame_height_px: int = 36
    frame_width_px: int = 64
    max_frames: int = 16
    hue_bins: int = 12
    sv_bins: int = 4
    text_dim: int = 256
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (3, 4)

    @property
    def audio_dim(self) -> int:
        """Length of the audio vector: MFCC mean+std, log-filterbank mean, 8 descriptors."""
        return 2 * self.n_mfcc + self.n_filters + 8

    @property
    def frames_dim(self) -> int:
        """Length of the frame vector: H/S/V histograms, RGB moments, 6 scalar statistics."""
        return self.hue_bins + 2 * self.sv_bins + 6 + 6

    @property
    def item_dim(self) -> int:
        """Length of :func:`edge.features.item_vector`: presence flags + all three modalities."""
        return 1 + self.audio_dim + 1 + self.frames_dim + self.text_dim

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureSpec":
        """Inverse of :meth:`to_dict`; raises BundleError on unknown or missing fields."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise BundleError(f"feature spec has unknown field(s) {unknown}; this edgerec knows {sorted(names)}")
        kwargs = {}
        for f in fields(cls):
            if f.name in data:
                value = data[f.name]
                if isinstance(value, list):
                    value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
                kwargs[f.name] = value
        return cls(**kwargs)

    def hash(self) -> str:
        """Stable sha256 of the canonical JSON form."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def check_same(self, other: "FeatureSpec", where: str = "bundle") -> None:
        """Raise BundleError naming the first field where ``other`` differs from this spec."""
        mine, theirs = self.to_dict(), other.to_dict()
        for name in mine:
            if mine[name] != theirs.get(name):
                raise BundleError(
                    f"the {where}'s feature spec differs from this device's in '{name}': "
                    f"device has {mine[name]!r}, {where} has {theirs.get(name)!r}; "
                    "rebuild the bundle with this edgerec version or upgrade the device"
                )
