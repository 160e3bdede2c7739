"""Catalogue deltas on the server: the day's catalogue change against a shipped bundle.

    >>> build_delta("bundle/", "items.csv", "delta.tar", key="keys/2026-a.pem")

The new catalogue (``items.csv``, the data contract) is diffed with the old bundle's by item
id: items gone are removed, new ones are embedded with the OLD bundle's fusion student (from
their media, :func:`export.features.catalogue_features`) and quantised, items whose metadata
changed (title, kind, tags, duration, age rating, availability window, series, episode) are
shipped with their new metadata and keep their embeddings. The target catalogue is built
with the device's own functions (:mod:`edge.bundle.delta`), so the bundle the device rebuilds is
byte for byte the full target bundle written here beside the delta (for devices too far behind
to patch). Models and the feature spec never change in a delta.

What is not seen: a changed description or changed media of an item that keeps its id (the
bundle keeps neither); give such an item a new id, or ship a full bundle.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from edge.bundle import MANIFEST, SIGNATURE, Bundle, pack_archive, sha256_file
from edge.bundle.archive import write_tar
from edge.bundle import delta as dl
from edge.bundle.freshness import DEFAULT_VALID_DAYS, bundle_version
from edge.contract.content import measured_content
from edge.contract.int8 import quantize_rows
from edge.errors import DataError
from export.bundle import CATALOG_PATHS, assemble_bundle, item_columns
from export.data.contract import Item, load_items

__all__ = ["DeltaResult", "build_delta", "embed_items", "full_bundle"]

#: Manifest fields the bundle writer sets itself; every other base field is carried over.
_WRITER_FIELDS = {"format", "format_version", "created_at", "bundle_version", "expires_at", "edgerec_version", "feature_spec",
                  "feature_spec_hash", "embedding_dim", "history_len", "context_dim", "models", "catalog", "files"}


@dataclass(frozen=True)
class DeltaResult:
    """What :func:`build_delta` wrote.

    :param delta: the delta archive; ``delta_bytes`` its size.
    :param target: the full target bundle folder (``target_archive`` its ``.tar``;
        ``target_bytes`` the archive's size).
    """

    delta: Path
    target: Path
    target_archive: Path
    removed: int
    added: int
    changed: int
    delta_bytes: int
    target_bytes: int
    bundle_version: int


def embed_items(bundle: Bundle, features: np.ndarray) -> np.ndarray:
    """float32 ``(n, dim)``: the bundle's fusion student on item vectors, one row per run, the
    way the device embeds a local item. One row at a time on purpose: a batched GEMM may round
    differently with the batch's size, and an item's int8 row must not depend on which other
    items happened to arrive the same day."""
    if not len(features):
        return np.zeros((0, bundle.embedding_dim), np.float32)
    model = bundle.load_model("fusion")
    feats = np.asarray(features, np.float32)
    return np.concatenate([model.run({"features": feats[i:i + 1]}) for i in range(len(feats))]).astype(np.float32)


def _features(items: Sequence[Item], bundle: Bundle, workers: int) -> np.ndarray:
    from export.features import catalogue_features

    if not items:
        return np.zeros((0, bundle.feature_spec.item_dim), np.float32)
    return catalogue_features(items, bundle.feature_spec, workers=workers, progress=False)


def build_delta(old_bundle: str | Path, new_items: str | Path | Sequence[Item], out: str | Path, media_root: str | Path | None = None,
                key: str | Path | None = None, version: int | None = None, target: str | Path | None = None,
                valid_days: float = DEFAULT_VALID_DAYS, workers: int = 1, features: np.ndarray | None = None) -> DeltaResult:
    """Write the delta from ``old_bundle`` to the catalogue ``new_items``, and the full target
    bundle it stands for.

    :param new_items: the whole new catalogue: an ``items.csv`` (data contract) or its items.
    :param out: the delta archive to write (``.tar``).
    :param media_root: the folder ``items.csv``'s media paths are relative to.
    :param key: ed25519 private key PEM: sign the target manifest (``edgerec pipeline keygen``).
    :param version: the target's ``bundle_version`` (default: now in Unix seconds, or the base's
        plus one when that is not later); must be above the base's.
    :param target: where the full target bundle goes (default ``<out without .tar>.bundle``,
        and its archive beside it).
    :param features: item vectors of the added items, in catalogue order (default: computed from
        their media); for catalogues whose items have no media, e.g. benchmarks.
    :returns: what was written. An empty change is a valid delta (a version bump only).
    :raises DataError: a bad ``items.csv`` or ``version``.
    :raises BundleError: the old bundle does not verify, or its catalogue has no item columns.
    """
    base = Bundle.open(old_bundle)
    base_root = Path(old_bundle)
    base_data = (base_root / MANIFEST).read_bytes()
    base_version = bundle_version(base.manifest)
    out = Path(out)
    target = Path(target) if target is not None else out.with_name(out.name.removesuffix(".tar") + ".bundle")
    if target.with_name(target.name + ".tar").resolve() == out.resolve() or target.resolve() == out.resolve():
        raise DataError(f"--target {target}: its archive {target.name}.tar would overwrite the delta {out}; choose another --target")
    if version is None:
        version = max(int(time.time()), base_version + 1)
    if isinstance(version, bool) or not isinstance(version, int) or version <= base_version:
        raise DataError(f"--version {version!r}: a delta must bring a bundle version above the old bundle's ({base_version})")
    dl.catalogue_paths(base.manifest, str(base_root))
    items = list(new_items) if not isinstance(new_items, (str, Path)) else load_items(new_items, media_root)

    old = dl.ItemColumns.from_catalog(base.items)
    old_rows = {iid: r for r, iid in enumerate(old.item_ids)}
    new_ids = {it.item_id for it in items}
    removed = [iid for iid in old.item_ids if iid not in new_ids]
    added = [it for it in items if it.item_id not in old_rows]
    probe = item_columns(items, np.zeros((len(items), old.content.shape[1]), np.float32))
    changed_at = [j for j, it in enumerate(items) if it.item_id in old_rows and probe.metadata_row(j) != old.metadata_row(old_rows[it.item_id])]
    changed = probe.take(changed_at)
    # Measured content comes from media, which a metadata change leaves as it was.
    changed.content = old.content[[old_rows[i] for i in changed.item_ids]] if changed_at else old.content[:0]

    if features is None:
        features = _features(added, base, workers)
    features = np.asarray(features, np.float32)
    if features.shape != (len(added), base.feature_spec.item_dim):
        raise DataError(f"features are {features.shape}, expected ({len(added)}, {base.feature_spec.item_dim}) for the added items")
    q_add, s_add = quantize_rows(embed_items(base, features))
    patch = dl.CataloguePatch(removed, changed, item_columns(added, measured_content(features, base.feature_spec)), q_add, s_add)
    q, s, cols, priors = dl.rebuild_catalogue(base.embeddings_int8, base.scales, old, base.priors, patch, str(out))

    catalogue_files = set(dl.catalogue_paths(base.manifest, str(base_root)).values())
    model_files = {rel: base_root / rel for rel in base.manifest["files"] if rel not in catalogue_files}
    extra = {k: v for k, v in base.manifest.items() if k not in _WRITER_FIELDS}
    extra["catalogue_delta"] = {"base_bundle_version": base_version, "base_manifest_sha256": dl.manifest_sha256(base_data),
                                "removed": len(removed), "added": len(added), "changed": len(changed)}
    assemble_bundle(target, lambda tmp: dl.write_catalogue(tmp, CATALOG_PATHS, q, s, cols, priors), len(cols), base.embedding_dim,
                    model_files, base.manifest["models"], base.feature_spec, base.history_len, extra, version, valid_days)
    if key is not None:
        from export.signing import sign_bundle

        sign_bundle(target, key)
    target_archive = pack_archive(target)
    target_data = (target / MANIFEST).read_bytes()
    dl.check_same_models(base.manifest, json.loads(target_data), str(target))  # a guard: by construction it holds
    _write_delta(out, target, patch, {
        "format": dl.DELTA_FORMAT, "format_version": dl.DELTA_VERSION,
        "created_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "base": {"manifest_sha256": dl.manifest_sha256(base_data), "bundle_version": base_version, "n_items": len(old)},
        "target": {"manifest_sha256": dl.manifest_sha256(target_data), "bundle_version": version, "n_items": len(cols)},
        "removed": removed, "added": len(added), "changed": len(changed),
    })
    return DeltaResult(out, target, target_archive, len(removed), len(added), len(changed), out.stat().st_size,
                       target_archive.stat().st_size, version)


def full_bundle(base_bundle: str | Path, items: Sequence[Item], out: str | Path, version: int | None = None, workers: int = 1,
                valid_days: float = DEFAULT_VALID_DAYS) -> Path:
    """The full bundle of the catalogue ``items``, made from ``base_bundle`` by item id alone,
    without the delta's patch and rebuild rules: surviving items keep their int8 rows and
    measured content, new ones are embedded by the base's fusion student, the priors are
    renumbered by id. What a device too far behind installs instead of a chain of deltas, and
    the reference the delta path is checked against (tests and ``benchmarks/catalogue_delta.py``).

    :returns: the bundle folder.
    """
    base_root = Path(base_bundle)
    b = Bundle.open(base_root)
    old_rows = b.index.rows([it.item_id for it in items])
    kept = old_rows >= 0
    feats = _features([it for it, keep in zip(items, kept) if not keep], b, workers)
    q = np.empty((len(items), b.embedding_dim), np.int8)
    s = np.empty(len(items), np.float32)
    content = np.empty((len(items), b.items.content.shape[1]), np.float32)
    q[kept], s[kept], content[kept] = b.embeddings_int8[old_rows[kept]], b.scales[old_rows[kept]], b.items.content[old_rows[kept]]
    q[~kept], s[~kept] = quantize_rows(embed_items(b, feats))
    content[~kept] = measured_content(feats, b.feature_spec)
    new_row = np.full(len(b.items), -1, np.int64)
    new_row[old_rows[kept]] = np.flatnonzero(kept)
    renum = lambda ranked: [[int(new_row[r]), w] for r, w in ranked if new_row[r] >= 0]  # noqa: E731
    p = b.priors
    priors = {"global": renum(p["global"]), "by_hour": {h: renum(v) for h, v in p["by_hour"].items()},
              "by_device_hour": {d: {h: renum(v) for h, v in hv.items()} for d, hv in p["by_device_hour"].items()}}
    files = {rel: base_root / rel for rel in b.manifest["files"] if not rel.startswith("catalog/")}
    extra = {k: v for k, v in b.manifest.items() if k not in _WRITER_FIELDS}
    return assemble_bundle(out, lambda tmp: dl.write_catalogue(tmp, CATALOG_PATHS, q, s, item_columns(items, content), priors),
                           len(items), b.embedding_dim, files, b.manifest["models"], b.feature_spec, b.history_len, extra,
                           version, valid_days)


def _write_delta(out: Path, target: Path, patch: dl.CataloguePatch, doc: dict) -> None:
    """The archive: delta.json, the target manifest (and signature), the patch members."""
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for rel in dl.PATCH_FILES:
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
        patch.added.write(work / dl.ADDED_ITEMS)
        patch.changed.write(work / dl.CHANGED_ITEMS)
        np.save(work / dl.ADDED_ROWS, np.ascontiguousarray(patch.added_int8, np.int8))
        np.save(work / dl.ADDED_SCALES, np.ascontiguousarray(patch.added_scales, np.float32))
        doc["files"] = {rel: {"sha256": sha256_file(work / rel), "size": (work / rel).stat().st_size} for rel in dl.PATCH_FILES}
        (work / dl.DELTA_FILE).write_text(json.dumps(doc, indent=1), encoding="utf-8")
        members = [(dl.DELTA_FILE, work / dl.DELTA_FILE), (MANIFEST, target / MANIFEST)]
        if (target / SIGNATURE).is_file():
            members.append((SIGNATURE, target / SIGNATURE))
        members += [(rel, work / rel) for rel in dl.PATCH_FILES]
        write_tar(out, members)
    finally:
        shutil.rmtree(work, ignore_errors=True)

