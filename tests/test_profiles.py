"""Device profiles: every shipped profile loads, and every invalid field is named in the error."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest

from edge.errors import ProfileError
from edge.features import FeatureSpec
from edge.profiles import BUDGET_KEYS, PROFILE_DIR, list_profiles, load_profile, parse_profile

ROOT = Path(__file__).resolve().parents[1]
RPI4 = (PROFILE_DIR / "rpi4.toml").read_text(encoding="utf-8")


def test_every_shipped_profile_loads_with_sources_and_all_budgets():
    names = list_profiles()
    assert {"rpi4", "tv-a55", "speaker-a53", "x86-dev"} <= set(names)
    for name in names:
        p = load_profile(name)
        assert p.name == name and 1 <= p.threads <= p.cores
        assert set(p.budgets) == set(BUDGET_KEYS)
        assert p.source_notes
        assert p.budgets["peak_rss_mb"] <= p.memory_budget_mb


def test_arm_profiles_cite_vendor_pages_and_state_their_cores():
    for name, cores, core in (("rpi4", 4, "A72"), ("tv-a55", 4, "A55"), ("speaker-a53", 4, "A53")):
        p = load_profile(name)
        assert p.arch == "aarch64" and p.cores == cores and core in p.cpu
        assert p.source_urls and all(u.startswith("https://") for u in p.source_urls)
    assert load_profile("speaker-a53").memory_mb == 512


def test_repository_folder_points_at_the_shipped_profiles():
    for name in list_profiles():
        link = ROOT / "device_profiles" / f"{name}.toml"
        assert link.resolve() == (PROFILE_DIR / f"{name}.toml").resolve()
        assert load_profile(str(link)).name == name


def test_shipped_profiles_match_the_default_feature_spec():
    spec = FeatureSpec()
    bundle = SimpleNamespace(feature_spec=spec, manifest={"precision": "int8"}, items=[0] * 10, root=Path("b"))
    for name in list_profiles():
        load_profile(name).check_bundle(bundle)


def _edit(old: str, new: str) -> str:
    assert old in RPI4, old
    return RPI4.replace(old, new, 1)


@pytest.mark.parametrize(
    "text, field",
    [
        (_edit("threads = 2", "threads = 9"), "runtime.threads"),
        (_edit("threads = 2", 'threads = "2"'), "runtime.threads"),
        (_edit('backends = ["onnx", "tflite"]', 'backends = ["onnx", "tensorrt"]'), "runtime.backends"),
        (_edit('backends = ["onnx", "tflite"]', "backends = []"), "runtime.backends"),
        (_edit('precision = "int8"', 'precision = "int4"'), "runtime.precision"),
        (_edit('sqlite_synchronous = "FULL"', 'sqlite_synchronous = "OFF"'), "history.sqlite_synchronous"),
        (_edit("sample_rate_hz = 16000", "sample_rate_hz = 100"), "features.sample_rate_hz"),
        (_edit("excerpt_windows = [[0.0, 4.0], [0.5, 4.0]]", "excerpt_windows = [[1.5, 4.0]]"), "features.excerpt_windows"),
        (_edit("recommend_ms = 150.0", "recommend_ms = -1.0"), "budgets.recommend_ms"),
        (_edit("peak_rss_mb = 320.0", "peak_rss_mb = 9999.0"), "budgets.peak_rss_mb"),
        (_edit("cores = 4", "cores = 0"), "hardware.cores"),
        (_edit("recommend_ms = 150.0\n", ""), "budgets.recommend_ms"),
        (_edit("max_items = 200000", "max_items = 200000\nmax_itemz = 5"), "max_itemz"),
        (_edit("[catalogue]\nmax_items = 200000\n", ""), "[catalogue]"),
        (_edit("require_signature = false", 'require_signature = "no"'), "security.require_signature"),
        (_edit('require_signature = false', "require_signature = true"), "security.trusted_keys_dir"),
        (_edit('trusted_keys_dir = ""', "trusted_keys_dir = 3"), "security.trusted_keys_dir"),
        (_edit("max_media_bytes = 2147483648", "max_media_bytes = -1"), "limits.max_media_bytes"),
        (_edit("max_media_seconds = 14400.0", "max_media_seconds = 0"), "limits.max_media_seconds"),
        (_edit("max_request_bytes = 65536", "max_request_bytes = 1.5"), "limits.max_request_bytes"),
        (_edit("max_requests_per_s = 50.0", 'max_requests_per_s = "fast"'), "limits.max_requests_per_s"),
        (_edit("max_requests_per_s = 50.0\n", ""), "limits.max_requests_per_s"),
        (_edit("[limits]\n", "[limitz]\n"), "limitz"),
    ],
)
def test_invalid_profile_raises_profile_error_naming_the_file_and_field(text, field):
    with pytest.raises(ProfileError) as err:
        parse_profile("mine.toml", text)
    assert "mine.toml" in str(err.value) and field in str(err.value)


def test_invalid_toml_and_unknown_names_are_profile_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [", encoding="utf-8")
    with pytest.raises(ProfileError, match="bad.toml: not valid TOML"):
        load_profile(bad)
    with pytest.raises(ProfileError, match="unknown device profile 'pi5'.*rpi4"):
        load_profile("pi5")
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"sample_rate_hz": 8000}, "features.sample_rate_hz"),
        ({"excerpt_windows": ((0.0, 8.0),)}, "features.excerpt_windows"),
        ({"excerpt_windows": None}, "features.excerpt_windows"),
        ({"frame_interval_s": 1.0}, "features.frame_interval_s"),
        ({"max_frames": 8}, "features.max_frames"),
    ],
)
def test_bundle_built_with_other_feature_settings_is_refused_naming_the_field(change, field):
    spec = dataclasses.replace(FeatureSpec(), **change)
    bundle = SimpleNamespace(feature_spec=spec, manifest={}, items=[], root=Path("b"))
    with pytest.raises(ProfileError, match=field.replace(".", r"\.")):
        load_profile("rpi4").check_bundle(bundle)


def test_bundle_over_the_catalogue_cap_or_of_another_precision_is_refused():
    prof = dataclasses.replace(load_profile("rpi4"), max_catalogue_items=5)
    with pytest.raises(ProfileError, match=r"catalogue\.max_items = 5.*6 items"):
        prof.check_bundle(SimpleNamespace(feature_spec=FeatureSpec(), manifest={}, items=[0] * 6, root=Path("b")))
    with pytest.raises(ProfileError, match=r"runtime\.precision"):
        prof.check_bundle(SimpleNamespace(feature_spec=FeatureSpec(), manifest={"precision": "fp32"}, items=[], root=Path("b")))


def test_security_and_limits_are_read_and_products_require_signatures(tmp_path):
    for name in ("tv-a55", "speaker-a53"):
        sec = load_profile(name).security
        assert sec.require_signature is True and sec.trusted_keys_dir == Path("/etc/edgerec/trusted-keys")
    for name in ("x86-dev", "rpi4"):
        prof = load_profile(name)
        assert prof.security.require_signature is False and prof.security.trusted_keys_dir is None
        assert prof.limits.max_request_bytes == 65536 and prof.limits.max_requests_per_s == 50.0
    assert load_profile("speaker-a53").limits.max_media_bytes == 512 << 20
    assert load_profile("speaker-a53").limits.max_media_seconds == 7200.0
    # A relative keys folder is resolved against the profile's own folder.
    mine = tmp_path / "mine.toml"
    mine.write_text(_edit('trusted_keys_dir = ""', 'trusted_keys_dir = "keys"'), encoding="utf-8")
    assert load_profile(mine).security.trusted_keys_dir == tmp_path / "keys"
