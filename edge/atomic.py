"""Atomic, durable file writes: the one rule every writer in edgerec follows.

A file is written to a temporary sibling, flushed and fsynced, renamed over the target with
:func:`os.replace`, and then its folder is fsynced so the rename itself survives a power cut.
A reader sees the old file or the new one, never a mix, and a failed write leaves no temporary.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


def fsync_dir(path: str | Path) -> None:
    """fsync a folder, so renames and new entries in it are durable (no-op where folders
    cannot be opened, e.g. on Windows)."""
    try:
        fd = os.open(str(path), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb", encoding: str | None = None, newline: str | None = None,
                file_mode: int | None = None) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; on a clean exit it replaces ``path``.

    :param mode: ``"wb"`` or ``"w"`` (text, with ``encoding``/``newline``).
    :param file_mode: permission bits for the new file (default: the umask's).
    :raises OSError: the folder is not writable or the disk is full; ``path`` is then untouched
        and no temporary is left.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if file_mode is not None:
            os.chmod(tmp, file_mode)
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write(path: str | Path, data: bytes | str, file_mode: int | None = None) -> Path:
    """Write ``data`` (bytes, or str as UTF-8) to ``path`` atomically and durably.

    :returns: ``path``.
    :raises OSError: as :func:`atomic_file`.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_file(path, "wb", file_mode=file_mode) as fh:
        fh.write(raw)
    return Path(path)
