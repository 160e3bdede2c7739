"""Quality of a whole build over seeds, against peers trained in the same run.

For each seed: `edgerec pipeline build` (teacher, students, int8 ONNX/TFLite, cold-item probe),
whose quality stage tunes every peer on the validation target and scores the test target once.
Then across seeds: mean +- sd of every row, a paired bootstrap (over users) of the int8 student
against the best peer on seed-averaged per-user NDCG@10, and the issue's targets checked.

    python benchmarks/quality.py movielens [--seeds 3] [--sasrec-steps 12000]
    python benchmarks/quality.py amazon    [--seeds 1]
    python benchmarks/quality.py demo      [--seeds 3]

(`quality_movielens.py`, `quality_amazon.py` and `quality_demo.py` are the same with the dataset
fixed.) Writes benchmarks/results/quality_<dataset>-<host>.json and prints a table. The rating
data is read where it lies and never copied: bundles and work folders go to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parents[1] / "shared" / "datasets"
STUDENT = "student int8 (onnx)"
COLD_STUDENT = "fusion student (content only) + teacher user vector"
COLD_BASELINE = "content-only baseline (cosine of raw features)"


def load(dataset: str, data: str | None, work: Path):
    """The dataset by name (the data contract)."""
    if dataset == "movielens":
        from export.data.movielens import load_movielens

        return load_movielens(data or SHARED / "movielens-100k")
    if dataset == "amazon":
        from export.data.amazon import load_amazon

        return load_amazon(data or SHARED / "amazon-sports")
    if dataset == "demo":
        from export.data.contract import load_dataset
        from export.data.synthetic import generate_demo

        d = generate_demo(work / "demo-data", seed=0)
        return load_dataset(d.interactions_csv, d.items_csv)
    raise SystemExit(f"unknown dataset {dataset!r}")


def mean_sd(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def main(argv: list[str] | None = None, dataset: str | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    if dataset is None:
        ap.add_argument("dataset", choices=["movielens", "amazon", "demo"])
    ap.add_argument("--data", help="dataset folder (default: ../shared/datasets/...)")
    ap.add_argument("--seeds", type=int, default=3, help="builds, seeds 0..N-1 (default 3)")
    ap.add_argument("--sasrec-steps", type=int, default=0, help="train a SASRec peer this many steps in each build (default 0: off)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="threads (default: all cores)")
    ap.add_argument("--text-model", help="the teacher's text model (as in export build; default: a small BERT from scratch)")
    ap.add_argument("--out", help="JSON output (default benchmarks/results/quality_<dataset>-<host>.json)")
    args = ap.parse_args(argv)
    passed = argv if argv is not None else sys.argv[1 + (dataset is None):]  # the options, without the dataset
    dataset = dataset or args.dataset
    out = Path(args.out or ROOT / "results" / f"quality_{dataset}-{platform.node() or 'host'}.json")

    from export.config import BuildConfig, StudentConfig, TeacherConfig
    from export.evaluate.stats import paired_bootstrap
    from export.pipeline import build

    per_seed, per_user, cold_rows = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        ds = load(dataset, args.data, Path(tmp))
        for seed in range(args.seeds):
            cfg = BuildConfig(teacher=TeacherConfig(threads=args.threads, seed=seed, text_model=args.text_model),
                              student=StudentConfig(threads=args.threads, seed=seed),
                              workers=args.threads, sasrec_steps=args.sasrec_steps, export_teacher=False)
            t = time.perf_counter()
            res = build(ds, Path(tmp) / f"bundle{seed}", Path(tmp) / f"work{seed}", cfg, say=lambda m: print(f"  [seed {seed}] {m}", flush=True))
            build_s = time.perf_counter() - t
            rows = {r["model"]: r for r in res.report["quality"]["rows"]}
            rows["teacher"] = res.report["teacher"]["quality"]
            per_seed.append({"seed": seed, "build_s": build_s, "rows": rows, "timings": res.timings,
                             "teacher_log": res.report["teacher"]["log"], "tuning": res.report["quality"].get("tuning"),
                             "comparison": res.report["quality"].get("comparison"), "cold_items": res.report.get("cold_items")})
            with np.load(res.work / "per_user_ndcg.npz") as z:
                per_user.append({k: z[k] for k in z.files})
            cold_rows.append({r["model"]: r["ndcg@10"] for r in (res.report.get("cold_items") or {}).get("rows", [])})
            print(f"  [seed {seed}] build {build_s:.0f} s, {STUDENT} ndcg@10 {rows[STUDENT]['ndcg@10']:.4f}", flush=True)

    names = list(per_seed[0]["rows"])
    summary = {}
    for name in names:
        n_m, n_s = mean_sd([s["rows"][name]["ndcg@10"] for s in per_seed])
        h_m, h_s = mean_sd([s["rows"][name]["hr@10"] for s in per_seed])
        summary[name] = {"ndcg@10": n_m, "ndcg@10_sd": n_s, "hr@10": h_m, "hr@10_sd": h_s}
    students = {STUDENT, "student fp32 (PyTorch)", "student int8 (tflite)", "teacher"}
    peers = [n for n in names if n not in students]
    best = max(peers, key=lambda n: summary[n]["ndcg@10"])
    comp = paired_bootstrap(np.mean([u[STUDENT] for u in per_user], 0), np.mean([u[best] for u in per_user], 0))
    cold = {}
    for name in (cold_rows[0] if cold_rows and cold_rows[0] else {}):
        m, s = mean_sd([c[name] for c in cold_rows])
        cold[name] = {"ndcg@10": m, "ndcg@10_sd": s}
    targets = {"student_vs_best_peer": comp["ratio"], "student_vs_teacher": summary[STUDENT]["ndcg@10"] / summary["teacher"]["ndcg@10"]}
    if "sasrec" in summary:
        targets["student_vs_sasrec"] = summary[STUDENT]["ndcg@10"] / summary["sasrec"]["ndcg@10"]
    if cold:
        targets["cold_student_vs_raw_features"] = cold[COLD_STUDENT]["ndcg@10"] / cold[COLD_BASELINE]["ndcg@10"]

    print(f"\n{dataset}: {args.seeds} seed(s), mean ± sd")
    width = max(len(n) for n in names)
    for name in names:
        r = summary[name]
        print(f"  {name.ljust(width)}  NDCG@10 {r['ndcg@10']:.4f} ± {r['ndcg@10_sd']:.4f}   HR@10 {r['hr@10']:.4f} ± {r['hr@10_sd']:.4f}")
    print(f"  {STUDENT} vs {best}: ratio {comp['ratio']:.2f} [{comp['ratio_lo']:.2f}, {comp['ratio_hi']:.2f}] (95%, paired bootstrap over {comp['n_users']} users)")
    for name, r in cold.items():
        print(f"  cold items: {name.ljust(56)} NDCG@10 {r['ndcg@10']:.4f} ± {r['ndcg@10_sd']:.4f}")
    print("  ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in targets.items()))

    result = {
        "benchmark": f"quality_{dataset}",
        "command": " ".join([f"python benchmarks/quality.py {dataset}", *passed]),
        "host": {"machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "seeds": list(range(args.seeds)), "summary": summary, "best_peer": best, "comparison": comp, "cold_items": cold,
        "ratios": targets, "per_seed": per_seed,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
