"""Resource limits from the device profile: media size and duration for Recommender.add_item
(checked before anything is decoded), request size and rate for ``edgerec serve``, and the
catalogue cap that sizes memory."""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pytest
import soundfile as sf

import edge.features
from edge.errors import EdgeError, FeatureError, ProfileError
from edge.profiles import ResourceLimits, load_profile
from edge.recommender import Recommender
from edge.service import Limits
from edge.cli.serve import register, request_limits


@pytest.fixture
def rec(device_bundle, tmp_path):
    r = Recommender.open(device_bundle.bundle, tmp_path / "history.db")
    yield r
    r.close()


def _wav(path, seconds: float, rate: int = 16000):
    t = np.arange(int(rate * seconds)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    return path


def _no_decoding(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("decoded media that the limits should have refused")

    monkeypatch.setattr(edge.features, "item_vector", refuse)


def test_media_file_over_the_byte_limit_is_refused_before_decoding(rec, tmp_path, monkeypatch):
    path = _wav(tmp_path / "big.wav", 2.0)  # 64 kB of float samples
    rec.limits = ResourceLimits(max_media_bytes=4096)
    _no_decoding(monkeypatch)
    with pytest.raises(FeatureError, match=r"big\.wav: \d+ bytes; the device profile allows 4096 \(limits\.max_media_bytes\)"):
        rec.add_item(path, "too big")
    folder = tmp_path / "stills"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.png").write_bytes(b"\x89PNG" + bytes(2000))
    with pytest.raises(FeatureError, match="limits.max_media_bytes"):
        rec.add_item(folder, "too many stills")
    with pytest.raises(FeatureError, match=r"frames of 6912 bytes.*limits\.max_media_bytes"):
        rec.add_item(np.zeros((4, 18, 32, 3), np.uint8), "too many frames")
    assert rec.history.local_items(None) == []


def test_audio_longer_than_the_duration_limit_is_refused_before_decoding(rec, tmp_path, monkeypatch):
    path = _wav(tmp_path / "long.wav", 3.0)
    rec.limits = ResourceLimits(max_media_seconds=2.5)
    with monkeypatch.context() as m:
        _no_decoding(m)
        with pytest.raises(FeatureError, match=r"long\.wav: declares 3\.0 s of audio; the device profile allows 2\.5 s"):
            rec.add_item(path, "too long")
    assert rec.history.local_items(None) == []
    # Within both limits, the same call embeds and stores the item.
    item = rec.add_item(_wav(tmp_path / "short.wav", 2.0), "short enough")
    assert [it.item_id for it in rec.history.local_items(None)] == [item]


def test_open_with_a_device_profile_applies_its_media_limits(device_bundle, tmp_path):
    prof = dataclasses.replace(load_profile("x86-dev"), limits=ResourceLimits(max_media_bytes=2048))
    with Recommender.open(device_bundle.bundle, tmp_path / "h.db", device_profile=prof) as r:
        assert r.limits == prof.limits
        with pytest.raises(FeatureError, match="limits.max_media_bytes"):
            r.add_item(_wav(tmp_path / "a.wav", 1.0), "over 2 kB")
    with Recommender.open(device_bundle.bundle, tmp_path / "h2.db") as r:
        assert r.limits is None  # no profile: no media limits beyond the decoders' own checks


def test_catalogue_cap_is_the_memory_limit_checked_at_open(device_bundle, tmp_path):
    prof = dataclasses.replace(load_profile("x86-dev"), max_catalogue_items=5)
    with pytest.raises(ProfileError, match=r"catalogue\.max_items = 5"):
        Recommender.open(device_bundle.bundle, tmp_path / "h.db", device_profile=prof)


def _serve_args(*extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["serve", "--bundle", "b", "--db", "h.db", *extra])


def test_serve_takes_request_size_and_rate_from_the_profile():
    speaker = load_profile("speaker-a53")
    got = request_limits(_serve_args("--device-profile", "speaker-a53"), speaker)
    assert (got.max_request_bytes, got.rate_per_s, got.burst) == (speaker.limits.max_request_bytes, speaker.limits.max_requests_per_s,
                                                                  round(2 * speaker.limits.max_requests_per_s))
    assert (got.max_request_bytes, got.rate_per_s) == (32768, 10.0)
    # Flags given on the command line win over the profile.
    got = request_limits(_serve_args("--device-profile", "speaker-a53", "--rate", "3", "--max-request-bytes", "1000"), speaker)
    assert (got.max_request_bytes, got.rate_per_s, got.burst) == (1000, 3.0, 6)
    # No profile: the service's own defaults.
    got = request_limits(_serve_args(), None)
    assert (got.max_request_bytes, got.rate_per_s) == (Limits().max_request_bytes, Limits().rate_per_s)
    zero = dataclasses.replace(speaker, limits=dataclasses.replace(speaker.limits, max_requests_per_s=0.0))
    with pytest.raises(EdgeError, match="rate_per_s"):
        request_limits(_serve_args(), zero)
