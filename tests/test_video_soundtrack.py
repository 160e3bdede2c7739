"""Soundtracks of video files: the audio stream of MP4/MOV/MKV/WebM decoded by PyAV into the
same audio vector as an audio file, through the same excerpt windows and limits; a video
without sound is still a video, a broken container is a FeatureError."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("av")

from edge.errors import FeatureError  # noqa: E402
from edge.features import FeatureSpec, audio_features, item_vector, probe_audio  # noqa: E402
from edge.features.soundtrack import optional_soundtrack, probe_soundtrack  # noqa: E402
from edge.profiles import ResourceLimits  # noqa: E402
from edge.recommender import Recommender  # noqa: E402
from tests.conftest import shared_data  # noqa: E402
from tests.fixtures.video_files import write_video  # noqa: E402

RECORDING = "147793__setuniman__sweet-waltz-0i-22mi.ogg"  # 49.2 s of music, 22.05 kHz mono


@pytest.fixture(scope="module")
def recording():
    path = shared_data("audio", RECORDING)
    pcm, rate = sf.read(path, dtype="float32")
    return path, pcm, rate


@pytest.fixture(scope="module")
def videos(recording, tmp_path_factory):
    _, pcm, rate = recording
    root = tmp_path_factory.mktemp("videos")
    return {suffix: write_video(root / f"clip{suffix}", pcm, rate) for suffix in (".mp4", ".mov", ".mkv", ".webm")}


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm"])
def test_soundtrack_gives_the_audio_vector_of_the_recording_it_carries(recording, videos, suffix):
    path, _, rate = recording
    ref = audio_features(path)
    vec = audio_features(videos[suffix])
    assert vec.shape == ref.shape and vec.dtype == np.float32
    # Lossy codecs (AAC, Opus) and millisecond timestamps shift values a little, nothing more.
    assert _cosine(vec, ref) > 0.999
    names = FeatureSpec().audio_names
    for name in ("rms_db_mean", "centroid_khz_mean"):
        i = names.index(name)
        assert vec[i] == pytest.approx(ref[i], rel=0.05, abs=0.5), name
    info = probe_audio(videos[suffix])
    assert info.rate_hz in (rate, 48000) and info.channels == 1
    assert info.duration_s == pytest.approx(49.2, abs=0.2)


def test_lossless_soundtrack_read_whole_matches_the_file(recording, videos):
    path, _, _ = recording
    full = FeatureSpec(excerpt_windows=None)
    np.testing.assert_allclose(audio_features(videos[".mkv"], full), audio_features(path, full), rtol=1e-3, atol=0.05)


def test_only_the_excerpt_windows_are_decoded(videos, monkeypatch):
    from edge.features import audio_stream

    pushed = []
    original = audio_stream.AudioStream.push

    def count(self, pcm):
        pushed.append(np.asarray(pcm).shape[0])
        return original(self, pcm)

    monkeypatch.setattr(audio_stream.AudioStream, "push", count)
    spec = FeatureSpec()
    info = probe_soundtrack(videos[".mkv"])
    audio_features(videos[".mkv"], spec)
    windows = sum(int(round(length * info.rate_hz)) for _, length in spec.excerpt_windows)
    assert sum(pushed) == windows  # 8 s of 49.2 s: seeking, not decoding the whole film


def test_item_vector_of_a_video_has_both_halves(videos):
    spec = FeatureSpec()
    vec = item_vector("Home video", frames=videos[".mp4"], spec=spec)
    names = spec.item_names
    assert vec[names.index("has_audio")] == 1.0 and vec[names.index("has_frames")] == 1.0
    audio = vec[1:1 + spec.audio_dim]
    np.testing.assert_allclose(audio, audio_features(videos[".mp4"], spec), rtol=1e-6)


def test_a_video_without_sound_is_still_a_video(tmp_path):
    silent_stream = write_video(tmp_path / "no-audio.mp4", None, 22050, seconds=3.0)
    assert probe_soundtrack(silent_stream) is None and optional_soundtrack(silent_stream) is None
    with pytest.raises(FeatureError, match="no-audio.mp4: no audio stream"):
        probe_audio(silent_stream)
    with pytest.raises(FeatureError, match="no-audio.mp4: no soundtrack"):
        audio_features(silent_stream)
    spec = FeatureSpec()
    for video in (silent_stream, shared_data("video", "flower.mp4")):  # flower.mp4's track is all zeros
        vec = item_vector("Clip", frames=video, spec=spec)
        assert vec[spec.item_names.index("has_audio")] == 0.0 and not vec[1:1 + spec.audio_dim].any()
        assert vec[spec.item_names.index("has_frames")] == 1.0


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".webm", ".mov"])
def test_broken_containers_are_feature_errors(videos, tmp_path, suffix):
    data = videos[suffix].read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) * 3 // 10])  # before the second excerpt window
    with pytest.raises(FeatureError, match=rf"cut\{suffix}: (container does not open|truncated soundtrack)"):
        audio_features(cut)
    junk = tmp_path / f"junk{suffix}"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(FeatureError, match=rf"junk\{suffix}: container does not open"):
        audio_features(junk)
    with pytest.raises(FeatureError, match="file is empty"):
        (tmp_path / f"empty{suffix}").write_bytes(b"")
        audio_features(tmp_path / f"empty{suffix}")


def test_add_item_embeds_a_video_with_its_soundtrack_under_the_same_limits(device_bundle, videos, tmp_path, monkeypatch):
    with Recommender.open(device_bundle.bundle, tmp_path / "history.db") as rec:
        seen = []
        import edge.features

        original = edge.features.item_vector
        monkeypatch.setattr(edge.features, "item_vector", lambda *a, **k: seen.append(original(*a, **k)) or seen[-1])
        item = rec.add_item(videos[".mp4"], "Holiday film")
        assert seen[-1][0] == 1.0  # has_audio: the soundtrack was heard
        assert [it.item_id for it in rec.history.local_items(None)] == [item]
        assert rec.history.local_items(None)[0].kind == "video"
        rec.limits = ResourceLimits(max_media_seconds=30.0)
        with pytest.raises(FeatureError, match=r"clip\.webm: declares 49\.\d s of audio; the device profile allows 30 s"):
            rec.add_item(videos[".webm"], "too long")


def test_cli_features_audio_reads_a_video(videos):
    out = subprocess.run([sys.executable, "-m", "edge.cli", "features", "audio", str(videos[".mp4"])],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "mfcc_mean[0]" in out.stdout and "Traceback" not in out.stderr
