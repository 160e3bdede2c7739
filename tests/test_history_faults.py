"""Disk full during history writes: a child process writes under ``RLIMIT_FSIZE`` (SIGXFSZ
ignored, so a write past the limit fails with EFBIG or comes up short, as on a full disk) and
prints each acknowledged id. Every failed write must be a :class:`HistoryError` saying the
disk is full, never a crash or a hang; raising the limit again ("space returns") lets the same
store write on. Afterwards this process, without the limit, finds ``PRAGMA integrity_check``
ok, every acknowledged event, no piece of a refused batch, and a store that writes. The last
test injects SQLite's own "database or disk is full" (SQLITE_FULL, as ENOSPC gives) in process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.errors import HistoryError
from edge.history import Event, HistoryStore

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_700_000_000.0

# Writes batches under a file-size limit until one fails, then a few more (each must fail
# cleanly), then lifts the limit and writes once more with the same store. Prints
# "ack <id> <item_id>" only after record_many() returned, "fail <message>" for each refusal.
CHILD = r"""
import resource, signal, sys
from edge.errors import HistoryError
from edge.history import Event, HistoryStore

db, limit, sizes, autocheckpoint = sys.argv[1], int(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")], int(sys.argv[4])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death: a full disk, not a crash
h = HistoryStore(db, max_events_per_profile=None)
h.add_profile("p")
if autocheckpoint:
    h.db.conn.execute(f"PRAGMA wal_autocheckpoint = {autocheckpoint}")  # so the database file grows, not only the WAL
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))

def batch(tag, size):
    items = [f"{tag}-{j}" for j in range(size)]
    try:
        ids = h.record_many([Event("p", item, "play", 1_700_000_000.0 + j, tags=("news", "x" * 60, "y" * 60)) for j, item in enumerate(items)])
    except HistoryError as exc:
        print("fail", str(exc).replace("\n", " "), flush=True)
        return False
    sys.stdout.write("".join(f"ack {i} {item}\n" for i, item in zip(ids, items)))
    sys.stdout.flush()
    return True

n, failures = 0, 0
while failures < 3:
    size = sizes[n % len(sizes)]
    failures += not batch(f"b{n}", size)
    n += 1
    if n > 10_000:
        print("never failed", flush=True)
        sys.exit(3)
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space returns
print("recovered" if batch("after", 50) else "still failing", flush=True)
"""


def _run_child(db: Path, limit: int, sizes: list[int], autocheckpoint: int = 0) -> tuple[dict[int, str], list[str], list[str]]:
    """Run CHILD; returns (acknowledged id -> item, failure messages, other lines)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "PYTHONDONTWRITEBYTECODE": "1"}
    # stdout is a pipe: the file-size limit does not apply to it.
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), str(limit), ",".join(map(str, sizes)), str(autocheckpoint)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
    )
    assert proc.returncode == 0, f"child died ({proc.returncode}): {proc.stderr[-3000:]}"
    acked, fails, other = {}, [], []
    for line in proc.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word == "ack":
            id_, item = rest.split(" ")
            acked[int(id_)] = item
        elif word == "fail":
            fails.append(rest)
        else:
            other.append(line)
    return acked, fails, other


def _check_intact(db: Path, acked: dict[int, str]) -> None:
    """Integrity ok, every acknowledged event stored, nothing else (no partial batch), aggregates agree."""
    h = HistoryStore(db, max_events_per_profile=None, recover=False)
    try:
        conn = h.db.conn
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = dict(conn.execute("SELECT id, item_id FROM events"))
        lost = {i: item for i, item in acked.items() if stored.get(i) != item}
        assert not lost, f"{len(lost)} acknowledged events lost, e.g. {list(lost.items())[:3]}"
        extra = {i: item for i, item in stored.items() if i not in acked}
        assert not extra, f"{len(extra)} events of refused batches stored, e.g. {list(extra.items())[:3]}"
        assert h.count("p") == len(stored)
        assert h.tag_counts("p").get("news", 0) == len(stored)
        # Space is back: this store writes, and what it writes is read back.
        new = h.record("p", "after-reopen", "like", timestamp=T0 + 1e6)
        assert h.recent("p", 1)[0].item_id == "after-reopen" and new > max(stored, default=0)
    finally:
        h.close()


def _check_failures(fails: list[str], other: list[str]) -> None:
    assert len(fails) == 3, fails
    for msg in fails:
        assert "the disk is full" in msg and "nothing of this operation was stored" in msg, msg
    assert other == ["recovered"], other


@pytest.mark.parametrize(
    "where, limit, sizes, autocheckpoint",
    [
        # A long batch outgrows the space left for the WAL (the default checkpoint comes at ~4 MB).
        ("wal", 1_000_000, [5, 40, 400, 2000], 0),
        # Frequent checkpoints: the database file itself outgrows the space.
        ("database file", 600_000, [5, 40, 400], 20),
    ],
)
def test_disk_full_loses_no_acknowledged_event_and_recovers(tmp_path, where, limit, sizes, autocheckpoint):
    db = tmp_path / "history.db"
    acked, fails, other = _run_child(db, limit, sizes, autocheckpoint)
    assert len(acked) > 50, f"{where}: too few writes before the disk filled ({len(acked)})"
    _check_failures(fails, other)
    assert sum(item.startswith("after-") for item in acked.values()) == 50
    _check_intact(db, acked)


FORGET_CHILD = r"""
import resource, signal, sys
from edge.errors import HistoryError
from edge.history import HistoryStore

db, limit = sys.argv[1], int(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
h = HistoryStore(db, max_events_per_profile=None)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
try:
    h.forget("gone")
    print("forgot")
except HistoryError as exc:
    print("fail", str(exc).replace("\n", " "), flush=True)
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
print("profiles", ",".join(h.profiles()), flush=True)
"""


def test_disk_full_during_forget_vacuum_keeps_the_other_profiles(tmp_path):
    db = tmp_path / "history.db"
    with HistoryStore(db, max_events_per_profile=None) as h:
        for p in ("keep", "gone"):
            h.add_profile(p)
        kept = h.record_many([Event("keep", f"k{j}", "play", T0 + j, tags=("news", "x" * 60, "y" * 60)) for j in range(3000)])
        h.record_many([Event("gone", f"g{j}", "play", T0 + j, tags=("news",)) for j in range(100)])
        h.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # VACUUM rewrites the whole file through the WAL: it needs about the file's size again.
    limit = db.stat().st_size
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-c", FORGET_CHILD, str(db), str(limit)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert proc.returncode == 0, f"child died ({proc.returncode}): {proc.stderr[-3000:]}"
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("fail ") and "vacuum after forgetting 'gone'" in lines[0] and "the disk is full" in lines[0] and "the profile is already removed" in lines[0], lines
    assert lines[1] == "profiles guest,keep" or lines[1].startswith("profiles") and "gone" not in lines[1], lines
    with HistoryStore(db, max_events_per_profile=None, recover=False) as h:
        conn = h.db.conn
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert [r[0] for r in conn.execute("SELECT id FROM events WHERE profile = 'keep' ORDER BY id")] == kept
        assert conn.execute("SELECT count(*) FROM events WHERE profile = 'gone'").fetchone()[0] == 0
        assert "gone" not in h.profiles()
        # With space back, forgetting compacts the file.
        h.add_profile("gone")
        assert h.forget("gone").wal_truncated


def test_database_or_disk_is_full_is_a_clear_history_error_and_the_store_recovers(tmp_path):
    # SQLITE_FULL ("database or disk is full", what ENOSPC gives), injected with max_page_count.
    with HistoryStore(tmp_path / "history.db", max_events_per_profile=None) as h:
        h.add_profile("p")
        kept = h.record_many([Event("p", f"k{j}", "play", T0 + j) for j in range(10)])
        h.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = h.db.conn.execute("PRAGMA page_count").fetchone()[0]
        h.db.conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(HistoryError, match=r"database or disk is full.*the disk is full .*nothing of this operation was stored"):
            h.record_many([Event("p", f"x{j}", "play", T0 + j, tags=("news", "x" * 60)) for j in range(2000)])
        assert [e.item_id for e in h.recent("p", 100)] == [f"k{j}" for j in reversed(range(10))]
        h.db.conn.execute(f"PRAGMA max_page_count = {pages * 1000}")  # space returns
        assert len(h.record_many([Event("p", f"y{j}", "play", T0 + j) for j in range(2000)])) == 2000
        assert h.count("p") == 2010 and h.recent("p", 2010)[-1].item_id == "k0" and kept == list(range(1, 11))
