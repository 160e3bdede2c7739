"""The :class:`Bundle`: a bundle folder opened only after its signature (when asked for),
manifest, files and feature spec have been checked; read-only views of its catalogue and
models."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edge.backends import BACKENDS, Model, load_model
from edge.bundle.catalogue import read_catalogue
from edge.bundle.manifest import read_manifest, read_manifest_bytes, verify_files
from edge.bundle.signing import TrustedKeys, verify_signature
from edge.contract.int8 import dequantize_rows
from edge.errors import BundleError
from edge.features.spec import FeatureSpec

__all__ = ["Bundle"]


class Bundle:
    """A verified bundle. Use :meth:`open`; attributes are read-only views of its contents."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.manifest = manifest
        self.feature_spec = FeatureSpec.from_dict(manifest["feature_spec"])
        self.embeddings_int8, self.scales, self.items, self.priors = read_catalogue(root, manifest["catalog"], manifest["embedding_dim"])
        self.index = self.items.index
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
        checked first (see :func:`edge.bundle.signing.verify_signature`); with keys but no requirement
        an unsigned bundle passes, a signed one must verify.

        :param root: the bundle folder (holding ``manifest.json``).
        :param device_spec: the device's feature spec; the bundle's must be identical.
        :param trusted_keys: public keys to accept signatures from.
        :param require_signature: refuse a bundle without a valid signature from ``trusted_keys``.
        :raises BundleError: naming the file or field that failed (including an unsigned,
            malformed, unknown-key, revoked-key or bad signature).
        """
        root = Path(root)
        # One read: the bytes whose signature is checked are the bytes parsed (no window for
        # a swap on writable media between the two).
        data = read_manifest_bytes(root)
        if trusted_keys is not None or require_signature:
            verify_signature(root, trusted_keys, required=require_signature, data=data)
        manifest = read_manifest(root, data)
        verify_files(root, manifest)
        spec = FeatureSpec.from_dict(manifest["feature_spec"])
        if spec.hash() != manifest["feature_spec_hash"]:
            raise BundleError(f"{root}: feature_spec_hash does not match the feature spec in the manifest")
        (device_spec or FeatureSpec()).check_same(spec)
        try:
            return cls(root, manifest)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"{root}: catalogue cannot be read ({exc})") from None
