"""One writer and four readers, each its own process, on one history file: zero errors (no
"database is locked"), and readers never see half of a batch or aggregates that disagree with
the events.

The run is sized by work, not by the clock (a slow or busy host takes longer, it does not fail):
the writer goes on until both profiles wrote twice their cap, so retention ran on both, and
each reader until the writer is done and it has made its own number of reads. A deadline only
stops a hung run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.history import HistoryStore

ROOT = Path(__file__).resolve().parents[1]
READS = 150
DEADLINE_S = 900.0  # a hung run, not a slow one
READERS = 4
CAP = 3000  # both profiles reach their cap, so retention deletes while readers read

# Batches of 1..200 events, three for profile "a" for each one for "b"; each event's surface
# names its batch and the batch size. Retention trims both profiles as the writer goes.
WRITER = r"""
import json, random, sys, time
from edge.history import Event, HistoryStore

db, done, cap, deadline = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
rng = random.Random(1)
h = HistoryStore(db, synchronous="NORMAL", max_events_per_profile=cap)
stats = {"batches": 0, "events": 0, "errors": [], "per_profile": {"a": 0, "b": 0}}
t0 = 1_700_000_000.0
start = time.monotonic()
n = 0
# On until both profiles wrote twice their cap, so retention ran on both.
while min(stats["per_profile"].values()) < 2 * cap and time.monotonic() - start < deadline:
    try:
        size = rng.randint(1, 200)
        batch = f"b{stats['batches']}:{size}"
        profile = "b" if stats["batches"] % 4 == 3 else "a"
        h.record_many([Event(profile, f"i{n + j}", "play", t0 + n + j, surface=batch, tags=("x", f"g{j % 5}")) for j in range(size)])
        stats["batches"] += 1
        stats["events"] += size
        stats["per_profile"][profile] += size
        n += size
        time.sleep(0.002)
    except Exception as exc:
        stats["errors"].append(repr(exc))
h.close()
open(done, "w").close()
print(json.dumps(stats))
"""

READER = r"""
import json, os, sys, time
from edge.history import HistoryStore

db, done, cap, deadline, reads = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
stats = {"reads": 0, "full_scans": 0, "reopens": 0, "errors": [], "violations": []}
h = HistoryStore(db, max_events_per_profile=cap)
end = time.monotonic() + deadline


def batch_size(surface):
    return int(surface.split(":")[1])


while (not os.path.exists(done) or stats["reads"] < reads) and time.monotonic() < end:
    try:
        window = h.recent("a", 300)
        seen = {}
        for e in window:
            seen[e.surface] = seen.get(e.surface, 0) + 1
        # LIMIT may cut only the oldest batch in the window; every other one must be whole.
        cut = window[-1].surface if len(window) == 300 else None
        for surface, count in seen.items():
            if surface != cut and count != batch_size(surface):
                stats["violations"].append(f"recent(): batch {surface} seen with {count} events")
        conn = h.db.conn
        for p in ("a", "b"):
            # One statement, one snapshot: events and their aggregates must agree.
            events, hours, tags = conn.execute(
                "SELECT (SELECT count(*) FROM events WHERE profile = ?), "
                "(SELECT coalesce(sum(n), 0) FROM hour_counts WHERE profile = ?), "
                "(SELECT coalesce(sum(n), 0) FROM tag_counts WHERE profile = ? AND tag = 'x')",
                [p, p, p],
            ).fetchone()
            if not events == hours == tags:
                stats["violations"].append(f"{p}: {events} events, hour counts {hours}, tag counts {tags}")
        for p in ("a", "b"):
            if h.count(p) > cap * 1.01 + 200:
                stats["violations"].append(f"{p} has {h.count(p)} events, cap {cap}")
        h.tag_counts("a")
        h.hour_counts("b", kinds=["play"])
        if stats["reads"] % 25 == 0:
            rows = conn.execute("SELECT surface, count(*), min(id) FROM events WHERE profile = 'a' GROUP BY surface ORDER BY 3").fetchall()
            # Retention deletes the oldest events first: only the oldest batch may be partial.
            for surface, count, _ in rows[1:]:
                if count != batch_size(surface):
                    stats["violations"].append(f"scan: batch {surface} has {count} events")
            stats["full_scans"] += 1
        if stats["reads"] % 200 == 199:
            h.close()
            h = HistoryStore(db, max_events_per_profile=cap)  # opening checks integrity mid-write
            stats["reopens"] += 1
        stats["reads"] += 1
    except Exception as exc:
        stats["errors"].append(repr(exc))
        time.sleep(0.01)
h.close()
print(json.dumps(stats))
"""


@pytest.mark.slow
def test_one_writer_and_four_readers_without_errors_or_torn_batches(tmp_path):
    db = tmp_path / "history.db"
    with HistoryStore(db) as h:
        h.add_profile("a")
        h.add_profile("b")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    args = [str(db), str(tmp_path / "writer-done"), str(CAP), str(DEADLINE_S)]
    procs = [subprocess.Popen([sys.executable, "-c", code, *args, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
             for code, extra in [(WRITER, [])] + [(READER, [str(READS)])] * READERS]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=DEADLINE_S + 60)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    writer, readers = results[0], results[1:]
    assert writer["errors"] == [] and min(writer["per_profile"].values()) >= 2 * CAP, writer
    for r in readers:
        assert r["errors"] == [], r["errors"][:5]
        assert r["violations"] == [], r["violations"][:5]
        assert r["reads"] >= READS and r["full_scans"] > 0, r
    with HistoryStore(db, max_events_per_profile=CAP) as h:
        assert h.db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert h.count("a") + h.count("b") <= writer["events"] and max(h.count("a"), h.count("b")) <= CAP * 1.01 + 200
