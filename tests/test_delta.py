"""Catalogue deltas: built on the server (export.delta), applied by the device's store
(BundleStore.apply_delta) into exactly the full bundle they stand for, refused with a
BundleError (and the active bundle untouched) whenever they do not fit."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tqdm", reason="building deltas needs the server side: pip install 'edgerec[export]'")

from edge.bundle import delta as dl  # noqa: E402
from edge.bundle.signing import TrustedKeys  # noqa: E402
from edge.bundle.store import BundleStore  # noqa: E402
from edge.context import Context  # noqa: E402
from edge.errors import BundleError  # noqa: E402
from edge.recommender import Recommender  # noqa: E402
from export.data.contract import Item, load_items  # noqa: E402
from export.delta import build_delta, full_bundle  # noqa: E402
from export.signing import generate_key, sign_bundle  # noqa: E402
from tests.conftest import make_tiny_catalogue  # noqa: E402

CATALOGUE_FILES = ("catalog/items.npz", "catalog/embeddings_int8.npy", "catalog/scales.npy", "catalog/priors.json")
T0 = 1_750_000_000


@pytest.fixture(scope="module")
def world(device_bundle, tmp_path_factory):
    """A signed copy of the fixture bundle, its catalogue's items (with media), and a key."""
    root = tmp_path_factory.mktemp("delta")
    _, items_csv, media = make_tiny_catalogue(root / "data")
    key = generate_key(root / "keys" / "k1")
    (root / "trusted").mkdir()
    shutil.copy(key.public_path, root / "trusted" / "k1.pub")
    base = root / "base"
    shutil.copytree(device_bundle.bundle, base)
    sign_bundle(base, key.private_path)
    return {"root": root, "items": load_items(items_csv, media), "key": key.private_path, "trusted": root / "trusted", "base": base}


def _churned(items: list[Item]) -> list[Item]:
    """Two removed, two changed (title; availability window), two added (media of existing items)."""
    new = [it for it in items if it.item_id not in ("i003", "i012")]
    new[0] = dataclasses.replace(new[0], title="Song 0, remastered")
    new[5] = dataclasses.replace(new[5], available_until=T0 + 86400 * 400, tags=("day", "new-season"))
    new.append(dataclasses.replace(items[4], item_id="n-audio", title="A new song"))
    new.append(dataclasses.replace(items[2], item_id="n-video", title="A new show", series_id=None, episode=None))
    return new


def _store(root: Path, world, name: str) -> BundleStore:
    store = BundleStore(root / name, trusted_keys=TrustedKeys.from_dir(world["trusted"]), require_signature=True)
    store.install(world["base"])
    return store


def _recommend(bundle_or_store: Path, db: Path) -> list[tuple]:
    with Recommender.open(bundle_or_store, db) as rec:
        liked = [i for i in ("i000", "i002", "i004", "n-audio") if i in rec.bundle.index] or list(rec.bundle.items.item_ids)[-4:]
        for j, iid in enumerate(liked):
            rec.record("ann", iid, "complete", timestamp=T0 + 60 * j)
        ctx = Context(hour=20, weekday=2, device="tv")
        return [(r.item_id, round(r.score, 6)) for r in rec.recommend("ann", k=10, context=ctx, timestamp=T0 + 3600)] + \
               [(r.item_id, round(r.score, 6)) for r in rec.recommend("guest", k=5, context=ctx, timestamp=T0 + 3600)]


@pytest.fixture(scope="module")
def delta(world):
    """The signed delta from the base to the churned catalogue (and its full target bundle)."""
    return build_delta(world["base"], _churned(world["items"]), world["root"] / "d1.tar", key=world["key"],
                       version=2_000_000_000)


def _state(store: BundleStore) -> tuple:
    active = store.current()
    files = sorted((p.relative_to(active).as_posix(), p.read_bytes()) for p in active.rglob("*") if p.is_file())
    leftovers = sorted(p.name for p in store.bundles_dir.iterdir() if p.name.startswith("."))
    return [e.id for e in store.history()], hashlib.sha256(repr(files).encode()).hexdigest(), leftovers


def test_delta_applies_and_equals_the_full_bundle(world, delta, tmp_path):
    assert (delta.removed, delta.added, delta.changed) == (2, 2, 2)
    store = _store(tmp_path, world, "store")
    before = store.history()[0].id
    entry = store.apply_delta(delta.delta)
    assert entry.active and entry.id != before
    for rel in (*CATALOGUE_FILES, "manifest.json", "manifest.sig"):
        assert (entry.path / rel).read_bytes() == (delta.target / rel).read_bytes(), rel
    assert [e.id for e in store.history()] == [entry.id, before]
    assert _recommend(tmp_path / "store", tmp_path / "a.db") == _recommend(delta.target, tmp_path / "b.db")
    with Recommender.open(tmp_path / "store", tmp_path / "d.db") as rec:
        assert "i003" not in rec.bundle.index and "n-video" in rec.bundle.index
        assert rec.bundle.items[rec.bundle.index["i000"]].title == "Song 0, remastered"
    # The patch is proportional to the change: far smaller than the bundle it rebuilds.
    assert delta.delta_bytes < delta.target_bytes / 4


def test_rollback_after_a_delta_returns_to_the_previous_bundle(world, delta, tmp_path):
    store = _store(tmp_path, world, "store")
    base_id = store.history()[0].id
    store.apply_delta(delta.delta)
    assert store.rollback().id == base_id
    assert store.current().name == base_id
    assert (store.current() / "manifest.json").read_bytes() == (world["base"] / "manifest.json").read_bytes()


def test_an_empty_delta_only_bumps_the_version(world, tmp_path):
    d = build_delta(world["base"], world["items"], tmp_path / "empty.tar", key=world["key"], version=2_000_000_001)
    assert (d.removed, d.added, d.changed) == (0, 0, 0)
    store = _store(tmp_path, world, "store")
    entry = store.apply_delta(d.delta)
    for rel in CATALOGUE_FILES:
        assert (entry.path / rel).read_bytes() == (world["base"] / rel).read_bytes()


def test_the_command_line_round_trip(world, tmp_path, capsys):
    from edge.cli import main
    from export.data.contract import write_items

    media = Path(world["items"][0].audio).parent
    write_items(tmp_path / "items.csv", _churned(world["items"]), media)
    out = tmp_path / "cli.tar"
    assert main(["pipeline", "delta", str(world["base"]), str(tmp_path / "items.csv"), "--out", str(out), "--media-root", str(media),
                 "--key", str(world["key"]), "--version", "2000000002", "--workers", "1"]) == 0
    assert "2 removed, 2 added, 2 changed" in capsys.readouterr().out
    _store(tmp_path, world, "store")
    assert main(["bundle", "apply-delta", str(tmp_path / "store"), str(out), "--trusted-keys", str(world["trusted"]),
                 "--require-signature"]) == 0
    assert "applied:" in capsys.readouterr().out
    assert main(["bundle", "apply-delta", str(tmp_path / "store"), str(out), "--trusted-keys", str(world["trusted"])]) == 1
    assert "delta for another bundle" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Refusals: each a BundleError, with the active bundle and the store as they were.


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]


def _pack(members: dict[str, bytes], out: Path) -> Path:
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def _resigned(delta_path: Path, out: Path, key: Path, change) -> Path:
    """The delta with its target manifest changed by ``change(manifest)``, re-signed with the
    trusted key and delta.json updated: only the device's own rules can refuse it."""
    import base64

    from export.signing import _load_private_key  # the signing of sign_bundle, without its bundle check

    members = _members(delta_path)
    manifest = json.loads(members["manifest.json"])
    change(manifest)
    data = json.dumps(manifest, indent=2).encode()
    sig = json.loads(members["manifest.sig"])
    sig["signature"] = base64.b64encode(_load_private_key(key).sign(data)).decode()
    doc = json.loads(members["delta.json"])
    doc["target"].update(manifest_sha256=hashlib.sha256(data).hexdigest(), bundle_version=manifest["bundle_version"])
    members.update({"delta.json": json.dumps(doc).encode(), "manifest.json": data, "manifest.sig": json.dumps(sig).encode()})
    return _pack(members, out)


def _tampered_patch(delta_path: Path, out: Path, update_sha: bool) -> Path:
    members = _members(delta_path)
    rows = bytearray(members[dl.ADDED_ROWS])
    rows[-1] ^= 0x01
    members[dl.ADDED_ROWS] = bytes(rows)
    if update_sha:  # delta.json is not signed: the signed manifest's hashes still catch it
        doc = json.loads(members["delta.json"])
        doc["files"][dl.ADDED_ROWS]["sha256"] = hashlib.sha256(rows).hexdigest()
        members["delta.json"] = json.dumps(doc).encode()
    return _pack(members, out)


def _unsigned(delta_path: Path, out: Path) -> Path:
    members = _members(delta_path)
    del members["manifest.sig"]
    return _pack(members, out)


def _bad_member(delta_path: Path, out: Path) -> Path:
    members = _members(delta_path)
    members["../escape.npy"] = b"x"
    return _pack(members, out)


def _bump_models(m: dict) -> None:
    m["models"]["fusion"]["inputs"] = ["features", "extra"]


def _bump_model_file(m: dict) -> None:
    m["files"]["models/fusion.onnx"]["sha256"] = "0" * 64


def _bump_spec(m: dict) -> None:
    m["feature_spec_hash"] = "f" * 64


CASES = {
    "another bundle": ("another bundle", None),
    "older": ("older than the installed", lambda m: m.update(bundle_version=5)),
    "same version": ("older than the installed", "same"),
    "model entry": ("change models or the feature spec", _bump_models),
    "model file": ("change models or the feature spec", _bump_model_file),
    "feature spec": ("change models or the feature spec", _bump_spec),
    "tampered patch": ("tampered", "tamper"),
    "tampered patch, sha updated": ("fails its sha256 check", "tamper-sha"),
    "truncated": ("truncated", "truncate"),
    "garbage": ("not an uncompressed tar", "garbage"),
    "unsigned": ("unsigned", "unsigned"),
    "unsafe member": ("unsafe path", "member"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_deltas_leave_the_active_bundle_unchanged(world, delta, tmp_path, case):
    match, how = CASES[case]
    store = _store(tmp_path, world, "store")
    bad = tmp_path / "bad.tar"
    if case == "another bundle":
        # A delta made from the delta's target, applied to a store still on the base.
        later = [*_churned(world["items"])[1:]]
        bad = build_delta(delta.target, later, tmp_path / "d2.tar", key=world["key"], version=2_000_000_100).delta
    elif how == "same":
        base_version = json.loads((world["base"] / "manifest.json").read_text())["bundle_version"]
        _resigned(delta.delta, bad, world["key"], lambda m: m.update(bundle_version=base_version))
    elif callable(how):
        _resigned(delta.delta, bad, world["key"], how)
    elif how in ("tamper", "tamper-sha"):
        _tampered_patch(delta.delta, bad, how == "tamper-sha")
    elif how == "truncate":
        data = delta.delta.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        bad.write_bytes(bytes(range(256)) * 40)
    elif how == "unsigned":
        _unsigned(delta.delta, bad)
    elif how == "member":
        _bad_member(delta.delta, bad)
    before = _state(store)
    with pytest.raises(BundleError, match=match):
        store.apply_delta(bad)
    assert _state(store) == before


def test_an_unsigned_delta_applies_where_signatures_are_not_required(world, delta, tmp_path):
    store = BundleStore(tmp_path / "open")
    store.install(world["base"])
    entry = store.apply_delta(_unsigned(delta.delta, tmp_path / "u.tar"))
    assert (entry.path / "catalog/items.npz").read_bytes() == (delta.target / "catalog/items.npz").read_bytes()


def test_a_delta_over_the_size_limits_is_refused(world, delta, tmp_path):
    from edge.bundle.archive import InstallLimits

    _store(tmp_path, world, "store")
    tight = InstallLimits(max_total_bytes=10_000, max_member_bytes=10_000, max_manifest_bytes=1 << 20)
    store = BundleStore(tmp_path / "store", limits=tight)
    before = _state(store)
    padded = tmp_path / "padded.tar"
    padded.write_bytes(delta.delta.read_bytes() + bytes(3 << 20))  # still a valid tar, but 3 MiB more
    with pytest.raises(BundleError, match="over this device's limit"):
        store.apply_delta(padded)
    small = BundleStore(tmp_path / "store", limits=InstallLimits(max_total_bytes=1_000, max_member_bytes=1_000))
    with pytest.raises(BundleError, match="over the"):
        small.apply_delta(delta.delta)
    assert _state(store) == before


# ---------------------------------------------------------------------------------------------
# A month of churn.


def _synthetic_items(n: int, start: int, rng: np.random.Generator) -> list[Item]:
    return [Item(f"s{start + i:05d}", f"Programme {start + i}", (rng.choice(["news", "drama", "music", "kids"]),),
                 "audio" if (start + i) % 3 == 0 else "video", float(rng.integers(60, 3600)),
                 age_rating=int(rng.choice([0, 7, 12, 18])), available_until=T0 + int(rng.integers(1, 90)) * 86400)
            for i in range(n)]


def test_a_month_of_daily_churn_equals_the_full_bundle_of_the_final_catalogue(device_bundle, tmp_path):
    from edge.bundle import Bundle
    from export.bundle import popularity_priors, write_bundle

    rng = np.random.default_rng(7)
    fixture = Bundle.open(device_bundle.bundle)
    n = 300
    items = _synthetic_items(n, 0, rng)
    emb = rng.standard_normal((n, fixture.embedding_dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    models = {name: {b: p for b, p in fixture.model_paths(name).items()} for name in ("interest", "fusion")}
    inputs = {name: fixture.manifest["models"][name]["inputs"] for name in ("interest", "fusion")}
    plays = rng.integers(0, n, 2000)
    priors = popularity_priors(plays, T0 + rng.integers(0, 86400 * 7, 2000), n, [it.kind for it in items], top=50)
    base = write_bundle(tmp_path / "day0", items, emb, models, inputs, priors, fixture.feature_spec, fixture.history_len,
                        version=1_000)
    store = BundleStore(tmp_path / "store")
    store.install(base)
    current, catalogue, next_id = base, list(items), n
    for day in range(1, 31):
        gone = set(rng.choice([it.item_id for it in catalogue], size=3, replace=False).tolist())
        catalogue = [it for it in catalogue if it.item_id not in gone] + _synthetic_items(3, next_id, rng)
        next_id += 3
        if day % 7 == 0:  # a weekly schedule change: new availability windows
            catalogue[day] = dataclasses.replace(catalogue[day], available_from=T0 + day * 86400)
        d = build_delta(current, catalogue, tmp_path / f"day{day}.tar", version=1_000 + day, target=tmp_path / f"day{day}.bundle")
        assert (d.removed, d.added) == (3, 3)
        store.apply_delta(d.delta)
        current = d.target
    active = store.current()
    full = full_bundle(base, catalogue, tmp_path / "full", version=3_000_000_000)  # by id alone, not by the patch rules
    for rel in CATALOGUE_FILES:
        assert (active / rel).read_bytes() == (full / rel).read_bytes(), rel
    assert _recommend(tmp_path / "store", tmp_path / "a.db") == _recommend(full, tmp_path / "b.db")
    assert len(store.history()) == 3  # active + keep=2 previous


def test_a_running_recommender_and_the_service_apply_a_delta(world, delta, tmp_path):
    """The facade (and the service through it) applies the delta to the store it serves and
    answers from the new catalogue at once, with the history kept; a refused delta leaves it
    serving the old one; a recommender on a bundle folder has no store to patch."""
    import tempfile

    from tests.test_service import Client, serve

    _store(tmp_path, world, "store")
    with Recommender.open(tmp_path / "store", tmp_path / "h.db") as rec:
        rec.record("ann", "i000", "complete", timestamp=T0)
        old = rec.bundle.root
        other = _resigned(delta.delta, tmp_path / "other.tar", world["key"], lambda m: m.update(bundle_version=1))
        with pytest.raises(BundleError):
            rec.apply_delta(other)
        assert rec.bundle.root == old and "n-audio" not in rec.bundle.index
        folder = Path(tempfile.mkdtemp(prefix="edgerec-delta-"))
        svc = serve(rec, folder)
        try:
            c = Client(svc.socket_path, svc.token)
            done = c.result("apply_delta", path=str(delta.delta))
            assert done["items"] == len(rec.bundle.items) and done["previous"] != done["bundle"]
            served = c.result("recommend", profile="ann", k=40, timestamp=T0 + 3600)
            again = c.call("apply_delta", path=str(delta.delta))  # the same delta twice: not newer any more
            assert again is not None and again["error"]["type"] == "BundleError"
            c.close()
        finally:
            svc.stop()
        assert "n-audio" in rec.bundle.index and "i003" not in rec.bundle.index
        assert rec.recent("ann", 5)[0].item_id == "i000"
    with Recommender.open(delta.target, tmp_path / "h2.db") as fresh:
        fresh.record("ann", "i000", "complete", timestamp=T0)
        assert [r["item_id"] for r in served] == [r.item_id for r in fresh.recommend("ann", k=40, timestamp=T0 + 3600)]
    with Recommender.open(world["base"], tmp_path / "h3.db") as plain:
        with pytest.raises(BundleError, match="not a bundle store"):
            plain.apply_delta(delta.delta)
