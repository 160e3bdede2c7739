"""Who may talk to the service: the private socket folder, the token and its file, the
loopback-only HTTP address and the ``Host`` check against DNS rebinding.

The socket sits in a folder of mode 0700 owned by the service's user; every request carries a
token (``secrets.token_urlsafe(32)``, kept in a mode-0600 file, compared with
:func:`hmac.compare_digest`), and it is checked before anything else the request asks.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import secrets
import stat
import tempfile
from pathlib import Path

from edge.atomic import atomic_file, fsync_dir
from edge.errors import AuthError, EdgeError

__all__ = ["authorize", "check_token", "default_socket_path", "host_allowed", "load_or_create_token", "loopback_address",
           "private_folder"]

_TOKEN_CHARS = re.compile(r"[\x21-\x7e]{16,512}")


def default_socket_path() -> Path:
    """``$XDG_RUNTIME_DIR/edgerec/edgerec.sock``, or ``/tmp/edgerec-<uid>/edgerec.sock``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(runtime) / "edgerec" if runtime else Path(tempfile.gettempdir()) / f"edgerec-{os.getuid()}"
    return folder / "edgerec.sock"


def private_folder(folder: Path) -> None:
    """Create ``folder`` with mode 0700, or check that it is this user's and private.

    :raises EdgeError: it cannot be created, is not a folder, is another user's or is open
        to others.
    """
    if not os.path.lexists(folder):
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(folder, 0o700)
            os.chmod(folder, 0o700)  # the umask may have removed owner bits; the mode must be exact
        except FileExistsError:
            pass  # created meanwhile by someone else: the checks below decide
        except OSError as exc:
            raise EdgeError(f"cannot create the service folder {folder} ({exc}); choose another --socket path") from None
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode):
        raise EdgeError(f"{folder} is not a folder (a file or a symlink); the socket needs a private folder: choose another --socket path")
    if st.st_uid != os.getuid():
        raise EdgeError(f"{folder} belongs to uid {st.st_uid}, not to this user (uid {os.getuid()}); choose another --socket path")
    if st.st_mode & 0o077:
        raise EdgeError(
            f"{folder} is open to other users (mode {stat.S_IMODE(st.st_mode):04o}); the socket must sit in a private folder: "
            f"run `chmod 700 {folder}`, or pass a --socket path whose folder does not exist yet (it is created with mode 0700)"
        )


def check_token(token: object, where: str) -> str:
    """``token`` when it is 16 to 512 printable ASCII characters without spaces.

    :raises EdgeError: otherwise, naming ``where`` it came from.
    """
    if not isinstance(token, str) or not _TOKEN_CHARS.fullmatch(token):
        raise EdgeError(f"{where}: a token must be 16 to 512 printable ASCII characters without spaces; "
                        "delete the token file to have a new one generated")
    return token


def _write_new_token(path: Path) -> str | None:
    """Write a new token to ``path`` unless a file is there by then.

    The token is written and fsynced under a staging name with :func:`edge.atomic.atomic_file`
    (mode 0600 from creation, so no other user can ever read it), then hard-linked to ``path``:
    unlike a rename, a link never replaces a token another start wrote meanwhile, so of two
    services starting at once the second reads the first one's token.

    :returns: the token, or None when another start wrote the file first.
    :raises EdgeError: the folder is not writable.
    """
    token = secrets.token_urlsafe(32)
    staging = path.with_name(f".{path.name}.new-{secrets.token_hex(4)}")
    try:
        with atomic_file(staging, "wb", file_mode=0o600) as fh:
            fh.write((token + "\n").encode("ascii"))
        try:
            os.link(staging, path)
        except FileExistsError:
            return None
        fsync_dir(path.parent)
        return token
    except OSError as exc:
        raise EdgeError(f"cannot write the token file {path} ({exc}); choose another --token-file") from None
    finally:
        try:
            os.unlink(staging)
        except FileNotFoundError:
            pass


def load_or_create_token(path: str | Path) -> tuple[str, bool]:
    """The token in ``path``; when the file is missing, a new ``secrets.token_urlsafe(32)``
    is written there with mode 0600 (its folder is created with mode 0700 when missing).

    :returns: ``(token, created)``.
    :raises EdgeError: the file is not a regular file of this user, is readable by others,
        or holds no valid token.
    """
    path = Path(path)
    if not os.path.lexists(path.parent):
        private_folder(path.parent)
    if not os.path.lexists(path):
        token = _write_new_token(path)
        if token is not None:
            return token, True
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
        raise EdgeError(f"{path}: the token file must be a regular file of this user (not a link or another user's file)")
    if st.st_mode & 0o077:
        raise EdgeError(f"{path}: the token file is readable by other users (mode {stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {path}`")
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgeError(f"cannot read the token file {path} ({exc})") from None
    return check_token(text, str(path)), False


def authorize(token: object, expected: str) -> None:
    """Check a request's token against the service's, in constant time.

    :raises AuthError: no token, or a wrong one; the message reveals nothing else.
    """
    if not isinstance(token, str) or not token:
        raise AuthError("no token; send the service's token (the \"token\" field on the socket, "
                        "\"Authorization: Bearer <token>\" over HTTP), read from its token file")
    if not hmac.compare_digest(token.encode("utf-8", "surrogatepass"), expected.encode("ascii")):
        raise AuthError("wrong token; read the current one from the service's token file")


def loopback_address(host: str) -> str:
    """``host`` as a loopback IP address literal (``localhost`` means 127.0.0.1).

    :raises EdgeError: any other address: the HTTP endpoint must not be reachable off the device.
    """
    if host == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise EdgeError(f"HTTP host {host!r} is not an IP address; the service listens on a loopback address only, such as 127.0.0.1") from None
    if not ip.is_loopback:
        raise EdgeError(f"refusing to serve HTTP on {host}: not a loopback address; only 127.0.0.1 (or ::1) is allowed, "
                        "so nothing off the device can reach a profile's history")
    return str(ip)


def host_allowed(host: str | None, http_host: str | None) -> bool:
    """Whether an HTTP ``Host`` header names this loopback endpoint. A web page must not reach
    the service through a name it controls (DNS rebinding); HTTP/1.0 clients send none."""
    if host is None:
        return True
    name = host.lower()
    name = name.rsplit(":", 1)[0] if name.count(":") == 1 or name.startswith("[") and "]:" in name else name
    return name.strip("[]") in {"127.0.0.1", "localhost", "::1", http_host or ""}
