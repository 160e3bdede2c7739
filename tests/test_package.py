"""``edgerec package``: the archive installs into a fresh venv with no index and recommends."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from edge.package import build_package, platform_tags


def test_manylinux2014_also_allows_newer_glibc_tags_up_to_the_device():
    tags = platform_tags("manylinux2014_aarch64", "2.28")
    assert tags[0] == "manylinux2014_aarch64" and tags[-1] == "manylinux_2_28_aarch64" and "manylinux_2_29_aarch64" not in tags
    assert platform_tags("win_amd64") == ["win_amd64"]


def _index_reachable(tmp: Path) -> bool:
    out = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(tmp),
                          "sqlite-fts4"], capture_output=True, text=True, timeout=120)
    return out.returncode == 0


@pytest.mark.slow
def test_package_installs_offline_in_a_fresh_venv_and_recommends(device_bundle, tmp_path):
    # Building the edgerec wheel uses this environment's build tools (pyproject: setuptools>=68).
    setuptools = pytest.importorskip("setuptools", reason="building the edgerec wheel needs setuptools")
    if int(setuptools.__version__.split(".")[0]) < 68:
        pytest.skip(f"setuptools {setuptools.__version__} here; building the edgerec wheel needs >= 68 (pip install -U setuptools)")
    if not _index_reachable(tmp_path / "probe"):
        pytest.skip("the package index is unreachable: `edgerec package` downloads wheels with pip")
    tag = "manylinux2014_x86_64" if os.uname().machine == "x86_64" else "manylinux2014_aarch64"
    pkg = build_package(tag, device_bundle.bundle, "x86-dev", tmp_path / "pkg.tar")
    with tarfile.open(pkg) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    root = tmp_path / "x" / "edgerec-package"
    assert any(p.name.startswith("onnxruntime-") for p in (root / "wheels").iterdir())
    # No index and no pip configuration: everything must come from the archive.
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PYTHON": getattr(sys, "_base_executable", sys.executable)}
    subprocess.run(["sh", str(root / "install.sh"), str(tmp_path / "prefix")], check=True, env=env, capture_output=True, timeout=600)
    edgerec = tmp_path / "prefix" / "venv" / "bin" / "edgerec"
    prefix = tmp_path / "prefix"
    item = tiny_build_first_item(prefix / "bundle")
    subprocess.run([str(edgerec), "record", "--bundle", str(prefix / "bundle"), "--db", str(tmp_path / "h.db"), "--profile", "p1",
                    "--item-id", item, "--kind", "complete"], check=True, capture_output=True)
    out = subprocess.run([str(edgerec), "recommend", "--bundle", str(prefix / "bundle"), "--db", str(tmp_path / "h.db"),
                          "--profile", "p1", "--json"], check=True, capture_output=True, text=True).stdout
    assert '"item_id"' in out
    assert (prefix / "profile.toml").read_text() == (Path(__file__).resolve().parents[1] / "edge" / "device_profiles" / "x86-dev.toml").read_text()


def tiny_build_first_item(bundle: Path) -> str:
    from edge.bundle import Bundle

    return Bundle.open(bundle).items.item_ids[0]
