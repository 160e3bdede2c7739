"""How the device's costs grow with the catalogue and the history, each beside faiss
`IndexFlatIP` (exact float32 inner product, one thread) measured in the same run.

    python benchmarks/growth.py [--items 10000,100000,1000000] [--history 200,10000,100000]
                                [--history-items 100000] [--calls 300]

Per catalogue size (random unit vectors, untrained students of the real architecture, as
benchmarks/ranking_latency.py builds them): bundle size on disk; open time (verify + load +
first recommendation, in a fresh process); `recommend()` p50/p99 with a 200-event history on
one thread; RSS after the calls; the int8 catalogue the scorer holds against float32; and
faiss's top-10 latency, index build time and float32 memory over the same vectors.

Per history size (on the `--history-items` catalogue): `recommend()` p50/p99 when the history
is unchanged between calls ("steady": the profile's state is kept) and right after an event
was recorded ("after a write": the state is read again from SQLite).

Writes benchmarks/results/growth-<host>.json. Targets (issue 15): 1M items open <= 1 s,
recommend() p99 <= 12 ms, catalogue <= 0.3x float32; 100k history events <= 1.1x the
200-event latency.
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

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

NOW = 1_750_000_000.0


def fill_history(rec, n_events: int, seed: int = 1) -> None:
    """``n_events`` plays, completions, skips and likes of random catalogue items, a minute apart."""
    from edge.history import Event

    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(rec.bundle.items), n_events)
    kinds = rng.choice(["play", "complete", "skip", "like"], size=n_events, p=[0.5, 0.3, 0.15, 0.05])
    ids = rec.bundle.items.item_ids
    rec.history.add_profile("bench")
    start = NOW - 60.0 * (n_events + 10)
    events = [Event("bench", ids[int(r)], str(k), start + i * 60.0) for i, (r, k) in enumerate(zip(rows, kinds))]
    for at in range(0, n_events, 20_000):
        rec.history.record_many(events[at : at + 20_000])


def pct(values: list[float]) -> dict[str, float]:
    v = np.asarray(values) * 1000
    return {"p50_ms": float(np.percentile(v, 50)), "p99_ms": float(np.percentile(v, 99)), "mean_ms": float(v.mean())}


def child(bundle: str, db: str, n_history: int, calls: int, after_write: bool) -> dict:
    """Run in a fresh process: open, fill the history, time recommend()."""
    from edge.context import Context
    from edge.recommender import Recommender

    t0 = time.perf_counter()
    rec = Recommender.open(bundle, db, threads=1)
    opened = time.perf_counter() - t0
    rec.recommend("guest", 10, Context.at(NOW))
    first = time.perf_counter() - t0
    fill_history(rec, n_history)
    ctx = Context.at(NOW)
    for _ in range(20):
        rec.recommend("bench", 10, ctx)
    steady, written = [], []
    ids = rec.bundle.items.item_ids
    for i in range(calls):
        t = time.perf_counter()
        rec.recommend("bench", 10, ctx)
        steady.append(time.perf_counter() - t)
        if after_write:
            rec.record("bench", ids[i % len(ids)], "play", timestamp=NOW - 5.0 + i * 1e-3)
            t = time.perf_counter()
            rec.recommend("bench", 10, ctx)
            written.append(time.perf_counter() - t)
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if line.startswith(("VmRSS", "VmHWM", "RssAnon", "RssFile")))
    held = rec.scorer._catalog.nbytes + getattr(rec.scorer, "_offsets", np.zeros(0)).nbytes + rec.scorer.scales.nbytes
    out = {"open_s": opened, "open_to_first_s": first, "steady": pct(steady), "int8_held_bytes": int(held),
           **{k.lower() + "_mb": int(v.split()[0]) / 1024 for k, v in status.items()}}
    if written:
        out["after_write"] = pct(written)
    rec.close()
    return out


def run_child(bundle: Path, db: Path, n_history: int, calls: int, after_write: bool) -> dict:
    db.unlink(missing_ok=True)
    args = [sys.executable, __file__, "--child", str(bundle), str(db), str(n_history), str(calls), str(int(after_write))]
    proc = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def faiss_peer(bundle: Path, calls: int) -> dict:
    """faiss IndexFlatIP over the bundle's dequantised vectors: build time, memory, top-10 latency."""
    import faiss

    from edge.bundle import Bundle

    faiss.omp_set_num_threads(1)
    b = Bundle.open(bundle)
    t = time.perf_counter()
    floats = np.ascontiguousarray(b.item_embeddings(), np.float32)
    index = faiss.IndexFlatIP(b.embedding_dim)
    index.add(floats)
    build = time.perf_counter() - t
    rng = np.random.default_rng(2)
    users = rng.standard_normal((calls, b.embedding_dim)).astype(np.float32)
    users /= np.linalg.norm(users, axis=1, keepdims=True)
    for u in users[:10]:
        index.search(u[None], 10)
    times = []
    for u in users:
        t = time.perf_counter()
        index.search(u[None], 10)
        times.append(time.perf_counter() - t)
    return {"build_s": build, "float32_bytes": int(floats.nbytes), "top10": pct(times)}


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        bundle, db, n_history, calls, after = sys.argv[2:7]
        print(json.dumps(child(bundle, db, int(n_history), int(calls), bool(int(after)))))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", default="10000,100000,1000000", help="catalogue sizes, comma-separated (default 10k,100k,1M)")
    ap.add_argument("--history", default="200,10000,100000", help="history sizes in events, comma-separated (default 200,10k,100k)")
    ap.add_argument("--history-items", type=int, default=100_000, help="catalogue size for the history rows (default 100000)")
    ap.add_argument("--calls", type=int, default=300, help="timed calls per measurement (default 300)")
    ap.add_argument("--out", default=str(ROOT / "results" / f"growth-{platform.node() or 'host'}.json"), help="JSON output")
    args = ap.parse_args()
    from ranking_latency import make_bundle

    from edge.bench import host_info

    item_sizes = [int(x) for x in args.items.split(",") if x]
    history_sizes = [int(x) for x in args.history.split(",") if x]
    catalogue_rows, history_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        bundles: dict[int, Path] = {}
        for n in sorted(set(item_sizes) | {args.history_items}):
            t = time.perf_counter()
            bundles[n] = make_bundle(Path(tmp) / f"bundle-{n}", n)
            print(f"bundle of {n:,} items written in {time.perf_counter() - t:.0f} s", flush=True)
        for n in item_sizes:
            dev = run_child(bundles[n], Path(tmp) / "h.db", 200, args.calls, after_write=False)
            peer = faiss_peer(bundles[n], args.calls)
            catalogue_rows.append({"items": n, "bundle_bytes": folder_bytes(bundles[n]), "device": dev, "faiss": peer,
                                   "memory_ratio": dev["int8_held_bytes"] / peer["float32_bytes"]})
            print(f"{n:>9,} items: open {dev['open_s']:.3f} s, recommend p99 {dev['steady']['p99_ms']:.2f} ms "
                  f"(faiss top-10 p99 {peer['top10']['p99_ms']:.2f} ms), RSS {dev['vmrss_mb']:.0f} MB", flush=True)
        for h in history_sizes:
            dev = run_child(bundles[args.history_items], Path(tmp) / "h.db", h, args.calls, after_write=True)
            history_rows.append({"events": h, "items": args.history_items, "device": dev})
            print(f"{h:>9,} events: steady p99 {dev['steady']['p99_ms']:.2f} ms, after a write p99 {dev['after_write']['p99_ms']:.2f} ms", flush=True)

    print("\n| items | bundle MB | open s | recommend p50 / p99 ms | faiss top-10 p50 / p99 ms | faiss build s | int8 held / float32 | RSS MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in catalogue_rows:
        d, f = r["device"], r["faiss"]
        print(f"| {r['items']:,} | {r['bundle_bytes'] / 2**20:.1f} | {d['open_s']:.3f} | {d['steady']['p50_ms']:.2f} / {d['steady']['p99_ms']:.2f} | "
              f"{f['top10']['p50_ms']:.2f} / {f['top10']['p99_ms']:.2f} | {f['build_s']:.3f} | {r['memory_ratio']:.3f} | {d['vmrss_mb']:.0f} |")
    print(f"\n| history events ({args.history_items:,} items) | steady p50 / p99 ms | after a write p50 / p99 ms | RSS MB |\n| --- | --- | --- | --- |")
    for r in history_rows:
        d = r["device"]
        print(f"| {r['events']:,} | {d['steady']['p50_ms']:.2f} / {d['steady']['p99_ms']:.2f} | "
              f"{d['after_write']['p50_ms']:.2f} / {d['after_write']['p99_ms']:.2f} | {d['vmrss_mb']:.0f} |")
    result = {"benchmark": "growth", "command": f"python benchmarks/growth.py --items {args.items} --history {args.history} "
              f"--history-items {args.history_items} --calls {args.calls}", "host": host_info(), "threads": 1,
              "catalogue": catalogue_rows, "history": history_rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
