"""What a media path may be before anything decodes it: a regular file, or a folder of frame
images. A FIFO, a device or a socket could block a decoder forever (the service's one worker
with it), so they are refused up front."""

from __future__ import annotations

import stat
from pathlib import Path

from edge.errors import FeatureError

__all__ = ["check_media_path"]


def check_media_path(path: str | Path, folder_ok: bool = True) -> Path:
    """``path`` if it is a regular file (or, with ``folder_ok``, a folder); symbolic links are
    followed to what they name.

    :raises FeatureError: missing, unreadable, or a FIFO, device or socket.
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise FeatureError(f"{p}: no such file or folder") from None
    except OSError as exc:
        raise FeatureError(f"{p}: cannot read it ({exc.strerror or exc})") from None
    if stat.S_ISREG(mode) or (folder_ok and stat.S_ISDIR(mode)):
        return p
    what = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else \
        "a socket" if stat.S_ISSOCK(mode) else "a folder" if stat.S_ISDIR(mode) else "not a regular file"
    raise FeatureError(f"{p}: is {what}; pass a media file (reading a stream could wait forever)")
