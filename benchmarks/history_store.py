"""The on-device history store: sustained batched inserts, last-200-events latency with a
million events across 8 profiles, file size per million events, open-time integrity checks
and forget + VACUUM, with plain sqlite3 and sqlite-utils inserts measured in the same run.

    python benchmarks/history_store.py [--events 1000000] [--profiles 8] [--batch 1000]

Targets (issue 4): >= 20,000 events/s sustained; last-200 query p99 <= 2 ms at 1,000,000
events. Writes benchmarks/results/history_store-<host label>.json. Needs only the device
install. The database lives in a temporary folder (or --workdir) and is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import sqlite3
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import sqlite_utils

from edge.history import POSITIVE_KINDS, Event, HistoryStore
from edge.context import hour_weekday
from edge.history.events import EVENT_COLUMNS

ROOT = Path(__file__).resolve().parent
RUSAGE_THREAD = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)  # Linux has per-thread counts
KINDS = ("play",) * 5 + ("complete",) * 3 + ("skip",) * 2 + ("like", "dislike", "search", "add-to-list")
TAGS = [f"tag{n:02d}" for n in range(40)]
DEVICES = ("tv", "tv", "tv", "speaker")
SURFACES = ("home", "search", "continue", "row:trending")


def make_batches(n_events: int, n_profiles: int, batch: int, seed: int = 0):
    """Deterministic batches of :class:`Event`, timestamps increasing over the past year."""
    rng = random.Random(seed)
    start = time.time() - 365 * 86400
    step = 365 * 86400 / n_events
    for b0 in range(0, n_events, batch):
        yield [
            Event(
                f"profile-{(i // 37) % n_profiles}",  # sessions of 37 events per profile
                f"item-{rng.randrange(50_000):05d}",
                rng.choice(KINDS),
                start + i * step,
                round(rng.random(), 3),
                device=rng.choice(DEVICES),
                position_s=round(rng.random() * 3600, 1),
                surface=rng.choice(SURFACES),
                tags=tuple(rng.sample(TAGS, rng.randint(1, 3))),
            )
            for i in range(b0, min(b0 + batch, n_events))
        ]


def timed_insert(store: HistoryStore, batches) -> dict:
    """Time only the record_many() calls (making the events is the caller's cost)."""
    per_batch = []
    n = 0
    spent = 0.0
    for events in batches:
        t = time.perf_counter()
        store.record_many(events)
        dt = time.perf_counter() - t
        spent += dt
        per_batch.append(len(events) / dt)
        n += len(events)
    store.close()
    return {"events": n, "seconds": spent, "events_per_s": n / spent, "batch_events_per_s_p5": float(np.percentile(per_batch, 5))}


def fresh_store(path: Path, synchronous: str, n_profiles: int) -> HistoryStore:
    store = HistoryStore(path, synchronous=synchronous, max_events_per_profile=None)
    for p in range(n_profiles):
        store.add_profile(f"profile-{p}")
    return store


def _plain_row(e: Event) -> tuple:
    hour, weekday = (int(x) for x in hour_weekday(e.timestamp))
    return (e.profile, e.item_id, e.kind, e.timestamp, e.value, e.position_s, e.surface, hour, weekday, e.device, json.dumps(e.tags))


def peer_insert(path: Path, batches, how: str, n_profiles: int) -> dict:
    """The same rows into the same schema, one transaction per batch, synchronous=FULL,
    without validation or aggregates: what the bare libraries cost."""
    fresh_store(path, "FULL", n_profiles).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    db = sqlite_utils.Database(conn)
    sql = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
    n = 0
    spent = 0.0
    for events in batches:
        rows = [_plain_row(e) for e in events]
        dicts = [dict(zip(EVENT_COLUMNS, r)) for r in rows]
        t = time.perf_counter()
        if how == "sqlite3":
            conn.execute("BEGIN")
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
        else:
            with db.atomic():
                db["events"].insert_all(dicts, batch_size=len(dicts))
        spent += time.perf_counter() - t
        n += len(events)
    conn.close()
    return {"events": n, "seconds": spent, "events_per_s": n / spent}


def latency(fn, n: int) -> dict:
    """Wall-clock percentiles, the same in thread CPU time, and how many calls the scheduler
    preempted (an involuntary context switch during the call): on a shared machine the gap
    between wall and CPU time is time spent waiting for a core, not in the query."""
    wall, cpu, preempted = [], [], 0
    for i in range(n):
        switches = resource.getrusage(RUSAGE_THREAD).ru_nivcsw
        c, t = time.thread_time(), time.perf_counter()
        fn(i)
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.thread_time() - c) * 1000)
        preempted += resource.getrusage(RUSAGE_THREAD).ru_nivcsw > switches
    w, c = np.array(wall), np.array(cpu)
    return {
        "n": n,
        **{f"p{q}_ms": float(np.percentile(w, q)) for q in (50, 95, 99)},
        "max_ms": float(w.max()),
        **{f"cpu_p{q}_ms": float(np.percentile(c, q)) for q in (50, 99)},
        "preempted": preempted,
    }


def file_bytes(path: Path) -> int:
    return sum(os.path.getsize(f"{path}{s}") for s in ("", "-wal") if os.path.exists(f"{path}{s}"))


def host() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlite_utils": version("sqlite-utils"),
        "numpy": np.__version__,
        "system": platform.platform(),
        "load_average_1_5_15": list(os.getloadavg()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000, help="events stored (default 1,000,000)")
    ap.add_argument("--profiles", type=int, default=8, help="profiles they are spread over (default 8)")
    ap.add_argument("--batch", type=int, default=1000, help="events per record_many() call (default 1000)")
    ap.add_argument("--peer-events", type=int, default=200_000, help="events for the peer insert rows (default 200,000)")
    ap.add_argument("--queries", type=int, default=2000, help="timed queries per kind (default 2000)")
    ap.add_argument("--workdir", default=None, help="folder for the database files (default: a temporary folder)")
    ap.add_argument("--host-label", default="vm", help="names the results file (default vm)")
    ap.add_argument("--out", default=None, help="JSON output (default benchmarks/results/history_store-<host label>.json)")
    args = ap.parse_args()
    out = Path(args.out or ROOT / "results" / f"history_store-{args.host_label}.json")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="edgerec-history-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str]] = []
    result: dict = {"benchmark": "history_store", "command": "python benchmarks/history_store.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in (("events", args.events), ("profiles", args.profiles), ("batch", args.batch)))}
    result["host"] = host()
    result["params"] = {"events": args.events, "profiles": args.profiles, "batch": args.batch, "peer_events": args.peer_events, "queries": args.queries}
    try:
        db = work / "history.db"
        ins = timed_insert(fresh_store(db, "FULL", args.profiles), make_batches(args.events, args.profiles, args.batch))
        store = HistoryStore(db, max_events_per_profile=None)
        result["insert_full"] = ins
        rows.append((f"insert, HistoryStore.record_many, synchronous=FULL, {args.events:,} events", f"{ins['events_per_s']:,.0f} events/s", f"slowest 5% of batches {ins['batch_events_per_s_p5']:,.0f} events/s"))

        rng = random.Random(1)
        profiles = [f"profile-{p}" for p in range(args.profiles)]
        q = latency(lambda i: store.recent(profiles[rng.randrange(len(profiles))], 200), args.queries)
        result["recent_200"] = q
        rows.append(("recent(profile, 200)", f"p99 {q['p99_ms']:.2f} ms", f"p50 {q['p50_ms']:.2f}, p95 {q['p95_ms']:.2f}, max {q['max_ms']:.2f} ms; CPU p50 {q['cpu_p50_ms']:.2f}, p99 {q['cpu_p99_ms']:.2f} ms; "
                     f"{q['preempted']} of {q['n']} preempted"))
        positive = sorted(POSITIVE_KINDS)
        q = latency(lambda i: store.recent(profiles[rng.randrange(len(profiles))], 200, kinds=positive), args.queries)
        result["recent_200_positive"] = q
        rows.append(("recent(profile, 200, kinds=positive)", f"p99 {q['p99_ms']:.2f} ms", f"p50 {q['p50_ms']:.2f} ms; CPU p99 {q['cpu_p99_ms']:.2f} ms; {q['preempted']} of {q['n']} preempted"))
        q = latency(lambda i: store.tag_counts(profiles[rng.randrange(len(profiles))]), args.queries // 4)
        result["tag_counts"] = q
        rows.append(("tag_counts(profile) (running aggregate)", f"p99 {q['p99_ms']:.2f} ms", f"p50 {q['p50_ms']:.2f} ms"))

        store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = file_bytes(db)
        result["size"] = {"bytes": size, "bytes_per_event": size / args.events, "mib_per_million_events": size / args.events * 1e6 / 2**20}
        rows.append(("database size", f"{size / args.events * 1e6 / 2**20:.1f} MiB per million events", f"{size / args.events:.0f} bytes/event, {size / 2**20:.1f} MiB total"))
        store.close()

        checks = {}
        for pragma in ("quick_check", "integrity_check"):
            conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
            t = time.perf_counter()
            ok = conn.execute(f"PRAGMA {pragma}(5)").fetchall() == [("ok",)]
            checks[pragma] = {"seconds": time.perf_counter() - t, "ok": ok}
            conn.close()
        t = time.perf_counter()
        HistoryStore(db, max_events_per_profile=None).close()
        checks["open_s"] = time.perf_counter() - t
        result["open_checks"] = checks
        rows.append(("open (quick_check above 32 MiB)", f"{checks['open_s']:.2f} s", f"quick_check {checks['quick_check']['seconds']:.2f} s, integrity_check {checks['integrity_check']['seconds']:.2f} s"))

        store = HistoryStore(db, max_events_per_profile=None)
        t = time.perf_counter()
        gone = store.forget(profiles[0])
        result["forget"] = {"events": gone.events, "seconds": time.perf_counter() - t, "bytes_after": file_bytes(db)}
        rows.append(("forget(one profile) + VACUUM + checkpoint", f"{result['forget']['seconds']:.2f} s", f"{gone.events:,} events removed"))
        store.close()

        peers = {}
        n_peer = min(args.peer_events, args.events)
        for name, fn in (
            ("HistoryStore, synchronous=NORMAL", lambda p: timed_insert(fresh_store(p, "NORMAL", args.profiles), make_batches(n_peer, args.profiles, args.batch))),
            ("HistoryStore, synchronous=FULL", lambda p: timed_insert(fresh_store(p, "FULL", args.profiles), make_batches(n_peer, args.profiles, args.batch))),
            ("plain sqlite3 executemany (no checks, no aggregates)", lambda p: peer_insert(p, make_batches(n_peer, args.profiles, args.batch), "sqlite3", args.profiles)),
            ("sqlite-utils insert_all (no checks, no aggregates)", lambda p: peer_insert(p, make_batches(n_peer, args.profiles, args.batch), "sqlite-utils", args.profiles)),
        ):
            peers[name] = fn(work / f"peer-{len(peers)}.db")
            rows.append((f"insert, {name}, {n_peer:,} events", f"{peers[name]['events_per_s']:,.0f} events/s", ""))
        result["insert_peers"] = peers
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    result["load_average_after"] = list(os.getloadavg())
    result["targets"] = {
        "insert_events_per_s>=20000": result["insert_full"]["events_per_s"] >= 20_000,
        "recent_200_p99_ms<=2": result["recent_200"]["p99_ms"] <= 2.0,
    }
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'result':<36}  detail")
    for name, value, detail in rows:
        print(f"{name:<{width}}  {value:<36}  {detail}")
    print(f"targets met: {result['targets']}")
    print(f"host: {result['host']['cpu']}, {result['host']['cores']} cores, SQLite {result['host']['sqlite']}, sqlite-utils {result['host']['sqlite_utils']}; "
          f"load average {result['host']['load_average_1_5_15'][0]:.1f} before, {result['load_average_after'][0]:.1f} after")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
