"""FeatureSpec, text features, the item vector, bundle refusal and the ``features`` CLI."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from edge.cli import main
from edge.errors import BundleError, FeatureError
from edge.features import FeatureSpec, audio_features, frame_features, item_vector, text_features
from tests.conftest import shared_data

SPEC = FeatureSpec()


# -- FeatureSpec ------------------------------------------------------------------------------


def test_names_match_dimensions():
    assert len(SPEC.audio_names) == SPEC.audio_dim
    assert len(SPEC.frames_names) == SPEC.frames_dim
    assert len(SPEC.item_names) == SPEC.item_dim == 1 + SPEC.audio_dim + 1 + SPEC.frames_dim + SPEC.text_dim
    assert len(set(SPEC.item_names)) == SPEC.item_dim
    wide = FeatureSpec(n_mfcc=20, n_filters=40, hue_bins=8)
    assert len(wide.audio_names) == wide.audio_dim and len(wide.frames_names) == wide.frames_dim


def test_spec_hash_is_stable_and_round_trips():
    s = FeatureSpec()
    assert FeatureSpec.from_dict(s.to_dict()) == s and FeatureSpec.from_dict(json.loads(json.dumps(s.to_dict()))).hash() == s.hash()
    full = FeatureSpec(excerpt_windows=None)
    assert FeatureSpec.from_dict(full.to_dict()) == full and full.hash() != s.hash()
    # The hash is of canonical JSON: the same in every process and on every platform.
    code = "from edge.features import FeatureSpec; print(FeatureSpec().hash())"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == s.hash()


@pytest.mark.parametrize(
    "change, field",
    [({"sample_rate_hz": 8000}, "sample_rate_hz"), ({"resampler": "soxr"}, "resampler"),
     ({"excerpt_windows": None}, "excerpt_windows"), ({"text_dim": 512}, "text_dim"), ({"version": 1}, "version")],
)  # fmt: skip
def test_spec_mismatch_names_the_differing_field(change, field):
    other = dataclasses.replace(SPEC, **change)
    assert other.hash() != SPEC.hash()
    with pytest.raises(BundleError, match=f"differs from this device's in '{field}'"):
        SPEC.check_same(other)


def test_spec_from_bundle_rejects_unknown_or_bad_fields():
    with pytest.raises(BundleError, match="unknown field"):
        FeatureSpec.from_dict({**SPEC.to_dict(), "bogus": 1})
    with pytest.raises(BundleError, match="feature spec is invalid: .*'resampler'"):
        FeatureSpec.from_dict({**SPEC.to_dict(), "resampler": "sinc"})


def _minimal_bundle(root, spec: FeatureSpec):
    """Just enough of a bundle for Bundle.open to reach the feature-spec check."""
    from edge.bundle import FORMAT, FORMAT_VERSION, sha256_file

    (root / "catalog").mkdir(parents=True)
    catalog = {"items": "catalog/items.json", "embeddings": "catalog/e.npy", "scales": "catalog/s.npy", "priors": "catalog/p.json"}
    (root / catalog["items"]).write_text("[]")
    (root / catalog["priors"]).write_text("{}")
    np.save(root / catalog["embeddings"], np.zeros((0, 4), np.int8))
    np.save(root / catalog["scales"], np.zeros(0, np.float32))
    files = {rel: {"sha256": sha256_file(root / rel), "size": (root / rel).stat().st_size} for rel in catalog.values()}
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "feature_spec": spec.to_dict(), "feature_spec_hash": spec.hash(),
        "embedding_dim": 4, "history_len": 1, "context_dim": 1, "models": {}, "catalog": catalog, "files": files,
    }  # fmt: skip
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.mark.parametrize("field, value", [("excerpt_windows", None), ("resampler", "soxr"), ("n_mfcc", 20)])
def test_device_refuses_a_bundle_built_with_another_spec(tmp_path, field, value):
    from edge.bundle import Bundle

    root = _minimal_bundle(tmp_path / "bundle", dataclasses.replace(SPEC, **{field: value}))
    with pytest.raises(BundleError, match=f"bundle's feature spec differs from this device's in '{field}'"):
        Bundle.open(root)


# -- text ---------------------------------------------------------------------------------------


def test_text_is_normalised_deterministic_and_any_language():
    a = text_features("Café  NEWS", ["Morning"], "")
    b = text_features("cafe\u0301 news", ["morning"], "")  # decomposed é, other case
    assert a.shape == (SPEC.text_dim,) and a.dtype == np.float32 and np.allclose(a, b)
    assert np.allclose(text_features("ＦＯＯＴＢＡＬＬ"), text_features("football"))  # NFKC folds full-width
    assert np.allclose(text_features("STRASSE"), text_features("straße"))  # casefold
    for text in ("東京のニュース", "Новости спорта", "أخبار الرياضة", "😀 emoji"):
        assert abs(np.linalg.norm(text_features(text)) - 1.0) < 1e-6
    match, final, opera = text_features("football match"), text_features("football final"), text_features("opera aria")
    assert float(match @ final) > float(match @ opera)
    assert not text_features("").any()
    assert text_features("x" * 100_000).shape == (SPEC.text_dim,)


def test_text_hashing_is_signed_and_fixed_size():
    v = text_features("the quick brown fox jumps over the lazy dog " * 3)
    assert (v > 0).any() and (v < 0).any()
    assert text_features("a", spec=FeatureSpec(text_dim=64)).shape == (64,)


# -- item vector ------------------------------------------------------------------------------


def test_item_vector_layout_and_missing_modalities(tmp_path):
    v = item_vector("Title", ["tag"], "desc")
    assert v.shape == (SPEC.item_dim,) and v.dtype == np.float32
    assert v[0] == 0 and v[1 + SPEC.audio_dim] == 0 and not v[1 : 1 + SPEC.audio_dim].any()
    assert np.allclose(v[-SPEC.text_dim :], text_features("Title", ["tag"], "desc"))
    x = (0.3 * np.sin(np.arange(32000) / 16000 * 2 * np.pi * 440)).astype(np.float32)
    sf.write(tmp_path / "a.wav", x, 16000)
    frames = np.full((3, 18, 32, 3), 90, np.uint8)
    np.save(tmp_path / "f.npy", frames)
    full = item_vector("T", audio=tmp_path / "a.wav", frames=tmp_path / "f.npy")
    names = SPEC.item_names
    assert full[names.index("has_audio")] == 1 and full[names.index("has_frames")] == 1
    a0 = names.index("audio.mfcc_mean[0]")
    assert np.allclose(full[a0 : a0 + SPEC.audio_dim], audio_features(tmp_path / "a.wav"))
    f0 = names.index("frames.hue_hist[0]")
    assert np.allclose(full[f0 : f0 + SPEC.frames_dim], frame_features(frames))
    assert np.allclose(item_vector("T", audio=tmp_path / "a.wav", frames=frames), full)


def test_export_uses_edge_features_and_has_no_copy():
    from pathlib import Path

    import export.features

    src = Path(export.features.__file__).read_text()
    assert "from edge.features import" in src
    for needle in ("get_filterbanks", "rfft", "resample_poly", "crc32", "def _hsv"):
        assert needle not in src


# -- CLI ----------------------------------------------------------------------------------------


def test_cli_prints_vectors_and_time(tmp_path, capsys):
    ogg = shared_data("audio", "198-209-0000.ogg")
    assert main(["features", "audio", str(ogg), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["dim"] == SPEC.audio_dim == len(out[0]["vector"]) == len(out[0]["names"])
    assert out[0]["seconds"] > 0 and out[0]["feature_spec_hash"] == SPEC.hash()
    assert np.allclose(out[0]["vector"], audio_features(ogg), atol=1e-5)

    np.save(tmp_path / "f.npy", np.full((2, 18, 32, 3), 90, np.uint8))
    assert main(["features", "frames", str(tmp_path / "f.npy")]) == 0
    text = capsys.readouterr().out
    assert f"frames vector, dim {SPEC.frames_dim}" in text and " ms" in text and "brightness_mean" in text

    (tmp_path / "epg.txt").write_text("Evening news — Nachrichten", encoding="utf-8")
    assert main(["features", "text", str(tmp_path / "epg.txt"), "--json"]) == 0
    assert np.allclose(json.loads(capsys.readouterr().out)[0]["vector"], text_features("Evening news — Nachrichten"), atol=1e-5)
    assert main(["features", "text", "--literal", "hello"]) == 0
    assert "text vector, dim 256" in capsys.readouterr().out


def test_cli_full_clip_option_changes_the_reading(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = np.concatenate([0.3 * rng.standard_normal(16000 * 10), np.zeros(16000 * 10)]).astype(np.float32)
    sf.write(tmp_path / "half.wav", x, 16000)
    assert main(["features", "audio", str(tmp_path / "half.wav"), "--json"]) == 0
    windows = json.loads(capsys.readouterr().out)[0]
    assert main(["features", "audio", str(tmp_path / "half.wav"), "--json", "--full-clip"]) == 0
    whole = json.loads(capsys.readouterr().out)[0]
    share = windows["names"].index("silence_share")
    assert windows["vector"][share] == pytest.approx(0.5, abs=0.02)  # start window sound, middle window silent
    assert whole["vector"][share] == pytest.approx(0.5, abs=0.02) and whole["feature_spec_hash"] != windows["feature_spec_hash"]


def test_cli_feature_error_is_one_line(tmp_path, capsys):
    (tmp_path / "x.wav").write_text("not audio")
    assert main(["features", "audio", str(tmp_path / "x.wav")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("edgerec: error: ") and "x.wav: not an audio file" in err and err.count("\n") == 1
    assert main(["features", "text", str(tmp_path / "missing.txt")]) == 1
    assert "missing.txt: no such file" in capsys.readouterr().err


def test_feature_errors_are_edge_errors():
    import edge

    assert issubclass(FeatureError, edge.EdgeError)
    assert "FeatureError" in edge.errors.__all__
