"""``edgerec bench``: does this bundle fit this device? Latency per stage, cold start, memory
and sizes, checked against a device profile's budgets.

Runs with the base install only, on the device itself::

    from edge.bench import run_bench, to_markdown
    report = run_bench(load_profile("rpi4"), "bundle/", runs=50)
    print(to_markdown(report))

Stages, each timed per call over ``runs`` calls after a short warm-up (milliseconds):

- ``audio_features``: :func:`edge.features.audio_features` of one 30 s clip (a deterministic
  synthetic FLAC, 44.1 kHz stereo, written to a temporary folder);
- ``frame_features``: :func:`edge.features.frame_features` of ``max_frames`` 360×640 frames;
- ``fusion_student`` / ``interest_student``: one call of each bundle model, batch 1;
- ``catalogue_scoring``: scoring every catalogue row for a user vector, then the top 200;
- ``recommend``: the whole :meth:`edge.Recommender.recommend` for a profile with 200 events
  in a temporary SQLite history.

Cold start is process start to first recommendation in a fresh ``python -c``. Budgets compare
the p95 (see :data:`edge.profiles.BUDGET_KEYS`). Timings on a shared or emulated machine mean
little; the header records the host so numbers are never read without it.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edge.profiles import DeviceProfile

#: Stages in report order, with the budget key each is checked against.
STAGES: dict[str, str] = {
    "audio_features": "audio_features_ms",
    "frame_features": "frame_features_ms",
    "fusion_student": "fusion_student_ms",
    "interest_student": "interest_student_ms",
    "catalogue_scoring": "catalogue_scoring_ms",
    "recommend": "recommend_ms",
}
LIBRARIES = ("numpy", "scipy", "onnxruntime", "ai-edge-litert", "soundfile", "python_speech_features", "sqlite-utils")
CLIP_S, CLIP_RATE_HZ = 30.0, 44100
HISTORY_EVENTS = 200
BENCH_PROFILE = "bench"
FRAME_SHAPE = (360, 640)


def host_info() -> dict[str, Any]:
    """CPU model, cores, machine, Python, SQLite and library versions of this host."""
    cpu = platform.processor() or platform.machine()
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
        keys = ("model name", "Model", "Hardware", "CPU part")  # x86, then what ARM kernels expose
        found = {}
        for line in text.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in keys and v.strip() and k.strip() not in found:
                found[k.strip()] = v.strip()
        for k in keys:
            if k in found:
                cpu = found[k] if k != "CPU part" else f"ARM CPU part {found[k]}"
                break
    except OSError:
        pass
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {"cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(), "system": platform.system(),
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "libraries": versions,
            "loadavg": load, "hostname": platform.node()}


def write_clip(path: Path, duration_s: float = CLIP_S, rate_hz: int = CLIP_RATE_HZ) -> Path:
    """Write a deterministic stereo test clip (tones, a pulse and noise) with soundfile."""
    import soundfile as sf

    rng = np.random.default_rng(7)
    t = np.arange(int(duration_s * rate_hz)) / rate_hz
    pulse = (np.sin(2 * np.pi * 2.0 * t) > 0.95).astype(np.float64)  # 120 BPM clicks, for the tempo code
    mono = 0.25 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1320 * t) + 0.3 * pulse * rng.standard_normal(t.size)
    stereo = np.stack([mono, np.roll(mono, 441)], axis=1) + 0.01 * rng.standard_normal((t.size, 2))
    sf.write(path, np.clip(stereo, -1, 1).astype(np.float32), rate_hz, subtype="PCM_16")
    return path


def make_frames(n: int, height: int = FRAME_SHAPE[0], width: int = FRAME_SHAPE[1]) -> np.ndarray:
    """``(n, height, width, 3)`` uint8 frames: moving gradients with noise, deterministic."""
    rng = np.random.default_rng(11)
    y, x = np.mgrid[0:height, 0:width]
    out = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        base = (x + 8 * i) % 256
        out[i, ..., 0] = base
        out[i, ..., 1] = (y + 4 * i) % 256
        out[i, ..., 2] = np.clip(128 + rng.integers(-30, 30, (height, width)), 0, 255)
    return out


def time_calls(fn: Callable[[], Any], runs: int, warmup: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock and process CPU seconds per call of ``fn`` over ``runs`` calls, after
    ``warmup`` untimed calls; each array has shape ``(runs,)``."""
    for _ in range(warmup):
        fn()
    wall, cpu = np.empty(runs), np.empty(runs)
    for i in range(runs):
        c, t = time.process_time(), time.perf_counter()
        fn()
        wall[i], cpu[i] = time.perf_counter() - t, time.process_time() - c
    return wall, cpu


def summarise(times: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    """Wall-clock p50/p95/p99/mean/min and CPU p50 in milliseconds. CPU time is there because
    on a shared machine the wall clock also counts time spent waiting for a core."""
    wall, cpu = times
    ms = np.asarray(wall) * 1000.0
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()), "min_ms": float(ms.min()),
            "cpu_p50_ms": float(np.percentile(np.asarray(cpu) * 1000.0, 50)), "runs": int(ms.size)}


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB: ``VmHWM`` where Linux has it (it restarts at
    exec, unlike ``ru_maxrss``, which a child inherits from the process that forked it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _fill_history(rec: Any, n_events: int, now: float) -> None:
    """``n_events`` deterministic events for :data:`BENCH_PROFILE`, spread over the past weeks."""
    from edge.history import Event

    rng = np.random.default_rng(3)
    ids = [it.item_id for it in rec.bundle.items]
    kinds = rng.choice(["play", "complete", "skip", "like"], size=n_events, p=[0.5, 0.3, 0.15, 0.05])
    rows = rng.integers(0, len(ids), size=n_events)
    rec.history.add_profile(BENCH_PROFILE)
    events = [Event(BENCH_PROFILE, ids[int(r)], str(k), now - (n_events - i) * 3600.0) for i, (r, k) in enumerate(zip(rows, kinds))]
    rec.history.record_many(events)


def _cold_start(profile: DeviceProfile, bundle: Path, db: Path, runs: int) -> dict[str, Any]:
    """Median time from spawning ``python -c`` to its first recommendation, and the child's RSS."""
    code = (
        "import sys, time\n"
        "from edge.bench import peak_rss_mb\n"
        "from edge.profiles import load_profile\n"
        "from edge.recommender import Recommender\n"
        "rec = Recommender.open(sys.argv[1], sys.argv[2], device_profile=load_profile(sys.argv[3]))\n"
        f"rec.recommend({BENCH_PROFILE!r}, k=10)\n"
        "print(time.time(), peak_rss_mb())\n"
    )
    times, rss = [], []
    for _ in range(runs):
        t0 = time.time()
        out = subprocess.run([sys.executable, "-c", code, str(bundle), str(db), str(profile.path)],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"cold-start child failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
        done, mib = out.stdout.split()[-2:]
        times.append(float(done) - t0)
        rss.append(float(mib))
    return {"median_ms": float(np.median(times) * 1000.0), "all_ms": [t * 1000.0 for t in times], "child_peak_rss_mb": max(rss), "runs": runs}


def _sizes(bundle: Any) -> dict[str, Any]:
    files = bundle.manifest["files"]
    models = {}
    for name, entry in bundle.manifest["models"].items():
        models[name] = {backend: files.get(rel, {}).get("size") for backend, rel in entry["files"].items()}
    return {"bundle_bytes": int(sum(m["size"] for m in files.values())), "models_bytes": models,
            "catalogue_items": len(bundle.items), "embedding_dim": bundle.embedding_dim}


def check_budgets(profile: DeviceProfile, stages: dict[str, dict], cold_ms: float | None, peak_rss_mb: float, bundle_mb: float) -> dict[str, dict]:
    """Each budget with the measured value and ``pass``; latencies use the p95."""
    measured: dict[str, float | None] = {key: stages[s]["p95_ms"] if s in stages else None for s, key in STAGES.items()}
    measured.update({"cold_start_ms": cold_ms, "peak_rss_mb": peak_rss_mb, "bundle_mb": bundle_mb})
    out = {}
    for key, limit in profile.budgets.items():
        value = measured.get(key)
        out[key] = {"budget": limit, "measured": value, "pass": None if value is None else bool(value <= limit)}
    return out


def run_bench(profile: DeviceProfile, bundle: str | Path, runs: int = 50, cold_runs: int = 3,
              workdir: str | Path | None = None) -> dict[str, Any]:
    """Measure every stage on this host for ``bundle`` as ``profile`` would run it.

    :param runs: timed calls per stage (at least 1).
    :param cold_runs: fresh processes timed for cold start (0 skips it).
    :param workdir: where the test clip and history go (default: a temporary folder, removed).
    :returns: a JSON-ready report: ``host``, ``profile``, ``bundle``, ``backends``, ``stages``
        (p50/p95/p99 ms each), ``cold_start``, ``memory``, ``sizes``, ``budgets`` (each with
        ``pass``) and ``passed``.
    :raises ProfileError: the bundle conflicts with the profile.
    :raises BundleError, BackendError: the bundle cannot be opened or run.
    """
    from edge.context import Context
    from edge.contract.inputs import interest_feed
    from edge.features import audio_features, frame_features, item_vector
    from edge.ranking import score_int8, top_k, user_vector
    from edge.recommender import Recommender

    runs = max(1, int(runs))
    with tempfile.TemporaryDirectory(prefix="edgerec-bench-", dir=workdir) as tmp:
        tmp_path = Path(tmp)
        db = tmp_path / "history.db"
        t_open = time.perf_counter()
        rec = Recommender.open(bundle, db, device_profile=profile)
        open_s = time.perf_counter() - t_open
        try:
            b, spec = rec.bundle, rec.bundle.feature_spec
            clip = write_clip(tmp_path / "clip30s.flac")
            frames = make_frames(spec.max_frames)
            stages: dict[str, dict] = {}
            stages["audio_features"] = summarise(time_calls(lambda: audio_features(clip, spec), runs))
            stages["frame_features"] = summarise(time_calls(lambda: frame_features(frames, spec), runs))

            fusion = rec._fusion_model()
            vec = item_vector("Bench clip", ("bench",), "a synthetic clip", audio=clip, frames=frames, spec=spec)[None]
            stages["fusion_student"] = summarise(time_calls(lambda: fusion.run({"features": vec}), runs))

            now = time.time()
            _fill_history(rec, HISTORY_EVENTS, now)
            ctx = Context.at(now)
            user, _, _ = user_vector(rec.interest, b, b.history_len, rec.history.recent(BENCH_PROFILE, 2 * b.history_len), ctx)
            if user is None:  # no positive events landed in the catalogue: use any unit vector
                user = np.ones(b.embedding_dim, np.float32) / np.sqrt(b.embedding_dim)
            real = np.arange(min(b.history_len, len(b.items)))
            feed = interest_feed(b.item_embeddings(real), [real], ctx.vector()[None], b.history_len)
            stages["interest_student"] = summarise(time_calls(lambda: rec.interest.run(feed), runs))

            scorer = getattr(rec, "scorer", None)  # the runtime's scorer where it has one
            if scorer is not None:
                score = scorer.scores
                scoring_path = getattr(scorer, "backend", type(scorer).__name__)
            else:
                def score(u: np.ndarray) -> np.ndarray:
                    return score_int8(b.embeddings_int8, b.scales, u)
                scoring_path = "numpy score_int8"
            candidates = rec.ranking.candidates
            stages["catalogue_scoring"] = summarise(time_calls(lambda: top_k(score(user), candidates), runs))
            stages["recommend"] = summarise(time_calls(lambda: rec.recommend(BENCH_PROFILE, k=10, context=ctx), runs))
            n_recs = len(rec.recommend(BENCH_PROFILE, k=10, context=ctx))
            backends = {"interest": rec.interest.backend, "fusion": fusion.backend, "scoring": scoring_path}
            sizes = _sizes(b)
        finally:
            rec.close()
        peak_mb = peak_rss_mb()
        cold = _cold_start(profile, Path(bundle), db, cold_runs) if cold_runs > 0 else None

    bundle_mb = sizes["bundle_bytes"] / (1024 * 1024)
    budgets = check_budgets(profile, stages, cold["median_ms"] if cold else None, peak_mb, bundle_mb)
    return {
        "benchmark": "edgerec bench",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else None,
        "host": host_info(),
        "profile": {"name": profile.name, "path": str(profile.path), "cpu": profile.cpu, "threads": profile.threads,
                    "backends": list(profile.backends), "precision": profile.precision,
                    "sqlite_synchronous": profile.sqlite_synchronous},
        "bundle": str(bundle),
        "runs": runs,
        "backends": backends,
        "open_s": open_s,
        "recommendations": n_recs,
        "stages": stages,
        "cold_start": cold,
        "memory": {"peak_rss_mb": peak_mb, "note": "peak RSS of the bench process (every stage, one backend per model)"},
        "sizes": sizes,
        "budgets": budgets,
        "passed": all(v["pass"] is not False for v in budgets.values()),
    }


def to_markdown(report: dict[str, Any]) -> str:
    """The report as a header and a markdown table (stage, p50/p95/p99, budget, result)."""
    h, p = report["host"], report["profile"]
    libs = ", ".join(f"{k} {v}" for k, v in h["libraries"].items() if v)
    lines = [
        f"## edgerec bench: profile `{p['name']}` on {h['cpu']} ({h['cores']} cores, {h['machine']})",
        "",
        f"Python {h['python']}, SQLite {h['sqlite']}; {libs}. Load average {h['loadavg']}.",
        f"Bundle `{report['bundle']}`: {report['sizes']['catalogue_items']} items; backends: "
        + ", ".join(f"{k} {v}" for k, v in report["backends"].items())
        + f"; {p['threads']} thread(s); {report['runs']} runs per stage.",
        "",
        "| measure | p50 | p95 | p99 | CPU p50 | budget | result |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    b = report["budgets"]

    def verdict(key: str) -> str:
        v = b.get(key, {}).get("pass")
        return "n/a" if v is None else ("pass" if v else "**FAIL**")

    for stage, key in STAGES.items():
        s = report["stages"][stage]
        lines.append(f"| {stage} (ms) | {s['p50_ms']:.3f} | {s['p95_ms']:.3f} | {s['p99_ms']:.3f} | {s['cpu_p50_ms']:.3f} | {b[key]['budget']:g} | {verdict(key)} |")
    cold = report["cold_start"]
    if cold:
        lines.append(f"| cold start, median of {cold['runs']} (ms) | {cold['median_ms']:.0f} | | | | {b['cold_start_ms']['budget']:g} | {verdict('cold_start_ms')} |")
    else:
        lines.append(f"| cold start (ms) | not run | | | | {b['cold_start_ms']['budget']:g} | n/a |")
    lines.append(f"| peak RSS (MiB) | {report['memory']['peak_rss_mb']:.1f} | | | | {b['peak_rss_mb']['budget']:g} | {verdict('peak_rss_mb')} |")
    lines.append(f"| bundle (MiB) | {b['bundle_mb']['measured']:.2f} | | | | {b['bundle_mb']['budget']:g} | {verdict('bundle_mb')} |")
    models = "; ".join(f"{n}: " + ", ".join(f"{k} {v / 1024:.1f} KiB" for k, v in d.items() if v) for n, d in report["sizes"]["models_bytes"].items())
    lines += ["", f"Models: {models}."]
    if cold:
        lines.append(f"Cold-start child peak RSS: {cold['child_peak_rss_mb']:.1f} MiB.")
    lines.append(f"**{'PASS' if report['passed'] else 'FAIL'}**: "
                 + ("every budget holds." if report["passed"] else "over budget: " + ", ".join(k for k, v in b.items() if v["pass"] is False) + "."))
    return "\n".join(lines) + "\n"


def write_json(report: dict[str, Any], path: str | Path) -> Path:
    """Write ``report`` as indented JSON (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return path


def write_plot(report: dict[str, Any], path: str | Path) -> Path:
    """A PNG bar chart of p50/p95 per stage against the budgets.

    :raises ImportError: matplotlib is missing (``pip install 'edgerec[plot]'``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("--plot needs matplotlib: pip install 'edgerec[plot]'") from None
    names = list(STAGES)
    p50 = [report["stages"][n]["p50_ms"] for n in names]
    p95 = [report["stages"][n]["p95_ms"] for n in names]
    budget = [report["budgets"][STAGES[n]]["budget"] for n in names]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.bar(x - 0.2, p50, 0.4, label="p50")
    ax.bar(x + 0.2, p95, 0.4, label="p95")
    ax.scatter(x, budget, marker="_", s=900, color="red", label="budget (p95)", zorder=3)
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("ms per call (log)")
    h = report["host"]
    ax.set_title(f"edgerec bench, profile {report['profile']['name']}: {h['cpu'][:60]} ({h['cores']} cores)", fontsize=9)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
