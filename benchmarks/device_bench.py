"""`edgerec bench` plus its peers, side by side in one run (needs the `dev` extra):

- onnxruntime vs TFLite (ai-edge-litert), and fp32 vs int8 when an export work folder is given
  (its ``models/`` holds ``{fusion,interest}.{fp32,int8}.{onnx,tflite}``; with only a bundle,
  the bundle's own models on each backend);
- edge audio features (two 4 s excerpts, and the whole clip) vs ``librosa.load`` +
  ``librosa.feature.mfcc`` on the same 30 s clip;
- edge ranking (``score_int8`` + ``top_k``) vs faiss ``IndexFlatIP`` top-10 over the same
  vectors, on the bundle's catalogue and on a synthetic catalogue of ``--items`` rows.

    python benchmarks/device_bench.py --profile x86-dev --bundle B [--work W] [--runs 50] [--tag vm]

Writes benchmarks/results/device_bench-<profile>-<tag>.{json,md,png}. Wall-clock and CPU
medians; on a shared machine read the CPU column and the load average in the header.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import numpy as np

from edge.bench import run_bench, summarise, time_calls, to_markdown, write_clip, write_json, write_plot
from edge.bundle import Bundle
from edge.backends import load_model
from edge.context import CONTEXT_DIM
from edge.features import FeatureSpec, audio_features
from edge.profiles import load_profile
from edge.ranking import score_int8, top_k

ROOT = Path(__file__).resolve().parent


def _feeds(b: Bundle, rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    hist = b.item_embeddings(rng.integers(0, len(b.items), b.history_len))[None].astype(np.float32)
    mask = np.ones((1, b.history_len), np.float32)
    return {"interest": {"history": hist, "mask": mask, "context": rng.standard_normal((1, CONTEXT_DIM)).astype(np.float32)},
            "fusion": {"features": rng.standard_normal((1, b.feature_spec.item_dim)).astype(np.float32)}}


def models_side_by_side(b: Bundle, work: Path | None, threads: int, runs: int) -> list[dict]:
    """Per-call latency of each model on each backend (and precision, with a work folder)."""
    rng = np.random.default_rng(0)
    feeds = _feeds(b, rng)
    rows = []
    for name in ("fusion", "interest"):
        inputs = b.manifest["models"][name]["inputs"]
        if work is not None:
            variants = [(p, be, work / "models" / f"{name}.{p}.{be}") for p in ("fp32", "int8") for be in ("onnx", "tflite")]
        else:
            variants = [(b.manifest.get("precision", "?"), be, path) for be, path in b.model_paths(name).items()]
        for precision, backend, path in variants:
            m = load_model({backend: path}, [backend], threads, input_names=inputs)
            s = summarise(time_calls(lambda: m.run(feeds[name]), runs, warmup=20))
            rows.append({"model": name, "precision": precision, "backend": backend, "bytes": path.stat().st_size, **s})
    return rows


def features_vs_librosa(clip: Path, runs: int) -> list[dict]:
    """Edge audio features (excerpts and whole clip) vs librosa load + MFCC on one clip."""
    import librosa

    spec, whole = FeatureSpec(), FeatureSpec(excerpt_windows=None)

    def lib() -> None:
        y, sr = librosa.load(clip, sr=16000)
        librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13)

    return [{"method": name, **summarise(time_calls(fn, runs))} for name, fn in (
        ("edge (2 x 4 s excerpts)", lambda: audio_features(clip, spec)),
        ("edge (whole clip)", lambda: audio_features(clip, whole)),
        ("librosa.load + librosa.feature.mfcc", lib))]


def ranking_vs_faiss(emb_int8: np.ndarray, scales: np.ndarray, runs: int, label: str) -> list[dict]:
    """Top-10 by edge's int8 scoring vs faiss IndexFlatIP on the dequantised rows (float32)."""
    import faiss

    rng = np.random.default_rng(1)
    user = rng.standard_normal(emb_int8.shape[1]).astype(np.float32)
    user /= np.linalg.norm(user)
    floats = (emb_int8.astype(np.float32) * scales[:, None]).astype(np.float32)
    index = faiss.IndexFlatIP(floats.shape[1])
    index.add(floats)
    faiss.omp_set_num_threads(1)
    k = min(10, len(scales))
    edge_top = top_k(score_int8(emb_int8, scales, user), k)
    _, faiss_top = index.search(user[None], k)
    agree = len(set(edge_top.tolist()) & set(faiss_top[0].tolist())) / max(k, 1)
    rows = [
        {"catalogue": label, "method": "edge score_int8 + top_k (int8 rows)", **summarise(time_calls(lambda: top_k(score_int8(emb_int8, scales, user), k), runs))},
        {"catalogue": label, "method": "faiss IndexFlatIP.search (float32 rows)", **summarise(time_calls(lambda: index.search(user[None], k), runs))},
    ]
    for r in rows:
        r.update({"items": int(len(scales)), "top10_overlap": agree})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="x86-dev")
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--work", help="export work folder (models/ with fp32 and int8 variants)")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--items", type=int, default=100_000, help="rows of the synthetic catalogue for the ranking peers")
    ap.add_argument("--tag", default=platform.node() or "host", help="host tag in the file names")
    args = ap.parse_args()
    profile = load_profile(args.profile)
    report = run_bench(profile, args.bundle, runs=args.runs)
    b = Bundle.open(args.bundle)
    work = Path(args.work) if args.work else None
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "clip30s.flac")
        feats = features_vs_librosa(clip, args.runs)
    models = models_side_by_side(b, work, profile.threads, max(args.runs * 20, 200))
    rng = np.random.default_rng(2)
    synth = rng.integers(-127, 128, (args.items, b.embedding_dim), dtype=np.int8)
    synth_scales = rng.uniform(0.005, 0.02, args.items).astype(np.float32)
    ranking = ranking_vs_faiss(np.asarray(b.embeddings_int8), b.scales, args.runs * 10, "bundle") + \
        ranking_vs_faiss(synth, synth_scales, args.runs, f"synthetic {args.items}")
    report["peers"] = {"models": models, "features": feats, "ranking": ranking,
                       "command": f"python benchmarks/device_bench.py --profile {args.profile} --bundle {args.bundle}"
                                  + (f" --work {args.work}" if args.work else "") + f" --runs {args.runs} --items {args.items} --tag {args.tag}"}

    md = [to_markdown(report), "### Models side by side (one call, batch 1)", "",
          "| model | precision | backend | KiB | p50 us | p95 us | CPU p50 us |", "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    md += [f"| {r['model']} | {r['precision']} | {r['backend']} | {r['bytes'] / 1024:.1f} | {r['p50_ms'] * 1000:.1f} | {r['p95_ms'] * 1000:.1f} | {r['cpu_p50_ms'] * 1000:.1f} |" for r in models]
    md += ["", "### Audio features vs librosa (same 30 s clip, 44.1 kHz stereo FLAC)", "",
           "| method | p50 ms | p95 ms | CPU p50 ms |", "| --- | ---: | ---: | ---: |"]
    md += [f"| {r['method']} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['cpu_p50_ms']:.2f} |" for r in feats]
    md += ["", "### Ranking vs faiss (top-10, one thread)", "",
           "| catalogue | method | p50 ms | p95 ms | CPU p50 ms | top-10 overlap |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    md += [f"| {r['catalogue']} ({r['items']} items) | {r['method']} | {r['p50_ms']:.3f} | {r['p95_ms']:.3f} | {r['cpu_p50_ms']:.3f} | {r['top10_overlap']:.1f} |" for r in ranking]
    md += ["", f"Command: `{report['peers']['command']}`", ""]
    stem = ROOT / "results" / f"device_bench-{args.profile}-{args.tag}"
    write_json(report, stem.with_suffix(".json"))
    stem.with_suffix(".md").write_text("\n".join(md), encoding="utf-8")
    write_plot(report, stem.with_suffix(".png"))
    print("\n".join(md))
    print(json.dumps({"written": [str(stem.with_suffix(s)) for s in (".json", ".md", ".png")]}))


if __name__ == "__main__":
    main()
