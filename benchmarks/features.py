"""Content-feature speed on one core, with peers in the same run.

* audio: edgerec's whole pipeline (decode, down-mix, resample, MFCC + deltas + log filterbank +
  descriptors, summary) against ``librosa.load`` + ``librosa.feature.mfcc`` and a plain
  ``python_speech_features.mfcc``, on the same clips, interleaved;
* resampling: scipy's polyphase filter against python-soxr;
* video soundtracks: the audio vector of MP4 (AAC) and MKV (FLAC) files carrying the same
  recordings, through PyAV and the excerpt windows, against decoding the whole track with PyAV
  then ``librosa.feature.mfcc`` (librosa cannot open MP4 without an ffmpeg binary), and the
  OGG file itself through edgerec; with the cosine of each soundtrack's vector to the OGG's;
* frames: frames per second of frame features at 1080p input;
* memory: peak RSS of a fresh process extracting a 2-hour file.

    python benchmarks/features.py [--repeats 7] [--demo DIR] [--out benchmarks/results/features-vm.json]
    python benchmarks/features.py --soundtrack-only --out benchmarks/results/features_soundtrack-vm.json

Clips: the real recordings in ../shared/datasets/audio (OGG/Vorbis, 22.05 kHz) as they are, and
30 s OGG cuts of the ones at least that long; optionally the audio of a demo catalogue (``--demo
edgerec-demo/data``). Times are medians of ``--repeats`` runs per clip, CPU time of this process
(``time.process_time``; wall time is recorded too): on a shared machine CPU time is what one core
spends. BLAS/OpenMP are held to one thread. Needs the ``dev`` extra (librosa, soxr, av).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from importlib.metadata import PackageNotFoundError, version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
sys.path.insert(0, str(REPO))

from edge.bench import host_info  # noqa: E402
from edge.features import FeatureSpec, audio_features, frame_features, resample  # noqa: E402

SHARED = REPO.parent / "shared" / "datasets"


def _one_thread() -> None:
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


def _timed(fn, repeats: int) -> tuple[float, float]:
    """Median CPU and wall seconds of ``fn()`` over ``repeats`` runs (after one warm-up)."""
    fn()
    cpu, wall = [], []
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return float(np.median(cpu)), float(np.median(wall))


# -- audio --------------------------------------------------------------------------------------


def _audio_methods() -> dict:
    import librosa
    import python_speech_features as psf

    spec = FeatureSpec()
    soxr_spec = dataclasses.replace(spec, resampler="soxr")
    full = dataclasses.replace(spec, excerpt_windows=None, max_read_s=3600.0)
    full_soxr = dataclasses.replace(full, resampler="soxr")

    def librosa_mfcc(path):
        y, sr = librosa.load(path, sr=16000)
        return librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13)

    def psf_mfcc(path):
        x, sr = sf.read(path, dtype="float32", always_2d=True)
        return psf.mfcc(resample(x.mean(axis=1), sr, 16000), 16000, nfft=512)

    return {
        "edge": lambda p: audio_features(p, spec),
        "edge_soxr": lambda p: audio_features(p, soxr_spec),
        "edge_full": lambda p: audio_features(p, full),
        "edge_full_soxr": lambda p: audio_features(p, full_soxr),
        "librosa": librosa_mfcc,
        "psf": psf_mfcc,
    }


def _cut_30s(sources: list[Path], out: Path) -> list[Path]:
    clips = []
    for src in sources:
        info = sf.info(str(src))
        if info.duration < 30.0:
            continue
        x, sr = sf.read(str(src), frames=int(30 * info.samplerate), dtype="float32")
        dst = out / f"{src.stem}.30s.ogg"
        sf.write(str(dst), x, sr, format="OGG", subtype="VORBIS")
        clips.append(dst)
    return clips


def bench_audio(clips: list[Path], repeats: int) -> list[dict]:
    methods = _audio_methods()
    rows = []
    for path in clips:
        info = sf.info(str(path))
        row = {"clip": path.name, "duration_s": round(info.duration, 2), "rate_hz": info.samplerate, "channels": info.channels}
        for name, fn in methods.items():
            cpu, wall = _timed(lambda: fn(str(path)), repeats)
            row[f"{name}_ms"] = round(cpu * 1000, 3)
            row[f"{name}_wall_ms"] = round(wall * 1000, 3)
        rows.append(row)
        print(f"  {path.name[:48]:<48} edge {row['edge_ms']:7.2f} ms  full {row['edge_full_ms']:7.2f} ms  "
              f"librosa {row['librosa_ms']:7.2f} ms", flush=True)  # fmt: skip
    return rows


def summarise(rows: list[dict]) -> dict:
    med = lambda key: float(np.median([r[key] for r in rows]))  # noqa: E731
    out = {k[:-3] + "_median_ms": round(med(k), 3) for k in rows[0] if k.endswith("_ms") and not k.endswith("_wall_ms")}
    for name in ("edge", "edge_soxr", "edge_full", "edge_full_soxr", "psf"):
        out[f"{name}_vs_librosa_median_ratio"] = round(float(np.median([r[f"{name}_ms"] / r["librosa_ms"] for r in rows])), 3)
    out["clips"] = len(rows)
    return out


def bench_soundtracks(recordings: list[Path], tmp: Path, repeats: int) -> list[dict]:
    """Soundtracks of video files against the same recordings as OGG, and a PyAV + librosa peer."""
    import av
    import librosa

    from edge.features.soundtrack import probe_soundtrack
    from tests.fixtures.video_files import write_video

    spec = FeatureSpec()
    full = dataclasses.replace(spec, excerpt_windows=None, max_read_s=3600.0)

    def av_librosa(path):
        with av.open(str(path)) as c:
            rate = c.streams.audio[0].codec_context.sample_rate
            to_mono = av.AudioResampler(format="flt", layout="mono", rate=rate)
            pcm = np.concatenate([g.to_ndarray().reshape(-1) for f in c.decode(audio=0) for g in to_mono.resample(f)])
        return librosa.feature.mfcc(y=librosa.resample(pcm, orig_sr=rate, target_sr=16000), sr=16000, n_mfcc=13)

    rows = []
    for src in recordings:
        pcm, rate = sf.read(str(src), dtype="float32", always_2d=True)
        ref = audio_features(src, spec)
        for suffix in (".mp4", ".mkv"):
            video = write_video(tmp / f"{src.stem}{suffix}", pcm.mean(axis=1), rate)
            vec = audio_features(video, spec)
            row = {"clip": src.name, "container": suffix[1:], "duration_s": round(probe_soundtrack(video).duration_s, 2),
                   "cosine_to_ogg": round(float(vec @ ref / (np.linalg.norm(vec) * np.linalg.norm(ref))), 5)}
            for name, fn in (("edge_soundtrack", lambda: audio_features(video, spec)),
                             ("edge_soundtrack_full", lambda: audio_features(video, full)),
                             ("av_decode_librosa_mfcc", lambda: av_librosa(video)),
                             ("edge_ogg", lambda: audio_features(src, spec))):
                cpu, wall = _timed(fn, repeats)
                row[f"{name}_ms"], row[f"{name}_wall_ms"] = round(cpu * 1000, 3), round(wall * 1000, 3)
            rows.append(row)
            print(f"  {src.name[:40]:<40} {suffix:5} edge {row['edge_soundtrack_ms']:7.2f} ms  full {row['edge_soundtrack_full_ms']:7.2f} ms  "
                  f"av+librosa {row['av_decode_librosa_mfcc_ms']:7.2f} ms  ogg {row['edge_ogg_ms']:7.2f} ms  cos {row['cosine_to_ogg']:.4f}",
                  flush=True)  # fmt: skip
    return rows


def _soundtrack_table(rows: list[dict]) -> str:
    lines = ["**video soundtracks** (median CPU ms, one core; the same recording muxed into each container)", "",
             "| clip | container | s | edge (excerpt) | edge full track | PyAV decode + librosa mfcc | edge on the OGG | cosine to OGG |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['clip'][:40]} | {r['container']} | {r['duration_s']:.1f} | {r['edge_soundtrack_ms']:.2f} | "
                     f"{r['edge_soundtrack_full_ms']:.2f} | {r['av_decode_librosa_mfcc_ms']:.2f} | {r['edge_ogg_ms']:.2f} | "
                     f"{r['cosine_to_ogg']:.4f} |")  # fmt: skip
    return "\n".join(lines)


def bench_stages(recording: Path, repeats: int) -> dict:
    """Feature extraction alone, on 30 s already at 16 kHz: where psf's time went."""
    import librosa
    import python_speech_features as psf

    from edge.features import audio_features_from_samples, mfcc

    x, sr = sf.read(str(recording), frames=30 * sf.info(str(recording)).samplerate, dtype="float32")
    y = resample(x, sr, 16000)
    stages = {
        "psf_mfcc": lambda: psf.mfcc(y, 16000, nfft=512),
        "librosa_mfcc": lambda: librosa.feature.mfcc(y=y, sr=16000, n_mfcc=13),
        "edge_mfcc": lambda: mfcc(y),
        "edge_summary": lambda: audio_features_from_samples(y, 16000),
    }
    out = {"input": f"30 s of {recording.name} at 16 kHz, mono float32"}
    for name, fn in stages.items():
        out[f"{name}_ms"] = round(_timed(fn, repeats)[0] * 1000, 3)
    return out


def bench_resample(repeats: int) -> list[dict]:
    import soxr

    rng = np.random.default_rng(0)
    rows = []
    for rate in (22050, 44100, 48000):
        for seconds in (8.0, 30.0):
            x = (0.1 * rng.standard_normal(int(rate * seconds))).astype(np.float32)
            scipy_cpu, _ = _timed(lambda: resample(x, rate, 16000, "scipy"), repeats)
            soxr_cpu, _ = _timed(lambda: resample(x, rate, 16000, "soxr"), repeats)
            a, b = resample(x, rate, 16000, "scipy"), resample(x, rate, 16000, "soxr")
            rows.append({
                "from_hz": rate, "seconds": seconds, "scipy_ms": round(scipy_cpu * 1000, 3), "soxr_ms": round(soxr_cpu * 1000, 3),
                "max_abs_difference": float(np.abs(a - b).max()), "soxr_version": soxr.__version__,
            })  # fmt: skip
    return rows


# -- frames -------------------------------------------------------------------------------------


def bench_frames(repeats: int) -> dict:
    spec = FeatureSpec()
    n = spec.max_frames
    source = "noise"
    try:
        from edge.features import read_video

        small, _ = read_video(SHARED / "video" / "flower.mp4", dataclasses.replace(spec, frame_height_px=270, frame_width_px=480))
        # Real pictures at 1080p: decoded at 1080x1920 / 4 and repeated up (content, not size, is what is real here).
        reps = int(np.ceil(n / len(small)))
        frames = np.ascontiguousarray(np.tile(small, (reps, 1, 1, 1))[:n].repeat(1080 // small.shape[1], axis=1).repeat(1920 // small.shape[2], axis=2))
        source = "flower.mp4 frames, upscaled to 1080p"
    except Exception:  # noqa: BLE001 - PyAV missing or the clip absent: time noise frames instead
        frames = np.random.default_rng(0).integers(0, 256, size=(n, 1080, 1920, 3), dtype=np.uint8)
    assert frames.shape == (n, 1080, 1920, 3)
    cpu, wall = _timed(lambda: frame_features(frames, spec), repeats)
    out = {"input": f"{n} frames of 1080x1920x3 uint8 ({source})", "frames_per_call": n,
           "ms_per_call": round(cpu * 1000, 3), "fps": round(n / cpu, 1), "fps_wall": round(n / wall, 1)}  # fmt: skip
    try:
        from edge.features import frame_features_from_file

        for name in ("flower.mp4", "flower.webm"):
            cpu, wall = _timed(lambda: frame_features_from_file(SHARED / "video" / name, spec), max(3, repeats // 2))
            out[f"video_{name}_ms"] = round(cpu * 1000, 1)
    except Exception as exc:  # noqa: BLE001
        out["video_error"] = str(exc)
    return out


# -- memory -------------------------------------------------------------------------------------


def _two_hour_wav(path: Path, rate: int = 44100, channels: int = 2, seconds: float = 7200.0) -> None:
    """A 16-bit WAV of ``seconds``: real music in the first 10 minutes and at the middle, the
    rest a sparse hole that reads as zeros (the decoder still does all the work)."""
    music, sr = sf.read(str(SHARED / "audio" / "Kevin_MacLeod_-_Vibe_Ace.ogg"), dtype="float32")
    music = resample(music, sr, rate)
    block = (np.clip(np.stack([music] * channels, axis=1), -1, 1) * 32767).astype("<i2").tobytes()
    n_bytes = int(seconds * rate) * channels * 2
    header = b"RIFF" + struct.pack("<I", 36 + n_bytes) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
    header += b"data" + struct.pack("<I", n_bytes)
    with open(path, "wb") as fh:
        fh.write(header)
        written = 0
        while written + len(block) <= rate * channels * 2 * 600:
            fh.write(block)
            written += len(block)
        fh.seek(len(header) + n_bytes // 2 // (channels * 2) * (channels * 2))
        fh.write(block)
        fh.truncate(len(header) + n_bytes)


# Peak RSS is read from /proc/self/status (VmHWM): getrusage's ru_maxrss survives exec on
# Linux, so a child would report this (librosa-laden) parent's peak.
_RSS_CHILD = """
import json, sys, time
def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
from edge.features import FeatureSpec, audio_features
spec = FeatureSpec() if sys.argv[2] == "excerpt" else FeatureSpec(excerpt_windows=None, max_read_s=7200.0)
after_import = hwm_mb()
t0 = time.process_time()
vec = audio_features(sys.argv[1], spec)  # the first call also imports scipy.signal (resampling)
t1 = time.process_time()
vec = audio_features(sys.argv[1], spec)
t2 = time.process_time()
print(json.dumps({"first_call_s": t1 - t0, "seconds": t2 - t1, "rss_after_import_mb": after_import, "peak_rss_mb": hwm_mb(), "dim": len(vec)}))
"""


def bench_memory(tmp: Path) -> dict:
    path = tmp / "two_hours.wav"
    _two_hour_wav(path)
    out = {"file": "2 h, 44.1 kHz stereo 16-bit WAV (1.27 GB)"}
    for mode in ("excerpt", "full"):
        res = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(path), mode], capture_output=True, text=True, check=True, cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
        out[mode] = json.loads(res.stdout.strip().splitlines()[-1])
    path.unlink()
    return out


# -- report -------------------------------------------------------------------------------------


def _versions() -> dict:
    out = {"python": platform.python_version(), "libsndfile": sf.__libsndfile_version__}
    for pkg in ("numpy", "scipy", "soundfile", "python_speech_features", "librosa", "soxr", "av", "numba"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _table(title: str, rows: list[dict]) -> str:
    lines = [f"**{title}** (median CPU ms per clip, one thread)", "",
             "| clip | s | edge (excerpt) | edge full clip | edge full, soxr | librosa load+mfcc | psf mfcc | edge / librosa |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['clip'][:44]} | {r['duration_s']:.1f} | {r['edge_ms']:.2f} | {r['edge_full_ms']:.2f} | "
                     f"{r['edge_full_soxr_ms']:.2f} | {r['librosa_ms']:.2f} | {r['psf_ms']:.2f} | {r['edge_ms'] / r['librosa_ms']:.2f} |")  # fmt: skip
    s = summarise(rows)
    lines.append(f"| **median** | | **{s['edge_median_ms']:.2f}** | {s['edge_full_median_ms']:.2f} | {s['edge_full_soxr_median_ms']:.2f} | "
                 f"{s['librosa_median_ms']:.2f} | {s['psf_median_ms']:.2f} | **{s['edge_vs_librosa_median_ratio']:.2f}** |")  # fmt: skip
    return "\n".join(lines)


def _write(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7, help="timed runs per clip and method (default 7)")
    ap.add_argument("--audio", default=str(SHARED / "audio"), help="folder of recordings (*.ogg)")
    ap.add_argument("--demo", default=None, help="a demo catalogue's data folder: also time its first --demo-items audio files")
    ap.add_argument("--demo-items", type=int, default=40, help="demo audio files to time (default 40)")
    ap.add_argument("--skip-memory", action="store_true", help="skip the 2-hour peak-RSS run")
    ap.add_argument("--soundtrack-only", action="store_true", help="time only the video-soundtrack section")
    ap.add_argument("--soundtrack-clips", type=int, default=4, help="recordings muxed into video files (default 4)")
    ap.add_argument("--out", default=str(ROOT / "results" / "features-vm.json"), help="JSON output")
    args = ap.parse_args()
    _one_thread()
    load_before = os.getloadavg()
    recordings = sorted(Path(args.audio).glob("*.ogg"))
    if not recordings:
        sys.exit(f"no *.ogg under {args.audio}")
    result: dict = {
        "benchmark": "features",
        "command": "python benchmarks/features.py" + (f" --demo {args.demo}" if args.demo else "") + f" --repeats {args.repeats}",
        "host": {"cpu": host_info()["cpu"], "cores": os.cpu_count(), "machine": platform.machine(), "load_average_before": load_before},
        "versions": _versions(),
        "threads": 1,
        "timing": "median CPU time (time.process_time) of the benchmark process; *_wall_ms are wall-clock medians",
        "feature_spec_hash": FeatureSpec().hash(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("video soundtracks", flush=True)
        picks = [recordings[i] for i in np.linspace(0, len(recordings) - 1, min(args.soundtrack_clips, len(recordings))).astype(int)]
        result["soundtracks"] = bench_soundtracks(picks, tmp, args.repeats)
        if args.soundtrack_only:
            result["command"] += " --soundtrack-only"
            print()
            print(_soundtrack_table(result["soundtracks"]))
            _write(result, Path(args.out))
            return
        print("audio: 30 s cuts of the recordings", flush=True)
        cuts = bench_audio(_cut_30s(recordings, tmp), args.repeats)
        print("audio: the recordings as they are", flush=True)
        whole = bench_audio(recordings, args.repeats)
        result["audio_30s"] = {"rows": cuts, "summary": summarise(cuts)}
        result["audio_recordings"] = {"rows": whole, "summary": summarise(whole)}
        if args.demo:
            import csv

            root = Path(args.demo)
            with open(root / "items.csv", newline="", encoding="utf-8") as fh:
                paths = [root / r["audio"] for r in csv.DictReader(fh) if r.get("audio")][: args.demo_items]
            print(f"audio: {len(paths)} demo catalogue files", flush=True)
            demo = bench_audio(paths, max(3, args.repeats // 2))
            result["audio_demo"] = {"rows": demo, "summary": summarise(demo)}
        print("stages", flush=True)
        result["stages_30s_16k"] = bench_stages(Path(args.audio) / "Kevin_MacLeod_-_Vibe_Ace.ogg", args.repeats)
        print("resampling", flush=True)
        result["resample"] = bench_resample(args.repeats)
        print("frames", flush=True)
        result["frames"] = bench_frames(args.repeats)
        if not args.skip_memory:
            print("memory: 2-hour file", flush=True)
            result["memory_2h"] = bench_memory(tmp)
    result["host"]["load_average_after"] = os.getloadavg()

    print()
    print(_table("30 s clips cut from the shared recordings (OGG/Vorbis 22.05 kHz mono)", cuts))
    print()
    print(_table("the shared recordings as they are (2.7-133 s)", whole))
    if "audio_demo" in result:
        print()
        print(_table(f"demo catalogue audio (first {len(result['audio_demo']['rows'])} files)", result["audio_demo"]["rows"]))
    print()
    print(_soundtrack_table(result["soundtracks"]))
    st = result["stages_30s_16k"]
    print(f"\n**features alone**, {st['input']}: psf mfcc {st['psf_mfcc_ms']:.2f} ms, librosa mfcc {st['librosa_mfcc_ms']:.2f} ms, "
          f"edge mfcc() {st['edge_mfcc_ms']:.2f} ms, edge whole summary {st['edge_summary_ms']:.2f} ms")  # fmt: skip
    print("\n**resampling to 16 kHz** (median CPU ms, mono)\n\n| from | seconds | scipy polyphase | soxr HQ |\n| --- | ---: | ---: | ---: |")
    for r in result["resample"]:
        print(f"| {r['from_hz']} Hz | {r['seconds']:.0f} | {r['scipy_ms']:.2f} | {r['soxr_ms']:.2f} |")
    f = result["frames"]
    print(f"\n**frames**: {f['input']}: {f['ms_per_call']:.2f} ms per call, **{f['fps']:.0f} frames/s** on one core"
          + "".join(f"; {k[6:-3]} file {v:.0f} ms" for k, v in f.items() if k.startswith("video_") and k.endswith("_ms")))  # fmt: skip
    if "memory_2h" in result:
        m = result["memory_2h"]
        for mode in ("excerpt", "full"):
            print(f"**2-hour file, {mode}**: peak RSS {m[mode]['peak_rss_mb']:.0f} MB (after `import edge.features` "
                  f"{m[mode]['rss_after_import_mb']:.0f} MB), {m[mode]['seconds']:.3f} s CPU "
                  f"(first call in the process {m[mode]['first_call_s']:.2f} s)")  # fmt: skip
    print(f"\nhost: {result['host']['cpu']}, {result['host']['cores']} cores, load average before {load_before[0]:.1f}, "
          f"after {result['host']['load_average_after'][0]:.1f}")  # fmt: skip
    _write(result, Path(args.out))


if __name__ == "__main__":
    main()
