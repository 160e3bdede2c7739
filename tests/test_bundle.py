"""Bundles: written verified, and refused when anything in them is altered."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edge.bundle import Bundle
from edge.errors import BundleError
from edge.features import FeatureSpec
from edge.contract.int8 import quantize_rows


def test_manifest_lists_every_file_with_hash_and_size(tiny_build, tiny_dataset):
    b = Bundle.open(tiny_build.bundle)
    files = {p.relative_to(tiny_build.bundle).as_posix() for p in tiny_build.bundle.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(b.manifest["files"]) == files
    assert b.manifest["feature_spec_hash"] == FeatureSpec().hash()
    assert b.manifest["training_data"]["n_items"] == len(b.items) == 40
    assert {p["model"].split()[0] for p in b.manifest["model_card"]["parity"]["checks"]} == {"interest", "fusion"}
    for key in ("created_at", "format_version", "build_config", "precision"):
        assert key in b.manifest
    assert b.manifest["catalog"]["items"] == "catalog/items.npz"
    items = tiny_dataset.items  # the catalogue the bundle was built from, in order
    assert [b.items[i].item_id for i in range(40)] == [it.item_id for it in items]
    for i in (0, 3, 39):
        got, src = b.items[i], items[i]
        assert (got.title, got.kind, got.tags, got.age_rating) == (src.title, src.kind, src.tags, src.age_rating)
        assert b.index[src.item_id] == i
    priors = json.loads((tiny_build.bundle / "catalog/priors.json").read_text())
    assert set(priors["by_device_hour"]) == {"tv", "speaker"} and len(priors["by_device_hour"]["speaker"]) == 24
    assert b.embeddings_int8.dtype == np.int8 and isinstance(b.embeddings_int8, np.memmap)


def test_int8_rows_reconstruct_within_half_a_step():
    emb = np.random.default_rng(0).standard_normal((50, 64)).astype(np.float32)
    q, s = quantize_rows(emb)
    assert q.dtype == np.int8 and np.abs(q).max() == 127
    assert np.abs(q * s[:, None] - emb).max() <= s.max() / 2 + 1e-6


@pytest.fixture
def copy(tiny_build, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(tiny_build.bundle, dst)
    return dst


def _edit_manifest(root, fn):
    m = json.loads((root / "manifest.json").read_text())
    fn(m)
    (root / "manifest.json").write_text(json.dumps(m))


def test_flipped_byte_is_refused(copy):
    p = copy / "catalog" / "embeddings_int8.npy"
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="embeddings_int8.npy fails its sha256 check"):
        Bundle.open(copy)


def test_truncated_file_is_refused(copy):
    p = copy / "models" / "interest.onnx"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(BundleError, match="interest.onnx is 100 bytes"):
        Bundle.open(copy)


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda m: m.update(format_version=99), "format version 99"),
        (lambda m: m.update(embedding_dim="64"), "'embedding_dim' should be int"),
        (lambda m: m.pop("files"), "missing field 'files'"),
        (lambda m: m["files"].update({"../../etc/passwd": {"sha256": "0", "size": 1}}), "unsafe path"),
        (lambda m: m["files"].pop("catalog/priors.json"), "not listed"),
        (lambda m: m["feature_spec"].update(sample_rate_hz=8000), "feature_spec_hash does not match"),
    ],
)
def test_malformed_manifest_is_refused(copy, edit, words):
    _edit_manifest(copy, edit)
    with pytest.raises(BundleError, match=words):
        Bundle.open(copy)


def test_spec_mismatch_names_the_field(copy):
    with pytest.raises(BundleError, match="'n_mfcc'"):
        Bundle.open(copy, FeatureSpec(n_mfcc=20))


def test_not_a_bundle_and_bad_json(tmp_path):
    with pytest.raises(BundleError, match="not a bundle"):
        Bundle.open(tmp_path)
    (tmp_path / "manifest.json").write_text("{nope")
    with pytest.raises(BundleError, match="not valid JSON"):
        Bundle.open(tmp_path)


def test_symlink_member_is_refused(copy, tmp_path):
    target = copy / "catalog" / "priors.json"
    outside = tmp_path / "outside.json"
    shutil.copyfile(target, outside)
    target.unlink()
    target.symlink_to(outside)
    with pytest.raises(BundleError, match="symbolic link"):
        Bundle.open(copy)


def test_catalogue_metadata_reads_columns_and_legacy_item_lists():
    from edge.bundle import CatalogItems

    legacy = [{"item_id": "a", "title": "A", "kind": "audio", "tags": ["x"], "duration_s": 3.0},
              {"item_id": "b", "title": "B", "kind": "video", "age_rating": 16, "available_until": 5}]
    items = CatalogItems.from_json(legacy)
    assert [it.item_id for it in items] == ["a", "b"] and items[0].tags == ("x",) and items[1].age_rating == 16
    assert items.is_audio.tolist() == [True, False] and items.available_until.tolist() == [np.inf, 5.0]
    assert items.age_ratings.tolist() == [-1, 16]
    with pytest.raises(ValueError):
        CatalogItems.from_json({"title": ["A"]})
