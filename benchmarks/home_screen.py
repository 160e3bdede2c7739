"""Home screen latency: `Recommender.home()` (five kinds of rows, 10 items each) on a
100k-item catalogue, one thread, beside `recommend()` and a steered `recommend(query=...)`
measured in the same run on the same profile.

    python benchmarks/home_screen.py [--items 100000] [--calls 500]

The catalogue is random unit vectors with untrained students (latency does not depend on
what the vectors mean); it holds series (runs of 2-10 episodes), items whose availability
started in the last two weeks, and 50 tags. The profile has 300 events: partial plays,
completed episodes, likes and skips. Each measurement runs in a fresh process with
OMP_NUM_THREADS=1. Target (issue 16): the whole screen <= 5 ms p99 on one x86 thread.
Writes benchmarks/results/home_screen-<host>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

import numpy as np  # noqa: E402

NOW = 1_750_000_000.0
DAY = 86_400.0


def catalogue(n_items: int, seed: int = 0) -> list:
    """Items with series, recent availability starts and tags."""
    from export.data.contract import Item

    rng = np.random.default_rng(seed)
    items, i = [], 0
    while i < n_items:
        run = int(rng.integers(2, 11)) if rng.random() < 0.3 else 1
        for e in range(min(run, n_items - i)):
            start = int(NOW - rng.uniform(0, 14) * DAY) if rng.random() < 0.02 else None
            series = (f"s{i - e:06d}", e + 1) if run > 1 else (None, None)
            items.append(Item(f"i{i:06d}", f"Item {i}", (f"tag{int(rng.integers(50))}", f"mood{int(rng.integers(8))}"),
                              "audio" if i % 3 == 0 else "video", float(rng.uniform(60, 5400)), available_from=start,
                              series_id=series[0], episode=series[1]))
            i += 1
    return items


def fill(rec, seed: int = 1) -> None:
    from edge.history import Event

    rng = np.random.default_rng(seed)
    ids = rec.bundle.items.item_ids
    events = []
    for j in range(300):
        row = int(rng.integers(len(ids)))
        kind = str(rng.choice(["play", "complete", "like", "skip"], p=[0.5, 0.3, 0.1, 0.1]))
        value = float(rng.uniform(0.05, 1.0)) if kind == "play" else None
        events.append(Event("bench", ids[row], kind, NOW - 3600.0 * (300 - j), value=value))
    rec.history.add_profile("bench")
    rec.history.record_many(events)


def pct(values: list[float]) -> dict[str, float]:
    v = np.asarray(values) * 1000
    return {"p50_ms": float(np.percentile(v, 50)), "p95_ms": float(np.percentile(v, 95)), "p99_ms": float(np.percentile(v, 99)),
            "mean_ms": float(v.mean())}


def child(bundle: str, db: str, what: str, calls: int) -> dict:
    """In a fresh process: time one kind of request."""
    from edge.context import Context
    from edge.recommender import Recommender

    rec = Recommender.open(bundle, db, threads=1)
    fill(rec)
    ctx = Context.at(NOW)
    call = {"home": lambda: rec.home("bench", ctx, per_row=10), "recommend": lambda: rec.recommend("bench", 10, ctx),
            "steered": lambda: rec.recommend("bench", 10, ctx, query="tag7 mood3 for tonight", max_duration_s=1800)}[what]
    for _ in range(20):
        call()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t)
    shape = [(r.kind, len(r.items)) for r in out] if what == "home" else len(out)
    rec.close()
    return {**pct(times), "shape": shape}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000, help="catalogue size (default 100000)")
    ap.add_argument("--calls", type=int, default=500, help="timed calls per measurement (default 500)")
    ap.add_argument("--out", default=str(ROOT / "results" / f"home_screen-{platform.node() or 'host'}.json"), help="JSON output")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.child[2], int(args.child[3]))))
        return
    from ranking_latency import make_bundle

    from edge.bench import host_info

    with tempfile.TemporaryDirectory() as tmp:
        bundle = make_bundle(Path(tmp) / "bundle", args.items, items=catalogue(args.items))
        results = {}
        for what in ("home", "recommend", "steered"):
            db = Path(tmp) / f"{what}.db"
            proc = subprocess.run([sys.executable, __file__, "--child", str(bundle), str(db), what, str(args.calls)],
                                  capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if proc.returncode != 0:
                raise SystemExit(f"{what} failed:\n{proc.stderr[-3000:]}")
            results[what] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{'request (' + str(args.items) + ' items, 1 thread)':<44} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for what, label in (("home", "home(): every row, 10 items each"), ("recommend", "recommend(k=10) (peer)"),
                        ("steered", "recommend(k=10, query=..., max_duration_s)")):
        r = results[what]
        print(f"{label:<44} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} {r['p99_ms']:>8.2f}")
    print(f"rows: {results['home']['shape']}; target: home() <= 5 ms p99 -> "
          + ("met" if results["home"]["p99_ms"] <= 5.0 else "NOT met"))
    doc = {"benchmark": "home_screen", "command": " ".join(["python", "benchmarks/home_screen.py", *sys.argv[1:]]), "host": host_info(),
           "items": args.items, "calls": args.calls, "threads": 1, "results": results, "target_p99_ms": 5.0}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
