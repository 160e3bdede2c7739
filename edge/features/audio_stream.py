"""AudioStream: the running audio summary, fed PCM chunks of any size in bounded memory.

Every audio vector is made here: a file's excerpt windows are pushed as segments, live TV or
radio audio as it arrives. Per frame it computes MFCCs, deltas and log mel energies (see
:mod:`edge.features.mfcc`) and cheap descriptors; only running sums are kept, so memory does
not grow with the stream, and the result does not depend on how the PCM was chunked.
"""

from __future__ import annotations

import copy

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edge.errors import FeatureError
from edge.features.mfcc import DeltaStream, cepstra, mel_tables, power_frames, preemphasis
from edge.features.resample import StreamResampler
from edge.features.spec import FeatureSpec

MIN_RATE_HZ, MAX_RATE_HZ = 8000, 192000
MAX_CHANNELS = 8
#: Largest sample magnitude accepted: float PCM lives in [-1, 1]; far beyond is a wrong scale.
MAX_ABS_SAMPLE = 16.0
# Work in blocks of this many seconds: long enough to amortise per-call overhead, short enough
# that temporaries stay a few MB whatever the caller pushes at once.
_MIN_BLOCK_S, _MAX_BLOCK_S = 0.25, 8.0
# Onset envelope: rectified flux of log(1 + gain * mel energy). Plain log energies let noise in
# near-empty bands dominate; with the offset those bands count about linearly, i.e. little.
# An onset is a rising edge of "envelope > ratio * its mean over the last half second + floor";
# tuned so rates on the shared recordings land near librosa.onset.onset_detect's.
_ONSET_GAIN, _ONSET_RATIO, _ONSET_FLOOR, _ONSET_CONTEXT_S = 100.0, 2.0, 0.02, 0.5
_SILENT_FLOOR_DB = -120.0


def _rolloff_bins(mag: np.ndarray, threshold: np.ndarray, block: int = 16) -> np.ndarray:
    """Per row, the first bin where the cumulative magnitude reaches ``threshold``.

    Two levels (block sums, then inside the one block that crosses): a full cumsum over the
    bins cost more than the FFT.
    """
    n, bins = mag.shape
    n_blocks = -(-bins // block)
    padded = np.zeros((n, n_blocks * block), np.float32)
    padded[:, :bins] = mag
    blocks = padded.reshape(n, n_blocks, block)
    cum_blocks = np.cumsum(blocks.sum(axis=2), axis=1)
    which = np.minimum(np.argmax(cum_blocks >= threshold[:, None], axis=1), n_blocks - 1)
    rows = np.arange(n)
    before = np.where(which > 0, cum_blocks[rows, which - 1], 0.0)
    inner = before[:, None] + np.cumsum(blocks[rows, which], axis=1)
    return np.minimum(which * block + np.argmax(inner >= threshold[:, None], axis=1), bins - 1)


class _Moments:
    """Running count, sum and sum of squares per column (float64)."""

    def __init__(self, dims: int) -> None:
        self.n = 0
        self.s = np.zeros(dims)
        self.ss = np.zeros(dims)

    def add(self, rows: np.ndarray) -> None:
        if rows.shape[0]:
            r = rows.astype(np.float64, copy=False)
            self.n += r.shape[0]
            self.s += r.sum(axis=0)
            self.ss += np.einsum("ij,ij->j", r, r)

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n == 0:
            return np.zeros_like(self.s), np.zeros_like(self.s)
        mean = self.s / self.n
        return mean, np.sqrt(np.maximum(self.ss / self.n - mean * mean, 0.0))


class AudioStream:
    """Summarise PCM pushed in chunks into the audio vector, in bounded memory.

    >>> stream = AudioStream(rate_hz=48000, channels=2)
    >>> for chunk in chunks:           # (n, 2) float32 in [-1, 1] or int16, any n
    ...     stream.push(chunk)
    >>> vec = stream.vector()          # any time; shape (spec.audio_dim,)

    Call :meth:`end_segment` where the audio is discontinuous (between excerpt windows, after
    a channel change): frames never straddle it and deltas are padded at it.

    :param rate_hz: sample rate of the PCM (Hz), 8000..192000.
    :param channels: interleaved channels per sample, 1..8; they are averaged (down-mix).
    :param spec: feature parameters; the default :class:`FeatureSpec` if None.
    :param name: what error messages call this input (a file name, a channel).
    :raises FeatureError: rate or channel count out of range.
    """

    def __init__(self, rate_hz: int, channels: int = 1, spec: FeatureSpec | None = None, name: str = "<stream>") -> None:
        self.spec = spec = spec or FeatureSpec()
        self.name = name
        if not MIN_RATE_HZ <= int(rate_hz) <= MAX_RATE_HZ:
            raise FeatureError(f"{name}: sample rate {rate_hz} Hz is outside {MIN_RATE_HZ}..{MAX_RATE_HZ} Hz")
        if not 1 <= int(channels) <= MAX_CHANNELS:
            raise FeatureError(f"{name}: {channels} channels; expected 1..{MAX_CHANNELS}")
        self.rate_hz, self.channels = int(rate_hz), int(channels)
        self._tables = mel_tables(spec.sample_rate_hz, spec)
        self._min_block = max(1, int(_MIN_BLOCK_S * self.rate_hz))
        self._max_block = max(self._min_block, int(_MAX_BLOCK_S * self.rate_hz))
        step_s = self._tables.step / spec.sample_rate_hz
        lo_bpm, hi_bpm = spec.tempo_bpm_range
        self._context = max(1, int(round(_ONSET_CONTEXT_S / step_s)))
        self._lag_min = max(1, int(np.floor(60.0 / (hi_bpm * step_s))))
        self._lag_max = max(self._lag_min, int(np.ceil(60.0 / (lo_bpm * step_s))), self._context)
        # whole-stream accumulators
        self._n_input = 0
        self._ceps = _Moments(spec.n_mfcc)
        self._d1 = _Moments(spec.n_mfcc)
        self._d2 = _Moments(spec.n_mfcc)
        self._logfb = _Moments(spec.n_filters)
        self._desc = _Moments(4)  # rms_db, centroid_khz, rolloff_khz, zcr
        self._flux = _Moments(1)
        self._env = _Moments(1)  # onset envelope (log-mel flux)
        self._silent = 0
        self._onsets = 0
        self._lag_sum = np.zeros(self._lag_max + 1)  # reversed: index o is lag (lag_max - o)
        self._lag_count = np.zeros(self._lag_max + 1)
        self._start_segment()

    # -- segment state ----------------------------------------------------------------
    def _start_segment(self) -> None:
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._resampler = StreamResampler(self.rate_hz, self.spec.sample_rate_hz, self.spec.resampler)
        self._tail = np.zeros(0, np.float32)  # resampled samples not yet framed
        self._before_tail: float | None = None  # the sample before _tail[0], for pre-emphasis
        self._prev_bands: np.ndarray | None = None
        self._prev_shape: np.ndarray | None = None
        self._delta1 = DeltaStream(self.spec.delta_n)
        self._delta2 = DeltaStream(self.spec.delta_n)
        self._env_ring = np.zeros(self._lag_max, np.float64)  # last onset-envelope values
        self._env_mask = np.zeros(self._lag_max, np.float64)  # 1 where the ring holds a value
        self._above = False

    # -- public --------------------------------------------------------------------------
    @property
    def duration_s(self) -> float:
        """Seconds of input PCM pushed so far."""
        return self._n_input / self.rate_hz

    def push(self, pcm: np.ndarray) -> None:
        """Add PCM: float in [-1, 1] or int16/int32, shape ``(n,)`` (mono) or ``(n, channels)``.

        :raises FeatureError: wrong shape or dtype, NaN/Inf or absurdly large samples.
        """
        x = self._mono(pcm)
        if x.size == 0:
            return
        self._n_input += x.size
        for start in range(0, x.size, self._max_block):
            piece = x[start : start + self._max_block]
            self._pending.append(piece)
            self._pending_n += piece.size
            if self._pending_n >= self._min_block:
                self._process(last=False)

    def end_segment(self) -> None:
        """Mark a discontinuity: flush the resampler and deltas, drop the partial last frame."""
        self._process(last=True)
        self._finish_deltas(self._delta1, self._delta2, self._d1, self._d2)
        self._start_segment()

    def vector(self) -> np.ndarray:
        """The summary of everything pushed so far (the stream can go on afterwards).

        :returns: float32 array of shape ``(spec.audio_dim,)``; layout in ``spec.audio_names``.
        :raises FeatureError: less than one analysis window, or all of it silent.
        """
        if self._pending_n:
            self._process(last=False)
        # Deltas of the last frames need frames that have not arrived: pad as at an end, on copies.
        d1, d2 = copy.deepcopy(self._d1), copy.deepcopy(self._d2)
        self._finish_deltas(copy.deepcopy(self._delta1), copy.deepcopy(self._delta2), d1, d2)
        spec = self.spec
        n = self._ceps.n
        if n == 0:
            raise FeatureError(
                f"{self.name}: {self.duration_s:.3f} s of audio is shorter than one {spec.winlen_s * 1000:.0f} ms analysis window"
            )
        if self._silent == n:
            raise FeatureError(f"{self.name}: audio is silent (every frame below {spec.silence_db:.0f} dBFS)")
        c_mean, c_std = self._ceps.mean_std()
        _, d1_std = d1.mean_std()
        _, d2_std = d2.mean_std()
        fb_mean, fb_std = self._logfb.mean_std()
        desc_mean, desc_std = self._desc.mean_std()
        flux_mean, flux_std = self._flux.mean_std()
        step_s = self._tables.step / spec.sample_rate_hz
        tempo_bpm, clarity = self._tempo(step_s)
        tail = [
            desc_mean[0], desc_std[0],  # rms dB
            desc_mean[1], desc_std[1],  # centroid kHz
            desc_mean[2], desc_std[2],  # roll-off kHz
            flux_mean[0], flux_std[0],
            desc_mean[3], desc_std[3],  # zcr
            self._onsets / (n * step_s),
            tempo_bpm,
            clarity,
            self._silent / n,
        ]  # fmt: skip
        vec = np.concatenate([c_mean, c_std, d1_std, d2_std, fb_mean, fb_std, tail]).astype(np.float32)
        if not np.isfinite(vec).all():
            raise FeatureError(f"{self.name}: audio features are not finite")
        return vec

    # -- internals -----------------------------------------------------------------------
    def _mono(self, pcm: np.ndarray) -> np.ndarray:
        a = np.asarray(pcm)
        if a.dtype == np.int16:
            a = a.astype(np.float32) * np.float32(1 / 32768)
        elif a.dtype == np.int32:
            a = (a * (1 / 2147483648)).astype(np.float32)
        elif a.dtype.kind == "f":
            a = a.astype(np.float32, copy=False)
        else:
            raise FeatureError(f"{self.name}: PCM must be float (in [-1, 1]), int16 or int32, got {a.dtype}")
        if a.ndim == 2 and a.shape[1] == self.channels:
            a = a[:, 0] if self.channels == 1 else a.mean(axis=1, dtype=np.float32)
        elif not (a.ndim == 1 and self.channels == 1):
            raise FeatureError(f"{self.name}: PCM chunk has shape {a.shape}; expected (n,) or (n, {self.channels})")
        if a.size:
            peak = float(np.max(np.abs(a)))
            if not np.isfinite(peak):
                raise FeatureError(f"{self.name}: audio contains NaN or Inf samples")
            if peak > MAX_ABS_SAMPLE:
                raise FeatureError(f"{self.name}: sample magnitude {peak:.3g} is far outside [-1, 1]; pass float PCM scaled to [-1, 1]")
        return a

    def _process(self, last: bool) -> None:
        if not self._pending:
            x = np.zeros(0, np.float32)
        else:
            x = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        self._pending, self._pending_n = [], 0
        y = self._resampler.process(x, last=last)
        sig = np.concatenate([self._tail, y]) if self._tail.size else y
        t = self._tables
        if sig.size < t.win:
            self._tail = sig
            return
        n = 1 + (sig.size - t.win) // t.step
        used = (n - 1) * t.step + t.win
        power = power_frames(preemphasis(sig[:used], self.spec.preemph, self._before_tail), n, t)
        log_fb, ceps = cepstra(power, t)
        self._frames(sig[:used], n, power, log_fb, ceps)
        self._tail = sig[n * t.step :]
        self._before_tail = float(sig[n * t.step - 1])

    def _frames(self, sig: np.ndarray, n: int, power: np.ndarray, log_fb: np.ndarray, ceps: np.ndarray) -> None:
        spec, t = self.spec, self._tables
        starts = np.arange(n) * t.step
        self._ceps.add(ceps)
        self._logfb.add(log_fb)
        d1 = self._delta1.push(ceps)
        self._d1.add(d1)
        self._d2.add(self._delta2.push(d1))

        # Loudness and zero crossings on the raw (not pre-emphasised) samples. Frames start
        # every `step` and span `win` samples, so sums over blocks of gcd(step, win) samples
        # give every frame's sum without touching each sample win/step times.
        g, stride, span = t.block, t.step // t.block, t.win // t.block
        sq_blocks = np.square(sig).reshape(-1, g).sum(axis=1, dtype=np.float64)
        mean_sq = sliding_window_view(sq_blocks, span)[::stride][:n].sum(axis=1) / t.win
        rms_db = np.maximum(10.0 * np.log10(np.maximum(mean_sq, 1e-30)), _SILENT_FLOOR_DB)
        sign = np.signbit(sig)
        change = np.zeros(sig.size, np.int32)
        np.not_equal(sign[1:], sign[:-1], out=change[:-1], casting="unsafe")
        change_blocks = change.reshape(-1, g).sum(axis=1)
        # A frame's own pairs are (k, k+1) for k < start + win - 1: drop the one reaching out.
        inside = sliding_window_view(change_blocks, span)[::stride][:n].sum(axis=1) - change[starts + t.win - 1]
        zcr = inside / (t.win - 1)

        # Spectral shape on the filterbank's own (pre-emphasised) spectrum: one FFT serves both.
        mag = np.sqrt(power)
        total = mag.sum(axis=1)
        safe = np.where(total > 0, total, 1.0).astype(np.float32)
        centroid = (mag @ t.freqs_hz) / safe
        rolloff = t.freqs_hz[_rolloff_bins(mag, total * np.float32(spec.rolloff_share))]
        shape = mag / safe[:, None]
        self._desc.add(np.stack([rms_db, centroid / 1000.0, rolloff / 1000.0, zcr], axis=1))
        self._silent += int(np.count_nonzero(rms_db < spec.silence_db))

        bands = np.log1p(np.float32(_ONSET_GAIN) * np.exp(log_fb))
        # Frame-to-frame change needs the previous frame, which may sit in the previous block.
        if self._prev_shape is not None:
            shape_pairs = np.concatenate([self._prev_shape[None], shape])
            fb_pairs = np.concatenate([self._prev_bands[None], bands])
        else:
            shape_pairs, fb_pairs = shape, bands
        self._prev_shape, self._prev_bands = shape[-1].copy(), bands[-1].copy()
        if shape_pairs.shape[0] < 2:
            return
        # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, without a (frames x bins) difference array.
        norms = np.einsum("ij,ij->i", shape_pairs, shape_pairs)
        dots = np.einsum("ij,ij->i", shape_pairs[1:], shape_pairs[:-1])
        flux = np.sqrt(np.maximum(norms[1:] + norms[:-1] - 2.0 * dots, 0.0))
        self._flux.add(flux[:, None])
        env = np.maximum(np.diff(fb_pairs, axis=0), 0.0).mean(axis=1).astype(np.float64)
        self._onset_and_tempo(env)

    def _onset_and_tempo(self, env: np.ndarray) -> None:
        self._env.add(env[:, None])
        k, lag_max = env.size, self._lag_max
        full = np.concatenate([self._env_ring, env])
        mask = np.concatenate([self._env_mask, np.ones(k)])
        # Onsets: rising edges of "envelope well above its recent mean" (causal, so chunking
        # cannot move them).
        cs = np.concatenate([[0.0], np.cumsum(full)])
        cc = np.concatenate([[0.0], np.cumsum(mask)])
        pos = np.arange(lag_max, lag_max + k)
        w = self._context
        count = cc[pos] - cc[pos - w]
        recent = np.where(count > 0, (cs[pos] - cs[pos - w]) / np.maximum(count, 1), 0.0)
        above = env > _ONSET_RATIO * recent + _ONSET_FLOOR
        previous = np.concatenate([[self._above], above[:-1]])
        self._onsets += int(np.count_nonzero(above & ~previous))
        self._above = bool(above[-1])
        # Autocorrelation for tempo: sum over t of env[t] * env[t - lag], lags 0..lag_max.
        windows = sliding_window_view(full, lag_max + 1)[-k:]
        mwindows = sliding_window_view(mask, lag_max + 1)[-k:]
        self._lag_sum += env @ windows
        self._lag_count += mwindows.sum(axis=0)
        self._env_ring = full[-lag_max:].copy()
        self._env_mask = mask[-lag_max:].copy()

    def _tempo(self, step_s: float) -> tuple[float, float]:
        env_mean, env_std = self._env.mean_std()
        var = float(env_std[0]) ** 2
        lags = np.arange(self._lag_max, -1, -1)  # matches the reversed sums
        ok = (self._lag_count > 0) & (lags >= self._lag_min)
        if var <= 1e-12 or not ok.any():
            return 0.0, 0.0
        acf = (self._lag_sum[ok] / self._lag_count[ok] - float(env_mean[0]) ** 2) / var
        bpm = 60.0 / (lags[ok] * step_s)
        # A broad prior around 120 BPM keeps half- and double-tempo lags from winning on ties.
        weighted = acf * np.exp(-0.5 * np.log2(bpm / 120.0) ** 2)
        best = int(np.argmax(weighted))
        return float(bpm[best]), float(np.clip(acf[best], 0.0, 1.0))

    @staticmethod
    def _finish_deltas(delta1: DeltaStream, delta2: DeltaStream, m1: _Moments, m2: _Moments) -> None:
        rest1 = delta1.finish()
        if rest1.size:
            m1.add(rest1)
            m2.add(delta2.push(rest1))
        rest2 = delta2.finish()
        if rest2.size:
            m2.add(rest2)
