"""MFCC, log mel filterbank energies and deltas with python_speech_features' definitions.

The filterbank (``get_filterbanks``), lifter and DCT-II (orthonormal) are python_speech_features'
own, so values match ``python_speech_features.mfcc``/``logfbank``/``delta``. What differs is
how the signal is framed: a strided view (no copy) and one float32 real FFT per frame, instead
of fancy-index framing and float64 FFTs; that is where its time went.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import gcd

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from python_speech_features import get_filterbanks, lifter
from scipy.fftpack import dct

from edge.features.spec import FeatureSpec

# Bins per block of the two-level roll-off search (see AudioStream._rolloff).
_ROLLOFF_BLOCK = 16
# Frames per FFT call: input and output of a batch (~0.5 MB) stay in a core's cache.
_FFT_BATCH_BYTES = 1 << 19
# python_speech_features replaces zero energies by float64 eps before the log.
_EPS = np.float32(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class MelTables:
    """Precomputed matrices for one (rate, spec): everything that does not depend on the signal."""

    win: int  #: frame length (samples)
    step: int  #: frame step (samples)
    block: int  #: gcd(win, step): frames are whole numbers of these blocks
    nfft: int
    filters_t: np.ndarray  #: (nfft // 2 + 1, n_filters + 1) float32: psf's ``get_filterbanks``
    #: transposed, plus a column of ones, so one product gives filterbank and frame energies
    dct_t: np.ndarray  #: (n_filters, n_mfcc) float32: orthonormal DCT-II rows times psf's lifter
    freqs_hz: np.ndarray  #: (nfft // 2 + 1,) float32 centre frequency of each FFT bin
    shape_t: np.ndarray  #: (bins, 2 + blocks) float32: ones, bin frequencies, then one column per
    #: roll-off block edge (1 up to that edge): total, centroid numerator and cumulative sums
    rolloff_block: int  #: bins per roll-off block (0: bins - 1 is not a multiple; plain cumsum)
    upper_block: np.ndarray  #: (block, block) float32 upper-triangular ones: cumsum as a product
    ones_bins: np.ndarray  #: (bins,) float32 ones
    ones_filters: np.ndarray  #: (n_filters,) float32 ones


def _round_half_up(x: float) -> int:
    # python_speech_features rounds frame sizes half-up (via decimal), not to even.
    return int(np.floor(x + 0.5))


@lru_cache(maxsize=16)
def _tables(rate_hz: int, winlen_s: float, winstep_s: float, nfft: int, n_filters: int, n_mfcc: int, ceplifter: int) -> MelTables:
    fb = get_filterbanks(n_filters, nfft, rate_hz, 0, rate_hz / 2)
    basis = dct(np.eye(n_filters), type=2, axis=1, norm="ortho")[:, :n_mfcc]
    basis = lifter(basis, ceplifter)  # lifter scales columns, so it folds into the basis
    win, step = _round_half_up(winlen_s * rate_hz), _round_half_up(winstep_s * rate_hz)
    bins = nfft // 2 + 1
    freqs = np.fft.rfftfreq(nfft, 1.0 / rate_hz)
    block = _ROLLOFF_BLOCK if bins > _ROLLOFF_BLOCK and (bins - 1) % _ROLLOFF_BLOCK == 0 else 0
    edges = list(range(block, bins, block)) + [bins] if block else []
    cumulative = (np.arange(bins)[:, None] < np.array(edges)[None, :]).astype(np.float64)
    return MelTables(
        win=win,
        step=step,
        block=gcd(win, step),
        nfft=nfft,
        filters_t=np.ascontiguousarray(np.concatenate([fb.T, np.ones((fb.shape[1], 1))], axis=1), dtype=np.float32),
        dct_t=np.ascontiguousarray(basis, dtype=np.float32),
        freqs_hz=freqs.astype(np.float32),
        shape_t=np.ascontiguousarray(np.concatenate([np.ones((bins, 1)), freqs[:, None], cumulative], axis=1), dtype=np.float32),
        rolloff_block=block,
        upper_block=np.triu(np.ones((max(block, 1), max(block, 1)), np.float32)),
        ones_bins=np.ones(bins, np.float32),
        ones_filters=np.ones(n_filters, np.float32),
    )


def mel_tables(rate_hz: int, spec: FeatureSpec) -> MelTables:
    """The cached :class:`MelTables` for ``rate_hz`` (Hz) and the spec's MFCC parameters."""
    return _tables(int(rate_hz), spec.winlen_s, spec.winstep_s, spec.nfft, spec.n_filters, spec.n_mfcc, spec.ceplifter)


def preemphasis(signal: np.ndarray, coeff: float, previous: float | None = None) -> np.ndarray:
    """``y[n] = x[n] - coeff * x[n-1]``; ``y[0] = x[0]`` unless the sample before is given.

    :returns: float32 array of the input's shape.
    """
    x = np.asarray(signal, dtype=np.float32)
    y = np.empty_like(x)
    if x.size:
        y[1:] = x[1:] - np.float32(coeff) * x[:-1]
        y[0] = x[0] if previous is None else x[0] - np.float32(coeff) * np.float32(previous)
    return y


def power_frames(emphasised: np.ndarray, n_frames: int, tables: MelTables) -> np.ndarray:
    """Power spectrum ``|rfft(frame, nfft)|^2 / nfft`` of the first ``n_frames`` frames.

    :param emphasised: float32 samples, at least ``(n_frames - 1) * step + win`` long.
    :returns: float32 array of shape ``(n_frames, nfft // 2 + 1)``.
    """
    frames = sliding_window_view(emphasised, tables.win)[:: tables.step]
    power = np.empty((n_frames, tables.nfft // 2 + 1), np.float32)
    # Copying the strided frames into a zero-padded contiguous buffer makes the FFT 2.5x faster
    # than handing scipy the view with n=nfft, and batches that stay in cache another 2x.
    batch = max(1, _FFT_BATCH_BYTES // (8 * tables.nfft))
    padded = np.zeros((min(batch, n_frames), tables.nfft), np.float32)
    for start in range(0, n_frames, batch):
        k = min(batch, n_frames - start)
        padded[:k, : tables.win] = frames[start : start + k]
        np.abs(scipy.fft.rfft(padded[:k], axis=1), out=power[start : start + k])
    np.square(power, out=power)  # as psf's powspec: |X|^2 / nfft
    power *= np.float32(1.0 / tables.nfft)
    return power


def cepstra(power: np.ndarray, tables: MelTables) -> tuple[np.ndarray, np.ndarray]:
    """Log mel filterbank energies and MFCCs (c0 = log frame energy) of power-spectrum frames.

    :param power: float32 ``(n_frames, nfft // 2 + 1)`` from :func:`power_frames`.
    :returns: ``(log_fbank, mfcc)``: float32 ``(n_frames, n_filters)`` and ``(n_frames, n_mfcc)``.
    """
    both = power @ tables.filters_t  # filterbank energies, then the frame energy
    both[both <= 0] = _EPS
    logs = np.log(both)
    log_fbank = logs[:, :-1]
    ceps = log_fbank @ tables.dct_t
    ceps[:, 0] = logs[:, -1]
    return log_fbank, ceps


def _psf_frames(signal: np.ndarray, rate_hz: int, spec: FeatureSpec) -> tuple[np.ndarray, MelTables]:
    tables = mel_tables(rate_hz, spec)
    x = np.asarray(signal, dtype=np.float32).reshape(-1)
    # psf's framing: at least one frame, the last one zero-padded to full length.
    n = 1 if x.size <= tables.win else 1 + -(-(x.size - tables.win) // tables.step)
    padded = np.zeros((n - 1) * tables.step + tables.win, np.float32)
    padded[: x.size] = preemphasis(x, spec.preemph)
    return power_frames(padded, n, tables), tables


def mfcc(signal: np.ndarray, rate_hz: int = 16000, spec: FeatureSpec | None = None) -> np.ndarray:
    """MFCCs, as ``python_speech_features.mfcc`` computes them.

    :param signal: mono samples, shape ``(n,)``.
    :param rate_hz: their sample rate (Hz).
    :param spec: window (s), step (s), ``nfft``, ``n_filters``, ``n_mfcc``, ``preemph``,
        ``ceplifter``; the default spec is psf's defaults with ``nfft=512``.
    :returns: float32 array of shape ``(n_frames, spec.n_mfcc)``; c0 is the log frame energy.
    """
    spec = spec or FeatureSpec()
    power, tables = _psf_frames(signal, rate_hz, spec)
    return cepstra(power, tables)[1]


def logfbank(signal: np.ndarray, rate_hz: int = 16000, spec: FeatureSpec | None = None) -> np.ndarray:
    """Log mel filterbank energies, as ``python_speech_features.logfbank`` computes them.

    :returns: float32 array of shape ``(n_frames, spec.n_filters)``.
    """
    spec = spec or FeatureSpec()
    power, tables = _psf_frames(signal, rate_hz, spec)
    return cepstra(power, tables)[0]


def delta(feat: np.ndarray, n: int = 2) -> np.ndarray:
    """Delta features over ``n`` frames each side, as ``python_speech_features.delta`` (edges
    repeat the first and last frame).

    :param feat: ``(n_frames, dims)`` features.
    :returns: array of the same shape and dtype.
    """
    feat = np.asarray(feat)
    padded = np.pad(feat, ((n, n), (0, 0)), mode="edge")
    m = feat.shape[0]
    out = np.zeros_like(feat)
    for i in range(1, n + 1):
        out += i * (padded[n + i : n + i + m] - padded[n - i : n - i + m])
    return out / (2 * sum(i * i for i in range(1, n + 1)))


class DeltaStream:
    """:func:`delta` over frames arriving in blocks: each output row is final once ``n`` later
    frames have arrived; :meth:`finish` pads the end like :func:`delta` and starts over."""

    def __init__(self, n: int = 2) -> None:
        self.n = n
        self._denominator = 2 * sum(i * i for i in range(1, n + 1))
        self._buf: np.ndarray | None = None  # n frames of left context + frames not yet output

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Add ``(k, dims)`` frames; return the delta rows that became final (maybe none)."""
        n = self.n
        if frames.shape[0] == 0:
            return frames[:0]
        if self._buf is None:
            self._buf = np.repeat(frames[:1], n, axis=0)  # left edge padding
        buf = np.concatenate([self._buf, frames])
        m = buf.shape[0] - 2 * n
        if m <= 0:
            self._buf = buf
            return frames[:0]
        out = np.zeros((m, buf.shape[1]), buf.dtype)
        for i in range(1, n + 1):
            out += i * (buf[n + i : n + i + m] - buf[n - i : n - i + m])
        self._buf = buf[m:]
        return out / self._denominator

    def finish(self) -> np.ndarray:
        """Return the remaining rows, the end padded with the last frame; reset."""
        if self._buf is None:
            return np.zeros((0, 0), np.float32)
        out = self.push(np.repeat(self._buf[-1:], self.n, axis=0))
        self._buf = None
        return out
