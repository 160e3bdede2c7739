"""Crash safety: a child process writes events and prints each acknowledged id; it is killed
with SIGKILL at random moments, 50 times. After each kill every acknowledged event is in the
file, ``PRAGMA integrity_check`` is ok and the aggregates agree with the events."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.history import HistoryStore

ROOT = Path(__file__).resolve().parents[1]
KILLS = 50

# Prints "<id> <item_id>" only after record_many() returned, i.e. after COMMIT.
CHILD = r"""
import random, sys
from edge.history import Event, HistoryStore

db, run = sys.argv[1], int(sys.argv[2])
rng = random.Random(run)
h = HistoryStore(db, synchronous=("FULL", "NORMAL")[run % 2], max_events_per_profile=None)
h.add_profile(f"p{run % 3}")
n = 0
while True:
    size = rng.choice([1, 1, 3, 20, 120, 400])
    items = [f"r{run}-{n + j}" for j in range(size)]
    events = [Event(f"p{run % 3}", item, ("play", "skip", "like")[j % 3], 1_700_000_000.0 + n + j, tags=("news", f"t{j % 4}")) for j, item in enumerate(items)]
    ids = h.record_many(events)
    sys.stdout.write("".join(f"{i} {item}\n" for i, item in zip(ids, items)))
    sys.stdout.flush()
    n += size
"""


def _acknowledged(path: Path) -> dict[int, str]:
    acks = {}
    for line in path.read_text().split("\n")[:-1]:  # the last piece may be a torn line
        id_, item = line.split(" ")
        acks[int(id_)] = item
    return acks


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_an_acknowledged_event(tmp_path):
    db = tmp_path / "history.db"
    rng = random.Random(4)
    acked: dict[int, str] = {}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    killed_before_first_ack = 0
    for run in range(KILLS):
        out, err = tmp_path / f"acks-{run}.txt", tmp_path / f"err-{run}.txt"
        with open(out, "wb") as fh_out, open(err, "wb") as fh_err:
            child = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(run)], stdout=fh_out, stderr=fh_err, cwd=ROOT, env=env)
        if run % 5 == 0:
            time.sleep(rng.uniform(0.0, 0.4))  # anywhere: while importing, opening, creating the schema or writing
        else:
            deadline = time.monotonic() + 30
            while out.stat().st_size == 0 and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.1))  # somewhere in the stream of batches
        assert child.poll() is None, f"child exited by itself ({child.returncode}): {err.read_text()[-2000:]}"
        child.send_signal(signal.SIGKILL)
        child.wait()
        new = _acknowledged(out)
        killed_before_first_ack += not new
        acked.update(new)

        h = HistoryStore(db, max_events_per_profile=None)
        try:
            assert h.recovered_from is None, f"run {run}: a crash was mistaken for damage"
            conn = h.db.conn
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], f"run {run}"
            stored = dict(conn.execute("SELECT id, item_id FROM events"))
            lost = {i: item for i, item in acked.items() if stored.get(i) != item}
            assert not lost, f"run {run}: {len(lost)} acknowledged events lost, e.g. {list(lost.items())[:3]}"
            # Aggregates are written in the same transaction as their events.
            assert conn.execute("SELECT coalesce(sum(n), 0) FROM hour_counts").fetchone()[0] == len(stored), f"run {run}"
            assert conn.execute("SELECT coalesce(sum(n), 0) FROM tag_counts WHERE tag = 'news'").fetchone()[0] == len(stored), f"run {run}"
        finally:
            h.close()
    assert len(acked) > 1000 and killed_before_first_ack < KILLS // 2
