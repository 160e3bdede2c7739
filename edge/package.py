"""``edgerec package`` (parser in :mod:`edge.cli.package`): one archive to install edgerec, a
bundle and a device profile on a device with no network.

A host-side tool: it shells out to pip, which downloads wheels for the target platform from the
package index. Nothing on the recommend path imports this module or opens a socket.

The archive holds ``edgerec-package/``::

    wheels/        edgerec's wheel and every base dependency, built for --platform
    bundle/        the bundle folder
    profile.toml   the device profile
    install.sh     pip install --no-index --find-links wheels/ edgerec; copies bundle and profile
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from edge.errors import BundleError, EdgeError

INSTALL_SH = """#!/bin/sh
# Install edgerec, its bundle and its device profile from this folder, with no network.
#   sh install.sh [PREFIX]      (default /opt/edgerec; PYTHON picks the interpreter, default python3)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=${1:-/opt/edgerec}
PY=${PYTHON:-python3}
mkdir -p "$PREFIX"
"$PY" -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/python" -m pip install --no-index --find-links "$HERE/wheels" edgerec
rm -rf "$PREFIX/bundle"
cp -R "$HERE/bundle" "$PREFIX/bundle"
cp "$HERE/profile.toml" "$PREFIX/profile.toml"
"$PREFIX/venv/bin/edgerec" bundle verify "$PREFIX/bundle"
echo "installed: $PREFIX/venv/bin/edgerec, bundle $PREFIX/bundle, profile $PREFIX/profile.toml"
"""


#: Base dependencies with no wheel on the package index (pure Python, so one wheel fits all).
PURE_SDIST_ONLY = ("python_speech_features>=0.6",)


class PackageError(EdgeError):
    """Raised when the package cannot be assembled: no source tree, or pip failed (the message
    carries pip's last lines)."""


def _pip(args: list[str], what: str) -> None:
    out = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-8:]
        raise PackageError(f"{what} failed (pip exit {out.returncode}): " + " | ".join(tail))


def platform_tags(platform: str, glibc: str = "2.31") -> list[str]:
    """``platform`` plus every ``manylinux_2_N`` tag of its architecture up to ``glibc``.

    pip takes ``--platform manylinux2014_aarch64`` literally (glibc 2.17), but current
    onnxruntime and LiteRT wheels are tagged for glibc 2.27/2.28; a device with a newer glibc
    runs them, so they are allowed up to the device's glibc.
    """
    import re

    m = re.fullmatch(r"manylinux(?:2014|_2_\d+)_(\w+)", platform)
    if not m:
        return [platform]
    top = int(glibc.split(".")[1])
    return [platform] + [f"manylinux_2_{k}_{m.group(1)}" for k in range(17, top + 1) if f"manylinux_2_{k}_{m.group(1)}" != platform]


def build_package(platform: str, bundle: str | Path, profile: str | Path, out: str | Path,
                  python_version: str = "3.11", source: str | Path | None = None, glibc: str = "2.31") -> Path:
    """Write the offline install archive ``out`` (a tar file).

    :param platform: a wheel platform tag, e.g. ``manylinux2014_aarch64``.
    :param bundle: a bundle folder (verified before packing).
    :param profile: a shipped profile name or a ``.toml`` path.
    :param python_version: the device's Python, e.g. ``3.11``.
    :param glibc: the device's glibc (``ldd --version``); wheels needing a newer one are left out.
    :param source: the edgerec source tree (default: the checkout this module runs from).
    :raises PackageError: no source tree, or pip could not build or download a wheel.
    :raises BundleError: the bundle fails verification.
    :raises ProfileError: the profile is invalid.
    """
    from edge.bundle import Bundle
    from edge.profiles import load_profile

    root = Path(source) if source else Path(__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file():
        raise PackageError(f"{root}: not an edgerec source tree (no pyproject.toml); pass --source")
    prof = load_profile(profile)
    b = Bundle.open(bundle)
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="edgerec-package-") as tmp:
        pkg = Path(tmp) / "edgerec-package"
        wheels = pkg / "wheels"
        wheels.mkdir(parents=True)
        _pip(["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(root)], "building the edgerec wheel")
        own = sorted(wheels.glob("edgerec-*.whl"))
        if not own:
            raise PackageError(f"pip wheel wrote no edgerec wheel into {wheels}")
        # Pure-Python dependencies published only as sdists: built into wheels here (they run
        # anywhere), then found by the download below through --find-links.
        _pip(["wheel", "--no-deps", "-q", "-w", str(wheels), *PURE_SDIST_ONLY], "building pure-Python wheels")
        # The base install only: pip resolves edgerec's own requirements for the target.
        tags = [a for t in platform_tags(platform, glibc) for a in ("--platform", t)]
        _pip(["download", "-q", "--only-binary=:all:", *tags, "--python-version", python_version,
              "--implementation", "cp", "--find-links", str(wheels), "-d", str(wheels), str(own[0])], f"downloading wheels for {platform} (glibc <= {glibc})")
        try:
            shutil.copytree(b.root, pkg / "bundle")
        except OSError as exc:
            raise BundleError(f"{b.root}: cannot copy the bundle ({exc})") from None
        shutil.copyfile(prof.path, pkg / "profile.toml")
        (pkg / "install.sh").write_text(INSTALL_SH, encoding="utf-8")
        (pkg / "install.sh").chmod(0o755)
        out.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(out, "w") as tar:
            tar.add(pkg, arcname="edgerec-package")
    return out
