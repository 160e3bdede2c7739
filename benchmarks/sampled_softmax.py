"""Full softmax against sampled softmax (with and without logQ correction) for the teacher,
on one dataset, over seeds, in the same run.

    python benchmarks/sampled_softmax.py [movielens|amazon|demo] [--seeds 2] [--share 0.25]

The sampled runs keep `share` of the catalogue as `max_candidates` (so a step scores the
batch's items plus share/2 of the catalogue drawn uniformly); everything else (steps, batch,
seed, model) is the data-fitted default. Reports the teacher's test NDCG@10 / HR@10 (the
pipeline's leave-last-out protocol), a paired bootstrap of each sampled variant against full
softmax on seed-averaged per-user NDCG@10, candidates per step and training time. Writes
benchmarks/results/sampled_softmax_<dataset>-<host>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", nargs="?", default="movielens", choices=["movielens", "amazon", "demo"])
    ap.add_argument("--data", help="dataset folder (default: ../shared/datasets/...)")
    ap.add_argument("--seeds", type=int, default=2, help="seeds per variant (default 2)")
    ap.add_argument("--share", type=float, default=0.25, help="max_candidates as a share of the catalogue (default 0.25)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--out", help="JSON output (default benchmarks/results/sampled_softmax_<dataset>-<host>.json)")
    args = ap.parse_args()
    from quality import load

    from edge.bench import host_info
    from export.config import BuildConfig, TeacherConfig
    from export.evaluate import evaluate
    from export.evaluate.scorers import TeacherScorer
    from export.evaluate.stats import paired_bootstrap
    from export.pipeline import Work
    from export.sequences import user_events
    from export.train import train_teacher

    rows, per_user = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        ds = load(args.dataset, args.data, Path(tmp))
        w = Work(Path(tmp) / "work", ds, BuildConfig(progress=False))
        feats = w.teacher_features()
        events = user_events(w.split)
        n_items = len(ds.items)
        cap = max(2, int(args.share * n_items))
        variants = {"full softmax": {}, "sampled, logQ": {"max_candidates": cap, "logq": True},
                    "sampled, no correction": {"max_candidates": cap, "logq": False}}
        for name, change in variants.items():
            for seed in range(args.seeds):
                cfg = dataclasses.replace(TeacherConfig(threads=args.threads, seed=seed), **change)
                model, log = train_teacher(events, ds.items, feats, cfg, progress=True)
                table = model.item_table().numpy()
                report = evaluate([TeacherScorer(model, table, events, name)], w.split)
                r = report.rows[0]
                rows.append({"variant": name, "seed": seed, "ndcg@10": r["ndcg@10"], "hr@10": r["hr@10"],
                             "mean_candidates": log["mean_candidates"], "train_s": log["train_s"], "steps": log["steps"]})
                per_user.setdefault(name, []).append(report.per_user[name])
                print(f"{name:24s} seed {seed}: NDCG@10 {r['ndcg@10']:.4f}, {log['mean_candidates']:.0f} candidates/step, "
                      f"{log['train_s']:.0f} s", flush=True)
    summary = {}
    full = np.mean(per_user["full softmax"], axis=0)
    for name in variants:
        vals = [r["ndcg@10"] for r in rows if r["variant"] == name]
        summary[name] = {"ndcg@10_mean": float(np.mean(vals)), "ndcg@10_sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                         "mean_candidates": float(np.mean([r["mean_candidates"] for r in rows if r["variant"] == name])),
                         "train_s_mean": float(np.mean([r["train_s"] for r in rows if r["variant"] == name]))}
        if name != "full softmax":
            summary[name]["vs_full"] = paired_bootstrap(np.mean(per_user[name], axis=0), full, seed=0)
    print(f"\n{args.dataset}: {n_items} items, sampled runs keep max_candidates = {cap}; {args.seeds} seeds\n")
    print("| teacher loss | NDCG@10 mean ± sd | candidates / step | train s | vs full (ratio [95% CI]) |\n| --- | --- | --- | --- | --- |")
    for name, s in summary.items():
        vs = s.get("vs_full")
        ci = f"{vs['ratio']:.3f} [{vs['ratio_lo']:.3f}, {vs['ratio_hi']:.3f}]" if vs else "-"
        print(f"| {name} | {s['ndcg@10_mean']:.4f} ± {s['ndcg@10_sd']:.4f} | {s['mean_candidates']:.0f} | {s['train_s_mean']:.0f} | {ci} |")
    out = Path(args.out or ROOT / "results" / f"sampled_softmax_{args.dataset}-{platform.node() or 'host'}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "sampled_softmax", "command": f"python benchmarks/sampled_softmax.py {args.dataset} "
                               f"--seeds {args.seeds} --share {args.share} --threads {args.threads}", "host": host_info(),
                               "dataset": args.dataset, "n_items": n_items, "max_candidates": cap, "rows": rows, "summary": summary},
                              indent=2, default=float))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
