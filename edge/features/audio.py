"""Audio features: excerpt decoding with soundfile, MFCC/filterbank with python_speech_features,
plus cheap descriptors, summarised over time into one fixed-length vector."""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from python_speech_features import fbank, lifter
from scipy.fftpack import dct
from scipy.signal import resample_poly

from edge.errors import FeatureError
from edge.features.spec import FeatureSpec

MIN_RATE_HZ, MAX_RATE_HZ = 8000, 192000
MAX_CHANNELS = 8
# Anything longer than a day is a broken header, not a recording.
MAX_DURATION_S = 24 * 3600.0


def read_excerpt(path: str | Path, spec: FeatureSpec) -> tuple[np.ndarray, int]:
    """Decode only the spec's excerpt windows of an audio file, down-mixed to mono.

    :param path: WAV, FLAC, OGG/Vorbis or any format libsndfile reads.
    :returns: ``(samples, rate_hz)``: float32 mono samples in [-1, 1] at the file's rate.
    :raises FeatureError: unreadable, empty, out-of-range rate/channels/duration, NaN/Inf.
    """
    path = Path(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise FeatureError(f"{path}: cannot decode audio ({exc})") from None
    rate, channels, frames = int(info.samplerate), int(info.channels), int(info.frames)
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        raise FeatureError(f"{path}: sample rate {rate} Hz is outside {MIN_RATE_HZ}..{MAX_RATE_HZ} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise FeatureError(f"{path}: {channels} channels; expected 1..{MAX_CHANNELS}")
    if frames <= 0:
        raise FeatureError(f"{path}: no audio samples")
    if frames / rate > MAX_DURATION_S:
        raise FeatureError(f"{path}: declared duration {frames / rate:.0f} s exceeds {MAX_DURATION_S:.0f} s")
    pieces = []
    try:
        with sf.SoundFile(str(path)) as fh:
            for position, length_s in spec.excerpt_windows:
                n = int(length_s * rate)
                start = int(position * frames)
                start = max(0, min(start, frames - n))
                if fh.seekable():
                    fh.seek(start)
                pieces.append(fh.read(n, dtype="float32", always_2d=True))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise FeatureError(f"{path}: audio is truncated or corrupt ({exc})") from None
    data = np.concatenate(pieces) if pieces else np.zeros((0, channels), np.float32)
    if data.shape[0] == 0:
        raise FeatureError(f"{path}: no audio samples could be read")
    if not np.isfinite(data).all():
        raise FeatureError(f"{path}: audio contains NaN or Inf samples")
    return data.mean(axis=1), rate


def resample(samples: np.ndarray, rate_hz: int, target_hz: int) -> np.ndarray:
    """Polyphase resampling (scipy) from ``rate_hz`` to ``target_hz``; float32 out."""
    if rate_hz == target_hz:
        return samples.astype(np.float32, copy=False)
    g = gcd(rate_hz, target_hz)
    return resample_poly(samples, target_hz // g, rate_hz // g).astype(np.float32)


def audio_features_from_samples(samples: np.ndarray, rate_hz: int, spec: FeatureSpec | None = None, name: str = "<samples>") -> np.ndarray:
    """Summarise mono PCM into the audio vector.

    :param samples: float mono samples in [-1, 1], shape ``(n,)``.
    :param rate_hz: their sample rate.
    :returns: float32 array of shape ``(spec.audio_dim,)``: MFCC mean and std (n_mfcc each),
        log mel filterbank mean (n_filters), then RMS mean (dB), RMS std (dB), zero-crossing
        rate, spectral centroid (kHz), roll-off 85 % (kHz), spectral flux, onset rate (1/s)
        and share of silent frames.
    :raises FeatureError: too short or all-silent input.
    """
    spec = spec or FeatureSpec()
    x = resample(np.asarray(samples, dtype=np.float32), rate_hz, spec.sample_rate_hz)
    sr = spec.sample_rate_hz
    win = int(round(spec.winlen_s * sr))
    step = int(round(spec.winstep_s * sr))
    if x.size < win:
        raise FeatureError(f"{name}: {x.size} samples is shorter than one {spec.winlen_s * 1000:.0f} ms window")
    if float(np.max(np.abs(x))) < 1e-6:
        raise FeatureError(f"{name}: audio is silent")
    # One filterbank pass gives both outputs; the steps below are python_speech_features'
    # own mfcc() (DCT-II ortho, lifter 22, c0 replaced by log frame energy), so the values
    # match it while framing the signal once instead of twice.
    energies, frame_energy = fbank(x, samplerate=sr, winlen=spec.winlen_s, winstep=spec.winstep_s, nfilt=spec.n_filters, nfft=spec.nfft)
    log_fbank = np.log(energies)
    cep = lifter(dct(log_fbank, type=2, axis=1, norm="ortho")[:, : spec.n_mfcc], 22)
    cep[:, 0] = np.log(frame_energy)

    n_frames = 1 + (x.size - win) // step
    idx = np.arange(win)[None, :] + step * np.arange(n_frames)[:, None]
    frames = x[idx]
    rms = np.sqrt(np.mean(frames**2, axis=1) + 1e-12)
    rms_db = 20 * np.log10(rms + 1e-9)
    zcr = np.mean(np.abs(np.diff(np.signbit(frames), axis=1)), axis=1)
    mag = np.abs(np.fft.rfft(frames * np.hanning(win), n=spec.nfft, axis=1))
    freqs = np.fft.rfftfreq(spec.nfft, 1.0 / sr)
    power = mag.sum(axis=1) + 1e-9
    centroid = (mag * freqs).sum(axis=1) / power
    cum = np.cumsum(mag, axis=1)
    rolloff = freqs[np.argmax(cum >= 0.85 * cum[:, -1:], axis=1)]
    norm_mag = mag / power[:, None]
    flux = np.sqrt((np.diff(norm_mag, axis=0) ** 2).sum(axis=1)) if n_frames > 1 else np.zeros(1)
    # Onsets: frames where the energy rises well above its recent level.
    rise = np.diff(rms_db, prepend=rms_db[0])
    onsets = np.count_nonzero((rise > 6.0) & (rms_db > spec.silence_db))
    duration_s = x.size / sr
    silent = np.mean(rms_db < spec.silence_db)
    desc = np.array(
        [
            rms_db.mean() / 10.0,
            rms_db.std() / 10.0,
            zcr.mean(),
            centroid.mean() / 1000.0,
            rolloff.mean() / 1000.0,
            flux.mean(),
            onsets / duration_s,
            silent,
        ],
        dtype=np.float32,
    )
    vec = np.concatenate([cep.mean(axis=0), cep.std(axis=0), log_fbank.mean(axis=0), desc]).astype(np.float32)
    if not np.isfinite(vec).all():
        raise FeatureError(f"{name}: audio features are not finite")
    return vec


def audio_features(path: str | Path, spec: FeatureSpec | None = None) -> np.ndarray:
    """Audio vector of a media file (see :func:`audio_features_from_samples`)."""
    spec = spec or FeatureSpec()
    samples, rate = read_excerpt(path, spec)
    return audio_features_from_samples(samples, rate, spec, name=str(path))
