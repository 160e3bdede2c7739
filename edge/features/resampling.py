"""Resampling to the spec's rate: scipy's polyphase filter (base install) or python-soxr.

Both come as a one-shot function and as a stream that takes chunks of any size; the scipy
stream returns exactly what :func:`scipy.signal.resample_poly` returns for the whole signal,
so chunking never changes a feature.
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np

from edge.errors import FeatureError
from edge.features.spec import RESAMPLERS

_EMPTY = np.zeros(0, np.float32)
# scipy.signal is imported on first use, not at import: it costs about 0.5 s and 50 MB of RSS
# (it pulls in scipy.stats), which 16 kHz input and `edgerec --help` never need.


@lru_cache(maxsize=32)
def _poly_filter(up: int, down: int) -> np.ndarray:
    # resample_poly's own default design (Kaiser 5.0, 10 zero crossings per side), computed
    # once: designing it costs about as much as filtering a few seconds of audio.
    from scipy.signal import firwin

    max_rate = max(up, down)
    return firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0)).astype(np.float32)


def _ratio(rate_hz: int, target_hz: int) -> tuple[int, int]:
    g = gcd(int(rate_hz), int(target_hz))
    return int(target_hz) // g, int(rate_hz) // g


def _soxr():
    try:
        import soxr
    except ImportError:
        raise FeatureError("resampler 'soxr' needs python-soxr (pip install soxr); or use resampler='scipy'") from None
    return soxr


def resample(samples: np.ndarray, rate_hz: int, target_hz: int, method: str = "scipy") -> np.ndarray:
    """Resample mono PCM from ``rate_hz`` to ``target_hz``.

    :param samples: float mono samples, shape ``(n,)``.
    :param rate_hz: their rate (Hz).
    :param target_hz: the wanted rate (Hz).
    :param method: ``"scipy"`` (polyphase FIR, :func:`scipy.signal.resample_poly`) or ``"soxr"``
        (python-soxr, quality ``HQ``).
    :returns: float32 array of shape ``(ceil(n * target_hz / rate_hz),)``.
    :raises FeatureError: unknown method, or soxr not installed.
    """
    x = np.asarray(samples, dtype=np.float32)
    if method not in RESAMPLERS:
        raise FeatureError(f"unknown resampler {method!r}; expected one of {RESAMPLERS}")
    if rate_hz == target_hz:
        return x
    if method == "soxr":
        return np.asarray(_soxr().resample(x, rate_hz, target_hz, quality="HQ"), dtype=np.float32)
    from scipy.signal import resample_poly

    up, down = _ratio(rate_hz, target_hz)
    return resample_poly(x, up, down, window=_poly_filter(up, down)).astype(np.float32, copy=False)


class StreamResampler:
    """Resample a stream pushed in chunks of any size, with bounded memory.

    ``process(chunk)`` returns the output samples that are final so far; ``process(chunk,
    last=True)`` also flushes the filter's tail. Together the outputs equal :func:`resample`
    of the concatenated input (exactly for scipy, to float rounding for soxr).
    """

    def __init__(self, rate_hz: int, target_hz: int, method: str = "scipy") -> None:
        if method not in RESAMPLERS:
            raise FeatureError(f"unknown resampler {method!r}; expected one of {RESAMPLERS}")
        self.rate_hz, self.target_hz, self.method = int(rate_hz), int(target_hz), method
        self.up, self.down = _ratio(rate_hz, target_hz)
        self._soxr_stream = None
        if self.up == self.down == 1:
            return
        if method == "soxr":
            self._soxr_stream = _soxr().ResampleStream(rate_hz, target_hz, 1, dtype="float32", quality="HQ")
            return
        # The same padded filter and output offset resample_poly uses, so that output j of
        # this stream is output j of resample_poly on the whole signal.
        h = _poly_filter(self.up, self.down) * np.float32(self.up)
        half_len = (h.size - 1) // 2
        pre_pad = self.down - half_len % self.down
        self._h = np.concatenate([np.zeros(pre_pad, np.float32), h])
        self._skip = (half_len + pre_pad) // self.down
        self._buf = _EMPTY  # input samples from index self._base on
        self._base = 0
        self._n_in = 0
        self._next_out = 0

    def process(self, chunk: np.ndarray, last: bool = False) -> np.ndarray:
        """Feed mono float samples; return the float32 output samples that are now final."""
        x = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if self.up == self.down == 1:
            return x
        if self._soxr_stream is not None:
            return np.asarray(self._soxr_stream.resample_chunk(x, last=last), dtype=np.float32)
        up, down, skip = self.up, self.down, self._skip
        self._buf = np.concatenate([self._buf, x])  # a copy: the caller may reuse its buffer
        self._n_in += x.size
        if last:
            hi = -(-self._n_in * up // down) - 1  # the last output resample_poly keeps
        else:
            # Outputs whose newest input sample has arrived: floor((j + skip) * down / up) < n_in.
            hi = (self._n_in * up - 1) // down - skip
        lo = self._next_out
        if hi < lo:
            return _EMPTY
        from scipy.signal import upfirdn

        y = upfirdn(self._h, self._buf, up, down)
        offset = self._base * up // down  # _base is a multiple of down
        first, stop = lo + skip - offset, hi + 1 + skip - offset
        out = y[first:stop]
        if out.size < stop - first:  # past the filter's reach: zeros, as resample_poly pads
            out = np.concatenate([out, np.zeros(stop - first - out.size, np.float32)])
        self._next_out = hi + 1
        # Keep only the input the next output can still reach.
        reach = ((self._next_out + skip) * down - self._h.size + 1) // up
        new_base = max(0, reach) // down * down
        if new_base > self._base:
            self._buf = self._buf[new_base - self._base :]
            self._base = new_base
        return out.astype(np.float32, copy=False)
