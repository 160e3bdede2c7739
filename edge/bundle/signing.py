"""Checking bundle signatures on the device (ed25519, from the ``cryptography`` package).

A signed bundle holds ``manifest.sig`` beside ``manifest.json``::

    {"format": "edgerec-signature", "version": 1,
     "key_id": "<first 16 hex digits of sha256(raw 32-byte public key)>",
     "signature": "<base64 of the 64-byte ed25519 signature over the exact manifest.json bytes>"}

The manifest pins the sha256 and size of every other file, so a valid signature over its bytes
covers the whole bundle (:func:`edge.bundle.manifest.verify_files` checks the rest).

The device trusts the public keys in one folder (``security.trusted_keys_dir`` of the device
profile)::

    trusted-keys/
      2026-a.pub       ed25519 public key: PEM ("BEGIN PUBLIC KEY") or the raw 32 bytes
      2027-b.pub       several keys are trusted at once, so keys can be rotated
      revoked.txt      one key id (or .pub file name without .pub) per line; '#' starts a comment

Rotation: ship the new public key to devices first, then sign new bundles with the new key;
bundles signed by either key are accepted. Retire the old key by adding its id to
``revoked.txt`` (or deleting its file): bundles signed by it are refused from then on.

    >>> keys = TrustedKeys.from_dir("/etc/edgerec/trusted-keys")
    >>> verify_signature("bundle/", keys)      # -> the key id that signed it
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from edge.bundle.format import MANIFEST, MAX_SIGNATURE_BYTES, SIGNATURE
from edge.bundle.manifest import read_manifest_bytes
from edge.errors import BundleError

__all__ = ["SIGNATURE", "SIGNATURE_FORMAT", "SIGNATURE_VERSION", "REVOKED", "TrustedKeys", "key_id", "load_public_key",
           "read_signature", "verify_signature"]

SIGNATURE_FORMAT = "edgerec-signature"
SIGNATURE_VERSION = 1
#: The revocation list in a trusted-keys folder.
REVOKED = "revoked.txt"
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_MAX_KEY_FILE_BYTES = 16 * 1024


def _crypto() -> Any:
    """The ed25519 module of ``cryptography``, imported on first use."""
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - it is a base dependency
        raise BundleError("checking bundle signatures needs the 'cryptography' package: pip install 'cryptography>=42'") from None
    return ed25519


def key_id(raw_public_key: bytes) -> str:
    """The id of a public key: the first 16 hex digits of sha256 of its raw 32 bytes."""
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def load_public_key(path: str | Path) -> tuple[Any, str]:
    """Read an ed25519 public key file: PEM (SubjectPublicKeyInfo) or the raw 32 bytes.

    :returns: ``(Ed25519PublicKey, key id)``.
    :raises BundleError: unreadable, too large, or not an ed25519 public key (naming the file).
    """
    from cryptography.hazmat.primitives import serialization

    ed25519 = _crypto()
    path = Path(path)
    try:
        data = path.read_bytes() if path.stat().st_size <= _MAX_KEY_FILE_BYTES else None
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the public key ({exc})") from None
    if data is None:
        raise BundleError(f"{path}: over {_MAX_KEY_FILE_BYTES} bytes; not a public key file")
    try:
        if len(data) == 32:
            key = ed25519.Ed25519PublicKey.from_public_bytes(data)
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise BundleError(f"{path}: not an ed25519 public key (PEM or raw 32 bytes): {exc}") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise BundleError(f"{path}: holds a {type(key).__name__}, expected an ed25519 public key")
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key, key_id(raw)


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys a device accepts bundle signatures from, and the revoked key ids.

    :param keys: key id -> ``Ed25519PublicKey``.
    :param revoked: key ids never accepted, even when their key is in ``keys``.
    :param names: key id -> where it came from (a file name), for messages.
    :param source: the folder they were read from, for messages.
    """

    keys: Mapping[str, Any]
    revoked: frozenset[str] = frozenset()
    names: Mapping[str, str] = field(default_factory=dict)
    source: str = "trusted keys"

    @classmethod
    def from_dir(cls, folder: str | Path) -> "TrustedKeys":
        """Read every ``*.pub`` in ``folder`` and its ``revoked.txt`` (optional).

        ``revoked.txt`` lines hold a key id (16 hex digits) or the name of a ``.pub`` file in
        the folder (with or without ``.pub``); blank lines and ``#`` comments are ignored.

        :raises BundleError: the folder is missing, holds no ``*.pub`` key, a key file is not
            an ed25519 public key, or a ``revoked.txt`` line is neither a key id nor a key name.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise BundleError(f"{folder}: trusted keys folder not found; create it with the publishers' *.pub keys "
                              "(security.trusted_keys_dir of the device profile, or --trusted-keys)")
        _check_owner_and_mode(folder)
        keys: dict[str, Any] = {}
        names: dict[str, str] = {}
        by_name: dict[str, str] = {}
        for path in sorted(folder.glob("*.pub")):
            _check_owner_and_mode(path)
            key, kid = load_public_key(path)
            keys[kid] = key
            names.setdefault(kid, path.name)
            by_name[path.name] = by_name[path.stem] = kid
        if not keys:
            raise BundleError(f"{folder}: no *.pub public keys; add the key that signs your bundles (`edgerec pipeline keygen`)")
        revoked: set[str] = set()
        rpath = folder / REVOKED
        if rpath.exists():
            _check_owner_and_mode(rpath)
            try:
                lines = rpath.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise BundleError(f"{rpath}: cannot read the revocation list ({exc})") from None
            for n, line in enumerate(lines, 1):
                entry = line.split("#", 1)[0].strip()
                if not entry:
                    continue
                if entry in by_name:
                    revoked.add(by_name[entry])
                elif _KEY_ID.fullmatch(entry.lower()):
                    revoked.add(entry.lower())
                else:
                    raise BundleError(f"{rpath}: line {n}: {entry!r} is neither a key id (16 hex digits) "
                                      f"nor the name of a .pub file in {folder}")
        return cls(keys, frozenset(revoked), names, str(folder))

    def usable(self) -> list[str]:
        """Key ids that are trusted and not revoked, sorted."""
        return sorted(set(self.keys) - self.revoked)


def _check_owner_and_mode(path: Path) -> None:
    """Whoever can write the trusted keys can sign bundles: the folder, its keys and
    ``revoked.txt`` must belong to root or to this user and be writable by no one else.

    :raises BundleError: naming the path and the ``chmod``/``chown`` that fixes it.
    """
    try:
        st = path.lstat()
    except OSError as exc:
        raise BundleError(f"{path}: cannot check the trusted keys ({exc})") from None
    if stat.S_ISLNK(st.st_mode):
        raise BundleError(f"{path}: a symbolic link in the trusted keys; replace it with the file itself")
    if st.st_mode & 0o022:
        raise BundleError(f"{path}: writable by group or others (mode {stat.S_IMODE(st.st_mode):o}), so anyone could add a "
                          f"signing key; run `chmod go-w {path}`")
    if st.st_uid not in (0, os.geteuid()):
        raise BundleError(f"{path}: owned by uid {st.st_uid}, neither root nor this user ({os.geteuid()}); "
                          f"run `chown {os.geteuid()} {path}` or install the keys as root")


def read_signature(bundle_root: str | Path) -> dict[str, Any] | None:
    """Parse a bundle's ``manifest.sig``.

    :returns: the signature object with ``signature`` decoded to bytes, or None when the
        bundle has no signature file.
    :raises BundleError: the file is a link, too large, not JSON, of another format or
        version, or has a malformed ``key_id`` or ``signature``.
    """
    path = Path(bundle_root) / SIGNATURE
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the signature ({exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise BundleError(f"{path}: malformed signature: a link or not a regular file")
    if st.st_size > MAX_SIGNATURE_BYTES:
        raise BundleError(f"{path}: malformed signature: {st.st_size} bytes, over {MAX_SIGNATURE_BYTES}")
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError covers JSON and UTF-8 errors
        raise BundleError(f"{path}: malformed signature: not JSON ({exc}); sign the bundle again with `edgerec pipeline sign`") from None
    if not isinstance(doc, dict):
        raise BundleError(f"{path}: malformed signature: expected a JSON object, got {type(doc).__name__}")
    if doc.get("format") != SIGNATURE_FORMAT or doc.get("version") != SIGNATURE_VERSION:
        raise BundleError(f"{path}: malformed signature: format {doc.get('format')!r} version {doc.get('version')!r}, "
                          f"expected {SIGNATURE_FORMAT!r} version {SIGNATURE_VERSION}")
    kid = doc.get("key_id")
    if not isinstance(kid, str) or not _KEY_ID.fullmatch(kid):
        raise BundleError(f"{path}: malformed signature: 'key_id' must be 16 lowercase hex digits, got {kid!r}")
    sig = doc.get("signature")
    try:
        raw = base64.b64decode(sig, validate=True) if isinstance(sig, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 64:
        raise BundleError(f"{path}: malformed signature: 'signature' must be base64 of 64 bytes")
    return {**doc, "signature": raw}


def verify_signature(bundle_root: str | Path, trusted: TrustedKeys | None, required: bool = True,
                     data: bytes | None = None) -> str | None:
    """Check ``manifest.sig`` against the exact bytes of ``manifest.json``.

    :param bundle_root: the bundle folder.
    :param trusted: the keys to accept; None when the device has none configured.
    :param required: refuse a bundle without a signature; when False an unsigned bundle
        passes (None is returned), but a signature that is present must still verify.
    :param data: the manifest's bytes as the caller read them (and will parse); read here
        when None.
    :returns: the id of the key that signed the bundle, or None for an accepted unsigned bundle.
    :raises BundleError: signature missing (when required), malformed, from a revoked or
        unknown key, no trusted keys to check it with, or not matching the manifest (tampered).
    """
    root = Path(bundle_root)
    sig = read_signature(root)
    if sig is None:
        if required:
            raise BundleError(f"{root}: unsigned bundle refused: no {SIGNATURE}, and this device requires signed bundles; "
                              "sign it with `edgerec pipeline sign BUNDLE --key KEY.pem`")
        return None
    kid = sig["key_id"]
    if trusted is None:
        if required:
            raise BundleError(f"{root}: signed by key {kid}, but no trusted keys are configured to check it "
                              "(security.trusted_keys_dir of the device profile, or --trusted-keys)")
        return None
    who = f"key {kid}" + (f" ({trusted.names[kid]})" if kid in trusted.names else "")
    if kid in trusted.revoked:
        raise BundleError(f"{root}: signed by revoked {who}; ask the publisher for a bundle signed with a current key")
    key = trusted.keys.get(kid)
    if key is None:
        raise BundleError(f"{root}: signed by unknown key {kid}; {trusted.source} trusts {trusted.usable()}; "
                          "add the publisher's .pub file there if this key is genuine")
    if data is None:
        data = read_manifest_bytes(root)
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(sig["signature"], data)
    except InvalidSignature:
        raise BundleError(f"{root}: bad signature from {who}: {MANIFEST} was altered after signing "
                          "(or the signature belongs to another manifest); the bundle is refused") from None
    return kid
