"""Installing bundles on the device: verified first, switched atomically, rolled back on failure.

A bundle store is a folder::

    root/
      trust.json             the trust policy the store was set up with (never loosened)
      current                JSON pointer: {"active": ID, "previous": [ID, ...], "newest_version": N},
                             previous newest first; N the highest bundle version installed
      .lock                  held (flock) while installing, rolling back or cleaning up
      bundles/ID/            installed bundles; each passed Bundle.open and a smoke query
      bundles/.staging-XXXX  an install in progress, or one a killed process left behind
      bundles/.trash-XXXX    a bundle on its way out

``ID`` is ``<created_at as YYYYmmddTHHMMSSZ>-<first 12 hex digits of sha256(manifest.json)>``.
The manifest carries every file's sha256, so the id names the content: the same bundle
installed twice gets the same id.

**The pointer is a regular file, not a symlink.** It is written to ``root/.current.tmp``,
fsynced, moved over ``root/current`` with :func:`os.replace` and the folder is fsynced
(:func:`edge.atomic.fsync_dir`), so a crash at any instant leaves either the old pointer or the
new one. A file rather than a
symlink because (1) one atomic write records both the active bundle and the rollback chain,
which a link plus a second file could not keep consistent across a crash; (2) the pointer
holds an id checked against a strict pattern, never a path, so a damaged or forged pointer
cannot send the runtime outside ``bundles/``; (3) it works on storage without symlinks (the
vfat/exFAT cards and sticks some TVs keep app data on).

An install unpacks into ``bundles/.staging-XXXX`` (never anywhere else), verifies with
:meth:`edge.bundle.Bundle.open`, runs :func:`edge.bundle.smoke.smoke_query`, renames the staging
folder to ``bundles/ID``, and only then replaces the pointer. Until that replace, the active bundle is
untouched; after it, the new bundle is complete on disk. Leftovers of a killed install are
removed the next time a store is opened.

A catalogue delta (:meth:`BundleStore.apply_delta`, :mod:`edge.bundle.delta`) is unpacked into
``bundles/.staging-delta-XXXX``; the bundle it stands for is rebuilt in ``bundles/.staging-XXXX``
from the active bundle and the patch, verified exactly as an install, and switched in the same way.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from edge.atomic import atomic_write, fsync_dir
from edge.backends import BACKENDS
from edge.bundle.archive import InstallLimits, copy_bundle_folder, unpack_archive, write_all
from edge.bundle.format import MANIFEST, SIGNATURE, sha256_file
from edge.bundle.freshness import bundle_version, check_not_expired, check_not_older
from edge.bundle.manifest import read_manifest
from edge.bundle.reader import Bundle
from edge.bundle.signing import TrustedKeys, verify_signature
from edge.bundle.smoke import smoke_query
from edge.errors import BundleError
from edge.features.spec import FeatureSpec

__all__ = ["BundleStore", "InstalledBundle", "InstallLimits", "resolve_bundle", "bundle_id", "store_trust"]

POINTER = "current"
BUNDLES = "bundles"
TRUST = "trust.json"
TRUST_FORMAT = "edgerec-store-trust"
STORE_FORMAT = "edgerec-store"
STORE_VERSION = 1
_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,79}")

#: Test hook, None in production: called with the name of each install phase just reached
#: ("unpacked", "verified", "renamed", "pointer-written", "pointer-replaced", "switched") so a
#: fault test can kill the process exactly there (tests/test_install_faults.py).
_phase_hook: Callable[[str], None] | None = None


def _phase(name: str) -> None:
    if _phase_hook is not None:
        _phase_hook(name)


@dataclass(frozen=True)
class InstalledBundle:
    """One bundle in a store.

    :param id: folder name under ``bundles/``.
    :param path: the bundle folder.
    :param created_at: the manifest's ``created_at`` (ISO 8601), None when unreadable.
    :param active: whether the pointer names it.
    :param present: False when the pointer names it but its folder is gone.
    """

    id: str
    path: Path
    created_at: str | None
    active: bool
    present: bool = True


def resolve_bundle(path: str | Path) -> Path:
    """The bundle folder ``path`` stands for: itself when it holds ``manifest.json``, or the
    active bundle when it is a store root (holds a ``current`` pointer). Reads only; takes no
    lock and cleans nothing, so it is safe while another process installs.

    :raises BundleError: ``path`` is neither, or the store has no valid active bundle.
    """
    path = Path(path)
    try:
        os.listdir(path)
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the bundle folder or store ({exc.strerror or exc}); check the path and its permissions") from None
    if (path / MANIFEST).is_file():
        return path
    if (path / POINTER).is_file() or (path / BUNDLES).is_dir():
        active, _ = _read_pointer(path)
        if active is None:
            raise BundleError(f"{path}: bundle store has no active bundle; run `edgerec bundle install SOURCE --store {path}`")
        folder = path / BUNDLES / active
        if not (folder / MANIFEST).is_file():
            raise BundleError(f"{path}: the active bundle {active} is missing; run `edgerec bundle rollback --store {path}` or install a bundle")
        return folder
    raise BundleError(f"{path}: neither a bundle folder (no {MANIFEST}) nor a bundle store (no '{POINTER}' pointer)")


# ---------------------------------------------------------------------------------------------
# The store.


def _fsync_tree(root: Path) -> None:
    # Files were fsynced as written; their directory entries need their folders fsynced too.
    for dirpath, _dirs, _files in os.walk(root, topdown=False):
        fsync_dir(dirpath)


def _read_pointer(root: Path) -> tuple[str | None, list[str]]:
    active, previous, _ = _read_state(root)
    return active, previous


def _read_state(root: Path) -> tuple[str | None, list[str], int]:
    """``(active, previous, newest_version)``: the pointer, and the highest bundle version this
    store ever installed (the floor below which an install is a downgrade)."""
    path = root / POINTER
    if not path.exists():
        return None, [], 0
    try:
        if path.stat().st_size > 1 << 20:
            raise ValueError("larger than 1 MiB")
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict) or state.get("format") != STORE_FORMAT or state.get("version") != STORE_VERSION:
            raise ValueError(f"expected format {STORE_FORMAT!r} version {STORE_VERSION}")
        active, previous = state.get("active"), state.get("previous")
        if active is not None and (not isinstance(active, str) or not _ID.fullmatch(active)):
            raise ValueError(f"bad active id {active!r}")
        if not isinstance(previous, list) or not all(isinstance(p, str) and _ID.fullmatch(p) for p in previous):
            raise ValueError(f"bad previous ids {previous!r}")
        newest = state.get("newest_version", 0)  # absent in pointers written before versions
        if isinstance(newest, bool) or not isinstance(newest, int) or newest < 0:
            raise ValueError(f"bad newest_version {newest!r}")
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: deeply nested JSON
        raise BundleError(
            f"{path}: store pointer is unreadable ({exc}); delete it and install a bundle again with `edgerec bundle install`"
        ) from None
    return active, previous, newest


def store_trust(root: str | Path, trusted_keys: TrustedKeys | None = None, require_signature: bool = False) -> dict[str, Any]:
    """The trust policy for a store: the caller's, made at least as strict as the one the store
    recorded (``trust.json``, written when a store is opened with trusted keys or a signature
    requirement). So a store set up by a profile that requires signatures keeps requiring them
    from every entry point, with or without that profile; a policy is never loosened.

    :returns: keyword arguments for :meth:`Bundle.open` (``trusted_keys``, ``require_signature``).
    :raises BundleError: the recorded policy is unreadable, or its keys folder is unusable.
    """
    path = Path(root) / TRUST
    recorded: dict[str, Any] = {}
    if path.is_file():
        try:
            if path.stat().st_size > 1 << 16:
                raise ValueError("larger than 64 KiB")
            recorded = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(recorded, dict) or recorded.get("format") != TRUST_FORMAT:
                raise ValueError(f"expected format {TRUST_FORMAT!r}")
            if not isinstance(recorded.get("require_signature"), bool) or not isinstance(recorded.get("trusted_keys_dir"), (str, type(None))):
                raise ValueError("bad fields")
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            # Unreadable is not "no policy": refuse rather than fall back to accepting anything.
            raise BundleError(f"{path}: the store's trust policy is unreadable ({exc}); restore it or reinstall with "
                              "--device-profile / --trusted-keys") from None
    keys = trusted_keys
    if keys is None and recorded.get("trusted_keys_dir"):
        keys = TrustedKeys.from_dir(recorded["trusted_keys_dir"])
    return {"trusted_keys": keys, "require_signature": bool(require_signature or recorded.get("require_signature"))}


def _record_trust(root: Path, trust: dict[str, Any]) -> None:
    keys: TrustedKeys | None = trust["trusted_keys"]
    if keys is None and not trust["require_signature"]:
        return
    doc = {"format": TRUST_FORMAT, "require_signature": trust["require_signature"], "trusted_keys_dir": keys.source if keys else None}
    path = root / TRUST
    try:
        if path.is_file() and json.loads(path.read_text(encoding="utf-8")) == doc:
            return
    except (OSError, ValueError):
        pass
    try:
        atomic_write(path, json.dumps(doc, indent=1))
    except OSError:
        pass  # a read-only store is only read; the policy given is applied all the same


def bundle_id(folder: Path, manifest: dict[str, Any]) -> str:
    """The store id of a verified bundle folder: creation time and a content hash."""
    try:
        created = datetime.fromisoformat(str(manifest.get("created_at")))
        if created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        stamp = created.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    except ValueError:
        stamp = "undated"
    return f"{stamp}-{sha256_file(folder / MANIFEST)[:12]}"


class BundleStore:
    """Installed bundles on the device, one of them active.

    >>> store = BundleStore("/var/lib/edgerec")
    >>> store.install("bundle.tar")          # verified, smoke-tested, then switched
    >>> store.current()                      # the active bundle folder
    >>> store.rollback()                     # back to the previous one

    Opening a store creates it (unless ``create=False``) and removes what a killed install
    left behind (staging and trash folders, bundles the pointer does not name), unless another
    process holds the store's lock; the active bundle is never touched.

    :param root: the store folder.
    :param keep: previous bundles kept for :meth:`rollback` (default 2; 0 keeps none).
    :param limits: size and count limits for installs.
    :param backends: backend names in the device's order; the smoke query runs each one
        that the bundle ships and this device has installed.
    :param threads: intra-op threads for the smoke query.
    :param device_spec: the device's FeatureSpec (default: this edgerec's).
    :param create: create ``root`` when missing; when False a missing store is an error.
    :param lock_timeout_s: how long to wait for another process's install, in seconds.
    :param trusted_keys: keys whose ``manifest.sig`` is accepted; a signed bundle must verify.
    :param require_signature: refuse bundles without a valid signature from ``trusted_keys``
        (at install, and when opening or rolling back to an installed bundle).
    :raises BundleError: the store is missing (``create=False``) or cannot be created.
    """

    def __init__(
        self,
        root: str | Path,
        keep: int = 2,
        limits: InstallLimits = InstallLimits(),
        backends: Sequence[str] = BACKENDS,
        threads: int = 1,
        device_spec: FeatureSpec | None = None,
        create: bool = True,
        lock_timeout_s: float = 60.0,
        trusted_keys: TrustedKeys | None = None,
        require_signature: bool = False,
    ) -> None:
        if keep < 0:
            raise ValueError(f"keep must be >= 0, got {keep}")
        self.root = Path(root)
        self.keep = keep
        self.limits = limits
        self.backends = tuple(backends)
        self.threads = threads
        self.device_spec = device_spec
        self.lock_timeout_s = lock_timeout_s
        self.bundles_dir = self.root / BUNDLES
        if not self.bundles_dir.is_dir():
            if not create:
                raise BundleError(f"{self.root}: no bundle store here; install a bundle first with `edgerec bundle install SOURCE --store {self.root}`")
            try:
                self.bundles_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BundleError(f"{self.root}: cannot create the bundle store ({exc})") from None
        trust = store_trust(self.root, trusted_keys, require_signature)
        self.trusted_keys, self.require_signature = trust["trusted_keys"], trust["require_signature"]
        _record_trust(self.root, trust)
        with self._locked(wait=False) as held:
            if held:
                self._clean()

    # -- reading -------------------------------------------------------------------------------

    def current(self) -> Path:
        """The active bundle folder.

        :raises BundleError: nothing is installed, or the pointer is unreadable.
        """
        return resolve_bundle(self.root)

    def history(self) -> list[InstalledBundle]:
        """The active bundle, then the previous ones newest first (the rollback order).

        :raises BundleError: the pointer is unreadable.
        """
        active, previous = _read_pointer(self.root)
        return [self._entry(i, i == active) for i in ([active] if active else []) + previous]

    def open_active(self, rollback_on_failure: bool = True) -> Bundle:
        """Verify and open the active bundle. When it fails and ``rollback_on_failure``, roll
        back to the last good bundle and open that instead.

        :raises BundleError: nothing installed, or no installed bundle verifies.
        """
        try:
            return self._open(self.current())
        except BundleError as exc:
            if not rollback_on_failure or not _read_pointer(self.root)[1]:
                raise
            first = exc
        try:
            self.rollback()
        except BundleError as exc:
            raise BundleError(f"{first}; rollback failed too: {exc}") from None
        return self._open(self.current())

    # -- changing ------------------------------------------------------------------------------

    def install(self, source: str | Path, allow_downgrade: bool = False) -> InstalledBundle:
        """Install a bundle from a ``.tar`` archive or a bundle folder and make it active.

        Freshness (:mod:`edge.bundle.freshness`): an expired bundle is refused, and so is one
        whose signed ``bundle_version`` is below the newest this store has installed, unless
        ``allow_downgrade``.

        Unpacks into ``bundles/.staging-XXXX``, verifies (signature when keys are set or one is
        required, manifest, format version, FeatureSpec hash, sha256 and size of every file), runs :func:`smoke_query`, and only then switches
        the pointer. The previous active bundle is kept for :meth:`rollback`; bundles beyond
        ``keep`` are deleted. If the new bundle fails to verify through the pointer after the
        switch, the store rolls back before raising. Installing the active bundle again
        changes nothing.

        :returns: the now-active bundle.
        :raises BundleError: the source is missing, unsafe, corrupt, over the limits, or fails
            the smoke query; the active bundle is then unchanged and nothing is left behind.
        """
        source = Path(source)
        with self._locked():
            active, previous, newest = _read_state(self.root)
            was = f"the active bundle {active} is unchanged" if active else "nothing is installed"
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.bundles_dir))
            try:
                os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide the bundle from app users; it holds nothing secret
                try:
                    if source.is_dir():
                        copy_bundle_folder(source, staging, self.limits)
                    elif source.is_file():
                        unpack_archive(source, staging, self.limits, check_manifest=self._check_signature)
                    else:
                        raise BundleError(f"{source}: no such bundle archive or folder")
                    _fsync_tree(staging)
                    _phase("unpacked")
                    bundle = self._open(staging)
                    check_not_expired(bundle.manifest, str(source))
                    check_not_older(bundle.manifest, newest, str(source), allow_downgrade)
                    version = bundle_version(bundle.manifest)
                    smoke_query(bundle, self.backends, self.threads)
                    new = bundle_id(staging, bundle.manifest)
                    del bundle  # drop the memory map before the folder is renamed
                    _phase("verified")
                except BundleError as exc:
                    # Name the source, not the staging folder that is about to vanish.
                    raise BundleError(f"not installed: {str(exc).replace(str(staging), str(source))}; {was}") from None
                except OSError as exc:
                    raise BundleError(f"{source}: not installed, cannot unpack into {self.bundles_dir} ({exc}); {was}") from None
                if self._place(staging, new, active):
                    return self._entry(new, True)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            return self._switch(new, str(source), (active, previous, newest), max(newest, version) if not allow_downgrade else version, was)

    def apply_delta(self, path: str | Path) -> InstalledBundle:
        """Apply a catalogue delta (``edgerec pipeline delta``) to the active bundle and make the
        result active, exactly as :meth:`install` would make the full bundle it stands for.

        Unpacks the delta into ``bundles/.staging-XXXX`` (its signature checked first, with
        this store's trust policy), checks it is for the active bundle (manifest sha256 and
        ``bundle_version``), that it is newer than every bundle this store installed, and that it
        changes no model and not the feature spec; rebuilds the target catalogue from the active
        bundle and the patch (:mod:`edge.bundle.delta`), hard-links (or copies) every other file,
        then verifies the result as a full install (signed manifest, every file's sha256 and size,
        freshness, smoke query) and switches the pointer. The bundle that was active is kept for
        :meth:`rollback`.

        :returns: the now-active bundle.
        :raises BundleError: the delta is for another bundle, older than (or as old as) the
            installed one, would change models or the feature spec, is unsigned where a signature
            is required, tampered with, truncated, over the limits, or the result fails to verify;
            the active bundle is then unchanged and nothing is left behind.
        """
        from edge.bundle import delta as dl  # lazy: installs of full bundles never need it

        source = Path(path)
        with self._locked():
            active, previous, newest = _read_state(self.root)
            if active is None:
                raise BundleError(f"{source}: not applied: nothing is installed in {self.root}; a delta patches the active bundle, "
                                  f"so install a full bundle first with `edgerec bundle install SOURCE --store {self.root}`")
            was = f"the active bundle {active} is unchanged"
            unpacked = Path(tempfile.mkdtemp(prefix=".staging-delta-", dir=self.bundles_dir))
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.bundles_dir))
            try:
                os.chmod(staging, 0o755)
                try:
                    if not source.is_file():
                        raise BundleError(f"{source}: no such delta archive")
                    doc = dl.unpack_delta(source, unpacked, self.limits, check_manifest=self._check_signature)
                    base_dir = self.bundles_dir / active
                    base_data = (base_dir / MANIFEST).read_bytes()
                    base = self._open(base_dir)
                    if dl.manifest_sha256(base_data) != doc["base"]["manifest_sha256"] or bundle_version(base.manifest) != doc["base"]["bundle_version"]:
                        raise BundleError(f"{source}: a delta for another bundle (made for version {doc['base']['bundle_version']}, "
                                          f"manifest {doc['base']['manifest_sha256'][:12]}; the active bundle {active} is version "
                                          f"{bundle_version(base.manifest)}); install the full bundle instead")
                    target = read_manifest(unpacked)
                    check_not_expired(target, str(source))
                    # The store's downgrade rule (edge.bundle.freshness), made strict: a delta must move forward,
                    # and there is no --allow-downgrade for one (install the older full bundle for that).
                    version, floor = bundle_version(target), max(newest, bundle_version(base.manifest))
                    if version <= floor:
                        raise BundleError(f"{source}: a delta older than the installed one: it brings bundle version {version}, "
                                          f"this store has installed version {floor}; a replayed or stale delta is refused")
                    dl.check_same_models(base.manifest, target, str(source))
                    paths = dl.catalogue_paths(target, str(source))
                    dl.catalogue_paths(base.manifest, str(base_dir))
                    patch = dl.read_patch(unpacked, doc, str(source))
                    q, s, items, priors = dl.rebuild_catalogue(base.embeddings_int8, base.scales, dl.ItemColumns.from_catalog(base.items),
                                                               base.priors, patch, str(source))
                    del base, patch
                    try:
                        dl.write_catalogue(staging, paths, q, s, items, priors)
                    except ValueError as exc:  # write_item_columns: duplicate ids and the like
                        raise BundleError(f"{source}: the patched catalogue is invalid ({exc}); the delta is corrupt") from None
                    del q, s, items, priors
                    rebuilt = set(paths.values())
                    for rel in target["files"]:
                        if rel not in rebuilt:
                            dl.link_or_copy(base_dir.joinpath(*rel.split("/")), staging.joinpath(*rel.split("/")))
                    shutil.copyfile(unpacked / MANIFEST, staging / MANIFEST)
                    if (unpacked / SIGNATURE).is_file():
                        shutil.copyfile(unpacked / SIGNATURE, staging / SIGNATURE)
                    shutil.rmtree(unpacked)
                    for name in (MANIFEST, SIGNATURE):
                        if (staging / name).is_file():
                            with open(staging / name, "rb+") as fh:
                                os.fsync(fh.fileno())
                    _fsync_tree(staging)
                    _phase("unpacked")
                    bundle = self._open(staging)  # the signed target manifest pins every rebuilt byte
                    smoke_query(bundle, self.backends, self.threads)
                    new = bundle_id(staging, bundle.manifest)
                    del bundle
                    _phase("verified")
                except BundleError as exc:
                    msg = str(exc).replace(str(staging), str(source)).replace(str(unpacked), str(source))
                    raise BundleError(f"delta not applied: {msg}; {was}") from None
                except OSError as exc:
                    raise BundleError(f"{source}: delta not applied, cannot rebuild the bundle in {self.bundles_dir} ({exc}); {was}") from None
                if self._place(staging, new, active):
                    return self._entry(new, True)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                shutil.rmtree(unpacked, ignore_errors=True)
                raise
            return self._switch(new, str(source), (active, previous, newest), max(newest, version), was)

    def rollback(self) -> InstalledBundle:
        """Make the previous good bundle active again and forget the one that was active.

        Previous bundles are tried newest first; one that no longer verifies or fails the
        smoke query is skipped and forgotten.

        :returns: the now-active bundle.
        :raises BundleError: nothing installed, no previous bundle, or none of them verifies;
            the active bundle is then unchanged.
        """
        with self._locked():
            return self._rollback_locked()

    # -- internals -----------------------------------------------------------------------------

    def _place(self, staging: Path, new: str, active: str | None) -> bool:
        """Move a verified staging folder to ``bundles/<new>``; True when ``new`` is the active
        bundle already (nothing to switch). Call with the lock held."""
        target = self.bundles_dir / new
        if target.exists() and self._verifies(target):
            # The same content is installed already (active, or kept for rollback): reuse it,
            # so a crash here can never leave a bundle the pointer names half-deleted.
            shutil.rmtree(staging)
            return new == active
        if target.exists():
            self._discard(target)  # a damaged earlier copy
        os.rename(staging, target)
        fsync_dir(self.bundles_dir)
        _phase("renamed")
        return False

    def _switch(self, new: str, source: str, state: tuple[str | None, list[str], int], newest_version: int, was: str) -> InstalledBundle:
        """Point the store at ``bundles/<new>`` (placed already), keeping the one that was
        active for rollback; back to ``state`` if it fails to load through the pointer."""
        active, previous, newest = state
        chain = [i for i in ([active] if active else []) + previous if i != new][: self.keep]
        self._write_pointer(new, chain, newest_version)
        try:
            self._open(self.current())
        except BundleError as exc:
            # The pointer before the switch named the last good bundle: put it back.
            self._write_pointer(active, previous, newest)
            self._clean()
            raise BundleError(f"{source}: bundle {new} failed to load after the switch ({exc}); rolled back, {was}") from None
        _phase("switched")
        self._clean()
        return self._entry(new, True)

    def _rollback_locked(self) -> InstalledBundle:
        active, previous, newest = _read_state(self.root)
        if active is None:
            raise BundleError(f"{self.root}: nothing is installed, so there is nothing to roll back")
        if not previous:
            raise BundleError(f"{self.root}: no previous bundle to roll back to (active: {active}); install an older bundle instead")
        reasons = []
        for i, pid in enumerate(previous):
            try:
                # Today's keys and revocations (self._open), and no bundle past its expiry.
                bundle = self._open(self.bundles_dir / pid)
                check_not_expired(bundle.manifest, pid)
                smoke_query(bundle, self.backends, self.threads)
            except BundleError as exc:
                reasons.append(f"{pid}: {exc}")
                continue
            # Rolling back is the operator's explicit downgrade: the floor follows it, so the
            # bundle rolled away from may be installed again.
            self._write_pointer(pid, previous[i + 1 :], bundle_version(bundle.manifest))
            self._clean()
            return self._entry(pid, True)
        raise BundleError(f"{self.root}: no previous bundle verifies ({'; '.join(reasons)}); {active} stays active")

    def _check_signature(self, staging: Path) -> None:
        # During unpacking, right after the manifest (and its signature): an untrusted archive
        # is refused before its large members are written or its manifest is parsed.
        if self.trusted_keys is not None or self.require_signature:
            verify_signature(staging, self.trusted_keys, required=self.require_signature)

    def _open(self, folder: Path) -> Bundle:
        return Bundle.open(folder, self.device_spec, self.trusted_keys, self.require_signature)

    def _verifies(self, folder: Path) -> bool:
        try:
            self._open(folder)
            return True
        except BundleError:
            return False

    def _entry(self, bid: str, active: bool) -> InstalledBundle:
        path = self.bundles_dir / bid
        try:
            created = read_manifest(path).get("created_at")
        except BundleError:
            created = None
        return InstalledBundle(bid, path, created if isinstance(created, str) else None, active, (path / MANIFEST).is_file())

    def _write_pointer(self, active: str | None, previous: list[str], newest_version: int) -> None:
        # Not edge.atomic.atomic_file: that picks a random temporary name and replaces at once,
        # while the store needs the fixed name '.current.tmp' (a killed install's leftover that
        # _clean removes) and the test phases 'pointer-written' / 'pointer-replaced' between the
        # fsynced write and the replace. Same rule otherwise: write, fsync, replace, fsync_dir.
        tmp = self.root / f".{POINTER}.tmp"
        data = json.dumps({"format": STORE_FORMAT, "version": STORE_VERSION, "active": active, "previous": previous,
                           "newest_version": newest_version}, indent=1)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            write_all(fd, data.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        _phase("pointer-written")
        os.replace(tmp, self.root / POINTER)
        _phase("pointer-replaced")
        fsync_dir(self.root)

    def _discard(self, folder: Path) -> None:
        # Renamed first, so a crash mid-delete leaves a '.trash-' folder, never a half bundle under a real id.
        trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=self.bundles_dir))
        os.rename(folder, trash / "b")
        shutil.rmtree(trash, ignore_errors=True)

    def _clean(self) -> None:
        """Remove leftovers and bundles the pointer no longer names. Call with the lock held."""
        active, previous = _read_pointer(self.root)
        keep = ({active} if active else set()) | set(previous)
        (self.root / f".{POINTER}.tmp").unlink(missing_ok=True)
        for child in self.bundles_dir.iterdir():
            if child.name in keep:
                continue
            if child.name.startswith("."):
                shutil.rmtree(child, ignore_errors=True)
            elif child.is_dir() and not child.is_symlink():
                self._discard(child)
            else:
                child.unlink(missing_ok=True)

    @contextmanager
    def _locked(self, wait: bool = True) -> Iterator[bool]:
        """Hold the store's lock; yields False (without waiting) when ``wait`` is False and another process holds it."""
        path = self.root / ".lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            if not wait:  # a read-only store can still be read
                yield False
                return
            raise BundleError(f"{path}: cannot open the store's lock ({exc})") from None
        try:
            deadline = time.monotonic() + self.lock_timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                    if not wait:
                        yield False
                        return
                    if time.monotonic() > deadline:
                        raise BundleError(
                            f"{self.root}: another process has been installing for over {self.lock_timeout_s:.0f} s; try again later"
                        ) from None
                    time.sleep(0.05)
            yield True
        finally:
            os.close(fd)  # releases the lock
