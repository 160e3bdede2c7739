"""Power loss during a bundle install, at each phase: a child process installs (or rolls back)
and ``os._exit``s the moment :mod:`edge.bundle.store` reaches a named phase, skipping every
``finally`` and cleanup as a power cut would. The old bundle must still be active for a kill
before the pointer is replaced, the new one fully active for a kill after it; the next
:class:`BundleStore` open removes every leftover and the store installs again.

(tests/test_install.py kills at random instants; this file makes sure every phase is hit.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import edge.bundle.store
from edge.bundle import MANIFEST, Bundle
from edge.bundle import BundleStore, smoke_query
from edge.bundle.archive import pack_archive

ROOT = Path(__file__).resolve().parents[1]
KILLED = 77

# Exits with KILLED at the phase named in argv[3]; exit 0 means the phase was never reached.
CHILD = r"""
import os, sys
import edge.bundle.store
from edge.bundle.store import BundleStore

root, source, phase, op = sys.argv[1:5]
def hook(name):
    if name == phase:
        os._exit(77)  # no finally, no cleanup: as abrupt as a power cut for this process
edge.bundle.store._phase_hook = hook
store = BundleStore(root)
store.install(source) if op == "install" else store.rollback()
"""

#: phase -> whether the new bundle is active after a kill there.
INSTALL_PHASES = {
    "unpacked": False,
    "verified": False,
    "renamed": False,
    "pointer-written": False,
    "pointer-replaced": True,
    "switched": True,
}


@pytest.fixture(scope="module")
def bundles(device_bundle, tmp_path_factory):
    """Folders ``a`` and ``b`` (the tiny bundle under two creation times, so two ids), each with ``<name>.tar``."""
    root = tmp_path_factory.mktemp("fault-variants")
    out = {}
    for i, name in enumerate("ab"):
        dst = root / name
        shutil.copytree(device_bundle.bundle, dst)
        manifest = json.loads((dst / MANIFEST).read_text())
        manifest["created_at"] = f"2031-01-0{i + 1}T00:00:00+00:00"
        (dst / MANIFEST).write_text(json.dumps(manifest))
        pack_archive(dst)
        out[name] = dst
    return out


def _id(folder: Path) -> str:
    return edge.bundle.store.bundle_id(folder, json.loads((folder / MANIFEST).read_text()))


def _kill_at(root: Path, phase: str, op: str = "install", source: Path | None = None) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(root), str(source or ""), phase, op],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == KILLED, f"phase {phase!r} never reached (exit {proc.returncode}): {proc.stderr[-2000:]}"


def _assert_clean(store: BundleStore, active: str, previous: list[str]) -> None:
    """``active`` is the pointer's bundle and loads and answers; only the pointer's bundles remain."""
    assert store.current().name == active
    smoke_query(Bundle.open(store.current()))
    assert [e.id for e in store.history()] == [active, *previous]
    assert all(e.present for e in store.history())
    assert sorted(p.name for p in store.bundles_dir.iterdir()) == sorted([active, *previous])
    assert not (store.root / ".current.tmp").exists()


@pytest.mark.parametrize("phase", list(INSTALL_PHASES))
@pytest.mark.parametrize("form", ["archive", "folder"])
def test_kill_at_each_install_phase_leaves_one_complete_active_bundle(phase, form, bundles, tmp_path):
    root = tmp_path / "store"
    old = BundleStore(root).install(bundles["a"]).id
    new = _id(bundles["b"])
    source = bundles["b"].with_name("b.tar") if form == "archive" else bundles["b"]
    _kill_at(root, phase, source=source)

    # What the killed process left, before anything cleans it.
    names = {p.name for p in (root / "bundles").iterdir()}
    if phase in ("unpacked", "verified"):
        assert any(n.startswith(".staging-") for n in names), names
    if phase in ("renamed", "pointer-written", "pointer-replaced", "switched"):
        assert new in names
    assert (root / ".current.tmp").exists() == (phase == "pointer-written")
    # A reader that takes no lock and cleans nothing already sees a complete bundle.
    assert edge.bundle.store.resolve_bundle(root).name == (new if INSTALL_PHASES[phase] else old)

    store = BundleStore(root)  # the next open cleans up
    if INSTALL_PHASES[phase]:
        _assert_clean(store, new, [old])
    else:
        _assert_clean(store, old, [])
        # The store is usable: the interrupted install goes through now.
        assert store.install(source).id == new
        _assert_clean(store, new, [old])


@pytest.mark.parametrize("phase, back", [("pointer-written", False), ("pointer-replaced", True)])
def test_kill_during_rollback_leaves_one_complete_active_bundle(phase, back, bundles, tmp_path):
    root = tmp_path / "store"
    store = BundleStore(root)
    old = store.install(bundles["a"]).id
    new = store.install(bundles["b"]).id
    _kill_at(root, phase, op="rollback")
    store = BundleStore(root)
    if back:
        _assert_clean(store, old, [])
    else:
        _assert_clean(store, new, [old])
