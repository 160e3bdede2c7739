"""Quality on MovieLens-100K: a full `edgerec pipeline build` (teacher, students, int8 ONNX and
TFLite) against popularity, item-kNN, EASE and ALS (implicit) in the same run, under `edgerec
eval`'s protocol; then the written bundle re-scored through the device runtime (edge.bundle).

    python benchmarks/quality_movielens.py [--steps 2500] [--data ../shared/datasets/movielens-100k]

Writes benchmarks/results/quality_movielens-<host>.json with the whole model card. Needs the
`export` and `dev` extras. MovieLens is read where it lies and never copied: the bundle and the
work folder go to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from export.evaluate.scorers import BundleScorer
from export.data.movielens import load_movielens
from export.evaluate import evaluate
from export.model_card import format_card
from export.config import BuildConfig, StudentConfig, TeacherConfig
from export.pipeline import build

ROOT = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parents[1] / "shared" / "datasets" / "movielens-100k"), help="MovieLens-100K folder")
    ap.add_argument("--steps", type=int, default=None, help="teacher steps (default: from the data)")
    ap.add_argument("--student-steps", type=int, default=StudentConfig.interest_steps, help="steps per student")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="torch threads (default: all cores)")
    ap.add_argument("--out", default=str(ROOT / "results" / f"quality_movielens-{platform.node() or 'host'}.json"), help="JSON output")
    args = ap.parse_args()
    ds = load_movielens(args.data)
    cfg = BuildConfig(teacher=TeacherConfig(steps=args.steps, threads=args.threads),
                      student=StudentConfig(fusion_steps=args.student_steps, interest_steps=args.student_steps, threads=args.threads),
                      workers=args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        built = build(ds, Path(tmp) / "bundle", Path(tmp) / "work", cfg, say=lambda m: print(f"  [{m}]", flush=True))
        build_s = time.perf_counter() - t
        device = evaluate([BundleScorer(built.bundle, "onnx"), BundleScorer(built.bundle, "tflite")], built.split)
    print(format_card(built.report))
    print(f"\nbuild: {build_s:.0f} s on {args.threads} threads\n\nthe written bundle through edge.bundle + backends:")
    print(device.format_table())
    result = {
        "benchmark": "quality_movielens",
        "command": f"python benchmarks/quality_movielens.py --steps {args.steps} --student-steps {args.student_steps}",
        "host": {"machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "build_s": build_s,
        "model_card": built.report,
        "device_path": device.to_json(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=float))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
