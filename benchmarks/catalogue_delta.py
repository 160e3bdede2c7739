"""Daily catalogue deltas at broadcaster scale: their size against the full bundle, the time a
device takes to apply one, and whether a month of them lands exactly on the full bundle.

    python benchmarks/catalogue_delta.py [--items 100000] [--days 30] [--churn 0.01]

A synthetic catalogue without media (metadata + int8 rows: random unit embeddings, the
committed fixture bundle's students, priors from synthetic plays) is written as the day-0
bundle and installed in a device store. Each day ``--churn`` of the items expire and as many new
ones arrive (some items also get a new availability window); the server writes the (unsigned)
delta (`export.delta.build_delta`, the new items embedded by the fixture's fusion student from
their text), the device applies it (`BundleStore.apply_delta`: rebuild, full verification,
smoke query, pointer switch). Reported per day: delta bytes, full bundle archive bytes, server
build seconds, device apply seconds. At the end the store's active catalogue is compared, byte
for byte and by recommendations, with a full bundle of the final catalogue written
independently (surviving rows kept, new items embedded afresh, priors renumbered by id).

Writes benchmarks/results/catalogue_delta-<host>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

T0 = 1_750_000_000
FIXTURE = ROOT.parent / "tests" / "fixtures" / "device_bundle"
CATALOGUE_FILES = ("catalog/items.npz", "catalog/embeddings_int8.npy", "catalog/scales.npy", "catalog/priors.json")


def synthetic_items(n: int, start: int, rng: np.random.Generator) -> list:
    """``n`` media-less items with ids ``s<start>..``: title, tags, kind, duration, age, window."""
    from export.data.contract import Item

    genres = ["news", "drama", "music", "kids", "sport", "documentary", "comedy", "quiz"]
    return [Item(f"s{start + i:07d}", f"Programme {start + i} {genres[(start + i) % 8]}", (genres[int(rng.integers(8))],),
                 "audio" if (start + i) % 3 == 0 else "video", float(rng.integers(60, 3600)), age_rating=int(rng.choice([0, 7, 12, 18])),
                 available_until=T0 + int(rng.integers(1, 90)) * 86400)
            for i in range(n)]


def recommendations(bundle_or_store: Path, db: Path) -> list:
    """Top-20 for a profile with a few plays, and top-10 for a cold guest, at a fixed time."""
    from edge.context import Context
    from edge.recommender import Recommender

    with Recommender.open(bundle_or_store, db) as rec:
        ids = rec.bundle.items.item_ids
        for j in range(8):
            rec.record("ann", ids[(j * 7919) % len(ids)], "complete", timestamp=T0 + 60 * j)
        ctx = Context(hour=20, weekday=2, device="tv")
        return [[(r.item_id, round(r.score, 6)) for r in rec.recommend(p, k=k, context=ctx, timestamp=T0 + 3600)]
                for p, k in (("ann", 20), ("guest", 10))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000, help="catalogue size (default 100000)")
    ap.add_argument("--days", type=int, default=30, help="days of churn, one delta each (default 30)")
    ap.add_argument("--churn", type=float, default=0.01, help="share of the catalogue expiring, and arriving, per day (default 0.01)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--out", default=str(ROOT / "results" / f"catalogue_delta-{platform.node() or 'host'}.json"), help="JSON output")
    args = ap.parse_args()

    from edge.bench import host_info
    from edge.bundle import Bundle
    from edge.bundle.store import BundleStore
    from export.bundle import popularity_priors, write_bundle
    from export.delta import build_delta, full_bundle

    rng = np.random.default_rng(args.seed)
    fixture = Bundle.open(FIXTURE)
    per_day = max(1, round(args.items * args.churn))
    with tempfile.TemporaryDirectory(prefix="edgerec-delta-") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        catalogue = synthetic_items(args.items, 0, rng)
        emb = rng.standard_normal((args.items, fixture.embedding_dim)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        models = {name: fixture.model_paths(name) for name in ("interest", "fusion")}
        inputs = {name: fixture.manifest["models"][name]["inputs"] for name in ("interest", "fusion")}
        plays = rng.integers(0, args.items, 20 * args.items)
        priors = popularity_priors(plays, T0 + rng.integers(0, 86400 * 28, len(plays)), args.items, [it.kind for it in catalogue])
        base = write_bundle(tmp / "day0", catalogue, emb, models, inputs, priors, fixture.feature_spec, fixture.history_len, version=1_000)
        store = BundleStore(tmp / "store")
        store.install(base)
        print(f"day-0 bundle of {args.items:,} items written and installed in {time.perf_counter() - t:.1f} s", flush=True)
        current, next_id, days = base, args.items, []
        for day in range(1, args.days + 1):
            gone = set(rng.choice(len(catalogue), size=per_day, replace=False).tolist())
            catalogue = [it for j, it in enumerate(catalogue) if j not in gone] + synthetic_items(per_day, next_id, rng)
            next_id += per_day
            for j in rng.choice(len(catalogue), size=per_day // 10, replace=False).tolist():  # rescheduled items
                catalogue[j] = dataclasses.replace(catalogue[j], available_from=T0 + day * 86400)
            t = time.perf_counter()
            d = build_delta(current, catalogue, tmp / f"day{day}.tar", version=1_000 + day, target=tmp / f"day{day}.bundle")
            built = time.perf_counter() - t
            t = time.perf_counter()
            store.apply_delta(d.delta)
            applied = time.perf_counter() - t
            days.append({"day": day, "removed": d.removed, "added": d.added, "changed": d.changed, "delta_bytes": d.delta_bytes,
                         "full_bundle_bytes": d.target_bytes, "build_s": built, "apply_s": applied})
            print(f"day {day:>2}: -{d.removed} +{d.added} ~{d.changed}: delta {d.delta_bytes / 1024:.0f} KiB, full "
                  f"{d.target_bytes / 2**20:.2f} MiB ({d.delta_bytes / d.target_bytes:.1%}); build {built:.2f} s, apply {applied:.2f} s", flush=True)
            if day > 2:  # keep the disk small: only the newest bundles are read again
                shutil.rmtree(tmp / f"day{day - 2}.bundle", ignore_errors=True)
                for old in (tmp / f"day{day - 2}.bundle.tar", tmp / f"day{day - 2}.tar"):
                    old.unlink(missing_ok=True)
            current = d.target
        active = store.current()
        full = full_bundle(base, catalogue, tmp / "full", version=4_000_000_000)
        same_files = {rel: (active / rel).read_bytes() == (full / rel).read_bytes() for rel in CATALOGUE_FILES}
        same_recs = recommendations(tmp / "store", tmp / "a.db") == recommendations(full, tmp / "b.db")
    apply = np.array([d["apply_s"] for d in days])
    build = np.array([d["build_s"] for d in days])
    ratio = np.array([d["delta_bytes"] / d["full_bundle_bytes"] for d in days])
    summary = {"delta_bytes_median": float(np.median([d["delta_bytes"] for d in days])),
               "full_bundle_bytes_median": float(np.median([d["full_bundle_bytes"] for d in days])),
               "delta_over_full_median": float(np.median(ratio)), "delta_over_full_max": float(ratio.max()),
               "apply_s_median": float(np.median(apply)), "apply_s_p95": float(np.percentile(apply, 95)),
               "build_s_median": float(np.median(build)), "build_s_p95": float(np.percentile(build, 95)),
               "final_catalogue_files_identical": all(same_files.values()), "final_recommendations_identical": same_recs}
    print("\n| items | days | churn/day | delta KiB (median) | full bundle MiB | delta / full | apply s median / p95 | build s median / p95 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {args.items:,} | {args.days} | {per_day} out, {per_day} in | {summary['delta_bytes_median'] / 1024:.0f} | "
          f"{summary['full_bundle_bytes_median'] / 2**20:.2f} | {summary['delta_over_full_median']:.1%} | "
          f"{summary['apply_s_median']:.2f} / {summary['apply_s_p95']:.2f} | {summary['build_s_median']:.2f} / {summary['build_s_p95']:.2f} |")
    print(f"\nafter {args.days} deltas: catalogue files identical to the full bundle: {same_files}; recommendations identical: {same_recs}")
    result = {"benchmark": "catalogue_delta", "command": f"python benchmarks/catalogue_delta.py --items {args.items} --days {args.days} "
              f"--churn {args.churn} --seed {args.seed}", "host": host_info(), "threads": 1, "summary": summary, "days": days}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0 if summary["final_catalogue_files_identical"] and same_recs else 1


if __name__ == "__main__":
    raise SystemExit(main())
