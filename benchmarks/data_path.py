"""How the server's data path grows with the interaction log: load + split + one training
epoch at 1M, 5M and 20M events, time and peak RSS, with growth exponents.

    python benchmarks/data_path.py [--events 1000000,5000000,20000000] [--items 100000]
                                   [--events-per-user 40] [--max-steps 300] [--data DIR]

The logs are synthetic (`edgerec demo-data --no-media`, export.data.synthetic.scale: Zipf
items within genres, long-tailed users, sessions), written once per size as Parquet and as
CSV under `--data` (kept between runs). Each measurement runs in a fresh process, so its peak
RSS (`ru_maxrss`) is its own:

* load: `load_dataset` (items.csv + the log, validated batch by batch), for CSV and Parquet;
* split: `leave_last_out` on the loaded Parquet log; "load + split RSS" is that process's peak;
* epoch: `user_events` + the teacher (`train_teacher`, sampled softmax past 20,000 items) for
  one pass over the training predictions (`fit_to_data` with epochs=1). When that is more than
  `--max-steps` steps, the steps are capped and the epoch time is *estimated* as
  sequences + steps_per_epoch / measured steps/s (the JSON says which). Item features are the
  pipeline's own for items without media, computed before the clock starts.

The growth exponent is the least-squares slope of log(cost) on log(events). Target (issue 15):
20M events load and split in <= 4 GB peak RSS. Writes benchmarks/results/data_path-<host>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def child_load(folder: str, fmt: str) -> dict:
    from export.data.contract import load_dataset

    t = time.perf_counter()
    ds = load_dataset(Path(folder) / f"interactions.{fmt}", Path(folder) / "items.csv")
    return {"load_s": time.perf_counter() - t, "events": len(ds.interactions), "peak_rss_mb": _peak_mb()}


def child_split(folder: str) -> dict:
    from export.data.contract import load_dataset
    from export.data.split import leave_last_out

    t = time.perf_counter()
    ds = load_dataset(Path(folder) / "interactions.parquet", Path(folder) / "items.csv")
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    split = leave_last_out(ds)
    return {"load_s": load_s, "split_s": time.perf_counter() - t, "users": split.n_users, "train_pairs": split.n_train,
            "peak_rss_mb": _peak_mb()}


def child_epoch(folder: str, max_steps: int, threads: int) -> dict:
    import dataclasses

    from export.config import BuildConfig, TeacherConfig, fit_to_data
    from export.data.contract import load_dataset
    from export.data.split import leave_last_out
    from export.features import catalogue_features, full_clip_audio
    from export.sequences import user_events
    from export.train import train_teacher

    ds = load_dataset(Path(folder) / "interactions.parquet", Path(folder) / "items.csv")
    split = leave_last_out(ds)
    spec = BuildConfig(progress=False).spec
    feats = np.concatenate([catalogue_features(ds.items, spec, workers=threads, progress=False),
                            full_clip_audio(ds.items, spec, workers=threads, progress=False)], axis=1)
    before = _peak_mb()
    t = time.perf_counter()
    events = user_events(split)
    sequences_s = time.perf_counter() - t
    cfg = TeacherConfig(threads=threads, epochs=1.0, min_steps=1, max_steps=10**9)
    epoch_steps = fit_to_data(cfg, [len(e.items) for e in events]).steps
    steps = min(epoch_steps, max_steps)
    _, log = train_teacher(events, ds.items, feats, dataclasses.replace(cfg, steps=steps), progress=False)
    epoch_s = sequences_s + epoch_steps / log["steps_per_s"]
    return {"sequences_s": sequences_s, "epoch_steps": epoch_steps, "steps_run": steps, "steps_per_s": log["steps_per_s"],
            "batch_size": log["batch_size"], "softmax": log["softmax"], "epoch_s": epoch_s,
            "epoch_estimated": steps < epoch_steps, "peak_rss_before_mb": before, "peak_rss_mb": _peak_mb()}


def _run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _slope(x: list[float], y: list[float]) -> float | None:
    if len(x) < 2:
        return None
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", default="1000000,5000000,20000000", help="comma-separated log sizes")
    ap.add_argument("--items", type=int, default=100_000, help="catalogue size (default 100,000)")
    ap.add_argument("--events-per-user", type=int, default=40, help="users = events / this (default 40)")
    ap.add_argument("--max-steps", type=int, default=300, help="cap on measured training steps per size (default 300)")
    ap.add_argument("--threads", type=int, default=2, help="training threads (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default="/tmp/edgerec-data-path", help="where the synthetic logs are kept")
    ap.add_argument("--out", default=str(ROOT / "results" / f"data_path-{platform.node() or 'host'}.json"), help="JSON output")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, folder, *rest = args.child
        result = {"load": lambda: child_load(folder, rest[0]), "split": lambda: child_split(folder),
                  "epoch": lambda: child_epoch(folder, int(rest[0]), int(rest[1]))}[kind]()
        print(json.dumps(result))
        return

    from export.data.synthetic.scale import generate_scale

    rows = []
    for n in [int(x) for x in args.events.split(",")]:
        folder = Path(args.data) / f"{n}-{args.items}-{args.events_per_user}-{args.seed}"
        users = max(1, n // args.events_per_user)
        for fmt in ("parquet", "csv"):
            if not (folder / f"interactions.{fmt}").exists():
                t = time.perf_counter()
                generate_scale(folder, users, args.items, n, seed=args.seed, fmt=fmt)
                print(f"{n:>11,} events: wrote {fmt} in {time.perf_counter() - t:.1f} s", flush=True)
        row = {"events": n, "users": users, "items": args.items,
               "file_mb": {f: (folder / f"interactions.{f}").stat().st_size / 2**20 for f in ("parquet", "csv")}}
        row["load_csv"] = _run_child("load", str(folder), "csv")
        row["load_parquet"] = _run_child("load", str(folder), "parquet")
        row["split"] = _run_child("split", str(folder))
        row["epoch"] = _run_child("epoch", str(folder), str(args.max_steps), str(args.threads))
        rows.append(row)
        s, e = row["split"], row["epoch"]
        print(f"{n:>11,} events: load csv {row['load_csv']['load_s']:.1f} s, parquet {row['load_parquet']['load_s']:.1f} s; "
              f"split {s['split_s']:.1f} s; load+split peak RSS {s['peak_rss_mb']:,.0f} MB; epoch "
              f"{'~' if e['epoch_estimated'] else ''}{e['epoch_s']:.0f} s ({e['epoch_steps']} steps, {e['steps_per_s']:.1f}/s), "
              f"peak RSS {e['peak_rss_mb']:,.0f} MB", flush=True)
    n = [r["events"] for r in rows]
    growth = {
        "load_csv_s": _slope(n, [r["load_csv"]["load_s"] for r in rows]),
        "load_parquet_s": _slope(n, [r["load_parquet"]["load_s"] for r in rows]),
        "split_s": _slope(n, [r["split"]["split_s"] for r in rows]),
        "load_split_peak_rss_mb": _slope(n, [r["split"]["peak_rss_mb"] for r in rows]),
        "epoch_s": _slope(n, [r["epoch"]["epoch_s"] for r in rows]),
        "epoch_peak_rss_mb": _slope(n, [r["epoch"]["peak_rss_mb"] for r in rows]),
    }
    print("growth exponents (cost ~ events^k): " + ", ".join(f"{k} {v:.2f}" for k, v in growth.items() if v is not None))
    biggest = max(rows, key=lambda r: r["events"])
    target = {"events": biggest["events"], "load_split_peak_rss_mb": biggest["split"]["peak_rss_mb"], "target_mb": 4096,
              "met": biggest["split"]["peak_rss_mb"] <= 4096}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"host": platform.node(), "machine": platform.machine(), "python": platform.python_version(),
                                          "seed": args.seed, "rows": rows, "growth_exponent": growth, "rss_target": target},
                                         indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
