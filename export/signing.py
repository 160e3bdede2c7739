"""Signing bundles on the server: ed25519 keys and ``manifest.sig`` (see :mod:`edge.bundle.signing`).

    >>> key = generate_key("keys/2026-a")          # keys/2026-a.pem (0600) and keys/2026-a.pub
    >>> sign_bundle("bundle/", key.private_path)   # writes bundle/manifest.sig, returns the key id

The private key never goes to devices; ship the ``.pub`` file into each device's trusted
keys folder. The private key PEM is unencrypted: keep it on the build host, readable by its
owner only (it is created 0600).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from edge.bundle import MANIFEST, Bundle
from edge.errors import BundleError
from edge.bundle.signing import SIGNATURE, SIGNATURE_FORMAT, SIGNATURE_VERSION, key_id

__all__ = ["GeneratedKey", "generate_key", "sign_bundle"]


@dataclass(frozen=True)
class GeneratedKey:
    """A new key pair on disk: the private PEM, the public key file and the key id."""

    private_path: Path
    public_path: Path
    key_id: str


def generate_key(path: str | Path) -> GeneratedKey:
    """Create an ed25519 key pair: ``<path>.pem`` (private, PKCS#8 PEM, mode 0600) and
    ``<path>.pub`` (public, PEM). A trailing ``.pem`` on ``path`` is dropped first.

    :param path: the output prefix, e.g. ``keys/2026-a``.
    :returns: the files written and the key id.
    :raises FileExistsError: either file exists already (keys are never overwritten).
    :raises ValueError: an empty prefix or one naming a folder.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    prefix = Path(path)
    if prefix.suffix == ".pem":
        prefix = prefix.with_suffix("")
    if not prefix.name or str(path).endswith(("/", os.sep)) or prefix.is_dir():
        raise ValueError(f"{str(path)!r} is not a key name; pass a path prefix such as keys/2026-a")
    private_path, public_path = prefix.with_name(prefix.name + ".pem"), prefix.with_name(prefix.name + ".pub")
    for p in (private_path, public_path):
        if p.exists():
            raise FileExistsError(f"{p} exists; keys are never overwritten, choose another name")
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    pub = key.public_key()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL with mode 0600: the key is never readable by others, not even for an instant.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_path.write_bytes(pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return GeneratedKey(private_path, public_path, key_id(raw))


def _load_private_key(path: Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the private key ({exc})") from None
    except (ValueError, TypeError) as exc:
        raise BundleError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise BundleError(f"{path}: holds a {type(key).__name__}, expected an ed25519 private key (`edgerec pipeline keygen`)")
    return key


def sign_bundle(folder: str | Path, private_key_path: str | Path) -> str:
    """Verify a bundle folder, then write ``manifest.sig`` over the exact ``manifest.json`` bytes.

    An existing signature is replaced (atomically). Re-pack the archive afterwards
    (:func:`edge.bundle.archive.pack_archive`) so the signature travels with it.

    :param folder: the bundle folder.
    :param private_key_path: ed25519 private key PEM (unencrypted).
    :returns: the key id written into the signature.
    :raises BundleError: the bundle does not verify, or the key is unreadable or not ed25519.
    """
    from cryptography.hazmat.primitives import serialization

    folder = Path(folder)
    Bundle.open(folder)  # never sign a bundle the device would refuse anyway
    key = _load_private_key(Path(private_key_path))
    data = (folder / MANIFEST).read_bytes()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kid = key_id(raw)
    doc = {"format": SIGNATURE_FORMAT, "version": SIGNATURE_VERSION, "key_id": kid,
           "signature": base64.b64encode(key.sign(data)).decode("ascii")}
    tmp = folder / f".{SIGNATURE}.tmp"
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    tmp.replace(folder / SIGNATURE)
    return kid
