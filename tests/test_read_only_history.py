"""A history the device cannot write (a read-only mount, a file owned by another user) still
gives recommendations from what it holds, and every write says why it failed (issue 14 item
10). File modes do not bind root, so as root the check runs as ``nobody`` through ``setpriv``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from edge.recommender import Recommender

ROOT = Path(__file__).resolve().parents[1]

CHECK = r"""
import json, sys
from edge.errors import HistoryError
from edge.recommender import Recommender

bundle, db = sys.argv[1], sys.argv[2]
out = {}
with Recommender.open(bundle, db) as rec:
    out["read_only"] = rec.history.read_only
    out["a"] = [r.item_id for r in rec.recommend("a", k=3)]
    out["guest"] = [r.item_id for r in rec.recommend("guest", k=3)]
    out["recent"] = [e.item_id for e in rec.recent("a", 5)]
    try:
        rec.record("a", rec.bundle.items[5].item_id, "play")
        out["record"] = "stored"
    except HistoryError as exc:
        out["record"] = str(exc)
print(json.dumps(out))
"""


def _as_reader(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file modes cannot be tested")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *argv]


def test_a_read_only_history_still_recommends_and_refuses_writes_clearly(device_bundle):
    # A world-readable scratch folder (pytest's tmp_path is private to its user).
    root = Path(tempfile.mkdtemp(prefix="edgerec-ro-"))
    try:
        os.chmod(root, 0o755)
        bundle = root / "bundle"
        shutil.copytree(device_bundle.bundle, bundle)
        for p in [bundle, *bundle.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        db = root / "history.db"
        with Recommender.open(bundle, db) as rec:
            items = [it.item_id for it in rec.bundle.items]
            rec.record("a", items[0], "complete")
            rec.record("a", items[1], "like")
        os.chmod(db, 0o444)
        os.chmod(root, 0o555)  # nor can a -wal or -shm be created beside it
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("EDGEREC_DEVICE_PROFILE", None)
        probe = subprocess.run(_as_reader([sys.executable, "-c", "import edge.recommender"]), capture_output=True, env=env, cwd="/", timeout=120)
        if probe.returncode != 0:
            pytest.skip("the unprivileged user cannot run this checkout's Python (its folders are private)")
        run = subprocess.run(_as_reader([sys.executable, "-c", CHECK, str(bundle), str(db)]), capture_output=True, text=True,
                             env=env, cwd="/", timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        got = json.loads(run.stdout.strip().splitlines()[-1])
        assert got["read_only"] and got["recent"] == [items[1], items[0]]
        assert len(got["a"]) == 3 and not {items[0], items[1]} & set(got["a"]), "the history is used: watched items are left out"
        assert len(got["guest"]) == 3
        assert "read-only" in got["record"]
    finally:
        os.chmod(root, 0o755)
        shutil.rmtree(root, ignore_errors=True)


def test_a_history_created_by_root_belongs_to_the_folders_owner(device_bundle):
    """A CLI run as root in the service user's folder must not leave a history that service
    cannot write (issue 14 item 6)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the case is a root CLI beside an unprivileged service")
    root = Path(tempfile.mkdtemp(prefix="edgerec-own-"))
    try:
        os.chmod(root, 0o755)
        folder = root / "service-home"
        folder.mkdir()
        os.chown(folder, 65534, 65534)
        db = folder / "history.db"
        with Recommender.open(device_bundle.bundle, db) as rec:  # as root
            rec.record("a", rec.bundle.items[0].item_id, "play")
        assert (db.stat().st_uid, db.stat().st_gid) == (65534, 65534)
        bundle = root / "bundle"
        shutil.copytree(device_bundle.bundle, bundle)
        for p in [bundle, *bundle.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        code = ("import sys\nfrom edge.recommender import Recommender\n"
                "with Recommender.open(sys.argv[1], sys.argv[2]) as rec:\n"
                "    rec.record('a', rec.bundle.items[1].item_id, 'play'); print(rec.history.count('a'))")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("EDGEREC_DEVICE_PROFILE", None)
        probe = subprocess.run(_as_reader([sys.executable, "-c", "import edge.recommender"]), capture_output=True, env=env, cwd="/", timeout=120)
        if probe.returncode != 0:
            pytest.skip("the unprivileged user cannot run this checkout's Python (its folders are private)")
        run = subprocess.run(_as_reader([sys.executable, "-c", code, str(bundle), str(db)]), capture_output=True, text=True, env=env, cwd="/", timeout=120)
        assert run.returncode == 0 and run.stdout.strip().endswith("2"), run.stderr[-2000:]
    finally:
        shutil.rmtree(root, ignore_errors=True)
