"""Quality on MovieLens-100K: the exported bundle (run through the device runtime) against
popularity, item-kNN, EASE and ALS (implicit) in the same run, under `edgerec eval`'s protocol.

    python benchmarks/quality_movielens.py [--steps 800] [--data ../shared/datasets/movielens-100k]

Writes benchmarks/results/quality_movielens-<host>.json. Needs the `export` and `dev` extras.
MovieLens is read where it lies and never copied: the bundle goes to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from export.bundle_scorer import BundleScorer
from export.data.movielens import load_movielens
from export.data.split import LeaveLastOut
from export.evaluate import default_baselines, evaluate
from export.pipeline import build_bundle
from export.train import TrainConfig

ROOT = Path(__file__).resolve().parent


class ALSScorer:
    """implicit's ALS as a peer baseline (64 factors, as in the issue's reference)."""

    name = "als (implicit)"

    def __init__(self, factors: int = 64, iterations: int = 15, seed: int = 0) -> None:
        self.factors, self.iterations, self.seed = factors, iterations, seed

    def fit(self, split: LeaveLastOut) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        # implicit parallelises itself and asks for a single-threaded BLAS underneath; it checks
        # the BLAS configuration when the model is constructed.
        with threadpool_limits(1, "blas"):
            self.model = AlternatingLeastSquares(factors=self.factors, iterations=self.iterations, random_state=self.seed)
            self.model.fit(split.train.tocsr(), show_progress=False)

    def score(self, users: np.ndarray) -> np.ndarray:
        return (self.model.user_factors[users] @ self.model.item_factors.T).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parents[1] / "shared" / "datasets" / "movielens-100k"), help="MovieLens-100K folder")
    ap.add_argument("--steps", type=int, default=800, help="training steps for the bundle (default 800)")
    ap.add_argument("--out", default=str(ROOT / "results" / f"quality_movielens-{platform.node() or 'host'}.json"), help="JSON output")
    args = ap.parse_args()
    ds = load_movielens(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        built = build_bundle(ds, Path(tmp) / "bundle", TrainConfig(steps=args.steps))
        build_s = time.perf_counter() - t
        report = evaluate([BundleScorer(built.bundle, "onnx"), BundleScorer(built.bundle, "tflite"), *default_baselines(), ALSScorer()], built.split)
    print(report.format_table())
    result = {
        "benchmark": "quality_movielens",
        "command": f"python benchmarks/quality_movielens.py --steps {args.steps}",
        "host": {"machine": platform.machine(), "processor": platform.processor(), "python": platform.python_version()},
        "build_s": build_s,
        "build_timings": built.timings,
        **report.to_json(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
