"""Per-call latency and size of the students, every exported variant side by side in one run:
fusion and interest, fp32 and int8, onnxruntime and the TFLite interpreter, one thread, batch 1
(a device asks for one user or one new item at a time).

    python benchmarks/students_latency.py --work BUNDLE.work [--calls 2000]

``--work`` is the work folder of an ``edgerec pipeline build`` (its ``models/`` holds every
variant). Writes benchmarks/results/students_latency-<host>.json. Targets (issue 5): fusion
student <= 50 us and interest student <= 200 us per call on one x86 thread; both students
together <= 1 MB on disk.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from edge.backends import load_model
from edge.context import CONTEXT_DIM

ROOT = Path(__file__).resolve().parent
INPUTS = {"interest": ["history", "mask", "context"], "fusion": ["features"]}


def _inputs(name: str, model_dir: Path, rng: np.random.Generator, history_len: int, dim: int, feature_dim: int) -> dict[str, np.ndarray]:
    if name == "fusion":
        return {"features": rng.standard_normal((1, feature_dim)).astype(np.float32)}
    hist = rng.standard_normal((1, history_len, dim)).astype(np.float32)
    hist /= np.linalg.norm(hist, axis=-1, keepdims=True)
    mask = np.ones((1, history_len), np.float32)
    mask[0, : history_len // 3] = 0.0
    hist[0, : history_len // 3] = 0.0
    return {"history": hist, "mask": mask, "context": rng.standard_normal((1, CONTEXT_DIM)).astype(np.float32)}


def time_calls(model, feed: dict[str, np.ndarray], calls: int) -> np.ndarray:
    """Seconds per call over ``calls`` runs after a warm-up."""
    for _ in range(50):
        model.run(feed)
    out = np.empty(calls)
    for i in range(calls):
        t = time.perf_counter()
        model.run(feed)
        out[i] = time.perf_counter() - t
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="work folder of an export build")
    ap.add_argument("--calls", type=int, default=2000, help="timed calls per variant (default 2000)")
    ap.add_argument("--out", default=str(ROOT / "results" / f"students_latency-{platform.node() or 'host'}.json"), help="JSON output")
    args = ap.parse_args()
    work = Path(args.work)
    models = work / "models"
    feats = np.load(work / "features.npy", mmap_mode="r")
    table = np.load(work / "teacher_items.npy", mmap_mode="r")
    report = json.loads((work / "report.json").read_text())
    history_len = report["build_config"]["student"]["history_len"]
    rng = np.random.default_rng(0)
    rows = []
    for name in ("fusion", "interest"):
        feed = _inputs(name, models, rng, history_len, table.shape[1], feats.shape[1])
        for precision in ("fp32", "int8"):
            for backend in ("onnx", "tflite"):
                path = models / f"{name}.{precision}.{backend}"
                m = load_model({backend: path}, [backend], threads=1, input_names=INPUTS[name])
                t = time_calls(m, feed, args.calls) * 1e6
                rows.append({"model": name, "precision": precision, "backend": backend, "bytes": path.stat().st_size,
                             "p50_us": float(np.percentile(t, 50)), "p95_us": float(np.percentile(t, 95)),
                             "p99_us": float(np.percentile(t, 99)), "mean_us": float(t.mean())})
    print(f"{'model':<9} {'precision':<9} {'backend':<7} {'KiB':>7} {'p50 us':>8} {'p95 us':>8} {'p99 us':>8}")
    for r in rows:
        print(f"{r['model']:<9} {r['precision']:<9} {r['backend']:<7} {r['bytes'] / 1024:7.1f} {r['p50_us']:8.1f} {r['p95_us']:8.1f} {r['p99_us']:8.1f}")
    int8_bytes = sum(r["bytes"] for r in rows if r["precision"] == "int8")
    print(f"\nint8 students, both backends: {int8_bytes / 1024:.1f} KiB")
    from edge.bench import host_info

    result = {
        "benchmark": "students_latency",
        "command": f"python benchmarks/students_latency.py --work {args.work} --calls {args.calls}",
        "host": host_info(),
        "threads": 1,
        "batch": 1,
        "rows": rows,
        "int8_students_bytes": int8_bytes,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
