"""Reading ``manifest.json`` and checking it (fields, types, bounds, format version), and
verifying the files it lists (safe paths, regular files, sizes, sha256)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge.bundle.freshness import bundle_version, expires_at
from edge.bundle.format import FORMAT, FORMAT_VERSION, MANIFEST, MAX_DIM, MAX_MANIFEST_BYTES, check_relpath, sha256_file
from edge.errors import BundleError

__all__ = ["read_manifest", "read_manifest_bytes", "verify_files"]

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "format_version": int,
    "feature_spec": dict,
    "feature_spec_hash": str,
    "embedding_dim": int,
    "history_len": int,
    "context_dim": int,
    "models": dict,
    "catalog": dict,
    "files": dict,
}


def read_manifest_bytes(root: Path) -> bytes:
    """The bytes of ``manifest.json``, read once and bounded (a file that grows while being
    read is cut at the limit and refused), so the signature check and the parse see the same
    bytes.

    :raises BundleError: no manifest, over :data:`MAX_MANIFEST_BYTES`, or unreadable.
    """
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise BundleError(f"{root}: not a bundle (no {MANIFEST})")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the manifest ({exc})") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise BundleError(f"{path}: over the {MAX_MANIFEST_BYTES} byte limit")
    return data


def read_manifest(root: Path, data: bytes | None = None) -> dict[str, Any]:
    """Parse ``manifest.json`` (or ``data``, its bytes as already read and verified) and check
    its fields' presence and types."""
    path = Path(root) / MANIFEST
    if data is None:
        data = read_manifest_bytes(root)
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError: also an integer over Python's 4300-digit limit; RecursionError: deep nesting.
        raise BundleError(f"{path}: not valid JSON ({exc})") from None
    except MemoryError:
        raise BundleError(f"{path}: not enough memory to parse the manifest on this device") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: expected a JSON object, got {type(manifest).__name__}")
    for key, typ in _REQUIRED.items():
        if key not in manifest:
            raise BundleError(f"{path}: missing field '{key}'")
        if not isinstance(manifest[key], typ) or isinstance(manifest[key], bool):
            raise BundleError(f"{path}: field '{key}' should be {getattr(typ, '__name__', typ)}, got {type(manifest[key]).__name__}")
    for key in ("embedding_dim", "history_len", "context_dim"):
        if not 1 <= manifest[key] <= MAX_DIM:
            raise BundleError(f"{path}: field '{key}' is {manifest[key]}; expected 1..{MAX_DIM}")
    if manifest["format"] != FORMAT:
        raise BundleError(f"{path}: format is {manifest['format']!r}, expected {FORMAT!r}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle format version {manifest['format_version']}, this edgerec reads version {FORMAT_VERSION}; "
            "rebuild the bundle or upgrade edgerec"
        )
    try:
        bundle_version(manifest)
        expires_at(manifest)
    except BundleError as exc:
        raise BundleError(f"{path}: {exc}") from None
    return manifest


def _member(root: Path, rel: str) -> Path:
    """``root / rel`` for a listed file: a safe relative path (:func:`check_relpath`), not a symlink."""
    check_relpath(rel, str(root))
    full = root / rel
    if full.is_symlink():
        raise BundleError(f"{root}: {rel} is a symbolic link; bundles may hold only regular files")
    return full


def verify_files(root: Path, manifest: dict[str, Any]) -> None:
    """Check the size and sha256 of every file the manifest lists, and that every file the
    manifest refers to elsewhere is among them."""
    files = manifest["files"]
    for rel, meta in files.items():
        full = _member(root, rel)
        if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str) or not isinstance(meta.get("size"), int):
            raise BundleError(f"{root}: manifest entry for {rel} needs 'sha256' (str) and 'size' (int)")
        if not full.is_file():
            raise BundleError(f"{root}: {rel} is listed in the manifest but missing")
        size = full.stat().st_size
        if size != meta["size"]:
            raise BundleError(f"{root}: {rel} is {size} bytes, manifest says {meta['size']}; the bundle is truncated or altered")
        if sha256_file(full) != meta["sha256"]:
            raise BundleError(f"{root}: {rel} fails its sha256 check; the bundle is corrupt or was tampered with")
    referenced = [manifest["catalog"].get(k) for k in ("items", "embeddings", "scales", "priors")]
    for name, entry in manifest["models"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("files", {}), dict):
            raise BundleError(f"{root}: manifest model {name!r} needs a 'files' object (backend -> path)")
        referenced += list(entry.get("files", {}).values())
    for rel in referenced:
        if not isinstance(rel, str) or rel not in files:
            raise BundleError(f"{root}: {rel!r} is used but not listed (with its sha256) in the manifest")
