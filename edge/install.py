"""Installing bundles on the device: verified first, switched atomically, rolled back on failure.

A bundle store is a folder::

    root/
      current                JSON pointer: {"active": ID, "previous": [ID, ...]}, newest first
      .lock                  held (flock) while installing, rolling back or cleaning up
      bundles/ID/            installed bundles; each passed Bundle.open and a smoke query
      bundles/.staging-XXXX  an install in progress, or one a killed process left behind
      bundles/.trash-XXXX    a bundle on its way out

``ID`` is ``<created_at as YYYYmmddTHHMMSSZ>-<first 12 hex digits of sha256(manifest.json)>``.
The manifest carries every file's sha256, so the id names the content: the same bundle
installed twice gets the same id.

**The pointer is a regular file, not a symlink.** It is written to ``root/.current.tmp``,
fsynced, moved over ``root/current`` with :func:`os.replace` and the folder is fsynced, so a
crash at any instant leaves either the old pointer or the new one. A file rather than a
symlink because (1) one atomic write records both the active bundle and the rollback chain,
which a link plus a second file could not keep consistent across a crash; (2) the pointer
holds an id checked against a strict pattern, never a path, so a damaged or forged pointer
cannot send the runtime outside ``bundles/``; (3) it works on storage without symlinks (the
vfat/exFAT cards and sticks some TVs keep app data on).

An install unpacks into ``bundles/.staging-XXXX`` (never anywhere else), verifies with
:meth:`edge.bundle.Bundle.open`, runs :func:`smoke_query`, renames the staging folder to
``bundles/ID``, and only then replaces the pointer. Until that replace, the active bundle is
untouched; after it, the new bundle is complete on disk. Leftovers of a killed install are
removed the next time a store is opened.
"""

from __future__ import annotations

import errno
import fcntl
import importlib.util
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Sequence

import numpy as np

from edge.contract.inputs import interest_feed
from edge.backends import BACKENDS, load_model
from edge.bundle import MANIFEST, MAX_MANIFEST_BYTES, Bundle, read_manifest, sha256_file
from edge.context import Context
from edge.errors import BackendError, BundleError
from edge.features.spec import FeatureSpec
from edge.signing import MAX_SIGNATURE_BYTES, SIGNATURE, TrustedKeys

__all__ = ["BundleStore", "InstalledBundle", "InstallLimits", "resolve_bundle", "smoke_query", "unpack_archive", "copy_bundle_folder"]

POINTER = "current"
BUNDLES = "bundles"
STORE_FORMAT = "edgerec-store"
STORE_VERSION = 1
_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,79}")
_CHUNK = 1 << 20
# tar headers (512 B each, a PAX record may add two) plus end-of-archive padding
_TAR_OVERHEAD_PER_MEMBER = 4 * 512
_TAR_OVERHEAD = 20 * 512

#: Test hook, None in production: called with the name of each install phase just reached
#: ("unpacked", "verified", "renamed", "pointer-written", "pointer-replaced", "switched") so a
#: fault test can kill the process exactly there (tests/test_install_faults.py).
_phase_hook: Callable[[str], None] | None = None


def _phase(name: str) -> None:
    if _phase_hook is not None:
        _phase_hook(name)


@dataclass(frozen=True)
class InstallLimits:
    """Bounds on what an install may write; anything larger is refused before it is unpacked.

    :param max_total_bytes: sum of the sizes the manifest declares (default 2 GiB).
    :param max_member_bytes: largest single file (default 2 GiB). Every member must also be
        exactly the size the manifest declares for it.
    :param max_members: files in the bundle, manifest included (default 10,000).
    """

    max_total_bytes: int = 2 * 1024**3
    max_member_bytes: int = 2 * 1024**3
    max_members: int = 10_000


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


def smoke_query(bundle: Bundle, backends: Sequence[str] = BACKENDS, threads: int = 1) -> dict[str, list[str]]:
    """Load the ``interest`` and ``fusion`` models and run each once on plausible inputs of
    the bundle's shapes, then score a few catalogue rows with the user vector.

    Every backend in ``backends`` that has a file in the bundle and whose runtime is installed
    on this device must load and answer with finite vectors of the bundle's embedding size;
    a backend whose runtime is absent is skipped, but each model needs at least one.

    :param backends: backend names in the device's order (e.g. ``("onnx", "tflite")``).
    :param threads: intra-op threads for each backend.
    :returns: model name -> backends that answered.
    :raises BundleError: naming the model, backend and what went wrong.
    """
    dim, length = bundle.embedding_dim, bundle.history_len
    n = len(bundle.items)
    if n == 0:
        raise BundleError(f"{bundle.root}: the catalogue is empty; nothing could be recommended")
    ctx = Context(hour=20, weekday=4).vector()
    if int(bundle.manifest["context_dim"]) != ctx.size:
        raise BundleError(
            f"{bundle.root}: bundle expects context_dim {bundle.manifest['context_dim']}, this edgerec encodes {ctx.size}; "
            "install a bundle built for this edgerec version"
        )
    # A plausible history: the first few catalogue items.
    real = min(n, length, 4)
    inputs = {
        "interest": interest_feed(bundle.item_embeddings(np.arange(real)), [np.arange(real)], ctx[None], length),
        "fusion": {"features": np.zeros((1, bundle.feature_spec.item_dim), np.float32)},
    }
    answered: dict[str, list[str]] = {}
    user = None
    for name, feed in inputs.items():
        paths = bundle.model_paths(name)
        input_names = bundle.manifest["models"][name]["inputs"]
        answered[name] = []
        for backend in backends:
            if backend not in paths or not _runtime_installed(backend):
                continue
            where = f"{bundle.root}: model '{name}' on {backend} ({paths[backend].name})"
            try:
                out = load_model({backend: paths[backend]}, [backend], threads, input_names=input_names).run(feed)
            except BackendError as exc:
                raise BundleError(f"{where} fails the smoke query: {exc}") from None
            vec = np.asarray(out, dtype=np.float32).reshape(-1)
            if vec.size != dim:
                raise BundleError(f"{where} returned {vec.size} values, expected embedding_dim {dim}")
            if not np.all(np.isfinite(vec)):
                raise BundleError(f"{where} returned non-finite values on a plausible input")
            answered[name].append(backend)
            if name == "interest" and user is None:
                user = vec
        if not answered[name]:
            raise BundleError(
                f"{bundle.root}: no backend on this device can run model '{name}' "
                f"(bundle has {sorted(paths)}, device order {list(backends)}); install onnxruntime or ai-edge-litert"
            )
    # The last row too: proves the memory map spans the file, not only its first pages.
    rows = np.unique(np.r_[np.arange(min(n, 8)), n - 1])
    scores = bundle.item_embeddings(rows) @ user
    if not np.all(np.isfinite(scores)):
        raise BundleError(f"{bundle.root}: catalogue scores are not finite (check catalog/scales.npy)")
    return answered


def _runtime_installed(backend: str) -> bool:
    modules = {"onnx": ("onnxruntime",), "tflite": ("ai_edge_litert", "tflite_runtime")}.get(backend, ())
    return any(importlib.util.find_spec(m) is not None for m in modules)


# ---------------------------------------------------------------------------------------------
# Unpacking: an archive or a folder into a fresh staging folder, refusing anything unexpected.


def _check_rel(rel: str, where: str) -> str:
    """``rel`` if it is a plain relative POSIX path, else BundleError."""
    if not isinstance(rel, str) or not rel or "\x00" in rel or "\\" in rel or len(rel) > 1024:
        raise BundleError(f"{where}: refused path {rel!r} (empty, too long, or holds NUL or backslash)")
    if rel.startswith("/"):
        raise BundleError(f"{where}: refused absolute path {rel!r}; bundle paths are relative")
    parts = rel.split("/")
    if ".." in parts:
        raise BundleError(f"{where}: refused path {rel!r} with a '..' component (would escape the bundle folder)")
    if any(p in ("", ".") or len(p) > 255 for p in parts):
        raise BundleError(f"{where}: refused path {rel!r} (empty or '.' component, or a name over 255 characters)")
    return rel


def _plan(manifest: dict[str, Any], limits: InstallLimits, where: str) -> dict[str, int]:
    """The files to expect, with their declared sizes, after checking names and limits."""
    plan: dict[str, int] = {}
    for rel, meta in manifest["files"].items():
        _check_rel(rel, where)
        if rel == MANIFEST:
            raise BundleError(f"{where}: the manifest lists itself")
        size = meta.get("size") if isinstance(meta, dict) else None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BundleError(f"{where}: manifest entry for {rel} needs a non-negative integer 'size'")
        if size > limits.max_member_bytes:
            raise BundleError(f"{where}: {rel} declares {size} bytes, over the per-file limit of {limits.max_member_bytes}")
        plan[rel] = size
    if len(plan) + 1 > limits.max_members:
        raise BundleError(f"{where}: {len(plan) + 1} files, over the limit of {limits.max_members}")
    total = sum(plan.values())
    if total > limits.max_total_bytes:
        raise BundleError(f"{where}: the bundle declares {total} bytes in all, over the limit of {limits.max_total_bytes}")
    dirs = {"/".join(rel.split("/")[:i]) for rel in plan for i in range(1, rel.count("/") + 1)}
    clash = sorted(dirs & (set(plan) | {MANIFEST}))
    if clash:
        raise BundleError(f"{where}: {clash[0]} is listed both as a file and as a folder")
    return plan


def _check_space(staging: Path, need: int, where: str) -> None:
    free = shutil.disk_usage(staging).free
    if need > free:
        raise BundleError(f"{where}: needs {need} bytes, {free} free under {staging.parent}; free space or remove old bundles")


def _write_member(staging: Path, rel: str, src: IO[bytes], size: int, where: str) -> None:
    """Copy exactly ``size`` bytes of ``src`` to ``staging/rel``, creating a new regular file."""
    target = staging.joinpath(*rel.split("/"))
    # Names are already checked; this is a second guard so no bug can write outside staging.
    if os.path.commonpath([os.path.abspath(target), os.path.abspath(staging)]) != os.path.abspath(staging):
        raise BundleError(f"{where}: refused path {rel!r} (outside the staging folder)")
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(target, flags, 0o644)
    try:
        left = size
        while left > 0:
            block = src.read(min(_CHUNK, left))
            if not block:
                raise BundleError(f"{where}: {rel} ends after {size - left} of its {size} bytes; the source is truncated")
            _write_all(fd, block)
            left -= len(block)
        if src.read(1):
            raise BundleError(f"{where}: {rel} is larger than the {size} bytes the manifest declares")
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def unpack_archive(archive: str | Path, staging: str | Path, limits: InstallLimits = InstallLimits()) -> dict[str, Any]:
    """Unpack a bundle ``.tar`` (as :func:`export.bundle.pack_archive` writes it) into the
    empty folder ``staging``, writing nowhere else. Does not check hashes: follow with
    :meth:`Bundle.open`.

    The first member must be ``manifest.json`` (at most :data:`edge.bundle.MAX_MANIFEST_BYTES`);
    its declared sizes are checked against ``limits`` before any data is unpacked. Refused:
    absolute paths, ``..`` components, symlinks, hardlinks, devices, fifos, directories and
    every other non-regular member, members not listed in the manifest (except one
    ``manifest.sig`` of at most :data:`edge.signing.MAX_SIGNATURE_BYTES`), duplicates, members
    whose size differs from the declared one, too many members, listed files that are missing,
    compressed or truncated archives. Member modes and owners are ignored (files are 0644).

    :returns: the manifest.
    :raises BundleError: naming the archive, the member and the reason.
    """
    archive, staging = Path(archive), Path(staging)
    where = str(archive)
    size = archive.stat().st_size
    ceiling = limits.max_total_bytes + MAX_MANIFEST_BYTES + limits.max_members * _TAR_OVERHEAD_PER_MEMBER + _TAR_OVERHEAD
    if size > ceiling:
        # tarfile reads PAX headers into memory; bounding the file bounds them too.
        raise BundleError(f"{where}: archive is {size} bytes, more than the limits allow ({ceiling})")
    try:
        tar = tarfile.open(archive, mode="r:")
    except (tarfile.TarError, EOFError) as exc:
        raise BundleError(f"{where}: not an uncompressed tar archive ({exc}); ship the <bundle>.tar that export writes") from None
    with tar:
        try:
            member = tar.next()
            if member is None:
                raise BundleError(f"{where}: the archive is empty")
            if member.name != MANIFEST:
                raise BundleError(f"{where}: first member is {member.name!r}; a bundle archive starts with {MANIFEST}")
            _check_member_type(member, where)
            if member.size > MAX_MANIFEST_BYTES:
                raise BundleError(f"{where}: {MANIFEST} is {member.size} bytes, over the {MAX_MANIFEST_BYTES} byte limit")
            _write_member(staging, MANIFEST, tar.extractfile(member), member.size, where)  # type: ignore[arg-type]
            manifest = read_manifest(staging)
            plan = _plan(manifest, limits, where)
            _check_space(staging, sum(plan.values()), where)
            seen: set[str] = set()
            count = 1
            while (member := tar.next()) is not None:
                count += 1
                if count > limits.max_members:
                    raise BundleError(f"{where}: more than {limits.max_members} members")
                rel = _check_rel(member.name, where)
                _check_member_type(member, where)
                if rel == MANIFEST or rel in seen:
                    raise BundleError(f"{where}: member {rel!r} appears twice")
                if rel == SIGNATURE and rel not in plan:
                    # The one unlisted member: the detached signature over manifest.json (edge.signing).
                    if member.size > MAX_SIGNATURE_BYTES:
                        raise BundleError(f"{where}: member {rel!r} is {member.size} bytes, over the {MAX_SIGNATURE_BYTES} byte limit")
                elif rel not in plan:
                    raise BundleError(f"{where}: member {rel!r} is not listed in the manifest")
                elif member.size != plan[rel]:
                    raise BundleError(f"{where}: member {rel!r} is {member.size} bytes, the manifest declares {plan[rel]}")
                seen.add(rel)
                _write_member(staging, rel, tar.extractfile(member), member.size, where)  # type: ignore[arg-type]
        except (tarfile.TarError, EOFError) as exc:
            raise BundleError(f"{where}: the archive is truncated or corrupt ({exc}); copy it again") from None
    missing = sorted(set(plan) - seen)
    if missing:
        raise BundleError(f"{where}: archive lacks {len(missing)} listed file(s), e.g. {missing[0]}; it is truncated or incomplete")
    return manifest


def _check_member_type(member: tarfile.TarInfo, where: str) -> None:
    if member.issym() or member.islnk():
        kind = "a symbolic link" if member.issym() else "a hard link"
        raise BundleError(f"{where}: member {member.name!r} is {kind} (to {member.linkname!r}); bundles hold only regular files")
    if not member.isreg() or member.issparse():
        kind = "a directory" if member.isdir() else "a device or fifo" if member.isdev() else "a sparse file" if member.issparse() else "not a regular file"
        raise BundleError(f"{where}: member {member.name!r} is {kind}; bundles hold only regular files")


def copy_bundle_folder(folder: str | Path, staging: str | Path, limits: InstallLimits = InstallLimits()) -> dict[str, Any]:
    """Copy ``manifest.json`` and every file it lists from a bundle folder into the empty
    folder ``staging`` (and ``manifest.sig`` when present); files not listed are ignored.
    Same limits as :func:`unpack_archive`;
    a listed file that is a link or not a regular file is refused.

    :returns: the manifest.
    :raises BundleError: naming the folder, the file and the reason.
    """
    folder, staging = Path(folder), Path(staging)
    where = str(folder)

    def open_regular(rel: str) -> tuple[IO[bytes], int]:
        path = folder.joinpath(*rel.split("/"))
        try:
            st = path.lstat()
        except FileNotFoundError:
            raise BundleError(f"{where}: {rel} is missing") from None
        if not stat.S_ISREG(st.st_mode):
            raise BundleError(f"{where}: {rel} is a link or not a regular file; bundles hold only regular files")
        return open(path, "rb"), st.st_size

    fh, size = open_regular(MANIFEST)
    with fh:
        if size > MAX_MANIFEST_BYTES:
            raise BundleError(f"{where}: {MANIFEST} is {size} bytes, over the {MAX_MANIFEST_BYTES} byte limit")
        _write_member(staging, MANIFEST, fh, size, where)
    manifest = read_manifest(staging)
    plan = _plan(manifest, limits, where)
    _check_space(staging, sum(plan.values()), where)
    for rel, declared in plan.items():
        fh, size = open_regular(rel)
        with fh:
            if size != declared:
                raise BundleError(f"{where}: {rel} is {size} bytes, the manifest declares {declared}")
            _write_member(staging, rel, fh, size, where)
    if SIGNATURE not in plan and os.path.lexists(folder / SIGNATURE):
        fh, size = open_regular(SIGNATURE)
        with fh:
            if size > MAX_SIGNATURE_BYTES:
                raise BundleError(f"{where}: {SIGNATURE} is {size} bytes, over the {MAX_SIGNATURE_BYTES} byte limit")
            _write_member(staging, SIGNATURE, fh, size, where)
    return manifest


# ---------------------------------------------------------------------------------------------
# The store.


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    # Files were fsynced as written; their directory entries need their folders fsynced too.
    for dirpath, _dirs, _files in os.walk(root, topdown=False):
        _fsync_dir(Path(dirpath))


def _read_pointer(root: Path) -> tuple[str | None, list[str]]:
    path = root / POINTER
    if not path.exists():
        return None, []
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
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: deeply nested JSON
        raise BundleError(
            f"{path}: store pointer is unreadable ({exc}); delete it and install a bundle again with `edgerec bundle install`"
        ) from None
    return active, previous


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
        self.trusted_keys, self.require_signature = trusted_keys, require_signature
        self.bundles_dir = self.root / BUNDLES
        if not self.bundles_dir.is_dir():
            if not create:
                raise BundleError(f"{self.root}: no bundle store here; install a bundle first with `edgerec bundle install SOURCE --store {self.root}`")
            try:
                self.bundles_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BundleError(f"{self.root}: cannot create the bundle store ({exc})") from None
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

    def install(self, source: str | Path) -> InstalledBundle:
        """Install a bundle from a ``.tar`` archive or a bundle folder and make it active.

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
            active, previous = _read_pointer(self.root)
            was = f"the active bundle {active} is unchanged" if active else "nothing is installed"
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.bundles_dir))
            try:
                os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide the bundle from app users; it holds nothing secret
                try:
                    if source.is_dir():
                        copy_bundle_folder(source, staging, self.limits)
                    elif source.is_file():
                        unpack_archive(source, staging, self.limits)
                    else:
                        raise BundleError(f"{source}: no such bundle archive or folder")
                    _fsync_tree(staging)
                    _phase("unpacked")
                    bundle = self._open(staging)
                    smoke_query(bundle, self.backends, self.threads)
                    new = bundle_id(staging, bundle.manifest)
                    del bundle  # drop the memory map before the folder is renamed
                    _phase("verified")
                except BundleError as exc:
                    # Name the source, not the staging folder that is about to vanish.
                    raise BundleError(f"not installed: {str(exc).replace(str(staging), str(source))}; {was}") from None
                except OSError as exc:
                    raise BundleError(f"{source}: not installed, cannot unpack into {self.bundles_dir} ({exc}); {was}") from None
                target = self.bundles_dir / new
                if target.exists() and self._verifies(target):
                    # The same content is installed already (active, or kept for rollback): reuse it,
                    # so a crash here can never leave a bundle the pointer names half-deleted.
                    shutil.rmtree(staging)
                    if new == active:
                        return self._entry(new, True)
                else:
                    if target.exists():
                        self._discard(target)  # a damaged earlier copy
                    os.rename(staging, target)
                    _fsync_dir(self.bundles_dir)
                    _phase("renamed")
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            chain = [i for i in ([active] if active else []) + previous if i != new][: self.keep]
            self._write_pointer(new, chain)
            try:
                self._open(self.current())
            except BundleError as exc:
                # The pointer before the switch named the last good bundle: put it back.
                self._write_pointer(active, previous)
                self._clean()
                raise BundleError(f"{source}: bundle {new} failed to load after the switch ({exc}); rolled back, {was}") from None
            _phase("switched")
            self._clean()
            return self._entry(new, True)

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

    def _rollback_locked(self) -> InstalledBundle:
        active, previous = _read_pointer(self.root)
        if active is None:
            raise BundleError(f"{self.root}: nothing is installed, so there is nothing to roll back")
        if not previous:
            raise BundleError(f"{self.root}: no previous bundle to roll back to (active: {active}); install an older bundle instead")
        reasons = []
        for i, pid in enumerate(previous):
            try:
                smoke_query(self._open(self.bundles_dir / pid), self.backends, self.threads)
            except BundleError as exc:
                reasons.append(f"{pid}: {exc}")
                continue
            self._write_pointer(pid, previous[i + 1 :])
            self._clean()
            return self._entry(pid, True)
        raise BundleError(f"{self.root}: no previous bundle verifies ({'; '.join(reasons)}); {active} stays active")

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

    def _write_pointer(self, active: str | None, previous: list[str]) -> None:
        tmp = self.root / f".{POINTER}.tmp"
        data = json.dumps({"format": STORE_FORMAT, "version": STORE_VERSION, "active": active, "previous": previous}, indent=1)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            _write_all(fd, data.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        _phase("pointer-written")
        os.replace(tmp, self.root / POINTER)
        _phase("pointer-replaced")
        _fsync_dir(self.root)

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
