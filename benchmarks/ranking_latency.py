"""Device ranking on a 100,000-item catalogue: `Recommender.recommend()` latency with a
200-event history on one thread, the int8 scoring core against faiss `IndexFlatIP` over the same
vectors in the same run, memory of the int8 catalogue against float32, process start to first
recommendation, and steady RSS.

    python benchmarks/ranking_latency.py [--items 100000] [--calls 500]

Builds a synthetic bundle (random unit item vectors, untrained students of the real
architecture: latency does not depend on the weights) in a temporary folder. Needs the `export`
extra (to write the bundle) and the `dev` extra (faiss). Writes
benchmarks/results/ranking_latency-<host>.json. Targets (issue 6): recommend() p99 <= 5 ms;
scoring core <= 1.2x faiss top-10; int8 catalogue <= 0.3x float32 memory; start to first
recommendation <= 0.5 s; steady RSS <= 120 MB.
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

_CHILD = r"""
import sys, time, json
t0 = time.perf_counter()
from edge.recommender import Recommender
from edge.context import Context
rec = Recommender.open(sys.argv[1], sys.argv[2])
recs = rec.recommend("bench", k=10, context=Context.at(1_750_000_000))
first = time.perf_counter() - t0
for _ in range(200):
    rec.recommend("bench", k=10, context=Context.at(1_750_000_000))
status = dict(l.split(":", 1) for l in open("/proc/self/status") if l.startswith(("VmRSS", "VmHWM")))
print(json.dumps({"first_s": first, "rss_mb": int(status["VmRSS"].split()[0]) / 1024, "hwm_mb": int(status["VmHWM"].split()[0]) / 1024}))
"""


def make_bundle(out: Path, n_items: int, dim: int = 64, seed: int = 0, items: list | None = None) -> Path:
    """A bundle with ``n_items`` random unit vectors and untrained students (``items``: the
    catalogue's :class:`export.data.contract.Item` list, default plain tagged items)."""
    import torch

    from edge.features import FeatureSpec
    from export.bundle import write_bundle
    from export.convert import export_onnx, export_tflite
    from export.data.contract import Item
    from export.config import StudentConfig
    from export.models.students import FusionStudent, InterestStudent

    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n_items, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    kinds = ["audio" if i % 3 == 0 else "video" for i in range(n_items)]
    items = items or [Item(f"i{i:06d}", f"Item {i}", (f"tag{i % 50}",), kinds[i], 60.0) for i in range(n_items)]
    spec, cfg = FeatureSpec(), StudentConfig(dim=dim)
    torch.manual_seed(seed)
    interest, fusion = InterestStudent(cfg).eval(), FusionStudent(spec.item_dim, cfg).eval()
    ex_i = {"history": torch.zeros(1, cfg.history_len, dim), "mask": torch.ones(1, cfg.history_len), "context": torch.zeros(1, 5)}
    ex_f = {"features": torch.zeros(1, spec.item_dim)}
    scratch = out.parent / "models"
    models = {
        "interest": {"onnx": export_onnx(interest, ex_i, scratch / "interest.onnx"), "tflite": export_tflite(interest, ex_i, scratch / "interest.tflite")},
        "fusion": {"onnx": export_onnx(fusion, ex_f, scratch / "fusion.onnx"), "tflite": export_tflite(fusion, ex_f, scratch / "fusion.tflite")},
    }
    priors = {"global": [[i, 1.0 / (i + 1)] for i in range(200)], "by_hour": {}}
    return write_bundle(out, items, emb, models, {"interest": list(ex_i), "fusion": list(ex_f)}, priors, spec, cfg.history_len)


def pct(values: list[float] | np.ndarray) -> dict[str, float]:
    v = np.asarray(values) * 1000
    return {"p50_ms": float(np.percentile(v, 50)), "p95_ms": float(np.percentile(v, 95)), "p99_ms": float(np.percentile(v, 99)), "mean_ms": float(v.mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000, help="catalogue size (default 100000)")
    ap.add_argument("--calls", type=int, default=500, help="timed calls per measurement (default 500)")
    ap.add_argument("--out", default=str(ROOT / "results" / f"ranking_latency-{platform.node() or 'host'}.json"), help="JSON output")
    args = ap.parse_args()
    import faiss

    from edge.bundle import Bundle
    from edge.context import Context
    from edge.history import Event
    from edge.ranking import Int8Scorer, score_int8, top_k
    from edge.recommender import Recommender

    faiss.omp_set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        bundle = make_bundle(Path(tmp) / "bundle", args.items)
        print(f"bundle with {args.items} items written in {time.perf_counter() - t:.1f} s")
        db = Path(tmp) / "history.db"
        rec = Recommender.open(bundle, db, threads=1)
        rng = np.random.default_rng(1)
        ids = [rec.bundle.items[int(r)].item_id for r in rng.choice(args.items, 200, replace=False)]
        rec.history.add_profile("bench")
        kinds = rng.choice(["play", "complete", "skip", "like"], size=200, p=[0.5, 0.3, 0.15, 0.05])
        rec.history.record_many([Event("bench", i, str(k), 1_749_000_000 + n * 60.0) for n, (i, k) in enumerate(zip(ids, kinds))])
        ctx = Context.at(1_750_000_000)
        for _ in range(20):
            rec.recommend("bench", 10, ctx)
        stages: dict[str, list[float]] = {}
        totals = []
        for _ in range(args.calls):
            t = time.perf_counter()
            rec.recommend("bench", 10, ctx)
            totals.append(time.perf_counter() - t)
            for key, v in rec.timings.items():
                stages.setdefault(key, []).append(v)

        b: Bundle = rec.bundle
        floats = b.item_embeddings()
        index = faiss.IndexFlatIP(b.embedding_dim)
        index.add(floats)
        users = rng.standard_normal((args.calls, b.embedding_dim)).astype(np.float32)
        users /= np.linalg.norm(users, axis=1, keepdims=True)
        fast = Int8Scorer.for_bundle(b, threads=1)

        def timed(fn) -> list[float]:
            for u in users[:20]:
                fn(u)
            out = []
            for u in users:
                t = time.perf_counter()
                fn(u)
                out.append(time.perf_counter() - t)
            return out

        core = timed(lambda u: top_k(fast.scores(u), 10))
        core_np = timed(lambda u: top_k(score_int8(b.embeddings_int8, b.scales, u), 10))
        peer = timed(lambda u: index.search(u[None], 10))
        agree = np.mean([len(set(top_k(fast.scores(u), 10)) & set(index.search(u[None], 10)[1][0])) / 10 for u in users[:100]])
        int8_bytes = b.embeddings_int8.nbytes + b.scales.nbytes
        rec.close()
        child = subprocess.run([sys.executable, "-c", _CHILD, str(bundle), str(db)], capture_output=True, text=True, check=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
        proc = json.loads(child.stdout.strip().splitlines()[-1])

    rows = {
        "recommend() total": pct(totals),
        **{f"  {k.removesuffix('_s')}": pct(v) for k, v in stages.items() if k != "total_s"},
        f"scoring core: {fast.backend} + top-10": pct(core),
        "scoring core: numpy int8 + top-10": pct(core_np),
        "faiss IndexFlatIP top-10 (float32)": pct(peer),
    }
    print(f"\n{args.items} items, 200-event history, one thread\n")
    print("| stage | p50 ms | p95 ms | p99 ms |\n| --- | --- | --- | --- |")
    for name, r in rows.items():
        print(f"| {name} | {r['p50_ms']:.3f} | {r['p95_ms']:.3f} | {r['p99_ms']:.3f} |")
    ratio = rows[f"scoring core: {fast.backend} + top-10"]["p50_ms"] / rows["faiss IndexFlatIP top-10 (float32)"]["p50_ms"]
    print(f"\nscoring core / faiss (p50): {ratio:.2f}x; top-10 overlap with faiss {agree:.3f}")
    print(f"int8 catalogue {int8_bytes / 2**20:.1f} MiB = {int8_bytes / floats.nbytes:.3f}x float32 ({floats.nbytes / 2**20:.1f} MiB)")
    print(f"process start to first recommendation {proc['first_s']:.3f} s; RSS after 200 calls {proc['rss_mb']:.0f} MB (peak {proc['hwm_mb']:.0f} MB)")
    from edge.bench import host_info

    result = {
        "benchmark": "ranking_latency",
        "command": f"python benchmarks/ranking_latency.py --items {args.items} --calls {args.calls}",
        "host": {**host_info(), "faiss": getattr(faiss, "__version__", "?")},
        "items": args.items, "threads": 1, "history_events": 200,
        "rows": rows, "core_vs_faiss_p50": ratio, "top10_overlap_with_faiss": agree,
        "int8_bytes": int8_bytes, "float32_bytes": int(floats.nbytes), "memory_ratio": int8_bytes / floats.nbytes,
        "process": proc,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
