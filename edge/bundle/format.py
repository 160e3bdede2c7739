"""The bundle format: file names, format version and limits, file hashing, and the one check
every bundle path passes before it is joined to a folder.

A bundle is a folder::

    manifest.json                 format version, feature spec + hash, every file's sha256 and size,
                                  model entries, catalogue shape, metrics, training config
    models/<name>.onnx            the students (and .tflite where exported)
    catalog/items.npz             item metadata as binary columns (edge.bundle.columns); bundles
                                  written before it hold catalog/items.json, still read
    catalog/embeddings_int8.npy   (n_items, dim) int8, one symmetric scale per row
    catalog/scales.npy            (n_items,) float32
    catalog/priors.json           cold-start popularity, overall and by hour of day
    manifest.sig                  optional ed25519 signature over manifest.json (edge.bundle.signing)

Nothing in it is used before every file listed in the manifest has been checked.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from edge.errors import BundleError

__all__ = ["FORMAT", "FORMAT_VERSION", "ITEMS_FILE", "MANIFEST", "SIGNATURE", "MAX_MANIFEST_BYTES", "MAX_SIGNATURE_BYTES", "MAX_DIM",
           "sha256_file", "check_relpath"]

FORMAT = "edgerec-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: The item metadata columns a bundle is written with (:mod:`edge.bundle.columns`).
ITEMS_FILE = "catalog/items.npz"
#: The detached signature file, beside ``manifest.json``.
SIGNATURE = "manifest.sig"
# A manifest is a few hundred KiB at most even for large catalogues; refuse absurd ones early.
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
#: A signature file is about 200 bytes; anything over this is refused unread.
MAX_SIGNATURE_BYTES = 4096
#: Bound on embedding_dim, history_len and context_dim: the device allocates arrays of these sizes.
MAX_DIM = 65536


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_relpath(rel: str, where: str) -> str:
    """``rel`` if it is a plain relative POSIX path that stays inside the bundle folder, else
    :class:`BundleError` naming ``where`` (the bundle folder or archive) and the path.

    Refused: non-strings, empty paths, paths over 1024 characters, NUL or backslash, absolute
    paths, ``..`` components, empty or ``.`` components, and names over 255 characters. Used for
    every path a manifest lists (:func:`edge.bundle.manifest.verify_files`) and every archive
    member (:mod:`edge.bundle.archive`).
    """
    if not isinstance(rel, str) or not rel or "\x00" in rel or "\\" in rel or len(rel) > 1024:
        raise BundleError(f"{where}: refused unsafe path {rel!r} (empty, too long, or holds NUL or backslash)")
    if rel.startswith("/"):
        raise BundleError(f"{where}: refused unsafe path {rel!r}: an absolute path; bundle paths are relative")
    parts = rel.split("/")
    if ".." in parts:
        raise BundleError(f"{where}: refused unsafe path {rel!r} with a '..' component (would escape the bundle folder)")
    if any(p in ("", ".") or len(p) > 255 for p in parts):
        raise BundleError(f"{where}: refused unsafe path {rel!r} (empty or '.' component, or a name over 255 characters)")
    return rel
