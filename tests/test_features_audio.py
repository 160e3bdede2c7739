"""Audio features: python_speech_features parity, resampling, streaming, long files, bad input."""

from __future__ import annotations

import dataclasses
import struct
import tracemalloc

import numpy as np
import pytest
import python_speech_features as psf
import soundfile as sf

from edge.errors import FeatureError
from edge.features import (
    AudioStream,
    FeatureSpec,
    StreamResampler,
    audio_features,
    audio_features_from_samples,
    delta,
    excerpt_ranges,
    logfbank,
    mfcc,
    probe_audio,
    resample,
)
from tests.conftest import shared_data

SPEC = FeatureSpec()
NAMES = SPEC.audio_names
RECORDINGS = ["198-209-0000.ogg", "Kevin_MacLeod_-_Vibe_Ace.ogg", "glacier-bay-humpback.ogg", "sorohanro_-_solo-trumpet-06.ogg"]


def _tone(freq: float, rate: int = 16000, seconds: float = 2.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _noisy_tone(seed: int = 0, seconds: float = 2.0) -> np.ndarray:
    x = _tone(440, seconds=seconds) + _tone(1250, seconds=seconds, amp=0.1)
    return x + 0.02 * np.random.default_rng(seed).standard_normal(x.size).astype(np.float32)


def _clicks(bpm: float, seconds: float = 8.0, rate: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = 0.001 * rng.standard_normal(int(rate * seconds)).astype(np.float32)
    decay = np.exp(-np.arange(200) / 50).astype(np.float32)
    for start in range(0, x.size - 200, int(rate * 60 / bpm)):
        x[start : start + 200] += 0.5 * rng.standard_normal(200).astype(np.float32) * decay
    return x


def _speech_16k() -> np.ndarray:
    x, rate = sf.read(shared_data("audio", "198-209-0000.ogg"), dtype="float32")
    return resample(x, rate, 16000)


# -- python_speech_features parity --------------------------------------------------------


@pytest.mark.parametrize("signal", ["noisy_tone", "speech", "short", "one_frame"])
def test_mfcc_logfbank_delta_match_python_speech_features(signal):
    x = {
        "noisy_tone": lambda: _noisy_tone(),
        "speech": _speech_16k,
        "short": lambda: _noisy_tone()[:1234],
        "one_frame": lambda: _noisy_tone()[:100],
    }[signal]()
    ours, ref = mfcc(x), psf.mfcc(x, samplerate=16000, winlen=0.025, winstep=0.01, numcep=13, nfilt=26, nfft=512)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(logfbank(x), psf.logfbank(x, 16000, nfilt=26, nfft=512), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(delta(ours, 2), psf.delta(ref, 2), rtol=1e-4, atol=1e-4)


def test_parity_holds_for_other_rates_and_parameters():
    spec = dataclasses.replace(SPEC, n_mfcc=20, n_filters=40, ceplifter=0, preemph=0.0, sample_rate_hz=22050, nfft=1024)
    x = resample(_noisy_tone(1), 16000, 22050)
    ref = psf.mfcc(x, 22050, numcep=20, nfilt=40, nfft=1024, preemph=0.0, ceplifter=0)
    np.testing.assert_allclose(mfcc(x, 22050, spec), ref, rtol=1e-4, atol=1e-4)
    feats = np.random.default_rng(0).standard_normal((30, 5))
    np.testing.assert_allclose(delta(feats, 3), psf.delta(feats, 3), atol=1e-12)


def test_summary_is_the_statistics_of_the_python_speech_features_frames():
    x = _noisy_tone(2)
    v = audio_features_from_samples(x, 16000)
    assert v.shape == (SPEC.audio_dim,) == (len(NAMES),) and v.dtype == np.float32
    ref = psf.mfcc(x, 16000, nfft=512)
    full = 1 + (x.size - 400) // 160  # the summary skips psf's zero-padded last partial frame
    ref, fb = ref[:full], psf.logfbank(x, 16000, nfft=512)[:full]
    d1 = psf.delta(ref, 2)
    d2 = psf.delta(d1, 2)
    n = SPEC.n_mfcc
    np.testing.assert_allclose(v[:n], ref.mean(axis=0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(v[n : 2 * n], ref.std(axis=0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(v[2 * n : 3 * n], d1.std(axis=0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(v[3 * n : 4 * n], d2.std(axis=0), rtol=1e-4, atol=1e-4)
    f0 = NAMES.index("logfbank_mean[0]")
    np.testing.assert_allclose(v[f0 : f0 + SPEC.n_filters], fb.mean(axis=0), rtol=1e-4, atol=1e-4)


# -- resampling ------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 192000])
def test_stream_resampler_equals_resample_poly_for_any_chunking(rate):
    from scipy.signal import resample_poly

    x = np.random.default_rng(rate).standard_normal(rate // 2).astype(np.float32)
    stream = StreamResampler(rate, 16000, "scipy")
    sizes = np.random.default_rng(1).integers(1, 2000, size=x.size)
    pieces, at = [], 0
    for size in sizes:
        pieces.append(stream.process(x[at : at + size]))
        at += size
        if at >= x.size:
            break
    pieces.append(stream.process(np.zeros(0, np.float32), last=True))
    from math import gcd

    g = gcd(rate, 16000)
    np.testing.assert_array_equal(np.concatenate(pieces), resample_poly(x, 16000 // g, rate // g).astype(np.float32))


def test_soxr_resampler_gives_nearly_the_same_vector_and_is_optional():
    pytest.importorskip("soxr")
    x = resample(_noisy_tone(3, seconds=3.0), 16000, 44100)
    a = audio_features_from_samples(x, 44100, SPEC)
    b = audio_features_from_samples(x, 44100, dataclasses.replace(SPEC, resampler="soxr"))
    keep = [i for i, n in enumerate(NAMES) if n not in ("tempo_bpm", "pulse_clarity")]  # arbitrary on a steady tone
    assert np.corrcoef(a[keep], b[keep])[0, 1] > 0.999
    assert SPEC.resampler == "scipy"  # the device default needs only the base install


def test_resampled_and_stereo_files_give_near_identical_vectors(tmp_path):
    sf.write(tmp_path / "a.wav", _noisy_tone(), 16000)
    x44 = resample(_noisy_tone(), 16000, 44100)
    sf.write(tmp_path / "b.flac", np.stack([x44, x44], axis=1), 44100)
    a, b = audio_features(tmp_path / "a.wav"), audio_features(tmp_path / "b.flac")
    assert np.corrcoef(a, b)[0, 1] > 0.99


def test_wav_flac_ogg_and_mp3_of_one_signal_agree(tmp_path):
    x = _speech_16k()[: 16000 * 6]
    vecs = {}
    for ext in ("wav", "flac", "ogg", "mp3"):
        if ext.upper() not in sf.available_formats():
            pytest.skip(f"this libsndfile cannot write {ext}")
        sf.write(tmp_path / f"s.{ext}", x, 16000)
        vecs[ext] = audio_features(tmp_path / f"s.{ext}")
    assert probe_audio(tmp_path / "s.mp3").format == "MP3"
    for ext in ("flac", "ogg", "mp3"):  # lossy codecs and the MP3 encoder delay move it a little
        assert np.corrcoef(vecs["wav"], vecs[ext])[0, 1] > 0.99, ext


# -- streaming -------------------------------------------------------------------------------


def test_stream_in_random_chunks_equals_whole_file(tmp_path):
    x = resample(_speech_16k(), 16000, 22050)
    stereo = np.stack([x, 0.5 * x], axis=1)
    sf.write(tmp_path / "speech.wav", stereo, 22050, subtype="FLOAT")
    whole = audio_features(tmp_path / "speech.wav", dataclasses.replace(SPEC, excerpt_windows=None))
    stream = AudioStream(22050, channels=2)
    rng = np.random.default_rng(0)
    at = 0
    while at < len(stereo):
        size = int(rng.choice([1, 7, 333, 4096, 30000]))
        stream.push(stereo[at : at + size])
        at += size
    stream.end_segment()
    np.testing.assert_allclose(stream.vector(), whole, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("rate", [16000, 48000])
def test_stream_copes_with_a_reused_capture_buffer(rate):
    x = resample(_noisy_tone(4, seconds=3.0), 16000, rate)
    stream = AudioStream(rate)
    ring = np.empty(1000, np.float32)  # what a capture callback hands over, then overwrites
    for start in range(0, x.size, ring.size):
        piece = x[start : start + ring.size]
        ring[: piece.size] = piece
        stream.push(ring[: piece.size])
        ring[:] = np.nan
    stream.end_segment()
    np.testing.assert_allclose(stream.vector(), audio_features_from_samples(x, rate), rtol=1e-4, atol=1e-4)


def test_stream_vector_any_time_and_int16_pcm():
    x = _noisy_tone(seconds=3.0)
    stream = AudioStream(16000)
    stream.push((x[:16000] * 32767).astype(np.int16))
    early = stream.vector()
    stream.push((x[16000:] * 32767).astype(np.int16))
    late = stream.vector()
    assert early.shape == late.shape == (SPEC.audio_dim,)
    assert stream.duration_s == pytest.approx(3.0)
    np.testing.assert_allclose(late, audio_features_from_samples(x, 16000), rtol=1e-3, atol=1e-3)


def test_stream_memory_stays_bounded():
    stream = AudioStream(48000, channels=2)
    chunk = np.stack([_tone(440, 48000, 1.0)] * 2, axis=1)
    tracemalloc.start()
    for _ in range(5):  # warm caches and buffers
        stream.push(chunk)
    tracemalloc.reset_peak()
    for _ in range(120):  # two more minutes
        stream.push(chunk)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 * 2**20
    assert stream.vector().shape == (SPEC.audio_dim,)


# -- descriptors -----------------------------------------------------------------------------


def test_descriptors_track_what_they_name():
    low, high = audio_features_from_samples(_tone(200), 16000), audio_features_from_samples(_tone(3000), 16000)
    c = NAMES.index("centroid_khz_mean")
    assert high[c] > low[c] + 1.0
    z = NAMES.index("zcr_mean")
    assert high[z] > 5 * low[z]
    quiet = audio_features_from_samples(_tone(440, amp=0.01), 16000)
    r = NAMES.index("rms_db_mean")
    assert low[r] - quiet[r] == pytest.approx(20 * np.log10(30), abs=0.5)
    for bpm in (90, 120, 150):
        v = audio_features_from_samples(_clicks(bpm), 16000)
        assert v[NAMES.index("tempo_bpm")] == pytest.approx(bpm, rel=0.05)
        assert v[NAMES.index("onset_rate_hz")] == pytest.approx(bpm / 60, rel=0.25)
    half = np.concatenate([_tone(440), np.zeros(32000, np.float32)])
    assert audio_features_from_samples(half, 16000)[NAMES.index("silence_share")] == pytest.approx(0.5, abs=0.02)


def test_real_recordings_give_finite_distinct_vectors():
    vecs = {name: audio_features(shared_data("audio", name)) for name in RECORDINGS}
    for v in vecs.values():
        assert v.shape == (SPEC.audio_dim,) and np.isfinite(v).all()
    speech, music = vecs["198-209-0000.ogg"], vecs["Kevin_MacLeod_-_Vibe_Ace.ogg"]
    assert np.abs(speech - music).max() > 1.0
    assert audio_features(shared_data("audio", "198-209-0000.ogg")).tobytes() == speech.tobytes()  # deterministic


# -- excerpts and long files ---------------------------------------------------------------


def test_excerpt_ranges():
    rate = 1000
    assert excerpt_ranges(100 * rate, rate, SPEC) == [(0, 4000), (50000, 4000)]
    assert excerpt_ranges(7 * rate, rate, SPEC) == [(0, 7000)]  # shorter than the windows: read once
    assert excerpt_ranges(9 * rate, rate, SPEC) == [(0, 4000), (4500, 4000)]
    overlapping = dataclasses.replace(SPEC, excerpt_windows=((0.0, 4.0), (0.01, 4.0)))
    assert excerpt_ranges(100 * rate, rate, overlapping) == [(0, 5000)]
    full = dataclasses.replace(SPEC, excerpt_windows=None, max_read_s=30.0)
    assert excerpt_ranges(100 * rate, rate, full) == [(0, 30000)]
    assert excerpt_ranges(10 * rate, rate, full) == [(0, 10000)]


def _sparse_wav(path, seconds: float, rate: int = 8000, parts=()) -> None:
    """A 16-bit mono WAV whose data is a hole (reads as zeros) except ``(start_s, samples)`` parts."""
    n_bytes = int(seconds * rate) * 2
    header = b"RIFF" + struct.pack("<I", 36 + n_bytes) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    header += b"data" + struct.pack("<I", n_bytes)
    with open(path, "wb") as fh:
        fh.write(header)
        for start_s, samples in parts:
            fh.seek(len(header) + int(start_s * rate) * 2)
            fh.write((np.asarray(samples) * 32767).astype("<i2").tobytes())
        fh.truncate(len(header) + n_bytes)


def test_three_hour_file_costs_an_excerpt_in_bounded_memory(tmp_path):
    path = tmp_path / "three_hours.wav"
    music = _noisy_tone(seconds=5.0)[::2]  # 8 kHz
    _sparse_wav(path, 3 * 3600, parts=[(0.0, music), (1.5 * 3600, music)])
    assert probe_audio(path).duration_s == pytest.approx(3 * 3600)
    tracemalloc.start()
    v = audio_features(path)
    full = audio_features(path, dataclasses.replace(SPEC, excerpt_windows=None, max_read_s=20.0))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 32 * 2**20
    assert v.shape == full.shape == (SPEC.audio_dim,)
    assert v[NAMES.index("silence_share")] < 0.05  # both windows landed on the written audio
    assert full[NAMES.index("silence_share")] == pytest.approx(15 / 20, abs=0.02)  # 5 s sound, then zeros


def test_one_sample_file_is_refused_as_too_short(tmp_path):
    sf.write(tmp_path / "one.wav", np.array([0.5], np.float32), 16000)
    with pytest.raises(FeatureError, match=r"one.wav: 0.000 s of audio is shorter than one 25 ms analysis window"):
        audio_features(tmp_path / "one.wav")


# -- bad input ------------------------------------------------------------------------------


def _write_bad(tmp_path, case: str):
    p = tmp_path / f"{case}.wav"
    tone = _tone(440, seconds=1.0)
    if case == "empty":
        p.write_bytes(b"")
    elif case == "not_audio":
        p.write_text("this is a text file, not a recording\n" * 20)
    elif case == "zero_length":
        sf.write(p, np.zeros(0, np.float32), 16000)
    elif case == "truncated_wav":
        sf.write(p, tone, 16000)
        p.write_bytes(p.read_bytes()[:20000])
    elif case == "truncated_flac":
        p = tmp_path / "truncated.flac"
        sf.write(p, np.tile(tone, 20), 16000)
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])
    elif case == "truncated_ogg":
        p = tmp_path / "truncated.ogg"
        sf.write(p, np.tile(tone, 20), 16000)
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])
    elif case == "silent":
        sf.write(p, np.zeros(16000, np.float32), 16000)
    elif case == "nan":
        sf.write(p, np.where(np.arange(16000) == 8000, np.nan, tone), 16000, subtype="FLOAT")
    elif case == "inf":
        sf.write(p, np.where(np.arange(16000) == 100, np.inf, tone), 16000, subtype="FLOAT")
    elif case == "rate_low":
        sf.write(p, tone, 4000)
    elif case == "rate_high":
        sf.write(p, tone, 384000)
    elif case == "channels":
        sf.write(p, np.stack([tone] * 9, axis=1), 16000)
    elif case == "absurd_duration":
        _sparse_wav(p, 30 * 3600, rate=8000)
    return p


BAD = {
    "empty": "empty.wav: file is empty",
    "not_audio": "not_audio.wav: not an audio file",
    "zero_length": "zero_length.wav: zero-length audio",
    "truncated_wav": r"truncated_wav.wav: truncated: the header declares 32000 bytes of audio, the file holds 19956",
    "truncated_flac": "truncated.flac: (truncated|not an audio file)",
    "truncated_ogg": "truncated.ogg: (truncated|not an audio file|zero-length audio: .* or truncated)",
    "silent": "silent.wav: audio is silent",
    "nan": "nan.wav: audio contains NaN or Inf",
    "inf": "inf.wav: audio contains NaN or Inf",
    "rate_low": r"rate_low.wav: sample rate 4000 Hz is outside 8000..192000 Hz",
    "rate_high": r"rate_high.wav: sample rate 384000 Hz is outside 8000..192000 Hz",
    "channels": r"channels.wav: 9 channels; expected 1..8",
    "absurd_duration": r"absurd_duration.wav: declared duration 30.0 h exceeds 24 h",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_audio_raises_feature_error_naming_file_and_reason(tmp_path, case):
    path = _write_bad(tmp_path, case)
    with pytest.raises(FeatureError, match=BAD[case]):
        audio_features(path)


def test_missing_file_and_bad_stream_input():
    with pytest.raises(FeatureError, match="nope.ogg: no such file"):
        audio_features("nope.ogg")
    with pytest.raises(FeatureError, match="sample rate 4000 Hz"):
        AudioStream(4000)
    with pytest.raises(FeatureError, match="9 channels"):
        AudioStream(16000, channels=9)
    stream = AudioStream(16000, channels=2, name="tuner")
    with pytest.raises(FeatureError, match=r"tuner: PCM chunk has shape \(10, 3\)"):
        stream.push(np.zeros((10, 3), np.float32))
    with pytest.raises(FeatureError, match="tuner: PCM must be float"):
        stream.push(np.zeros((10, 2), np.uint8))
    with pytest.raises(FeatureError, match="far outside"):
        stream.push(np.full((10, 2), 1e6, np.float32))
    with pytest.raises(FeatureError, match="tuner: 0.000 s of audio is shorter"):
        stream.vector()


def test_bad_spec_values_name_the_field():
    with pytest.raises(FeatureError, match="'resampler'"):
        FeatureSpec(resampler="sinc")
    with pytest.raises(FeatureError, match="'excerpt_windows'"):
        FeatureSpec(excerpt_windows=((1.5, 4.0),))
    with pytest.raises(FeatureError, match="'sample_rate_hz'"):
        FeatureSpec(sample_rate_hz=4000)
