"""FeatureSpec: the one description of every content feature the device and server compute.

The spec is written into each bundle; a device refuses a bundle whose spec differs from its
own, because a model trained on one feature layout silently mis-reads another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

from edge.errors import BundleError, FeatureError

#: Bumped whenever a feature's definition changes, even if dimensions stay equal.
FEATURE_VERSION = 2

#: Resamplers :mod:`edge.features.resampling` knows. ``scipy`` needs only the base install.
RESAMPLERS = ("scipy", "soxr")

#: Names of the scalar audio descriptors, in vector order (units in the names).
AUDIO_DESCRIPTORS = (
    "rms_db_mean",
    "rms_db_std",
    "centroid_khz_mean",
    "centroid_khz_std",
    "rolloff_khz_mean",
    "rolloff_khz_std",
    "flux_mean",
    "flux_std",
    "zcr_mean",
    "zcr_std",
    "onset_rate_hz",
    "tempo_bpm",
    "pulse_clarity",
    "silence_share",
)

#: Names of the scalar frame statistics, in vector order.
FRAME_SCALARS = (
    "brightness_mean",
    "brightness_std",
    "contrast",
    "colourfulness",
    "edge_density",
    "texture",
    "motion_energy",
    "scene_cut_rate",
)


@dataclass(frozen=True)
class FeatureSpec:
    """Parameters of the audio, frame and text features (units in the names).

    Audio is decoded only inside ``excerpt_windows``: ``(position, length_s)`` pairs where
    ``position`` is where the window starts as a fraction of the duration (0.0 = start, 0.5 =
    middle), so a two-hour recording costs the same as a short clip. ``excerpt_windows=None``
    reads the whole clip instead, stopping after ``max_read_s`` seconds; that is the mode for
    "full-clip" statistics on a server. Video files are sampled every ``frame_interval_s``
    inside the same windows (at most ``max_frames`` frames).

    The MFCC, filterbank and delta parameters follow python_speech_features (``preemph``,
    ``ceplifter``, ``delta_n`` are its ``preemph``, ``ceplifter`` and ``N``). ``resampler`` is
    ``"scipy"`` (polyphase, base install) or ``"soxr"`` (python-soxr, an optional package).

    :raises FeatureError: a parameter out of range, naming the field.
    """

    version: int = FEATURE_VERSION
    # audio
    sample_rate_hz: int = 16000
    resampler: str = "scipy"
    excerpt_windows: tuple[tuple[float, float], ...] | None = ((0.0, 4.0), (0.5, 4.0))
    max_read_s: float = 600.0
    winlen_s: float = 0.025
    winstep_s: float = 0.010
    n_mfcc: int = 13
    n_filters: int = 26
    nfft: int = 512
    preemph: float = 0.97
    ceplifter: int = 22
    delta_n: int = 2
    silence_db: float = -60.0
    rolloff_share: float = 0.85
    tempo_bpm_range: tuple[float, float] = (40.0, 200.0)
    # frames
    frame_height_px: int = 36
    frame_width_px: int = 64
    max_frames: int = 16
    frame_interval_s: float = 0.5
    hue_bins: int = 12
    sv_bins: int = 4
    # text
    text_dim: int = 256
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (3, 4)

    def __post_init__(self) -> None:
        def bad(field: str, expected: str) -> FeatureError:
            return FeatureError(f"feature spec field '{field}' = {getattr(self, field)!r}; expected {expected}")

        if not 8000 <= self.sample_rate_hz <= 192000:
            raise bad("sample_rate_hz", "8000..192000 Hz")
        if self.resampler not in RESAMPLERS:
            raise bad("resampler", f"one of {RESAMPLERS}")
        if not 0 < self.max_read_s <= 24 * 3600:
            raise bad("max_read_s", "0 < seconds <= 86400")
        if self.excerpt_windows is not None:
            if not self.excerpt_windows:
                raise bad("excerpt_windows", "at least one (position, length_s) window, or None for the whole clip")
            for w in self.excerpt_windows:
                if len(w) != 2 or not 0.0 <= w[0] <= 1.0 or not 0.0 < w[1] <= self.max_read_s:
                    raise bad("excerpt_windows", f"(position in 0..1, 0 < length_s <= max_read_s={self.max_read_s})")
        win = int(round(self.winlen_s * self.sample_rate_hz))
        step = int(round(self.winstep_s * self.sample_rate_hz))
        if win < 2 or step < 1 or win > self.nfft:
            raise bad("winlen_s", f"a window of 2..nfft={self.nfft} samples and a step of at least 1 sample")
        if not 1 <= self.n_mfcc <= self.n_filters:
            raise bad("n_mfcc", f"1..n_filters={self.n_filters}")
        if not 0.0 <= self.preemph < 1.0:
            raise bad("preemph", "0 <= coefficient < 1")
        if self.delta_n < 1:
            raise bad("delta_n", "an integer >= 1")
        if not 0.0 < self.rolloff_share < 1.0:
            raise bad("rolloff_share", "a share in (0, 1)")
        lo, hi = self.tempo_bpm_range
        if not 10.0 <= lo < hi <= 600.0:
            raise bad("tempo_bpm_range", "10 <= low < high <= 600 BPM")
        for name in ("frame_height_px", "frame_width_px", "max_frames", "hue_bins", "sv_bins", "text_dim"):
            if getattr(self, name) < 1:
                raise bad(name, "a positive integer")
        if self.frame_interval_s <= 0:
            raise bad("frame_interval_s", "a positive interval in seconds")
        for name in ("word_ngrams", "char_ngrams"):
            lo_n, hi_n = getattr(self, name)
            if not 1 <= lo_n <= hi_n:
                raise bad(name, "(low, high) with 1 <= low <= high")

    # -- layout ---------------------------------------------------------------------------
    @property
    def audio_names(self) -> tuple[str, ...]:
        """Name of each entry of the audio vector, in order."""
        names = []
        for stat in ("mfcc_mean", "mfcc_std", "delta_std", "delta2_std"):
            names += [f"{stat}[{i}]" for i in range(self.n_mfcc)]
        for stat in ("logfbank_mean", "logfbank_std"):
            names += [f"{stat}[{i}]" for i in range(self.n_filters)]
        return tuple(names) + AUDIO_DESCRIPTORS

    @property
    def frames_names(self) -> tuple[str, ...]:
        """Name of each entry of the frame vector, in order."""
        names = [f"hue_hist[{i}]" for i in range(self.hue_bins)]
        names += [f"sat_hist[{i}]" for i in range(self.sv_bins)]
        names += [f"val_hist[{i}]" for i in range(self.sv_bins)]
        for stat in ("mean", "std", "skew"):
            names += [f"{c}_{stat}" for c in "rgb"]
        return tuple(names) + FRAME_SCALARS

    @property
    def text_names(self) -> tuple[str, ...]:
        """Name of each entry of the text vector (hash buckets)."""
        return tuple(f"text[{i}]" for i in range(self.text_dim))

    @property
    def item_names(self) -> tuple[str, ...]:
        """Name of each entry of :func:`edge.features.item_vector`."""
        return (
            ("has_audio",)
            + tuple(f"audio.{n}" for n in self.audio_names)
            + ("has_frames",)
            + tuple(f"frames.{n}" for n in self.frames_names)
            + self.text_names
        )

    @property
    def audio_dim(self) -> int:
        """Length of the audio vector: MFCC mean/std, delta and delta-delta std, log-filterbank
        mean/std, then the descriptors in ``AUDIO_DESCRIPTORS``."""
        return 4 * self.n_mfcc + 2 * self.n_filters + len(AUDIO_DESCRIPTORS)

    @property
    def frames_dim(self) -> int:
        """Length of the frame vector: H/S/V histograms, RGB moments, ``FRAME_SCALARS``."""
        return self.hue_bins + 2 * self.sv_bins + 9 + len(FRAME_SCALARS)

    @property
    def item_dim(self) -> int:
        """Length of :func:`edge.features.item_vector`: presence flags + all three modalities."""
        return 1 + self.audio_dim + 1 + self.frames_dim + self.text_dim

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureSpec":
        """Inverse of :meth:`to_dict`; raises BundleError on unknown fields or bad values."""
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
        try:
            return cls(**kwargs)
        except (FeatureError, TypeError, ValueError, OverflowError) as exc:  # OverflowError: an infinite length
            raise BundleError(f"feature spec is invalid: {exc}") from None

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
