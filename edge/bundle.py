"""Reading and verifying bundles on the device.

A bundle is a folder::

    manifest.json                 format version, feature spec + hash, every file's sha256 and size,
                                  model entries, catalogue shape, metrics, training config
    models/<name>.onnx            the students (and .tflite where exported)
    catalog/items.json            item metadata in catalogue order
    catalog/embeddings_int8.npy   (n_items, dim) int8, one symmetric scale per row
    catalog/scales.npy            (n_items,) float32
    catalog/priors.json           cold-start popularity, overall and by hour of day
    manifest.sig                  optional ed25519 signature over manifest.json (edge.signing)

Nothing in it is used before every file listed in the manifest has been checked.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edge.backends import BACKENDS, Model, load_model
from edge.contract.int8 import dequantize_rows
from edge.errors import BundleError
from edge.features.spec import FeatureSpec
from edge.signing import TrustedKeys, verify_signature

FORMAT = "edgerec-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# A manifest is a few hundred KiB at most even for large catalogues; refuse absurd ones early.
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
#: Bound on embedding_dim, history_len and context_dim: the device allocates arrays of these sizes.
MAX_DIM = 65536


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class CatalogItem:
    """Metadata of one catalogue item as the device shows it."""

    item_id: str
    title: str
    kind: str
    tags: tuple[str, ...] = ()
    duration_s: float | None = None
    age_rating: int | None = None
    available_from: float | None = None
    available_until: float | None = None


class CatalogItems(Sequence[CatalogItem]):
    """The catalogue's metadata held as columns (a 100k-item catalogue costs a few MB, not a
    dict per item); indexing builds a :class:`CatalogItem`."""

    def __init__(self, item_ids: list[str], titles: list[str], kinds: list[str], tags: list[list[str]],
                 durations: list[float | None], age: list[int | None], start: list[float | None], end: list[float | None]) -> None:
        n = len(item_ids)
        if not all(len(col) == n for col in (titles, kinds, tags, durations, age, start, end)):
            raise ValueError("catalogue columns have different lengths")
        bad = sorted({k for k in kinds if k not in ("audio", "video")})
        if bad:
            raise ValueError(f"unknown item kinds {bad[:3]}")
        self.item_ids, self.titles = item_ids, titles
        self.is_audio = np.array([k == "audio" for k in kinds], dtype=bool)
        # Tag lists repeat across a catalogue: items with the same tags share one tuple.
        shared: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.tags = [shared.setdefault(t, t) for t in (tuple(str(x) for x in ts) for ts in tags)]
        self.durations = np.array([np.nan if d is None else float(d) for d in durations])
        self.age_ratings = np.array([-1 if a is None else int(a) for a in age], dtype=np.int32)
        self.available_from = np.array([-np.inf if t is None else float(t) for t in start])
        self.available_until = np.array([np.inf if t is None else float(t) for t in end])

    def __len__(self) -> int:
        return len(self.item_ids)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        opt = lambda v, empty: None if v == empty or v != v else v  # noqa: E731  (v != v: NaN)
        age = int(self.age_ratings[i])
        return CatalogItem(self.item_ids[i], self.titles[i], "audio" if self.is_audio[i] else "video", self.tags[i],
                           opt(float(self.durations[i]), None), None if age < 0 else age,
                           opt(float(self.available_from[i]), -np.inf), opt(float(self.available_until[i]), np.inf))

    @classmethod
    def from_json(cls, data: Any) -> "CatalogItems":
        """Read ``items.json``: columns (``{"item_id": [...], ...}``) or a list of item objects."""
        if isinstance(data, list):  # one object per item (bundles written before the columns)
            data = {key: [d.get(key) for d in data] for key in _ITEM_COLUMNS}
        if not isinstance(data, dict) or not isinstance(data.get("item_id"), list):
            raise ValueError("items.json holds neither item columns nor a list of items")
        n = len(data["item_id"])
        col = lambda key, default=None: data.get(key) if isinstance(data.get(key), list) else [default] * n  # noqa: E731
        return cls([str(x) for x in data["item_id"]], [str(x) for x in col("title", "")], [str(x) for x in col("kind", "video")],
                   [list(t or ()) for t in col("tags")], col("duration_s"), col("age_rating"), col("available_from"),
                   col("available_until"))


_ITEM_COLUMNS = ("item_id", "title", "kind", "tags", "duration_s", "age_rating", "available_from", "available_until")


class Bundle:
    """A verified bundle. Use :meth:`open`; attributes are read-only views of its contents."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.manifest = manifest
        self.feature_spec = FeatureSpec.from_dict(manifest["feature_spec"])
        cat = manifest["catalog"]
        # Memory-mapped: a 100k-item catalogue costs page cache, not heap.
        self.embeddings_int8: np.ndarray = np.load(root / cat["embeddings"], mmap_mode="r", allow_pickle=False)
        self.scales: np.ndarray = np.load(root / cat["scales"], allow_pickle=False).astype(np.float32)
        self.items = CatalogItems.from_json(json.loads((root / cat["items"]).read_text(encoding="utf-8")))
        self.priors: dict[str, Any] = json.loads((root / cat["priors"]).read_text(encoding="utf-8"))
        n, dim = self.embeddings_int8.shape if self.embeddings_int8.ndim == 2 else (-1, -1)
        if self.embeddings_int8.dtype != np.int8 or n != len(self.items) or self.scales.shape != (n,):
            raise BundleError(
                f"{root}: catalogue arrays disagree: embeddings {self.embeddings_int8.dtype}{self.embeddings_int8.shape}, "
                f"scales {self.scales.shape}, {len(self.items)} items"
            )
        if dim != manifest["embedding_dim"]:
            raise BundleError(f"{root}: embeddings have dim {dim}, manifest says {manifest['embedding_dim']}")
        self.index = {item_id: i for i, item_id in enumerate(self.items.item_ids)}
        if len(self.index) != len(self.items):
            raise BundleError(f"{root}: catalogue item ids are not unique")
        self.video_rows = np.flatnonzero(~self.items.is_audio).astype(np.int64)
        # Filter columns as arrays, so a request filters 100k items without a Python loop.
        self.age_ratings = self.items.age_ratings
        self.available_from = self.items.available_from
        self.available_until = self.items.available_until

    @property
    def embedding_dim(self) -> int:
        """Length of item and user vectors."""
        return int(self.manifest["embedding_dim"])

    @property
    def history_len(self) -> int:
        """Number of recent events the interest model reads."""
        return int(self.manifest["history_len"])

    def _model_entry(self, name: str) -> dict[str, Any]:
        entry = self.manifest["models"].get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict) or not isinstance(entry.get("inputs"), list):
            raise BundleError(
                f"{self.root}: bundle has no valid '{name}' model entry (needs 'files' and 'inputs'; models: {sorted(self.manifest['models'])})"
            )
        return entry

    def model_paths(self, name: str) -> dict[str, Path]:
        """Backend -> file for model ``name`` (e.g. ``interest``, ``fusion``)."""
        return {backend: self.root / rel for backend, rel in self._model_entry(name)["files"].items()}

    def load_model(self, name: str, order: Sequence[str] = BACKENDS, threads: int = 1) -> Model:
        """Load model ``name`` on the first backend in ``order`` that can run it.

        :raises BundleError: no such model in the bundle.
        :raises BackendError: no backend could load it.
        """
        return load_model(self.model_paths(name), order, threads, input_names=self._model_entry(name)["inputs"])

    def item_embeddings(self, rows: np.ndarray | slice | None = None) -> np.ndarray:
        """Dequantised float32 embeddings of ``rows`` (all when None)."""
        sel = slice(None) if rows is None else rows
        return dequantize_rows(self.embeddings_int8[sel], self.scales[sel])

    @classmethod
    def open(cls, root: str | Path, device_spec: FeatureSpec | None = None, trusted_keys: TrustedKeys | None = None,
             require_signature: bool = False) -> "Bundle":
        """Verify and open a bundle folder.

        When ``trusted_keys`` are given or ``require_signature`` is set, ``manifest.sig`` is
        checked first (see :func:`edge.signing.verify_signature`); with keys but no requirement
        an unsigned bundle passes, a signed one must verify.

        :param root: the bundle folder (holding ``manifest.json``).
        :param device_spec: the device's feature spec; the bundle's must be identical.
        :param trusted_keys: public keys to accept signatures from.
        :param require_signature: refuse a bundle without a valid signature from ``trusted_keys``.
        :raises BundleError: naming the file or field that failed (including an unsigned,
            malformed, unknown-key, revoked-key or bad signature).
        """
        root = Path(root)
        if trusted_keys is not None or require_signature:
            verify_signature(root, trusted_keys, required=require_signature)
        manifest = read_manifest(root)
        verify_files(root, manifest)
        spec = FeatureSpec.from_dict(manifest["feature_spec"])
        if spec.hash() != manifest["feature_spec_hash"]:
            raise BundleError(f"{root}: feature_spec_hash does not match the feature spec in the manifest")
        (device_spec or FeatureSpec()).check_same(spec)
        try:
            return cls(root, manifest)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"{root}: catalogue cannot be read ({exc})") from None


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


def read_manifest(root: Path) -> dict[str, Any]:
    """Parse ``manifest.json`` and check its fields' presence and types."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise BundleError(f"{root}: not a bundle (no {MANIFEST})")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{path}: {path.stat().st_size} bytes exceeds the {MAX_MANIFEST_BYTES} byte limit")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError: also an integer over Python's 4300-digit limit; RecursionError: deep nesting.
        raise BundleError(f"{path}: not valid JSON ({exc})") from None
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
    return manifest


def _safe_member(root: Path, rel: str) -> Path:
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts:
        raise BundleError(f"{root}: manifest lists an unsafe path {rel!r}")
    full = root / p
    if full.is_symlink():
        raise BundleError(f"{root}: {rel} is a symbolic link; bundles may hold only regular files")
    return full


def verify_files(root: Path, manifest: dict[str, Any]) -> None:
    """Check the size and sha256 of every file the manifest lists, and that every file the
    manifest refers to elsewhere is among them."""
    files = manifest["files"]
    for rel, meta in files.items():
        full = _safe_member(root, rel)
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
