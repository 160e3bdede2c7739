"""The bundle archive: packing a verified folder into one ``.tar`` (:func:`pack_archive`), and
unpacking such an archive, or copying a bundle folder, into a fresh staging folder,
refusing anything unexpected before it is written: unsafe paths, links and other non-regular
members, unlisted or duplicate members, sizes other than declared, and anything over the
:class:`InstallLimits`. Hashes are checked afterwards, by :meth:`edge.bundle.Bundle.open`."""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Sequence

from edge.bundle.format import MANIFEST, MAX_MANIFEST_BYTES, MAX_SIGNATURE_BYTES, SIGNATURE, check_relpath
from edge.bundle.manifest import read_manifest
from edge.atomic import fsync_dir
from edge.errors import BundleError

__all__ = ["InstallLimits", "pack_archive", "unpack_archive", "copy_bundle_folder", "write_all"]

_CHUNK = 1 << 20
# tar headers (512 B each, a PAX record may add two) plus end-of-archive padding
_TAR_OVERHEAD_PER_MEMBER = 4 * 512
_TAR_OVERHEAD = 20 * 512


@dataclass(frozen=True)
class InstallLimits:
    """Bounds on what an install may write; anything larger is refused before it is unpacked.

    :param max_total_bytes: sum of the sizes the manifest declares (default 2 GiB).
    :param max_member_bytes: largest single file (default 2 GiB). Every member must also be
        exactly the size the manifest declares for it.
    :param max_members: files in the bundle, manifest included (default 10,000).
    :param max_manifest_bytes: the manifest, which is parsed whole (default 16 MiB; never more
        than :data:`edge.bundle.format.MAX_MANIFEST_BYTES`).
    """

    max_total_bytes: int = 2 * 1024**3
    max_member_bytes: int = 2 * 1024**3
    max_members: int = 10_000
    max_manifest_bytes: int = 16 * 1024**2

    @classmethod
    def for_bundle_mb(cls, bundle_mb: float) -> "InstallLimits":
        """Limits for a device whose profile budgets ``bundle_mb`` for a whole bundle."""
        total = int(bundle_mb * 1024**2)
        return cls(max_total_bytes=total, max_member_bytes=total, max_manifest_bytes=min(cls.max_manifest_bytes, max(total // 4, 1 << 20)))


#: A PAX or GNU long-name header is read whole into memory by tarfile: bounded before it is.
MAX_EXTENDED_HEADER_BYTES = 64 * 1024
_EXTENDED = {b"x": "PAX", b"g": "PAX global", b"L": "GNU long name", b"K": "GNU long link"}


def _octal(field: bytes, where: str) -> int:
    if field[:1] and field[0] & 0x80:  # base-256 (GNU), for sizes over 8 GiB
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise BundleError(f"{where}: a tar header has an unreadable size {field!r}; the archive is corrupt") from None


def _checksum_ok(block: bytes) -> bool:
    text = block[148:156].split(b"\0", 1)[0].strip()
    try:
        stored = int(text, 8)
    except ValueError:
        return False
    return stored == sum(block[:148]) + 8 * 32 + sum(block[156:])


def scan_headers(fh: IO[bytes], limits: InstallLimits, where: str) -> int:
    """Walk a tar file's headers without reading member data (seeking past it), before
    :mod:`tarfile` reads any: an extended header (PAX, GNU long name) over
    :data:`MAX_EXTENDED_HEADER_BYTES` or more members than ``limits`` allow is refused here,
    so no crafted header is ever held in memory. Returns the number of members.

    :raises BundleError: naming the archive and the header.
    """
    members = 0
    pax_size: int | None = None
    while True:
        block = fh.read(512)
        if len(block) < 512 or block == bytes(512) or not _checksum_ok(block):
            return members  # the end, or not a tar header: tarfile reports what is wrong itself
        size = _octal(block[124:136], where)
        kind = block[156:157]
        if kind in _EXTENDED:
            if size > MAX_EXTENDED_HEADER_BYTES:
                raise BundleError(f"{where}: a {_EXTENDED[kind]} header of {size} bytes (at most {MAX_EXTENDED_HEADER_BYTES}); "
                                  "not an archive edgerec writes")
            data = fh.read(size)
            fh.seek((-size) % 512, os.SEEK_CUR)
            if kind == b"x":  # its records may set the next member's size
                for record in data.split(b"\n"):
                    key, _, value = record.partition(b"=")
                    if key.endswith(b" size") and value.isdigit():
                        pax_size = int(value)
            continue
        members += 1
        if members > limits.max_members + 1:  # + manifest.sig
            raise BundleError(f"{where}: {members} members or more, over the limit of {limits.max_members}")
        size = pax_size if pax_size is not None else size
        pax_size = None
        if size > limits.max_member_bytes + limits.max_manifest_bytes:
            raise BundleError(f"{where}: a member of {size} bytes, over the per-file limit of {limits.max_member_bytes}")
        fh.seek(size + (-size) % 512, os.SEEK_CUR)



def _plan(manifest: dict[str, Any], limits: InstallLimits, where: str) -> dict[str, int]:
    """The files to expect, with their declared sizes, after checking names and limits."""
    plan: dict[str, int] = {}
    for rel, meta in manifest["files"].items():
        check_relpath(rel, where)
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
            write_all(fd, block)
            left -= len(block)
        if src.read(1):
            raise BundleError(f"{where}: {rel} is larger than the {size} bytes the manifest declares")
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the file descriptor ``fd`` (``os.write`` may write less)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def unpack_archive(archive: str | Path, staging: str | Path, limits: InstallLimits = InstallLimits(),
                   check_manifest: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Unpack a bundle ``.tar`` (as :func:`pack_archive` writes it) into the
    empty folder ``staging``, writing nowhere else. Does not check hashes: follow with
    :meth:`edge.bundle.Bundle.open`.

    The first member must be ``manifest.json`` (at most :data:`edge.bundle.format.MAX_MANIFEST_BYTES`);
    its declared sizes are checked against ``limits`` before any data is unpacked. Refused:
    absolute paths, ``..`` components, symlinks, hardlinks, devices, fifos, directories and
    every other non-regular member, members not listed in the manifest (except one
    ``manifest.sig`` of at most :data:`edge.bundle.format.MAX_SIGNATURE_BYTES`), duplicates, members
    whose size differs from the declared one, too many members, listed files that are missing,
    compressed or truncated archives. Member modes and owners are ignored (files are 0644).
    Every header is bounded first (:func:`scan_headers`).

    :param check_manifest: called with ``staging`` once the manifest, and ``manifest.sig`` when
        it is the second member (as :func:`pack_archive` writes it), are unpacked and before
        anything else is: the signature check, so nothing large from an untrusted archive is
        written or parsed.
    :returns: the manifest.
    :raises BundleError: naming the archive, the member and the reason.
    """
    try:
        return _unpack(Path(archive), Path(staging), limits, check_manifest)
    except MemoryError:
        raise BundleError(f"{archive}: not enough memory to unpack it on this device; the archive is refused") from None


def _unpack(archive: Path, staging: Path, limits: InstallLimits, check_manifest: Callable[[Path], None] | None) -> dict[str, Any]:
    where = str(archive)
    size = archive.stat().st_size
    max_manifest = min(limits.max_manifest_bytes, MAX_MANIFEST_BYTES)
    ceiling = limits.max_total_bytes + max_manifest + limits.max_members * _TAR_OVERHEAD_PER_MEMBER + _TAR_OVERHEAD
    if size > ceiling:
        raise BundleError(f"{where}: archive is {size} bytes, more than the limits allow ({ceiling})")
    with open(archive, "rb") as raw:
        scan_headers(raw, limits, where)
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
            if member.size > max_manifest:
                raise BundleError(f"{where}: {MANIFEST} is {member.size} bytes, over the {max_manifest} byte limit")
            _write_member(staging, MANIFEST, tar.extractfile(member), member.size, where)  # type: ignore[arg-type]
            seen: set[str] = set()
            count = 1
            member = tar.next()
            if member is not None and member.name == SIGNATURE:
                _check_member_type(member, where)
                if member.size > MAX_SIGNATURE_BYTES:
                    raise BundleError(f"{where}: member {SIGNATURE!r} is {member.size} bytes, over the {MAX_SIGNATURE_BYTES} byte limit")
                _write_member(staging, SIGNATURE, tar.extractfile(member), member.size, where)  # type: ignore[arg-type]
                seen.add(SIGNATURE)
                count += 1
                member = tar.next()
            if check_manifest is not None:
                check_manifest(staging)  # the signature, before the manifest's content is trusted
            manifest = read_manifest(staging)
            plan = _plan(manifest, limits, where)
            _check_space(staging, sum(plan.values()), where)
            while member is not None:
                count += 1
                if count > limits.max_members:
                    raise BundleError(f"{where}: more than {limits.max_members} members")
                rel = check_relpath(member.name, where)
                _check_member_type(member, where)
                if rel == MANIFEST or rel in seen:
                    raise BundleError(f"{where}: member {rel!r} appears twice")
                if rel == SIGNATURE and rel not in plan:
                    # The one unlisted member: the detached signature over manifest.json (edge.bundle.signing).
                    if member.size > MAX_SIGNATURE_BYTES:
                        raise BundleError(f"{where}: member {rel!r} is {member.size} bytes, over the {MAX_SIGNATURE_BYTES} byte limit")
                elif rel not in plan:
                    raise BundleError(f"{where}: member {rel!r} is not listed in the manifest")
                elif member.size != plan[rel]:
                    raise BundleError(f"{where}: member {rel!r} is {member.size} bytes, the manifest declares {plan[rel]}")
                seen.add(rel)
                _write_member(staging, rel, tar.extractfile(member), member.size, where)  # type: ignore[arg-type]
                member = tar.next()
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


def pack_archive(folder: str | Path, dest: str | Path | None = None) -> Path:
    """Pack a verified bundle folder into one ``.tar`` file for shipping.

    Members are the manifest, its signature ``manifest.sig`` when the folder holds one (see
    :mod:`edge.bundle.signing`), then every file the manifest lists, as plain regular files with relative
    paths (no directories, links or owners), so the device's extractor can refuse anything else.
    Written to a temporary name and renamed, so a half-written archive never has the final name.

    :returns: the archive path (default: ``<folder>.tar`` beside the folder).
    """
    folder = Path(folder)
    from edge.bundle.reader import Bundle  # lazy: reading a bundle is not needed to unpack one

    manifest = Bundle.open(folder).manifest
    dest = Path(dest) if dest is not None else folder.with_name(folder.name + ".tar")
    signature = [SIGNATURE] if (folder / SIGNATURE).is_file() and SIGNATURE not in manifest["files"] else []
    return write_tar(dest, [(rel, folder / rel) for rel in [MANIFEST, *signature, *sorted(manifest["files"])]])


def write_tar(dest: str | Path, members: Sequence[tuple[str, Path]]) -> Path:
    """Write ``(name, file)`` pairs, in order, as plain regular files of an uncompressed tar
    (no directories, links or owners: what the device's extractor accepts), through a temporary
    name, fsync and rename, so a half-written archive never has the final name.

    :returns: ``dest``.
    """
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.tmp")
    mtime = int(time.time())
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for rel, path in members:
                info = tarfile.TarInfo(rel)
                info.size = path.stat().st_size
                info.mtime, info.mode, info.uid, info.gid = mtime, 0o644, 0, 0
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)
    return dest
