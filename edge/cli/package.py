"""``edgerec package``: registered here; the archive is built by :func:`edge.package.build_package`."""

from __future__ import annotations

import argparse

from edge.cli.common import DEVICE_PROFILE_HELP, device_profile_arg


def _cmd_package(args: argparse.Namespace) -> int:
    import tarfile
    from pathlib import Path

    from edge.package import build_package

    path = build_package(args.platform, args.bundle, args.device_profile, args.out, args.python_version, args.source, args.glibc)
    with tarfile.open(path) as tar:
        wheels = [m.name.rsplit("/", 1)[-1] for m in tar.getmembers() if m.name.endswith(".whl")]
    print(f"wrote {path}: {len(wheels)} wheels for {args.platform} (Python {args.python_version}), bundle, profile, install.sh")
    print("on the device: tar xf " + Path(path).name + " && sh edgerec-package/install.sh /opt/edgerec")
    return 0


def register(sub: "argparse._SubParsersAction") -> None:
    """Add ``package`` to ``sub``."""
    p = sub.add_parser(
        "package", help="build an offline install archive (wheels for a platform, bundle, device profile, install.sh)",
        description="Collect edgerec's wheel and the base install's wheels for a target platform (pip download "
                    "--only-binary; this step needs the package index), the bundle and a device profile into one tar "
                    "with an install.sh that installs with pip --no-index: the device needs no network.")
    p.add_argument("--platform", required=True, help="wheel platform tag, e.g. manylinux2014_aarch64 or manylinux2014_x86_64")
    p.add_argument("--bundle", required=True, help="bundle folder")
    device_profile_arg(p, required=True, help=DEVICE_PROFILE_HELP + ": copied into the archive as profile.toml")
    p.add_argument("--out", required=True, help="archive to write (.tar)")
    p.add_argument("--python-version", default="3.11", help="the device's Python (default 3.11)")
    p.add_argument("--glibc", default="2.31", help="the device's glibc version: newest manylinux wheels allowed (default 2.31)")
    p.add_argument("--source", help="edgerec source tree (default: this checkout)")
    p.set_defaults(func=_cmd_package)
