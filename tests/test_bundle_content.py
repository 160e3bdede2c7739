"""A bundle whose files verify but whose content cannot rank is refused at open (so at install,
before the store switches to it), not by a later ``recommend`` (issue 14 item 7)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.bundle import MANIFEST, Bundle, sha256_file
from edge.bundle.catalogue import check_priors
from edge.errors import BundleError


def _replace(src: Path, dst: Path, rel: str, write) -> Path:
    """A copy of ``src`` with catalogue file ``rel`` rewritten by ``write(path)`` and the
    manifest's hash and size updated to match (an unsigned bundle that verifies)."""
    shutil.copytree(src, dst)
    write(dst / rel)
    m = json.loads((dst / MANIFEST).read_text())
    m["files"][rel] = {"sha256": sha256_file(dst / rel), "size": (dst / rel).stat().st_size}
    (dst / MANIFEST).write_text(json.dumps(m))
    return dst


def _catalog(bundle: Path) -> dict:
    return json.loads((bundle / MANIFEST).read_text())["catalog"]


@pytest.mark.parametrize("value", [np.nan, np.inf, 0.0, -0.5])
def test_a_bad_scale_is_refused(device_bundle, tmp_path, value):
    rel = _catalog(device_bundle.bundle)["scales"]

    def write(path):
        s = np.load(path)
        s[len(s) // 2] = value
        np.save(path, s)

    bad = _replace(device_bundle.bundle, tmp_path / "b", rel, write)
    with pytest.raises(BundleError, match="scale of row"):
        Bundle.open(bad)


@pytest.mark.parametrize("edit", [
    lambda p, n: p["global"].append([n, 0.1]),                          # a row past the catalogue
    lambda p, n: p["global"].append([-1, 0.1]),
    lambda p, n: p["by_hour"]["3"].insert(0, [0, float("nan")]),        # a non-finite weight
    lambda p, n: p["by_device_hour"]["tv"].__setitem__("5", [[1.5, 0.2]]),
    lambda p, n: p["by_device_hour"].__setitem__("speaker", [[0, 1]]),  # wrong shape
    lambda p, n: p.__setitem__("global", {"0": 1}),
    lambda p, n: p["global"].append(["0", 0.1]),
])
def test_bad_priors_are_refused(device_bundle, tmp_path, edit):
    rel = _catalog(device_bundle.bundle)["priors"]
    n = len(Bundle.open(device_bundle.bundle).items)

    def write(path):
        p = json.loads(path.read_text())
        edit(p, n)
        path.write_text(json.dumps(p))

    bad = _replace(device_bundle.bundle, tmp_path / "b", rel, write)
    with pytest.raises(BundleError, match="priors"):
        Bundle.open(bad)


def test_the_shipped_priors_pass():
    check_priors({"global": [[0, 0.5], [2, 0.25]], "by_hour": {"0": []}, "by_device_hour": {"tv": {"1": [[1, 1.0]]}}}, 3)
    check_priors({}, 0)
