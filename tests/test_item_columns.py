"""The binary item columns of a bundle (``catalog/items.npz``): round trip, id lookup, damage
refused at open, and bundles written before them (``items.json``) ranking identically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.bundle import MANIFEST, Bundle, sha256_file
from edge.bundle.columns import read_item_columns, write_item_columns
from edge.bundle.catalogue import CatalogItems
from edge.errors import BundleError

ITEMS = dict(
    series_ids=["s", "s", None, "東京", None],
    episodes=[1, 2, None, 7, None],
    item_ids=["b", "a", "日本-1", "zz" * 20, "c d"],
    titles=["Bee", "", "東京の夜", "long", "x,y"],
    kinds=["audio", "video", "video", "audio", "video"],
    tags=[("jazz", "calm"), (), ("drama",), ("jazz",), ("calm", "drama", "jazz")],
    durations=[12.5, None, 3600.0, None, 0.0],
    age_ratings=[None, 12, 0, 18, None],
    available_from=[None, 1_700_000_000, None, None, 5.0],
    available_until=[None, None, 1_800_000_000, None, 9.0],
)


def _columns(tmp_path: Path, **changes) -> CatalogItems:
    path = tmp_path / "items.npz"
    write_item_columns(path, **{**ITEMS, **changes})
    return CatalogItems.from_columns(**read_item_columns(path))


def test_round_trip_matches_the_json_reader(tmp_path):
    got = _columns(tmp_path)
    ref = CatalogItems(ITEMS["item_ids"], ITEMS["titles"], ITEMS["kinds"], [list(t) for t in ITEMS["tags"]], ITEMS["durations"],
                       ITEMS["age_ratings"], ITEMS["available_from"], ITEMS["available_until"], ITEMS["series_ids"], ITEMS["episodes"])
    assert len(got) == 5 and [got[i] for i in range(5)] == [ref[i] for i in range(5)]
    assert list(got.item_ids) == ITEMS["item_ids"] and got.item_ids[-1] == "c d" and list(got.titles) == ITEMS["titles"]
    for name in ("is_audio", "durations", "age_ratings", "available_from", "available_until"):
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name))
    # Tag ids are compared for equality only: the same partition of (row, slot) pairs.
    a, b = got.tag_matrix(extra_rows=1), ref.tag_matrix(extra_rows=1)
    assert a.shape == b.shape == (6, 3) and np.array_equal(a < 0, b < 0)
    assert len({(x, y) for x, y in zip(a[a >= 0], b[b >= 0])}) == len(set(a[a >= 0].tolist())) == 3


def test_index_finds_every_id_and_nothing_else(tmp_path):
    index = _columns(tmp_path).index
    assert {i: index[i] for i in ITEMS["item_ids"]} == {i: r for r, i in enumerate(ITEMS["item_ids"])}
    assert len(index) == 5 and list(index) == ITEMS["item_ids"]
    for absent in ("", "B", "a ", "zz" * 21, "a\x00", 3, None, "日本"):
        assert absent not in index and index.get(absent) is None  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        index["nope"]
    probe = ["c d", "nope", "zz" * 20, "zz" * 21, "z", "a", "a\x00", "日本-1"]
    assert index.rows(probe).tolist() == [index.get(k, -1) for k in probe] == [4, -1, 3, -1, -1, 1, -1, 2]
    assert index.rows([]).tolist() == []


@pytest.mark.parametrize("changes, message", [
    ({"item_ids": ["a", "b", "a", "c", "d"]}, "not unique"),
    ({"item_ids": ["a", "b\x00", "c", "d", "e"]}, "NUL"),
    ({"kinds": ["audio", "song", "video", "audio", "video"]}, "unknown item kinds"),
    ({"titles": ["only one"]}, "different lengths"),
])
def test_the_writer_refuses_what_the_device_could_not_read(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        write_item_columns(tmp_path / "items.npz", **{**ITEMS, **changes})


def _damaged(tmp_path: Path, key: str, value) -> Path:
    path = tmp_path / "items.npz"
    write_item_columns(path, **ITEMS)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    if value is None:
        del arrays[key]
    else:
        arrays[key] = value(arrays[key])
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


@pytest.mark.parametrize("key, value, message", [
    ("id_row", lambda a: np.array([0, 0, 1, 2, 3]), "not a permutation"),
    ("id_row", lambda a: a + 1, "not a permutation"),
    ("id_sorted", lambda a: a[::-1].copy(), "not unique and sorted"),
    ("id_sorted", lambda a: np.array([b"\xff" + x for x in a.tolist()]), "UTF-8"),
    ("title_offsets", lambda a: a[:-1], "title offsets"),
    ("title_offsets", lambda a: np.where(np.arange(len(a)) == 2, a + 1, a), "UTF-8"),  # into 東
    ("title_blob", lambda a: np.concatenate([a, [0xFF]]).astype(np.uint8), "title offsets"),
    ("item_tags", lambda a: a + 10, "not in the vocabulary"),
    ("age_rating", lambda a: a[:2], "entries for 5 items"),
    ("duration_s", lambda a: a.astype("U8"), "expected a 1-d array"),
    ("is_audio", None, "lacks"),
    ("series_code", lambda a: a + 5, "series that are not in the vocabulary"),  # an unknown series
    ("episode", lambda a: np.full_like(a, 3), "episode number without a series"),
    ("series_blob", None, "only some of"),
    ("content", lambda a: a[:, :3], "content is"),
])
def test_damaged_columns_are_refused(tmp_path, key, value, message):
    with pytest.raises(ValueError, match=message):
        read_item_columns(_damaged(tmp_path, key, value))


def _rewrite(bundle: Path, rel: str, new_rel: str | None = None) -> None:
    """Point the manifest's catalogue at ``new_rel`` (default ``rel``) with its hash updated."""
    new_rel = new_rel or rel
    m = json.loads((bundle / MANIFEST).read_text())
    del m["files"][rel]
    m["files"][new_rel] = {"sha256": sha256_file(bundle / new_rel), "size": (bundle / new_rel).stat().st_size}
    m["catalog"]["items"] = new_rel
    (bundle / MANIFEST).write_text(json.dumps(m))


def test_a_damaged_items_file_fails_the_open_not_a_request(device_bundle, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(device_bundle.bundle, copy)
    rel = json.loads((copy / MANIFEST).read_text())["catalog"]["items"]
    assert rel.endswith(".npz")
    with np.load(copy / rel) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["item_tags"] = arrays["item_tags"] + 1000
    with open(copy / rel, "wb") as fh:
        np.savez(fh, **arrays)
    _rewrite(copy, rel)
    with pytest.raises(BundleError, match="catalogue cannot be read.*vocabulary"):
        Bundle.open(copy)


def test_a_bundle_with_items_json_ranks_exactly_as_with_columns(device_bundle, tmp_path):
    from edge import Recommender

    legacy = tmp_path / "legacy"
    shutil.copytree(device_bundle.bundle, legacy)
    new = Bundle.open(device_bundle.bundle)
    items = new.items
    columns = {"item_id": list(items.item_ids), "title": list(items.titles), "kind": [it.kind for it in items],
               "tags": [list(t) for t in items.tags], "duration_s": [it.duration_s for it in items],
               "age_rating": [it.age_rating for it in items], "available_from": [it.available_from for it in items],
               "available_until": [it.available_until for it in items], "series_id": [it.series_id for it in items],
               "episode": [it.episode for it in items]}
    (legacy / "catalog/items.json").write_text(json.dumps(columns))
    (legacy / "catalog/items.npz").unlink()
    _rewrite(legacy, "catalog/items.npz", "catalog/items.json")
    old = Bundle.open(legacy)
    assert isinstance(old.index, dict) and dict(old.index) == dict(new.index)
    assert [old.items[i] for i in range(len(items))] == [items[i] for i in range(len(items))]
    np.testing.assert_array_equal(old.items.tag_matrix(1) < 0, new.items.tag_matrix(1) < 0)
    results = []
    for root in (device_bundle.bundle, legacy):
        with Recommender.open(root, tmp_path / f"{root.name}.db") as rec:
            rec.history.add_profile("p")
            for i, item in enumerate(list(items.item_ids)[:5]):
                rec.record("p", item, "complete" if i % 2 else "play", timestamp=1_750_000_000 + i)
            results.append([(r.item_id, round(r.score, 6), r.reason) for r in rec.recommend("p", k=8, timestamp=1_750_000_100)])
    assert results[0] == results[1] and len(results[0]) == 8
