"""The teacher trained on 1 process and on N processes (DistributedDataParallel, gloo on CPU,
torchelastic on loopback) on the same data, over seeds, in the same run: quality (within noise
of each other?) and steps per second.

    python benchmarks/distributed_training.py [movielens|amazon|demo] [--nproc 2] [--seeds 3] [--threads 2]

The single process gets all `--threads`; the N processes share them (threads // N each), so
both use the same cores. The global batch is the same (each rank takes batch / N rows from its
own shard of users). Reports the teacher's test NDCG@10 / HR@10 (leave-last-out), a paired
bootstrap of N processes against 1 on seed-averaged per-user NDCG@10, and steps/s. Writes
benchmarks/results/distributed_training_<dataset>-<host>.json.
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


def train_and_score(dataset: str, data: str | None, work: str, seed: int, threads: int) -> dict | None:
    """One rank: join the group (if any), train the teacher, rank 0 scores it."""
    from export import distributed

    group = distributed.init_from_env()
    with distributed.membership(group):
        return _train_and_score(group, dataset, data, work, seed, threads)


def _train_and_score(group, dataset: str, data: str | None, work: str, seed: int, threads: int) -> dict | None:
    from quality import load

    from export import distributed
    from export.config import BuildConfig, TeacherConfig
    from export.evaluate import evaluate
    from export.evaluate.scorers import TeacherScorer
    from export.pipeline import Work
    from export.sequences import user_events
    from export.train import train_teacher

    ds = load(dataset, data, Path(work))
    w = Work(Path(work) / "work", ds, BuildConfig(progress=False))
    feats = w.teacher_features()  # cached by the parent before the launch
    events = user_events(w.split)
    cfg = TeacherConfig(threads=distributed.threads_per_rank(threads) if group.active else threads, seed=seed)
    model, log = train_teacher(events, ds.items, feats, cfg, progress=False)
    if not group.is_main:
        return None
    table = model.item_table().numpy()
    with distributed.alone():
        report = evaluate([TeacherScorer(model, table, events, "teacher")], w.split)
    r = report.rows[0]
    return {"seed": seed, "processes": group.world, "ndcg@10": r["ndcg@10"], "hr@10": r["hr@10"], "steps": log["steps"],
            "steps_per_s": log["steps_per_s"], "train_s": log["train_s"], "per_user": report.per_user["teacher"].tolist()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", nargs="?", default="movielens", choices=["movielens", "amazon", "demo"])
    ap.add_argument("--data", help="dataset folder (default: ../shared/datasets/...)")
    ap.add_argument("--nproc", type=int, default=2, help="processes of the distributed runs (default 2)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per setting (default 3)")
    ap.add_argument("--threads", type=int, default=2, help="threads in all, shared by the processes (default 2)")
    ap.add_argument("--out", help="JSON output (default benchmarks/results/distributed_training_<dataset>-<host>.json)")
    args = ap.parse_args()
    from quality import load

    from edge.bench import host_info
    from export.config import BuildConfig
    from export.distributed import launch
    from export.evaluate.stats import paired_bootstrap
    from export.pipeline import Work

    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        Work(Path(tmp) / "work", load(args.dataset, args.data, Path(tmp)), BuildConfig(progress=False)).teacher_features()
        for seed in range(args.seeds):
            for nproc in (1, args.nproc):
                if nproc == 1:
                    r = train_and_score(args.dataset, args.data, tmp, seed, args.threads)
                else:
                    r = launch(nproc, train_and_score, args.dataset, args.data, tmp, seed, args.threads)[0]
                runs.append(r)
                print(f"seed {seed}, {nproc} process(es): NDCG@10 {r['ndcg@10']:.4f}, {r['steps_per_s']:.2f} steps/s", flush=True)
    summary = {}
    for nproc in (1, args.nproc):
        mine = [r for r in runs if r["processes"] == nproc]
        nd = [r["ndcg@10"] for r in mine]
        summary[str(nproc)] = {"ndcg@10_mean": float(np.mean(nd)), "ndcg@10_sd": float(np.std(nd, ddof=1)) if len(nd) > 1 else 0.0,
                               "steps_per_s_mean": float(np.mean([r["steps_per_s"] for r in mine])),
                               "per_user": np.mean([r["per_user"] for r in mine], axis=0)}
    vs = paired_bootstrap(summary[str(args.nproc)]["per_user"], summary["1"]["per_user"], seed=0)
    print(f"\n{args.dataset}, {args.seeds} seeds, {args.threads} threads in all\n")
    print("| processes | teacher NDCG@10 mean ± sd | steps/s |\n| --- | --- | --- |")
    for nproc, s in summary.items():
        print(f"| {nproc} | {s['ndcg@10_mean']:.4f} ± {s['ndcg@10_sd']:.4f} | {s['steps_per_s_mean']:.2f} |")
    print(f"\n{args.nproc} processes / 1 (NDCG@10): {vs['ratio']:.3f} [{vs['ratio_lo']:.3f}, {vs['ratio_hi']:.3f}]")
    for s in summary.values():
        del s["per_user"]
    for r in runs:
        del r["per_user"]
    out = Path(args.out or ROOT / "results" / f"distributed_training_{args.dataset}-{platform.node() or 'host'}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "distributed_training", "command": f"python benchmarks/distributed_training.py {args.dataset} "
                               f"--nproc {args.nproc} --seeds {args.seeds} --threads {args.threads}", "host": host_info(),
                               "runs": runs, "summary": summary, f"{args.nproc}_vs_1": vs}, indent=2, default=float))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
