"""Content features v1: shapes, determinism, informative differences, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from python_speech_features import mfcc

from edge.errors import BundleError, FeatureError
from edge.features import FeatureSpec, audio_features, audio_features_from_samples, frame_features, item_vector, text_features
from tests.conftest import shared_data

SPEC = FeatureSpec()


def _tone(freq: float, rate: int = 16000, seconds: float = 2.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_audio_vector_shape_and_mfcc_part_matches_python_speech_features():
    x = _tone(440) + 0.01 * np.random.default_rng(0).standard_normal(32000).astype(np.float32)
    v = audio_features_from_samples(x, 16000)
    assert v.shape == (SPEC.audio_dim,) and v.dtype == np.float32 and np.isfinite(v).all()
    ref = mfcc(x, samplerate=16000, winlen=0.025, winstep=0.01, numcep=13, nfilt=26, nfft=512)
    np.testing.assert_allclose(v[:13], ref.mean(axis=0), rtol=1e-4, atol=1e-4)


def test_audio_resampling_and_stereo_give_near_identical_vectors(tmp_path):
    x16 = _tone(440, 16000)
    x44 = _tone(440, 44100)
    sf.write(tmp_path / "a.wav", x16, 16000)
    sf.write(tmp_path / "b.flac", np.stack([x44, x44], axis=1), 44100)
    a, b = audio_features(tmp_path / "a.wav"), audio_features(tmp_path / "b.flac")
    assert np.corrcoef(a, b)[0, 1] > 0.99


def test_audio_centroid_separates_low_and_high_tones():
    low = audio_features_from_samples(_tone(200), 16000)
    high = audio_features_from_samples(_tone(3000), 16000)
    centroid = 2 * SPEC.n_mfcc + SPEC.n_filters + 3
    assert high[centroid] > low[centroid] + 1.0  # kHz


def test_real_ogg_music_and_speech_differ_in_silence_share():
    music = audio_features(shared_data("audio", "Kevin_MacLeod_-_Vibe_Ace.ogg"))
    speech = audio_features(shared_data("audio", "198-209-0000.ogg"))
    assert music.shape == speech.shape == (SPEC.audio_dim,)
    assert speech[-1] > music[-1]  # speech has pauses


def test_audio_errors_name_the_file(tmp_path):
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(FeatureError, match="noise.wav: cannot decode"):
        audio_features(bad)
    sf.write(tmp_path / "silent.wav", np.zeros(16000, np.float32), 16000)
    with pytest.raises(FeatureError, match="silent"):
        audio_features(tmp_path / "silent.wav")
    sf.write(tmp_path / "short.wav", np.ones(10, np.float32) * 0.1, 16000)
    with pytest.raises(FeatureError, match="shorter than one"):
        audio_features(tmp_path / "short.wav")
    with pytest.raises(FeatureError, match="NaN"):
        sf.write(tmp_path / "nan.wav", np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
        audio_features(tmp_path / "nan.wav")


def test_frames_brightness_and_motion():
    rng = np.random.default_rng(0)
    still = np.full((6, 40, 60, 3), 30, np.uint8)
    moving = rng.integers(0, 255, size=(6, 40, 60, 3), dtype=np.uint8)
    a, b = frame_features(still), frame_features(moving)
    assert a.shape == (SPEC.frames_dim,) and a.dtype == np.float32
    brightness, motion = -6, -2
    assert a[brightness] < 0.2 < b[brightness]
    assert a[motion] == 0.0 and b[motion] > 0.1


@pytest.mark.parametrize("bad", [np.zeros((4, 8, 8, 3), np.float32), np.zeros((8, 8, 3), np.uint8), np.zeros((2, 8, 8, 4), np.uint8)])
def test_frames_wrong_dtype_or_shape(bad):
    with pytest.raises(FeatureError):
        frame_features(bad)


def test_text_is_normalised_deterministic_and_any_language():
    a = text_features("Café  NEWS", ["Morning"], "")
    b = text_features("cafe\u0301 news", ["morning"], "")  # decomposed é, other case
    assert a.shape == (SPEC.text_dim,) and np.allclose(a, b)
    assert abs(np.linalg.norm(text_features("東京のニュース")) - 1.0) < 1e-6
    assert float(text_features("football match") @ text_features("football final")) > float(text_features("football match") @ text_features("opera aria"))
    assert not text_features("").any()


def test_item_vector_layout_and_missing_modalities():
    v = item_vector("Title", ["tag"], "desc")
    assert v.shape == (SPEC.item_dim,)
    assert v[0] == 0 and v[1 + SPEC.audio_dim] == 0
    assert np.allclose(v[-SPEC.text_dim :], text_features("Title", ["tag"], "desc"))


def test_spec_hash_round_trip_and_mismatch_names_field():
    s = FeatureSpec()
    assert FeatureSpec.from_dict(s.to_dict()) == s and FeatureSpec.from_dict(s.to_dict()).hash() == s.hash()
    other = FeatureSpec(sample_rate_hz=22050)
    assert other.hash() != s.hash()
    with pytest.raises(BundleError, match="'sample_rate_hz'.*16000.*22050"):
        s.check_same(other)
    with pytest.raises(BundleError, match="unknown field"):
        FeatureSpec.from_dict({**s.to_dict(), "bogus": 1})


def test_audio_filterbank_part_matches_python_speech_features_logfbank():
    from python_speech_features import logfbank

    x = _tone(700) + 0.02 * np.random.default_rng(1).standard_normal(32000).astype(np.float32)
    v = audio_features_from_samples(x, 16000)
    ref = logfbank(x, samplerate=16000, winlen=0.025, winstep=0.01, nfilt=26, nfft=512)
    np.testing.assert_allclose(v[2 * SPEC.n_mfcc : 2 * SPEC.n_mfcc + SPEC.n_filters], ref.mean(axis=0), rtol=1e-4, atol=1e-4)
    ceps = mfcc(x, samplerate=16000, winlen=0.025, winstep=0.01, numcep=13, nfilt=26, nfft=512)
    np.testing.assert_allclose(v[13:26], ceps.std(axis=0), rtol=1e-4, atol=1e-4)
