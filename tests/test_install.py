"""Bundle installs: verified and smoke-tested before an atomic switch, refused without a trace
when anything is unsafe or broken, rolled back on demand, and safe against a killed process."""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

import edge.bundle.archive
import edge.bundle.store
from edge.bundle import MANIFEST, Bundle, sha256_file
from edge.cli import main
from edge.errors import BundleError
from edge.bundle import BundleStore, InstallLimits, resolve_bundle, smoke_query
from edge.bundle.archive import pack_archive
from edge.bundle.signing import TrustedKeys
from edge.profiles import PROFILE_DIR

# ------------------------------------------------------------------------------------------------
# Fixtures: two real bundles (same files, different manifests, so different ids) as folders and archives.


def _edit_manifest(folder: Path, fn) -> None:
    m = json.loads((folder / MANIFEST).read_text())
    fn(m)
    (folder / MANIFEST).write_text(json.dumps(m))


def _variant(src: Path, dst: Path, created_at: str, version: int) -> Path:
    shutil.copytree(src, dst)
    _edit_manifest(dst, lambda m: m.update(created_at=created_at, bundle_version=version))
    pack_archive(dst)
    return dst


@pytest.fixture(scope="module")
def bundles(device_bundle, tmp_path_factory):
    """Folders ``a``, ``b``, ``c``: the tiny bundle as three releases (creation times and signed
    versions 1, 2, 3), each with ``<name>.tar``."""
    root = tmp_path_factory.mktemp("variants")
    return {k: _variant(device_bundle.bundle, root / k, f"2030-01-0{i + 1}T00:00:00+00:00", i + 1) for i, k in enumerate("abc")}


def _tar_of(folder: Path) -> Path:
    return folder.with_name(folder.name + ".tar")


def _id(folder: Path) -> str:
    return edge.bundle.store.bundle_id(folder, json.loads((folder / MANIFEST).read_text()))


@pytest.fixture
def store(tmp_path, bundles):
    """A store nested in tmp_path with bundle ``a`` active."""
    s = BundleStore(tmp_path / "dev" / "store")
    s.install(_tar_of(bundles["a"]))
    return s


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")}


def _assert_untouched(store: BundleStore, active_id: str) -> None:
    """The old bundle is still active and loadable, and the refused install left nothing behind."""
    assert store.current().name == active_id
    smoke_query(Bundle.open(store.current()))
    leftovers = sorted(p.name for p in store.bundles_dir.iterdir())
    assert leftovers == [active_id], leftovers
    assert not (store.root / ".current.tmp").exists()


# ------------------------------------------------------------------------------------------------
# Archives built member by member, to forge the hostile ones.


def _members(folder: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """The members pack_archive writes: manifest first, then every listed file."""
    manifest = json.loads((folder / MANIFEST).read_text())
    out = []
    for rel in [MANIFEST, *sorted(manifest["files"])]:
        data = (folder / rel).read_bytes()
        info = tarfile.TarInfo(rel)
        info.size, info.mode = len(data), 0o644
        out.append((info, data))
    return out


def _regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, None


def _write_tar(dest: Path, members) -> Path:
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return dest


def _replace(members, name: str, data: bytes, size: int | None = None):
    out = []
    for info, old in members:
        if info.name == name:
            info = tarfile.TarInfo(name)
            info.size = len(data) if size is None else size
            old = data
        out.append((info, old))
    return out


def _flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


# Each case: a function of (members, tmp_path) -> members, and words the error must contain.
HOSTILE = {
    "flipped byte": (lambda m, t: [(i, _flip_last_byte(d) if i.name.endswith("embeddings_int8.npy") else d) for i, d in m],
                     "fails its sha256 check"),
    "dot-dot path": (lambda m, t: m + [_regular("../evil", b"x")], "'..' component"),
    "dot-dot inside": (lambda m, t: m + [_regular("models/../../../evil", b"x")], "'..' component"),
    "absolute path": (lambda m, t: m + [_regular(str(t / "abs-evil"), b"x")], "absolute path"),
    "symlink member": (lambda m, t: m + [_special("catalog/link", tarfile.SYMTYPE, "/etc/passwd")], "symbolic link"),
    "symlink in place of a listed file": (
        lambda m, t: [(_special(i.name, tarfile.SYMTYPE, "/etc/passwd")[0], None) if i.name == "catalog/priors.json" else (i, d) for i, d in m],
        "symbolic link"),
    "hardlink": (lambda m, t: m + [_special("catalog/hard", tarfile.LNKTYPE, "manifest.json")], "hard link"),
    "directory": (lambda m, t: m + [_special("models", tarfile.DIRTYPE)], "a directory"),
    "fifo": (lambda m, t: m + [_special("catalog/pipe", tarfile.FIFOTYPE)], "device or fifo"),
    "char device": (lambda m, t: m + [_special("catalog/null", tarfile.CHRTYPE)], "device or fifo"),
    "unlisted member": (lambda m, t: m + [_regular("catalog/extra.bin", b"hello")], "not listed in the manifest"),
    "duplicate member": (lambda m, t: m + [m[-1]], "appears twice"),
    "second manifest": (lambda m, t: m + [m[0]], "appears twice"),
    "oversize member": (lambda m, t: _replace(m, "catalog/priors.json", b"{}" + b" " * 100_000), "the manifest declares"),
    "undersize member": (lambda m, t: _replace(m, "catalog/priors.json", b"{}"), "the manifest declares"),
    "missing member": (lambda m, t: m[:-1], "lacks 1 listed file"),
    "manifest not first": (lambda m, t: m[1:] + m[:1], "starts with manifest.json"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused_and_the_active_bundle_stays(case, store, bundles, tmp_path):
    forge, words = HOSTILE[case]
    active = store.current().name
    evil = _write_tar(tmp_path / "evil.tar", forge(_members(bundles["b"]), tmp_path))
    before = _snapshot(tmp_path)
    with pytest.raises(BundleError, match=words) as err:
        store.install(evil)
    assert "not installed" in str(err.value) and f"{active} is unchanged" in str(err.value)
    assert ".staging-" not in str(err.value)  # the message names the archive, not a vanished folder
    _assert_untouched(store, active)
    after = _snapshot(tmp_path)
    outside = {p for p in set(after) ^ set(before) if not p.startswith(str(store.root))}
    assert not outside, f"written outside the store: {outside}"
    assert not (tmp_path / "abs-evil").exists() and not (store.bundles_dir / "evil").exists()


def _cut_points(archive: Path) -> dict[str, int]:
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    last = members[-1]
    return {"in the manifest": members[0].offset_data + 10, "in a header": members[2].offset + 100,
            "half way": archive.stat().st_size // 2, "in the last file": last.offset_data + last.size // 2}


@pytest.mark.parametrize("where", ["in the manifest", "in a header", "half way", "in the last file"])
def test_truncated_archive_is_refused(where, store, bundles, tmp_path):
    archive = _tar_of(bundles["b"])
    (tmp_path / "cut.tar").write_bytes(archive.read_bytes()[: _cut_points(archive)[where]])
    active = store.current().name
    with pytest.raises(BundleError, match="truncated|corrupt"):
        store.install(tmp_path / "cut.tar")
    _assert_untouched(store, active)


def test_flipped_byte_in_the_archive_file_is_refused(store, bundles, tmp_path):
    data = bytearray(_tar_of(bundles["b"]).read_bytes())
    # Somewhere in the middle: file data (sha256 mismatch) or a header (bad checksum, so the
    # archive ends early and listed files are missing); both must be refused.
    for offset in (len(data) // 2, len(data) // 3, 1024 + 7):
        bad = bytearray(data)
        bad[offset] ^= 0xFF
        (tmp_path / "bad.tar").write_bytes(bytes(bad))
        with pytest.raises(BundleError):
            store.install(tmp_path / "bad.tar")
    _assert_untouched(store, _id(bundles["a"]))


@pytest.mark.parametrize("payload", [b"not a tar at all" * 100, b""])
def test_non_archive_is_refused(payload, store, tmp_path):
    (tmp_path / "junk.tar").write_bytes(payload)
    with pytest.raises(BundleError, match="not an uncompressed tar|empty"):
        store.install(tmp_path / "junk.tar")
    _assert_untouched(store, store.current().name)


def test_compressed_archive_is_refused(store, bundles, tmp_path):
    import gzip

    (tmp_path / "b.tar").write_bytes(gzip.compress(_tar_of(bundles["b"]).read_bytes()))
    with pytest.raises(BundleError, match="not an uncompressed tar"):
        store.install(tmp_path / "b.tar")


def test_manifest_over_the_limit_is_refused_before_it_is_read(store, bundles, monkeypatch):
    monkeypatch.setattr(edge.bundle.archive, "MAX_MANIFEST_BYTES", 100)
    with pytest.raises(BundleError, match="manifest.json is .* bytes, over the 100 byte limit"):
        store.install(_tar_of(bundles["b"]))
    _assert_untouched(store, _id(bundles["a"]))


@pytest.mark.parametrize(
    "limits, words",
    [
        (InstallLimits(max_total_bytes=10_000), "declares .* bytes in all, over the limit of 10000"),
        (InstallLimits(max_member_bytes=1_000), "over the per-file limit of 1000"),
        (InstallLimits(max_members=3), "over the limit of 3"),
    ],
)
def test_limits_refuse_before_unpacking(limits, words, tmp_path, bundles):
    s = BundleStore(tmp_path / "store", limits=limits)
    with pytest.raises(BundleError, match=words):
        s.install(_tar_of(bundles["a"]))
    assert list(s.bundles_dir.iterdir()) == []
    with pytest.raises(BundleError, match="no active bundle"):
        s.current()


def test_too_many_members_is_refused_while_streaming(store, bundles, tmp_path):
    s = BundleStore(store.root, limits=InstallLimits(max_members=len(_members(bundles["b"]))))
    evil = _write_tar(tmp_path / "many.tar", _members(bundles["b"]) + [_regular(f"x{i}", b"") for i in range(5)])
    with pytest.raises(BundleError, match="over the limit of"):
        s.install(evil)
    _assert_untouched(store, _id(bundles["a"]))


def test_manifest_listing_unsafe_paths_is_refused(store, bundles, tmp_path):
    src = tmp_path / "b"
    shutil.copytree(bundles["b"], src)
    _edit_manifest(src, lambda m: m["files"].update({"../outside": {"sha256": "0" * 64, "size": 1}}))
    with pytest.raises(BundleError, match="'..' component"):
        store.install(src)
    _assert_untouched(store, _id(bundles["a"]))


# ------------------------------------------------------------------------------------------------
# A bundle whose hashes are right but whose model is broken: only the smoke query sees it.


@pytest.fixture
def broken_model(bundles, tmp_path):
    src = tmp_path / "broken"
    shutil.copytree(bundles["b"], src)
    model = src / "models" / "interest.onnx"
    model.write_bytes(b"\x08\x07" + os.urandom(4000))
    _edit_manifest(src, lambda m: m["files"].update({"models/interest.onnx": {"sha256": sha256_file(model), "size": model.stat().st_size}}))
    Bundle.open(src)  # passes verification: the manifest agrees with the garbage
    return src


def test_model_that_fails_to_load_is_caught_by_the_smoke_query(store, bundles, broken_model):
    with pytest.raises(BundleError, match="model 'interest' on onnx .*fails the smoke query"):
        store.install(broken_model)
    _assert_untouched(store, _id(bundles["a"]))
    with pytest.raises(BundleError, match="smoke query"):
        store.install(pack_archive(broken_model))
    _assert_untouched(store, _id(bundles["a"]))


def test_smoke_query_runs_every_shipped_backend(device_bundle):
    answered = smoke_query(Bundle.open(device_bundle.bundle))
    assert set(answered) == {"interest", "fusion"}
    assert all(answered[m] and set(answered[m]) <= {"onnx", "tflite"} for m in answered)


# ------------------------------------------------------------------------------------------------
# The happy paths: archive, folder, switch, history, rollback, pruning.


def test_install_from_archive_and_from_folder_switches_the_pointer(tmp_path, bundles):
    s = BundleStore(tmp_path / "store")
    a = s.install(_tar_of(bundles["a"]))
    assert a.active and a.id == _id(bundles["a"]) and s.current() == s.bundles_dir / a.id
    b = s.install(bundles["b"])  # a folder
    assert s.current() == s.bundles_dir / b.id != s.bundles_dir / a.id
    Bundle.open(s.current())
    assert [(e.id, e.active, e.created_at) for e in s.history()] == [
        (b.id, True, "2030-01-02T00:00:00+00:00"), (a.id, False, "2030-01-01T00:00:00+00:00")]
    pointer = json.loads((s.root / "current").read_text())
    assert pointer["active"] == b.id and pointer["previous"] == [a.id]
    assert sorted(p.name for p in s.bundles_dir.iterdir()) == sorted([a.id, b.id])
    # The installed folder holds exactly the manifest and the files it lists.
    listed = set(json.loads((s.current() / MANIFEST).read_text())["files"]) | {MANIFEST}
    assert {p.relative_to(s.current()).as_posix() for p in s.current().rglob("*") if p.is_file()} == listed


def test_reinstalling_the_active_bundle_changes_nothing(store, bundles):
    before = (store.root / "current").read_bytes()
    assert store.install(bundles["a"]).id == _id(bundles["a"])
    assert (store.root / "current").read_bytes() == before
    _assert_untouched(store, _id(bundles["a"]))


def test_rollback_switches_back_and_forgets_the_bad_bundle(store, bundles):
    a, b = _id(bundles["a"]), store.install(_tar_of(bundles["b"])).id
    back = store.rollback()
    assert back.id == a and store.current().name == a
    assert [e.id for e in store.history()] == [a]
    assert not (store.bundles_dir / b).exists()
    with pytest.raises(BundleError, match="no previous bundle"):
        store.rollback()
    assert store.current().name == a


def test_rollback_skips_a_previous_bundle_that_no_longer_verifies(store, bundles):
    a = _id(bundles["a"])
    b = store.install(bundles["b"]).id
    store.install(bundles["c"])
    damaged = store.bundles_dir / b / "catalog" / "priors.json"
    damaged.write_text(damaged.read_text() + " ")
    assert store.rollback().id == a
    assert [e.id for e in store.history()] == [a]


def test_only_keep_previous_bundles_are_kept(tmp_path, bundles):
    s = BundleStore(tmp_path / "store", keep=1)
    ids = [s.install(bundles[k]).id for k in "abc"]
    assert [e.id for e in s.history()] == [ids[2], ids[1]]
    assert sorted(p.name for p in s.bundles_dir.iterdir()) == sorted(ids[1:])


def test_reinstalling_a_kept_bundle_reuses_it(store, bundles):
    a, b = _id(bundles["a"]), store.install(bundles["b"]).id
    with pytest.raises(BundleError, match="bundle version 1 is older than version 2"):
        store.install(_tar_of(bundles["a"]))  # a replay of the older release
    assert store.install(_tar_of(bundles["a"]), allow_downgrade=True).id == a
    assert [e.id for e in store.history()] == [a, b]
    smoke_query(Bundle.open(store.current()))


def test_failure_to_load_after_the_switch_rolls_back(store, bundles, monkeypatch):
    a = _id(bundles["a"])
    real_open = Bundle.open.__func__

    def fail_outside_staging(cls, root, device_spec=None, *trust):
        root = Path(root)
        if root.parent == store.bundles_dir and root.name not in (a,) and not root.name.startswith("."):  # the switched-to bundle
            raise BundleError(f"{root}: simulated failure to load")
        return real_open(cls, root, device_spec, *trust)

    monkeypatch.setattr(Bundle, "open", classmethod(fail_outside_staging))
    with pytest.raises(BundleError, match="failed to load after the switch .*rolled back"):
        store.install(bundles["b"])
    monkeypatch.undo()
    _assert_untouched(store, a)


def test_open_active_rolls_back_when_the_active_bundle_is_damaged(store, bundles):
    a = _id(bundles["a"])
    b = store.install(bundles["b"]).id
    emb = store.current() / "catalog" / "embeddings_int8.npy"
    emb.write_bytes(_flip_last_byte(emb.read_bytes()))
    with pytest.raises(BundleError, match="sha256"):
        store.open_active(rollback_on_failure=False)
    assert store.current().name == b
    bundle = store.open_active()
    assert bundle.root == store.bundles_dir / a == store.current()
    assert not (store.bundles_dir / b).exists()


def test_leftovers_of_a_crashed_install_are_cleaned_on_open(store, bundles):
    a = _id(bundles["a"])
    staging = store.bundles_dir / ".staging-dead1234"
    (staging / "models").mkdir(parents=True)
    (staging / "models" / "interest.onnx").write_bytes(b"half")
    (store.bundles_dir / ".trash-x" / "b").mkdir(parents=True)
    shutil.copytree(bundles["b"], store.bundles_dir / "20300102T000000Z-0123456789ab")  # renamed in, never pointed to
    (store.root / ".current.tmp").write_text("{half")
    BundleStore(store.root)
    _assert_untouched(store, a)


def test_cleanup_waits_for_a_running_install(store, bundles):
    import fcntl

    staging = store.bundles_dir / ".staging-busy"
    staging.mkdir()
    fd = os.open(store.root / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as another process installing would
        BundleStore(store.root)
        assert staging.exists()  # not ours to remove while someone else installs
    finally:
        os.close(fd)
    BundleStore(store.root)
    assert not staging.exists()


def test_a_store_root_opens_like_a_bundle_folder(store, bundles, tmp_path):
    from edge.recommender import Recommender

    assert resolve_bundle(store.root) == store.current()
    assert resolve_bundle(bundles["a"]) == bundles["a"]
    rec = Recommender.open(store.root, tmp_path / "history.db")
    try:
        assert rec.bundle.root == store.current()
    finally:
        rec.close()
    with pytest.raises(BundleError, match="neither a bundle folder"):
        resolve_bundle(tmp_path)


def test_a_missing_store_is_an_error_when_not_creating(tmp_path):
    with pytest.raises(BundleError, match="no bundle store here"):
        BundleStore(tmp_path / "nowhere", create=False)
    assert not (tmp_path / "nowhere").exists()


def test_cli_install_list_rollback(tmp_path, bundles, capsys):
    root = str(tmp_path / "store")
    assert main(["bundle", "install", str(_tar_of(bundles["a"])), "--store", root]) == 0
    assert main(["bundle", "install", str(bundles["b"]), "--store", root]) == 0
    out = capsys.readouterr().out
    assert f"installed: {_id(bundles['b'])}" in out and f"rollback: {_id(bundles['a'])}" in out
    assert main(["bundle", "list", "--store", root]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"active    {_id(bundles['b'])}") and lines[1].startswith(f"previous  {_id(bundles['a'])}")
    assert main(["bundle", "rollback", "--store", root]) == 0
    assert f"rolled back: {_id(bundles['a'])}" in capsys.readouterr().out
    assert main(["bundle", "rollback", "--store", root]) == 1
    assert "no previous bundle" in capsys.readouterr().err
    assert main(["bundle", "install", str(tmp_path / "nope.tar"), "--store", root]) == 1
    assert "no such bundle archive or folder" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# Killed mid-install: the active bundle is always the old or the new one, complete.

_CHILD = """
import sys, time
import onnxruntime, ai_edge_litert.interpreter  # loaded before 'ready' so the kill window is the install itself
from edge.bundle.store import BundleStore
store = BundleStore(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
t = time.perf_counter()
store.install(sys.argv[2])
print(f"done {time.perf_counter() - t}", flush=True)
"""


def _run_child(store_root: Path, source: Path, kill_after_s: float | None) -> float | None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(store_root), str(source)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "ready"
        child.stdin.write("go\n")
        child.stdin.flush()
        if kill_after_s is None:
            line = child.stdout.readline().split()
            assert child.wait(60) == 0 and line[0] == "done"
            return float(line[1])
        time.sleep(kill_after_s)
        child.send_signal(signal.SIGKILL)
        child.wait(60)
        return None
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_sigkill_at_random_points_never_leaves_a_broken_active_bundle(tmp_path, bundles):
    rng = random.Random(6)
    root = tmp_path / "store"
    BundleStore(root).install(bundles["a"])
    duration = _run_child(root, _tar_of(bundles["b"]), None)  # one uncut install, to aim the kills
    sources = [bundles["c"], _tar_of(bundles["a"]), _tar_of(bundles["b"]), bundles["a"], _tar_of(bundles["c"])]
    interrupted = 0
    for n in range(15):
        old = BundleStore(root).current().name
        source = sources[n % len(sources)]
        _run_child(root, source, rng.uniform(0, duration * 1.3))
        interrupted += any(p.name.startswith(".staging-") for p in (root / "bundles").iterdir())
        s = BundleStore(root)  # cleans what the killed process left
        now = s.current().name
        assert now in (old, _id(source if source.is_dir() else source.with_suffix(""))), (n, old, now)
        smoke_query(Bundle.open(s.current()))
        names = {p.name for p in s.bundles_dir.iterdir()}
        assert not any(name.startswith(".") for name in names)
        assert names == {e.id for e in s.history()}, (names, s.history())
        assert all(e.present for e in s.history())
        assert not (root / ".current.tmp").exists()
    assert interrupted, "no kill landed inside an install; the test proved nothing"


# ------------------------------------------------------------------------------------------------
# Bounded install (issue 14 item 4): headers bounded before tarfile reads them, the signature
# checked before anything large is unpacked, the device profile's size budget applied.

READ_CRAFTED = r"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[3]) << 20, resource.RLIM_INFINITY))
from edge.bundle.archive import unpack_archive
from edge.errors import BundleError
try:
    unpack_archive(sys.argv[1], sys.argv[2])
    print("unpacked")
except BundleError as exc:
    print("BundleError:", exc)
"""


@pytest.mark.parametrize("kind", [b"x", b"L"])
def test_a_huge_extended_header_is_refused_within_the_speakers_memory(tmp_path, bundles, kind):
    """A PAX / GNU long-name header claiming 1.5 GiB (a sparse file: no disk is used) is refused
    by the header scan under an address-space limit of the speaker's memory, where tarfile alone
    would try to read it whole."""
    evil = tmp_path / "huge-header.tar"
    claimed = 1536 << 20
    header = bytearray(512)
    header[0:9] = b"././@Long"
    header[100:108] = b"0000644\0"
    header[124:136] = f"{claimed:011o}\0".encode()
    header[156:157] = kind
    header[257:263] = b"ustar\0"
    header[263:265] = b"00"
    header[148:156] = b" " * 8
    header[148:156] = f"{sum(header):06o}\0 ".encode()
    with open(evil, "wb") as fh:
        fh.write(bytes(header))
        fh.truncate(512 + claimed + 1024)
    (tmp_path / "staging").mkdir()
    speaker = 512  # MiB, speaker-a53's memory
    run = subprocess.run([sys.executable, "-c", READ_CRAFTED, str(evil), str(tmp_path / "staging"), str(speaker)], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OPENBLAS_NUM_THREADS": "1"},
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "BundleError:" in run.stdout and "header of 1610612736 bytes" in run.stdout, run.stdout
    assert list((tmp_path / "staging").iterdir()) == []


def test_an_unsigned_archive_is_refused_before_its_members_are_written(tmp_path, bundles, monkeypatch):
    from export.signing import generate_key

    key = generate_key(tmp_path / "k" / "pub")
    trust = tmp_path / "trust"
    trust.mkdir()
    shutil.copy(key.public_path, trust / key.public_path.name)
    written = []
    real = edge.bundle.archive._write_member
    monkeypatch.setattr(edge.bundle.archive, "_write_member", lambda staging, rel, *a: (written.append(rel), real(staging, rel, *a)))
    s = BundleStore(tmp_path / "store", trusted_keys=TrustedKeys.from_dir(trust), require_signature=True)
    with pytest.raises(BundleError, match="unsigned bundle refused"):
        s.install(_tar_of(bundles["b"]))
    assert written == [MANIFEST]


def test_the_cli_install_applies_the_device_profiles_bundle_budget(tmp_path, bundles, capsys):
    text = (PROFILE_DIR / "x86-dev.toml").read_text()
    tight = tmp_path / "tight.toml"
    tight.write_text(re.sub(r"(?m)^bundle_mb = .*$", "bundle_mb = 0.05", text))
    assert main(["bundle", "install", str(_tar_of(bundles["a"])), "--store", str(tmp_path / "s"), "--device-profile", str(tight)]) == 1
    assert "over the" in capsys.readouterr().err
    assert main(["bundle", "install", str(_tar_of(bundles["a"])), "--store", str(tmp_path / "s2"), "--device-profile", "x86-dev"]) == 0
