"""AudioStream: the running audio summary, fed PCM chunks of any size in bounded memory.

Every audio vector is made here: a file's excerpt windows are pushed as segments, live TV or
radio audio as it arrives. Per frame it computes MFCCs, deltas and log mel energies (see
:mod:`edge.features.cepstral`) and cheap descriptors; only running sums are kept, so memory does
not grow with the stream, and the result does not depend on how the PCM was chunked.
"""

from __future__ import annotations

import copy

import numpy as np

from edge.errors import FeatureError
from edge.features.cepstral import DeltaStream, cepstra, mel_tables, power_frames, preemphasis
from edge.features.resampling import StreamResampler
from edge.features.spec import FeatureSpec

MIN_RATE_HZ, MAX_RATE_HZ = 8000, 192000
MAX_CHANNELS = 8
#: Largest sample magnitude accepted: float PCM lives in [-1, 1]; far beyond is a wrong scale.
MAX_ABS_SAMPLE = 16.0
# PCM is processed once this many seconds are pending (and at end_segment/vector): long
# enough to amortise per-call overhead, short enough that temporaries stay a few MB.
_BLOCK_S = 8.0
# Onset envelope: rectified flux of log(1 + gain * mel energy). Plain log energies let noise in
# near-empty bands dominate; with the offset those bands count about linearly, i.e. little.
# An onset is a rising edge of "envelope > ratio * its mean over the last half second + floor";
# tuned so rates on the shared recordings land near librosa.onset.onset_detect's.
_ONSET_GAIN, _ONSET_RATIO, _ONSET_FLOOR, _ONSET_CONTEXT_S = 100.0, 2.0, 0.02, 0.5
_SILENT_FLOOR_DB = -120.0


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
        self._block = max(1, int(_BLOCK_S * self.rate_hz))
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
        self._prev_mag: np.ndarray | None = None
        self._prev_safe = self._prev_energy = 0.0
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
        for start in range(0, x.size, self._block):
            piece = x[start : start + self._block]
            self._pending_n += piece.size
            if self._pending_n >= self._block:
                self._pending.append(piece)
                self._process(last=False)
            else:  # kept for later: the caller may reuse its buffer (a live capture ring)
                self._pending.append(piece.copy())

    def end_segment(self) -> None:
        """Mark a discontinuity: flush the resampler and deltas, drop the partial last frame."""
        self._process(last=True)
        self._finish_deltas(self._delta1, self._delta2, self._d1, self._d2)
        self._start_segment()

    @property
    def silent(self) -> bool:
        """Whether every analysed frame so far was below ``spec.silence_db`` (and there was one)."""
        return self._ceps.n > 0 and self._silent == self._ceps.n

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
            # The down-mix as a matrix-vector product: numpy's mean over a short last axis is
            # ~50x slower (5.5 ms for 8 s of 44.1 kHz stereo, the largest cost after decoding).
            a = a[:, 0] if self.channels == 1 else a @ np.full(self.channels, 1.0 / self.channels, np.float32)
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
            self._tail = sig.copy()
            return
        n = 1 + (sig.size - t.win) // t.step
        used = (n - 1) * t.step + t.win
        power = power_frames(preemphasis(sig[:used], self.spec.preemph, self._before_tail), n, t)
        log_fb, ceps = cepstra(power, t)
        self._frames(sig[:used], n, power, log_fb, ceps)
        self._tail = sig[n * t.step :].copy()
        self._before_tail = float(sig[n * t.step - 1])

    def _frames(self, sig: np.ndarray, n: int, power: np.ndarray, log_fb: np.ndarray, ceps: np.ndarray) -> None:
        spec, t = self.spec, self._tables
        self._ceps.add(ceps)
        self._logfb.add(log_fb)
        d1 = self._delta1.push(ceps)
        self._d1.add(d1)
        self._d2.add(self._delta2.push(d1))

        # Loudness and zero crossings on the raw (not pre-emphasised) samples. Frames start
        # every `step` and span `win` samples, so sums over blocks of gcd(step, win) samples
        # give every frame's sum without touching each sample win/step times. Sums are
        # products with a ones vector: BLAS beats numpy's reduce over a short axis.
        g, stride, span = t.block, t.step // t.block, t.win // t.block
        ones_g = np.ones(g, np.float32)
        sq_blocks = np.square(sig).reshape(-1, g) @ ones_g
        cum = np.concatenate([[0.0], np.cumsum(sq_blocks, dtype=np.float64)])
        first = np.arange(n) * stride
        mean_sq = (cum[first + span] - cum[first]) / t.win
        rms_db = np.maximum(10.0 * np.log10(np.maximum(mean_sq, 1e-30)), _SILENT_FLOOR_DB)
        sign = np.signbit(sig)
        change = np.zeros(sig.size, np.float32)
        np.not_equal(sign[1:], sign[:-1], out=change[:-1], casting="unsafe")
        cum = np.concatenate([[0.0], np.cumsum(change.reshape(-1, g) @ ones_g, dtype=np.float64)])
        # A frame's own pairs are (k, k+1) for k < start + win - 1: drop the one reaching out.
        zcr = (cum[first + span] - cum[first] - change[first * g + t.win - 1]) / (t.win - 1)

        # Spectral shape on the filterbank's own (pre-emphasised) spectrum: one FFT serves both.
        # One product gives each frame's total magnitude, centroid numerator and cumulative
        # magnitude at block edges (for the roll-off).
        mag = np.sqrt(power)
        sums = mag @ t.shape_t
        total = sums[:, 0]
        safe = np.where(total > 0, total, np.float32(1.0))
        centroid = sums[:, 1] / safe
        rolloff = t.freqs_hz[self._rolloff(mag, sums[:, 2:], total * np.float32(spec.rolloff_share))]
        self._desc.add(np.stack([rms_db, centroid / 1000.0, rolloff / 1000.0, zcr], axis=1))
        self._silent += int(np.count_nonzero(rms_db < spec.silence_db))

        bands = np.log1p(np.float32(_ONSET_GAIN) * np.exp(log_fb))
        # Frame-to-frame change needs the previous frame, which may sit in the previous block.
        energy = power @ t.ones_bins
        if self._prev_mag is not None:
            mag_pairs = np.concatenate([self._prev_mag[None], mag])
            safe_pairs = np.concatenate([[self._prev_safe], safe])
            energy_pairs = np.concatenate([[self._prev_energy], energy])
            band_pairs = np.concatenate([self._prev_bands[None], bands])
        else:
            mag_pairs, safe_pairs, energy_pairs, band_pairs = mag, safe, energy, bands
        self._prev_mag, self._prev_safe, self._prev_energy = mag[-1].copy(), float(safe[-1]), float(energy[-1])
        self._prev_bands = bands[-1].copy()
        if mag_pairs.shape[0] < 2:
            return
        # Flux of the normalised spectrum s = m / sum(m): |s1 - s0|^2 = |s1|^2 + |s0|^2 - 2 s1.s0,
        # and |m|^2 is the frame's power, so only the dot products touch every bin.
        norms = energy_pairs / np.square(safe_pairs)
        dots = np.einsum("ij,ij->i", mag_pairs[1:], mag_pairs[:-1]) / (safe_pairs[1:] * safe_pairs[:-1])
        flux = np.sqrt(np.maximum(norms[1:] + norms[:-1] - 2.0 * dots, 0.0))
        self._flux.add(flux[:, None])
        rises = np.maximum(np.diff(band_pairs, axis=0), np.float32(0.0))
        env = (rises @ t.ones_filters).astype(np.float64) / spec.n_filters
        self._onset_and_tempo(env)

    def _rolloff(self, mag: np.ndarray, cum_blocks: np.ndarray, threshold: np.ndarray) -> np.ndarray:
        """First bin where the cumulative magnitude reaches ``threshold``, per frame.

        ``cum_blocks`` holds the cumulative sums at block edges, so only the block where each
        frame crosses is summed bin by bin.
        """
        t = self._tables
        if t.rolloff_block == 0:  # bins not a power of two plus one: plain cumsum
            return np.argmax(np.cumsum(mag, axis=1) >= threshold[:, None], axis=1)
        b = t.rolloff_block
        n_blocks = cum_blocks.shape[1] - 1  # the last column is the Nyquist bin on its own
        which = np.minimum(np.argmax(cum_blocks >= threshold[:, None], axis=1), n_blocks)
        rows = np.arange(mag.shape[0])
        before = np.where(which > 0, cum_blocks[rows, np.maximum(which - 1, 0)], np.float32(0.0))
        inside = np.minimum(which, n_blocks - 1)
        blocks = mag[:, : n_blocks * b].reshape(mag.shape[0], n_blocks, b)
        inner = before[:, None] + blocks[rows, inside] @ t.upper_block
        offset = np.argmax(inner >= threshold[:, None], axis=1)
        return np.where(which < n_blocks, which * b + offset, mag.shape[1] - 1)

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
        # Autocorrelation for tempo: for offset o = lag_max - lag, sum_i env[i] * full[o + i]
        # and the number of those pairs that are real (not ring padding).
        self._lag_sum += np.correlate(full, env, mode="valid")
        offsets = np.arange(lag_max + 1)
        self._lag_count += cc[offsets + k] - cc[offsets]
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
