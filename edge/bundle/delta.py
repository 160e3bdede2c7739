"""Catalogue deltas: a day's catalogue change shipped as a patch against the installed bundle.

A delta archive (``.tar``, written by ``edgerec pipeline delta``) holds, in this order::

    delta.json                  format, base (manifest sha256, bundle_version, n_items), target
                                (the same), removed item ids, counts, and the sha256 and size
                                of every patch member below
    manifest.json               the TARGET bundle's full manifest, byte for byte
    manifest.sig                its signature, when the server signed it (as a full bundle's)
    added/items.npz             the new items' metadata (:func:`edge.bundle.columns.write_item_columns`)
    added/embeddings_int8.npy   their int8 rows, (n_added, dim)
    added/scales.npy            their float32 scales, (n_added,)
    changed/items.npz           new metadata of items whose embeddings stay

The device rebuilds the target's catalogue files from the active bundle and the patch with the
functions below (the server writes its target bundle with the same ones, so the bytes agree),
hard-links or copies every other file from the active bundle, and then verifies the result as a
full install: the signed target manifest pins every file's sha256, so the patch needs no
signature of its own; any tampering fails a hash.

**Target row order** (:func:`row_map`): the base's rows in order minus the removed ones,
changed rows replaced in place, added rows appended in delta order. Priors are remapped the
same way (:func:`remap_priors`): rows of removed items dropped, the rest renumbered, weights
unchanged (new items have no plays yet). A changed item keeps its embedding and its measured
content; an item whose media changed needs a new id (or a full bundle).

An empty delta (no item changed) is valid: it moves the device to a newer signed version, for
example to renew ``expires_at``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from edge.bundle.archive import InstallLimits, _check_member_type, _write_member, scan_headers
from edge.bundle.catalogue import CatalogItems
from edge.bundle.columns import TagColumn, read_item_columns, write_item_columns
from edge.bundle.format import MANIFEST, MAX_MANIFEST_BYTES, MAX_SIGNATURE_BYTES, SIGNATURE, check_relpath, sha256_file
from edge.bundle.freshness import bundle_version
from edge.bundle.manifest import read_manifest
from edge.contract.content import CONTENT_COLUMNS
from edge.errors import BundleError

__all__ = ["DELTA_FORMAT", "DELTA_VERSION", "DELTA_FILE", "PATCH_FILES", "MAX_DELTA_JSON_BYTES", "ItemColumns", "CataloguePatch",
           "row_map", "remap_priors", "priors_bytes", "rebuild_catalogue", "write_catalogue", "check_same_models",
           "catalogue_paths", "unpack_delta", "read_patch", "manifest_sha256"]

DELTA_FORMAT = "edgerec-delta"
DELTA_VERSION = 1
DELTA_FILE = "delta.json"
ADDED_ITEMS, ADDED_ROWS, ADDED_SCALES, CHANGED_ITEMS = "added/items.npz", "added/embeddings_int8.npy", "added/scales.npy", "changed/items.npz"
#: The patch members a delta may hold (all four are always written, empty when nothing changed).
PATCH_FILES = (ADDED_ITEMS, ADDED_ROWS, ADDED_SCALES, CHANGED_ITEMS)
#: delta.json lists removed ids; a few MiB even for a large clear-out.
MAX_DELTA_JSON_BYTES = 16 * 1024 * 1024
#: Manifest fields a delta must leave as they are: models and the feature contract.
FROZEN_FIELDS = ("format", "format_version", "feature_spec", "feature_spec_hash", "embedding_dim", "history_len", "context_dim", "models")
#: The catalogue entries a delta rebuilds (``manifest["catalog"][key]`` names each file).
CATALOGUE_KEYS = ("embeddings", "scales", "items", "priors")
_PRIOR_TABLES = ("by_hour", "by_device_hour")


def manifest_sha256(data: bytes) -> str:
    """Hex sha256 of manifest bytes: how a delta names the bundle it applies to."""
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# Item metadata as plain columns (what write_item_columns takes).


@dataclass
class ItemColumns:
    """Item metadata as one list per column (None where a value is absent) and the measured
    content ``(n, len(CONTENT_COLUMNS))`` float32: the arguments of
    :func:`edge.bundle.columns.write_item_columns`, in catalogue order."""

    item_ids: list[str]
    titles: list[str]
    kinds: list[str]
    tags: list[tuple[str, ...]]
    durations: list[float | None]
    age_ratings: list[int | None]
    available_from: list[float | None]
    available_until: list[float | None]
    series_ids: list[str | None]
    episodes: list[int | None]
    content: np.ndarray

    def __len__(self) -> int:
        return len(self.item_ids)

    @classmethod
    def empty(cls) -> "ItemColumns":
        """No items."""
        return cls([], [], [], [], [], [], [], [], [], [], np.zeros((0, len(CONTENT_COLUMNS)), np.float32))

    @classmethod
    def from_catalog(cls, items: CatalogItems) -> "ItemColumns":
        """The columns of a bundle's :class:`CatalogItems` (as read from ``items.npz``)."""
        n = len(items)
        dur, age = items.durations, items.age_ratings
        start, end, ep = items.available_from, items.available_until, items.episodes
        series = [None if c < 0 else items.series_names[c] for c in items.series_codes.tolist()]
        return cls(
            list(items.item_ids), list(items.titles), ["audio" if a else "video" for a in items.is_audio.tolist()],
            _tag_tuples(items.tags),
            [None if d != d else float(d) for d in dur.tolist()],  # d != d: NaN, unknown
            [None if a < 0 else int(a) for a in age.tolist()],
            [None if t == -np.inf else float(t) for t in start.tolist()],
            [None if t == np.inf else float(t) for t in end.tolist()],
            series, [None if e < 0 else int(e) for e in ep.tolist()],
            np.asarray(items.content, np.float32).reshape(n, len(CONTENT_COLUMNS)),
        )

    @classmethod
    def read(cls, path: str | Path) -> "ItemColumns":
        """Read and check an ``items.npz``.

        :raises ValueError: the file is damaged (see :func:`read_item_columns`).
        """
        return cls.from_catalog(CatalogItems.from_columns(**read_item_columns(path)))  # type: ignore[arg-type]

    def take(self, rows: Sequence[int] | np.ndarray) -> "ItemColumns":
        """The rows ``rows``, in that order."""
        rows = [int(r) for r in rows]
        pick = lambda col: [col[r] for r in rows]  # noqa: E731
        return ItemColumns(pick(self.item_ids), pick(self.titles), pick(self.kinds), pick(self.tags), pick(self.durations),
                           pick(self.age_ratings), pick(self.available_from), pick(self.available_until), pick(self.series_ids),
                           pick(self.episodes), self.content[np.asarray(rows, np.int64)] if rows else self.content[:0])

    def concat(self, other: "ItemColumns") -> "ItemColumns":
        """These rows, then ``other``'s."""
        return ItemColumns(self.item_ids + other.item_ids, self.titles + other.titles, self.kinds + other.kinds,
                           self.tags + other.tags, self.durations + other.durations, self.age_ratings + other.age_ratings,
                           self.available_from + other.available_from, self.available_until + other.available_until,
                           self.series_ids + other.series_ids, self.episodes + other.episodes,
                           np.concatenate([self.content, other.content]).astype(np.float32))

    def metadata_row(self, i: int) -> tuple:
        """Row ``i``'s metadata (every column but content), as stored: durations at float32
        precision, as ``items.npz`` keeps them, so a value read back compares equal."""
        d = self.durations[i]
        return (self.item_ids[i], self.titles[i], self.kinds[i], tuple(self.tags[i]), None if d is None else float(np.float32(d)),
                self.age_ratings[i], self.available_from[i], self.available_until[i], self.series_ids[i], self.episodes[i])

    def write(self, path: str | Path) -> None:
        """Write ``items.npz`` (byte-deterministic: same columns, same bytes).

        :raises ValueError: as :func:`write_item_columns` (duplicate ids, unknown kinds, ...).
        """
        write_item_columns(path, self.item_ids, self.titles, self.kinds, self.tags, self.durations, self.age_ratings,
                           self.available_from, self.available_until, self.series_ids, self.episodes, self.content)


def _tag_tuples(tags: Sequence) -> list[tuple[str, ...]]:
    if isinstance(tags, TagColumn):
        # Straight from the codes: a 100k-item catalogue in a tenth of the time of indexing it.
        vocab, off, codes = tags.vocabulary, tags._offsets.tolist(), tags._codes.tolist()
        return [tuple(vocab[c] for c in codes[off[i]:off[i + 1]]) for i in range(len(off) - 1)]
    return [tuple(t) for t in tags]


# ---------------------------------------------------------------------------------------------
# The shared rules: row order, priors, rebuilding.


@dataclass
class CataloguePatch:
    """What a delta changes in a catalogue.

    :param removed: ids of items to drop.
    :param changed: new metadata of items that stay (their embeddings and content stay too).
    :param added: new items' metadata, appended in this order.
    :param added_int8: their int8 rows ``(n_added, dim)``; ``added_scales`` float32 ``(n_added,)``.
    """

    removed: list[str]
    changed: ItemColumns
    added: ItemColumns
    added_int8: np.ndarray
    added_scales: np.ndarray


def row_map(n_base: int, removed_rows: np.ndarray) -> np.ndarray:
    """int64 ``(n_base,)``: each base row's row in the target, -1 for a removed one. Kept rows
    keep their order; added rows follow them (row ``n_kept + j`` for the ``j``-th added)."""
    keep = np.ones(n_base, bool)
    keep[np.asarray(removed_rows, np.int64)] = False
    out = np.full(n_base, -1, np.int64)
    out[keep] = np.arange(int(keep.sum()), dtype=np.int64)
    return out


def remap_priors(priors: Mapping[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """The cold-start lists with each row renumbered by ``rows`` (:func:`row_map`) and the
    entries of removed rows (-1) dropped; order and weights are kept, other keys copied."""
    table = rows.tolist()

    def ranked(entries: list) -> list:
        return [[table[int(r)], w] for r, w in entries if table[int(r)] >= 0]

    out: dict[str, Any] = {}
    for key, value in priors.items():
        if key == "global":
            out[key] = ranked(value)
        elif key == "by_hour":
            out[key] = {h: ranked(v) for h, v in value.items()}
        elif key == "by_device_hour":
            out[key] = {d: {h: ranked(v) for h, v in hours.items()} for d, hours in value.items()}
        else:
            out[key] = value
    return out


def priors_bytes(priors: Mapping[str, Any]) -> bytes:
    """``catalog/priors.json`` as the bundle writer writes it (``json.dumps``, default separators)."""
    return json.dumps(priors).encode("utf-8")


def rebuild_catalogue(base_int8: np.ndarray, base_scales: np.ndarray, base_items: ItemColumns, base_priors: Mapping[str, Any],
                      patch: CataloguePatch, where: str = "delta") -> tuple[np.ndarray, np.ndarray, ItemColumns, dict[str, Any]]:
    """The target catalogue: ``(int8 rows, scales, item columns, priors)`` in target row order.

    :raises BundleError: the patch does not fit the base (a removed or changed id it lacks, an
        id both removed and changed, an added id already there, rows of the wrong shape).
    """
    n = len(base_items)
    index = {iid: r for r, iid in enumerate(base_items.item_ids)}

    def rows_of(ids: Sequence[str], what: str) -> np.ndarray:
        missing = [i for i in ids if i not in index]
        if missing:
            raise BundleError(f"{where}: {len(missing)} {what} item(s) are not in the installed catalogue, e.g. {missing[0]!r}; "
                              "this delta was made for another bundle")
        return np.array([index[i] for i in ids], np.int64)

    removed = rows_of(patch.removed, "removed")
    if len(set(removed.tolist())) != len(removed):
        raise BundleError(f"{where}: an item is removed twice; the delta is corrupt")
    changed = rows_of(patch.changed.item_ids, "changed")
    if len(set(changed.tolist())) != len(changed) or set(changed.tolist()) & set(removed.tolist()):
        raise BundleError(f"{where}: an item is changed twice, or both changed and removed; the delta is corrupt")
    dim = base_int8.shape[1]
    k = len(patch.added)
    if patch.added_int8.dtype != np.int8 or patch.added_int8.shape != (k, dim) or patch.added_scales.shape != (k,):
        raise BundleError(f"{where}: added rows are {patch.added_int8.dtype}{patch.added_int8.shape} with scales "
                          f"{patch.added_scales.shape}, expected int8 ({k}, {dim}) and ({k},); the delta is corrupt")
    mapping = row_map(n, removed)
    keep = np.flatnonzero(mapping >= 0)
    items = base_items.take(keep)
    for j, r in enumerate(changed.tolist()):
        t = int(mapping[r])
        c = patch.changed
        items.titles[t], items.kinds[t], items.tags[t] = c.titles[j], c.kinds[j], c.tags[j]
        items.durations[t], items.age_ratings[t] = c.durations[j], c.age_ratings[j]
        items.available_from[t], items.available_until[t] = c.available_from[j], c.available_until[j]
        items.series_ids[t], items.episodes[t] = c.series_ids[j], c.episodes[j]
    kept_ids = set(items.item_ids)
    clash = [i for i in patch.added.item_ids if i in kept_ids]
    if clash or len(set(patch.added.item_ids)) != k:
        raise BundleError(f"{where}: added item {(clash or patch.added.item_ids)[0]!r} is already in the catalogue; "
                          "the delta was made for another bundle, or is corrupt")
    items = items.concat(patch.added)
    q = np.concatenate([np.asarray(base_int8[keep]), patch.added_int8]).astype(np.int8)
    s = np.concatenate([np.asarray(base_scales, np.float32)[keep], patch.added_scales.astype(np.float32)]).astype(np.float32)
    return q, s, items, remap_priors(base_priors, mapping)


def catalogue_paths(manifest: Mapping[str, Any], where: str) -> dict[str, str]:
    """``{key: relative path}`` of the catalogue files a delta rebuilds (``embeddings``,
    ``scales``, ``items``, ``priors``), from the manifest's ``catalog`` entry.

    :raises BundleError: an entry is missing or unsafe, or items are not ``.npz`` columns.
    """
    catalog = manifest.get("catalog")
    if not isinstance(catalog, dict) or not all(isinstance(catalog.get(k), str) for k in CATALOGUE_KEYS):
        raise BundleError(f"{where}: the manifest's 'catalog' entry lacks one of {list(CATALOGUE_KEYS)}")
    paths = {k: check_relpath(catalog[k], where) for k in CATALOGUE_KEYS}
    if not paths["items"].endswith(".npz"):
        raise BundleError(f"{where}: catalogue items are {paths['items']}; deltas apply to bundles with item columns "
                          "(catalog/items.npz): install a full bundle first")
    return paths


def _fsynced(path: Path, write: Callable[[Any], None]) -> None:
    with open(path, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())


def write_catalogue(folder: str | Path, paths: Mapping[str, str], int8: np.ndarray, scales: np.ndarray, items: ItemColumns,
                    priors: Mapping[str, Any]) -> None:
    """Write the four catalogue files into ``folder`` at ``paths`` (:func:`catalogue_paths`),
    fsynced, byte for byte as the bundle writer does for the same content."""
    folder = Path(folder)
    for rel in paths.values():
        folder.joinpath(*rel.split("/")).parent.mkdir(parents=True, exist_ok=True)
    at = lambda key: folder.joinpath(*paths[key].split("/"))  # noqa: E731
    _fsynced(at("embeddings"), lambda fh: np.save(fh, np.ascontiguousarray(int8, np.int8)))
    _fsynced(at("scales"), lambda fh: np.save(fh, np.ascontiguousarray(scales, np.float32)))
    _fsynced(at("priors"), lambda fh: fh.write(priors_bytes(priors)))
    items.write(at("items"))
    with open(at("items"), "rb+") as fh:
        os.fsync(fh.fileno())


def check_same_models(base: Mapping[str, Any], target: Mapping[str, Any], where: str) -> None:
    """A delta carries catalogue changes only: the target's models, model files and feature
    contract must be the base's, and every file it lists other than the catalogue files must be
    a base file with the same sha256 and size.

    :raises BundleError: naming the first field or file that differs.
    """
    for key in FROZEN_FIELDS:
        if base.get(key) != target.get(key):
            raise BundleError(f"{where}: the delta would change {key!r} of the installed bundle; a delta that would change "
                              "models or the feature spec is refused: install the full bundle instead")
    rebuilt = set(catalogue_paths(target, where).values())
    base_files, target_files = base.get("files", {}), target.get("files", {})
    if not isinstance(target_files, dict):
        raise BundleError(f"{where}: the target manifest's 'files' is not an object")
    for rel, meta in target_files.items():
        if rel in rebuilt:
            continue
        if base_files.get(rel) != meta:
            raise BundleError(f"{where}: the delta would change {rel} (not a catalogue file); a delta that would change models "
                              "or the feature spec is refused: install the full bundle instead")


# ---------------------------------------------------------------------------------------------
# The archive.


def _check_doc(doc: Any, where: str) -> dict[str, Any]:
    def bad(msg: str) -> BundleError:
        return BundleError(f"{where}: {DELTA_FILE} {msg}; not a delta edgerec writes")

    if not isinstance(doc, dict) or doc.get("format") != DELTA_FORMAT:
        raise bad(f"is not an {DELTA_FORMAT!r} document")
    if doc.get("format_version") != DELTA_VERSION:
        raise BundleError(f"{where}: delta format version {doc.get('format_version')!r}, this device reads version {DELTA_VERSION}; "
                          "update edgerec or install the full bundle")
    for side in ("base", "target"):
        s = doc.get(side)
        if not isinstance(s, dict) or not isinstance(s.get("manifest_sha256"), str):
            raise bad(f"lacks {side}.manifest_sha256")
        v = s.get("bundle_version")
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise bad(f"has a bad {side}.bundle_version {v!r}")
    removed = doc.get("removed")
    if not isinstance(removed, list) or not all(isinstance(i, str) for i in removed):
        raise bad("'removed' is not a list of item ids")
    files = doc.get("files")
    if not isinstance(files, dict) or set(files) != set(PATCH_FILES):
        raise bad(f"'files' must list exactly {list(PATCH_FILES)}")
    for rel, meta in files.items():
        size = meta.get("size") if isinstance(meta, dict) else None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or not isinstance(meta.get("sha256"), str):
            raise bad(f"entry for {rel} needs a 'sha256' and a non-negative integer 'size'")
    return doc


def unpack_delta(archive: str | Path, dest: str | Path, limits: InstallLimits = InstallLimits(),
                 check_manifest: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Unpack a delta archive into the empty folder ``dest`` (writing nowhere else) and check
    what can be checked without the base: the member order and names, sizes, the patch
    members' sha256 against ``delta.json``, and the target manifest's sha256 against it.

    :param check_manifest: called with ``dest`` once ``manifest.json`` (and ``manifest.sig``)
        are written and before any patch member is: the signature check.
    :returns: the parsed ``delta.json``.
    :raises BundleError: naming the archive, the member and the reason (unsafe or unexpected
        members, links, sizes over ``limits``, truncated or garbage archives, hash mismatches).
    """
    archive, dest = Path(archive), Path(dest)
    where = str(archive)
    try:
        size = archive.stat().st_size
    except OSError as exc:
        raise BundleError(f"{where}: cannot read the delta ({exc.strerror or exc})") from None
    max_manifest = min(limits.max_manifest_bytes, MAX_MANIFEST_BYTES)
    max_doc = min(limits.max_manifest_bytes, MAX_DELTA_JSON_BYTES)
    ceiling = limits.max_total_bytes + max_manifest + max_doc + MAX_SIGNATURE_BYTES + 64 * 1024  # + tar headers
    if size > ceiling:
        raise BundleError(f"{where}: delta is {size} bytes, over this device's limit of {ceiling}; install the full bundle")
    try:
        with open(archive, "rb") as raw:
            scan_headers(raw, InstallLimits(limits.max_total_bytes, limits.max_member_bytes, len(PATCH_FILES) + 3,
                                            max(max_manifest, max_doc)), where)
        tar = tarfile.open(archive, mode="r:")
    except (tarfile.TarError, EOFError) as exc:
        raise BundleError(f"{where}: not an uncompressed tar archive ({exc}); ship the delta .tar that `edgerec pipeline delta` writes") from None
    expected = [DELTA_FILE, MANIFEST]
    try:
        with tar:
            doc: dict[str, Any] | None = None
            seen: list[str] = []
            checked = check_manifest is None
            for member in tar:
                rel = check_relpath(member.name, where)
                _check_member_type(member, where)
                if rel in seen:
                    raise BundleError(f"{where}: member {rel!r} appears twice")
                if len(seen) < 2 and rel != expected[len(seen)]:
                    raise BundleError(f"{where}: member {len(seen) + 1} is {rel!r}, expected {expected[len(seen)]!r}; not a delta edgerec writes")
                if rel == DELTA_FILE:
                    cap = max_doc
                elif rel == MANIFEST:
                    cap = max_manifest
                elif rel == SIGNATURE and seen == expected:
                    cap = MAX_SIGNATURE_BYTES
                elif rel in PATCH_FILES and doc is not None:
                    cap = doc["files"][rel]["size"]
                    if member.size != cap:
                        raise BundleError(f"{where}: member {rel!r} is {member.size} bytes, {DELTA_FILE} declares {cap}; the delta is corrupt")
                else:
                    raise BundleError(f"{where}: unexpected member {rel!r}; a delta holds only {[*expected, SIGNATURE, *PATCH_FILES]}")
                if not checked and MANIFEST in seen and rel != SIGNATURE:
                    check_manifest(dest)  # type: ignore[misc]  # the signature, before any patch member is written
                    checked = True
                if member.size > cap or (rel in PATCH_FILES and member.size > limits.max_member_bytes):
                    limit = min(cap, limits.max_member_bytes) if rel in PATCH_FILES else cap
                    raise BundleError(f"{where}: member {rel!r} is {member.size} bytes, over the {limit} byte limit")
                _write_member(dest, rel, tar.extractfile(member), member.size, where)  # type: ignore[arg-type]
                seen.append(rel)
                if rel == DELTA_FILE:
                    try:
                        doc = _check_doc(json.loads((dest / DELTA_FILE).read_text(encoding="utf-8")), where)
                    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                        raise BundleError(f"{where}: {DELTA_FILE} is not valid JSON ({exc}); the delta is corrupt") from None
                    declared = sum(m["size"] for m in doc["files"].values())
                    if declared > limits.max_total_bytes:
                        raise BundleError(f"{where}: the patch declares {declared} bytes, over the limit of {limits.max_total_bytes}")
                elif rel == SIGNATURE and not checked:
                    check_manifest(dest)  # type: ignore[misc]
                    checked = True
    except (tarfile.TarError, EOFError) as exc:
        raise BundleError(f"{where}: the delta archive is truncated or corrupt ({exc}); copy it again") from None
    if doc is None or MANIFEST not in seen:
        raise BundleError(f"{where}: the archive is empty or truncated (no {DELTA_FILE} and {MANIFEST}); copy it again")
    if not checked:
        check_manifest(dest)  # type: ignore[misc]  # an archive of manifest alone: still checked
    missing = [r for r in PATCH_FILES if r not in seen]
    if missing:
        raise BundleError(f"{where}: the delta lacks {missing[0]}; it is truncated or incomplete")
    for rel in PATCH_FILES:
        if sha256_file(dest / rel) != doc["files"][rel]["sha256"]:
            raise BundleError(f"{where}: {rel} does not match its sha256 in {DELTA_FILE}; the delta was tampered with or damaged")
    data = (dest / MANIFEST).read_bytes()
    if manifest_sha256(data) != doc["target"]["manifest_sha256"]:
        raise BundleError(f"{where}: {MANIFEST} does not match target.manifest_sha256 in {DELTA_FILE}; the delta was tampered with or damaged")
    if bundle_version(read_manifest(dest, data)) != doc["target"]["bundle_version"]:
        raise BundleError(f"{where}: {DELTA_FILE} and the target manifest disagree on bundle_version; the delta is corrupt")
    return doc


def read_patch(folder: str | Path, doc: Mapping[str, Any], where: str) -> CataloguePatch:
    """The :class:`CataloguePatch` of an unpacked delta (:func:`unpack_delta`).

    :raises BundleError: a patch member is not what the format says.
    """
    folder = Path(folder)
    try:
        added = ItemColumns.read(folder / ADDED_ITEMS)
        changed = ItemColumns.read(folder / CHANGED_ITEMS)
        q = np.load(folder / ADDED_ROWS, allow_pickle=False)
        s = np.load(folder / ADDED_SCALES, allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{where}: a patch member cannot be read ({exc}); the delta is corrupt") from None
    if s.dtype != np.float32 or q.ndim != 2 or (len(s) and not (np.all(np.isfinite(s)) and np.all(s > 0))):
        raise BundleError(f"{where}: added scales must be positive finite float32 and rows 2-d; the delta is corrupt")
    return CataloguePatch(list(doc["removed"]), changed, added, q, s)


def link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` as a hard link to ``src`` (bundles are never written after install, so the two
    may share storage), or a copy where the file system has no hard links (vfat, exFAT)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
        with open(dst, "rb+") as fh:
            os.fsync(fh.fileno())
