"""Fuzzing the device side with fixed seeds: mutated media files made from real recordings,
malformed frames, .npy strips and images, malformed bundles (folders and archives), damaged
history databases and malformed service requests.

Every case must end in a documented :mod:`edge.errors` exception or a correct answer, within a
per-case time limit; anything else (another exception, a hang, a memory blow-up) is a failure.
The media cases run in a child process under ``RLIMIT_AS`` so a runaway allocation shows up as
a ``MemoryError`` instead of taking the machine down. The last test writes ``fuzz-report.json``
(counts per kind, outcomes, slowest case, intact checks) to pytest's base temp folder.

The generators are plain functions so ``benchmarks/fuzz_long.py`` can run them longer.
"""

from __future__ import annotations

import faulthandler
import io
import json
import os
import random
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import zlib
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edge.errors import BundleError, FeatureError, HistoryError  # noqa: E402

SEED = 20261123
#: Seconds one case may take before it counts as a hang.
CASE_LIMIT_S = 5.0
#: Address-space limit of the child that decodes mutated media (bytes).
MEDIA_RLIMIT_AS = 1536 * 1024 * 1024
#: Recordings under shared/datasets/audio the media cases are cut from.
CLIPS = ("pibble.ogg", "198-209-0000.ogg", "456440__inspectorj__bird-whistling-robin-single-13.ogg")
#: Minimum cases per kind the test asserts (the issue's numbers).
MINIMUM = {"media": 300, "bundle": 60, "history": 30, "service": 100}


# ---------------------------------------------------------------------------------------------
# Outcomes


class CaseTimeout(Exception):
    """A case ran past CASE_LIMIT_S."""


class Tally:
    """Outcomes per kind: counts per outcome class, the slowest case, failures with details."""

    def __init__(self) -> None:
        self.kinds: dict[str, dict[str, Any]] = {}
        self.intact: dict[str, bool] = {}
        self.peak_rss_mb: float | None = None

    def add(self, kind: str, name: str, outcome: str, seconds: float, ok: bool, detail: str = "") -> None:
        k = self.kinds.setdefault(kind, {"cases": 0, "outcomes": Counter(), "max_case_s": 0.0, "slowest": "", "failures": []})
        k["cases"] += 1
        k.setdefault("names", set()).add(hash(name))  # distinct cases: rounds with new seeds repeat some
        k["outcomes"][outcome] += 1
        if seconds >= k["max_case_s"]:
            k["max_case_s"], k["slowest"] = seconds, name
        if not ok:
            k["failures"].append(f"{name}: {outcome} {detail}"[:400])

    def merge(self, kind: str, doc: dict[str, Any]) -> None:
        k = self.kinds.setdefault(kind, {"cases": 0, "outcomes": Counter(), "max_case_s": 0.0, "slowest": "", "failures": []})
        k["cases"] += doc["cases"]
        k["merged_distinct"] = k.get("merged_distinct", 0) + doc.get("distinct_cases", doc["cases"])
        k["outcomes"].update(doc["outcomes"])
        if doc["max_case_s"] >= k["max_case_s"]:
            k["max_case_s"], k["slowest"] = doc["max_case_s"], doc["slowest"]
        k["failures"] += doc["failures"]

    def failures(self, kind: str) -> list[str]:
        return self.kinds.get(kind, {}).get("failures", [])

    def to_dict(self) -> dict[str, Any]:
        kinds = {name: {**{f: v for f, v in k.items() if f not in ("names", "merged_distinct")},
                        "distinct_cases": len(k.get("names", ())) + k.get("merged_distinct", 0),
                        "outcomes": dict(sorted(k["outcomes"].items())), "max_case_s": round(k["max_case_s"], 4)}
                 for name, k in self.kinds.items()}
        return {"seed": SEED, "case_limit_s": CASE_LIMIT_S, "total_cases": sum(k["cases"] for k in kinds.values()),
                "kinds": kinds, "intact": self.intact, "peak_rss_mb": self.peak_rss_mb,
                "max_case_s": round(max((k["max_case_s"] for k in kinds.values()), default=0.0), 4)}

    def summary(self) -> str:
        parts = [f"{n} {k['cases']} ({', '.join(f'{o} {c}' for o, c in sorted(k['outcomes'].items()))})" for n, k in self.kinds.items()]
        bad = sum(len(k["failures"]) for k in self.kinds.values())
        intact = ", ".join(f"{n} intact={v}" for n, v in self.intact.items())
        return f"fuzz: {'; '.join(parts)}; failures {bad}; {intact}"


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise CaseTimeout in this (main) thread after ``seconds``; a hang inside C code that
    never returns to Python is caught by faulthandler, which dumps the stacks and exits."""

    def on_alarm(signum, frame):
        raise CaseTimeout(f"over {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    faulthandler.dump_traceback_later(seconds * 6, exit=True)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, old)


def run_case(tally: Tally, kind: str, name: str, fn: Callable[[], Any], allowed: tuple[type, ...],
             check: Callable[[Any], str | None] = lambda result: None, label: Callable[[Any], str] = lambda result: "ok") -> str:
    """Run one case: ``allowed`` exceptions and results ``check`` accepts (returns None) pass;
    ``label`` names the outcome of a result (default ``ok``)."""
    t0 = time.perf_counter()
    detail = ""
    try:
        with time_limit(CASE_LIMIT_S):
            result = fn()
        problem = check(result)
        outcome, ok, detail = (label(result), True, "") if problem is None else ("WrongAnswer", False, problem)
    except allowed as exc:
        outcome, ok = type(exc).__name__, True
    except CaseTimeout as exc:
        outcome, ok, detail = "Timeout", False, str(exc)
    except Exception as exc:  # the failure this file looks for
        where = [f"{Path(f.filename).name}:{f.lineno}" for f in traceback.extract_tb(exc.__traceback__) if "/edge/" in f.filename][-3:]
        outcome, ok, detail = type(exc).__name__, False, f"{repr(exc)[:300]} at {' < '.join(reversed(where))}"
    tally.add(kind, name, outcome, time.perf_counter() - t0, ok, detail)
    return outcome


# ---------------------------------------------------------------------------------------------
# Byte mutations


def flip(data: bytes, rng: random.Random, lo: int, hi: int, n: int = 1) -> bytes:
    """Flip one random bit in each of ``n`` random bytes in ``[lo, hi)``."""
    b = bytearray(data)
    hi = min(hi, len(b))
    if hi <= lo:
        return bytes(b)
    for _ in range(n):
        i = rng.randrange(lo, hi)
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def generic_mutations(data: bytes, rng: random.Random, scale: int = 1, header: int = 64) -> Iterator[tuple[str, bytes]]:
    """Truncations, bit flips in header and body, garbage headers, zeroed bodies, appended
    garbage and an empty file."""
    n = len(data)
    for _ in range(4 * scale):
        k = rng.randrange(0, n)
        yield f"trunc@{k}", data[:k]
    for _ in range(4 * scale):
        yield "flip-header", flip(data, rng, 0, header, rng.randint(1, 3))
    for _ in range(4 * scale):
        yield "flip-body", flip(data, rng, header, n, rng.randint(1, 8))
    for _ in range(scale):
        yield "flip-many", flip(data, rng, 0, n, max(1, n // 100))
        yield "garbage-header", rng.randbytes(rng.choice((4, 12, header))) + data[rng.choice((4, 12, header)):]
        yield "zero-body", data[:header] + bytes(n - header)
        yield "append-garbage", data + rng.randbytes(rng.randint(1, 4096))
        yield "garbage-whole", rng.randbytes(rng.randint(1, 4096))
    yield "empty", b""


def wav_bytes(pcm: np.ndarray, rate: int) -> bytes:
    """A canonical 44-byte-header PCM16 WAV (offsets below rely on it)."""
    pcm = np.atleast_2d(pcm.T).T
    channels = pcm.shape[1]
    data = (np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data


#: (field, offset, struct format, absurd values) in the canonical WAV header.
WAV_FIELDS = (
    ("riff_size", 4, "<I", (0, 1, 36, 2**31, 2**32 - 1)),
    ("fmt_size", 16, "<I", (0, 1, 2**32 - 1)),
    ("format_tag", 20, "<H", (0, 2, 3, 0xFFFE, 0xFFFF)),
    ("channels", 22, "<H", (0, 8, 9, 255, 0xFFFF)),
    ("rate_hz", 24, "<I", (0, 1, 7999, 192001, 10**9, 2**32 - 1)),
    ("byte_rate", 28, "<I", (0, 2**32 - 1)),
    ("block_align", 32, "<H", (0, 1, 0xFFFF)),
    ("bits", 34, "<H", (0, 1, 7, 64, 0xFFFF)),
    ("data_size", 40, "<I", (0, 1, 3, 2**31, 2**32 - 1)),
)


def wav_mutations(data: bytes, rate: int, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """Header fields patched to absurd values, wrong chunk ids, and odd but legal files."""
    for field, offset, fmt, values in WAV_FIELDS:
        for v in values:
            b = bytearray(data)
            struct.pack_into(fmt, b, offset, v)
            yield f"wav-{field}={v}", bytes(b)
    for tag, offset in ((b"RIFX", 0), (b"JUNK", 12), (b"LIST", 36), (b"\0\0\0\0", 8)):
        yield f"wav-tag@{offset}={tag!r}", data[:offset] + tag + data[offset + 4:]
    yield "wav-8ch-1frame", wav_bytes(np.zeros((1, 8), np.float32) + 0.1, rate)
    yield "wav-1-sample", wav_bytes(np.full(1, 0.5, np.float32), rate)
    yield "wav-header-only", data[:44]
    yield "wav-silent", wav_bytes(np.zeros(rate, np.float32), rate)
    yield "wav-nan-float", _float_wav(np.full(1000, np.nan, np.float32), rate)
    yield "wav-inf-float", _float_wav(np.full(1000, np.inf, np.float32), rate)
    yield "wav-odd-data", data + b"\x01"


def _float_wav(x: np.ndarray, rate: int) -> bytes:
    data = x.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    return b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data


def png_bytes(rgb: np.ndarray) -> bytes:
    """A minimal RGB PNG, written by hand (so IHDR can be patched with a valid CRC)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\0" + rgb[y].tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def png_with_size(png: bytes, w: int, h: int) -> bytes:
    """``png`` with IHDR declaring ``w`` x ``h`` pixels (CRC recomputed, data unchanged)."""
    b = bytearray(png)
    struct.pack_into(">II", b, 16, w, h)
    struct.pack_into(">I", b, 29, zlib.crc32(bytes(b[12:29])))
    return bytes(b)


def bmp_bytes(rgb: np.ndarray) -> bytes:
    h, w, _ = rgb.shape
    row = (w * 3 + 3) // 4 * 4
    pixels = b"".join(rgb[y, :, ::-1].tobytes().ljust(row, b"\0") for y in range(h - 1, -1, -1))
    header = b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def npy_with_header(arr_bytes: bytes, header: str) -> bytes:
    """A version 1.0 .npy whose header dict is ``header`` (padded), followed by the original data."""
    hlen = struct.unpack("<H", arr_bytes[8:10])[0]
    body = arr_bytes[10 + hlen:]
    text = header.encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + body


# ---------------------------------------------------------------------------------------------
# Media: runs in a child process (see media_child) under RLIMIT_AS.


def media_cases(clips: list[Path], work: Path, rng: random.Random, scale: int = 1) -> Iterator[tuple[str, str, Callable[[], Any]]]:
    """``(name, expects, call)`` for every media case; ``expects`` is ``audio`` or ``frames``
    (the vector length checked). Files are written to ``work`` just before each call."""
    import soundfile as sf

    from edge.features import FeatureSpec, audio_features, frame_features, frame_features_from_file

    spec = FeatureSpec()
    counter = iter(range(10**9))

    def file_case(name: str, suffix: str, data: bytes, fn: Callable[[Path], Any]) -> Callable[[], Any]:
        def call():
            path = work / f"c{next(counter):06d}{suffix}"
            path.write_bytes(data)
            try:
                return fn(path)
            finally:
                path.unlink(missing_ok=True)
        return call

    audio = lambda p: audio_features(p, spec)  # noqa: E731
    frames_file = lambda p: frame_features_from_file(p, spec)  # noqa: E731

    # Decode each recording once: a 1 s cut from 1 s in (leading silence is common).
    for ci, clip in enumerate(clips):
        with sf.SoundFile(str(clip)) as fh:
            rate = fh.samplerate
            fh.seek(min(rate, max(0, fh.frames - rate)))
            pcm = fh.read(rate, dtype="float32", always_2d=True)[:, 0]
        stereo = np.stack([pcm, pcm[::-1]], axis=1)
        bases = {".wav": wav_bytes(pcm, rate)}
        for suffix, fmt, sub, x in ((".flac", "FLAC", "PCM_16", stereo), (".ogg", "OGG", "VORBIS", pcm)):
            buf = io.BytesIO()
            sf.write(buf, x, rate, format=fmt, subtype=sub)
            bases[suffix] = buf.getvalue()
        for suffix, data in bases.items():
            yield f"clip{ci}{suffix}-intact", "audio", file_case("intact", suffix, data, audio)
            for name, mutated in generic_mutations(data, rng, scale, header=44 if suffix == ".wav" else 128):
                yield f"clip{ci}{suffix}-{name}", "audio", file_case(name, suffix, mutated, audio)
            # The wrong suffix: libsndfile sniffs content, so this must not matter.
            yield f"clip{ci}{suffix}-as-.mp3", "audio", file_case("suffix", ".mp3", data, audio)
        if ci == 0:
            for name, mutated in wav_mutations(bases[".wav"], rate, rng):
                yield f"clip{ci}-{name}", "audio", file_case(name, ".wav", mutated, audio)

    # Frames in memory: wrong dtype, shape, NaN, huge dims (views: nothing allocated).
    base = np.random.default_rng(rng.randrange(2**32)).integers(0, 256, size=(4, 18, 32, 3), dtype=np.uint8)
    one = np.zeros((1, 1, 1, 3), np.uint8)
    arrays = {
        "float32": base.astype(np.float32), "float-nan": np.full(base.shape, np.nan, np.float32),
        "int16": base.astype(np.int16), "bool": base > 128, "object": base.astype(object), "list": base.tolist(),
        "none": None, "scalar": np.uint8(3), "1d": base.ravel(), "one-frame-3d": base[0], "gray-3d": base[..., 0],
        "rgba": np.zeros((4, 18, 32, 4), np.uint8), "5d": base[None], "zero-frames": base[:0], "zero-height": base[:, :0],
        "zero-width": base[:, :, :0], "one-pixel": one, "one-row": base[:, :1], "one-col": base[:, :, :1],
        "strided": base[:, ::-3, ::2], "fortran": np.asfortranarray(base), "readonly": np.lib.stride_tricks.as_strided(base, writeable=False),
        "huge-broadcast": np.broadcast_to(one, (10**6, 10**5, 10**5, 3)),
        "huge-n": np.broadcast_to(base[:1], (2**40, 18, 32, 3)),
        "tall": np.broadcast_to(one, (2, 2**31, 1, 3)), "wide": np.broadcast_to(one, (2, 1, 2**31, 3)),
        "big-endian-u16": base.astype(">u2"), "complex": base.astype(np.complex64),
    }
    for name, arr in arrays.items():
        yield f"frames-{name}", "frames", (lambda a=arr, n=name: frame_features(a, spec, name=n))
    for name, times in (("times-short", np.arange(2.0)), ("times-nan", np.full(4, np.nan)), ("times-inf", np.array([0, np.inf, 1, 2])),
                        ("times-2d", np.zeros((4, 2)))):
        yield f"frames-{name}", "frames", (lambda t=times: frame_features(base, spec, times_s=t))

    # .npy strips: damaged bytes and headers declaring absurd shapes or dtypes.
    good = npy_bytes(base)
    yield "npy-intact", "frames", file_case("npy", ".npy", good, frames_file)
    for name, mutated in generic_mutations(good, rng, scale, header=128):
        yield f"npy-{name}", "frames", file_case(name, ".npy", mutated, frames_file)
    headers = {
        "huge-shape": "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000, 100000, 100000, 3), }",
        "negative-shape": "{'descr': '|u1', 'fortran_order': False, 'shape': (-4, 18, 32, 3), }",
        "float64": "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 18, 32, 3), }",
        "object": "{'descr': '|O', 'fortran_order': False, 'shape': (4, 18, 32, 3), }",
        "fortran": "{'descr': '|u1', 'fortran_order': True, 'shape': (4, 18, 32, 3), }",
        "3d": "{'descr': '|u1', 'fortran_order': False, 'shape': (72, 32, 3), }",
        "zero": "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 18, 32, 3), }",
        "structured": "{'descr': [('a', '|u1')], 'fortran_order': False, 'shape': (4, 18, 32, 3), }",
        "code": "{'descr': __import__('os').getcwd(), 'fortran_order': False, 'shape': (1,), }",
        "not-a-dict": "[1, 2, 3]",
        "unterminated": "{'descr': '|u1', 'fortran_order': False, 'shape': (4, 18, 32, 3)",
    }
    for name, header in headers.items():
        yield f"npy-header-{name}", "frames", file_case(name, ".npy", npy_with_header(good, header), frames_file)
    yield "npy-header-len-huge", "frames", file_case("hlen", ".npy", good[:8] + b"\xff\xff" + good[10:], frames_file)
    yield "npy-version-9", "frames", file_case("ver", ".npy", good[:6] + b"\x09\x00" + good[8:], frames_file)

    # Images: damaged PNG and BMP files, and a PNG declaring a huge picture.
    picture = base[0].repeat(2, axis=0).repeat(2, axis=1)
    for suffix, data in ((".png", png_bytes(picture)), (".bmp", bmp_bytes(picture))):
        yield f"image{suffix}-intact", "frames", file_case("img", suffix, data, frames_file)
        for name, mutated in generic_mutations(data, rng, scale, header=54 if suffix == ".bmp" else 33):
            yield f"image{suffix}-{name}", "frames", file_case(name, suffix, mutated, frames_file)
    png = png_bytes(picture)
    for w, h in ((20000, 12000), (100000, 100000), (2**31 - 1, 1), (0, 0), (1, 2**31 - 1)):
        yield f"image.png-declares-{w}x{h}", "frames", file_case("bomb", ".png", png_with_size(png, w, h), frames_file)


def peak_rss_mb() -> float:
    """This process's peak RSS (MB). VmHWM, not ru_maxrss: Linux carries ru_maxrss across
    exec, so a child would report its parent's peak (a parent that loaded torch: ~900 MB)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def media_child(clips: list[str], work: str, seed: int, scale: int, out: str) -> None:
    """Entry point of the child process: run every media case and write a Tally as JSON."""
    resource.setrlimit(resource.RLIMIT_AS, (MEDIA_RLIMIT_AS, MEDIA_RLIMIT_AS))
    # The decoders and scipy.signal load lazily on first use; load them before the per-case
    # alarm runs, so a slow host (emulated aarch64 takes seconds) never interrupts an import
    # half-way, which would leave scipy.signal broken for every later case.
    import scipy.signal  # noqa: F401
    import soundfile  # noqa: F401

    import edge.features.audio_stream  # noqa: F401
    import edge.features.frame_files  # noqa: F401
    from edge.features import FeatureSpec

    spec = FeatureSpec()
    dims = {"audio": spec.audio_dim, "frames": spec.frames_dim}
    tally = Tally()
    rng = random.Random(seed)
    biggest = ("", 0.0)  # the case that raised the peak RSS most
    for name, expects, call in media_cases([Path(c) for c in clips], Path(work), rng, scale):
        def check(vec, n=dims[expects]):
            if not isinstance(vec, np.ndarray) or vec.shape != (n,) or vec.dtype != np.float32:
                return f"expected float32 ({n},), got {getattr(vec, 'dtype', type(vec))} {getattr(vec, 'shape', '')}"
            if not np.all(np.isfinite(vec)):
                return "non-finite values in the vector"
            return None

        before = peak_rss_mb()
        run_case(tally, "media", name, call, (FeatureError,), check)
        grew = peak_rss_mb() - before
        if grew > biggest[1]:
            biggest = (name, grew)
    doc = tally.to_dict()
    doc["peak_rss_mb"] = peak_rss_mb()
    doc["largest_rss_step"] = {"case": biggest[0], "mb": round(biggest[1], 1)}
    Path(out).write_text(json.dumps(doc))


def run_media(clips: list[Path], work: Path, seed: int = SEED, scale: int = 1, timeout_s: float = 600) -> dict[str, Any]:
    """Run :func:`media_child` in a fresh interpreter (single-threaded BLAS) and return its report."""
    work.mkdir(parents=True, exist_ok=True)
    out = work / "media.json"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, str(Path(__file__).resolve()), "media", json.dumps([str(c) for c in clips]), str(work), str(seed), str(scale), str(out)]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0 or not out.exists():
        raise AssertionError(f"media fuzz child died (exit {proc.returncode}; a hang or a crash in C code):\n{proc.stderr[-4000:]}")
    return json.loads(out.read_text())


# ---------------------------------------------------------------------------------------------
# Bundles: folder and manifest mutations through Bundle.open and BundleStore.install, archive
# mutations through BundleStore.install; the store's active bundle must never change.


def _edit(folder: Path, fn: Callable[[dict], Any]) -> None:
    m = json.loads((folder / "manifest.json").read_text())
    fn(m)
    (folder / "manifest.json").write_text(json.dumps(m))


def _set_path(keys: tuple, value: Any) -> Callable[[dict], None]:
    def fn(m: dict) -> None:
        d = m
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return fn


def _del_path(keys: tuple) -> Callable[[dict], None]:
    def fn(m: dict) -> None:
        d = m
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]
    return fn


def M(fn: Callable[[dict], Any]) -> Callable[[Path], None]:
    """A manifest edit as a folder mutation."""
    return lambda folder: _edit(folder, fn)


def bundle_folder_mutations(bundle: Path, rng: random.Random, scale: int = 1) -> Iterator[tuple[str, Callable[[Path], None], bool]]:
    """``(name, mutate(folder), may_open)``: ``may_open`` marks mutations a bundle can survive
    (a flipped byte in the manifest that still parses and changes nothing checked)."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    files = sorted(manifest["files"])
    for rel in files:
        yield f"{rel}-truncated", (lambda f, r=rel: (f / r).write_bytes((f / r).read_bytes()[: (f / r).stat().st_size // 2])), False
        yield f"{rel}-flipped", (lambda f, r=rel: (f / r).write_bytes(flip((f / r).read_bytes(), rng, 0, 1 << 30))), False
        yield f"{rel}-appended", (lambda f, r=rel: (f / r).write_bytes((f / r).read_bytes() + b"\0")), False
        yield f"{rel}-deleted", (lambda f, r=rel: (f / r).unlink()), False
        yield f"{rel}-symlink", (lambda f, r=rel: (shutil.move(f / r, f / "moved"), os.symlink(f / "moved", f / r))), False
        yield f"{rel}-wrong-hash", M(_set_path(("files", rel, "sha256"), "0" * 64)), False
    for rel in files[:2]:
        yield f"{rel}-zeroed", (lambda f, r=rel: (f / r).write_bytes(bytes((f / r).stat().st_size))), False
    required = ("format", "format_version", "feature_spec", "feature_spec_hash", "embedding_dim", "history_len",
                "context_dim", "models", "catalog", "files")
    weird = ("x", [], None, 1e308, -1, True, {"a": 1}, 10**30)
    for key in required:
        yield f"manifest-{key}-missing", M(_del_path((key,))), False
        for v in rng.sample(weird, 2 * scale if 2 * scale < len(weird) else len(weird)):
            yield f"manifest-{key}={v!r}"[:80], M(_set_path((key,), v)), False
    for key, v in (("embedding_dim", -1), ("embedding_dim", 0), ("embedding_dim", 10**30), ("history_len", -5), ("context_dim", 10**18),
                   ("format_version", 2), ("format", "zip")):
        yield f"manifest-{key}={v}", M(_set_path((key,), v)), False
    rel = files[0]
    for v in (-1, 10**15, "12", True, None, 1.5):
        yield f"files-size={v!r}", M(_set_path(("files", rel, "size"), v)), False
    for v in (123, None, "", "z" * 64):
        yield f"files-sha256={v!r}", M(_set_path(("files", rel, "sha256"), v)), False
    yield "files-entry-list", M(_set_path(("files", rel), [])), False
    yield "files-entry-str", M(_set_path(("files", rel), "x")), False
    for bad in ("../evil.npy", "/etc/passwd", "catalog/../../x", "", "models/\x00x", "a\\..\\b", "./catalog/items.json"):
        yield f"files-path={bad!r}", M(lambda m, b=bad: m["files"].__setitem__(b, {"sha256": "0" * 64, "size": 1})), False
    for key in ("embeddings", "items", "scales", "priors"):
        yield f"catalog-{key}-traversal", M(_set_path(("catalog", key), "../../../etc/passwd")), False
        yield f"catalog-{key}-not-str", M(_set_path(("catalog", key), ["x"])), False
        yield f"catalog-{key}-missing", M(_del_path(("catalog", key))), False
    model = sorted(manifest["models"])[0]
    yield "models-entry-str", M(_set_path(("models", model), "x")), False
    yield "models-files-list", M(_set_path(("models", model, "files"), ["a"])), False
    yield "models-files-traversal", M(_set_path(("models", model, "files"), {"onnx": "../../x.onnx"})), False
    yield "models-files-unhashable", M(_set_path(("models", model, "files"), {"onnx": ["x"]})), False
    yield "feature-spec-unknown-field", M(_set_path(("feature_spec", "surprise"), 1)), False
    for field, v in (("winlen_s", 1e308), ("winlen_s", -1.0), ("sample_rate_hz", "16000"), ("excerpt_windows", [[0.5]]),
                     ("excerpt_windows", [["a", 1]]), ("text_dim", 10**40), ("word_ngrams", [3]), ("nfft", None)):
        yield f"feature-spec-{field}={v!r}", M(_set_path(("feature_spec", field), v)), False
    # Raw manifest text: not JSON, truncated, absurd numbers, deep nesting, huge file.
    raw = {
        "manifest-not-json": b"{not json",
        "manifest-empty": b"",
        "manifest-list": b"[]",
        "manifest-nul": b"\0" * 100,
        "manifest-latin1": "{\"format\": \"\xe9\"}".encode("latin1"),
        "manifest-nan": None,
        "manifest-infinity": None,
        "manifest-5000-digit-int": None,
        "manifest-deep-nesting": b"[" * 200_000 + b"]" * 200_000,
        "manifest-truncated": None,
    }
    for name, data in raw.items():
        def write(f: Path, name=name, data=data) -> None:
            text = (f / "manifest.json").read_text()
            if name == "manifest-nan":
                data = text.replace('"embedding_dim": ', '"embedding_dim": NaN, "x": ', 1).encode()
            elif name == "manifest-infinity":
                data = text.replace('"winlen_s": 0.025', '"winlen_s": Infinity').encode()
            elif name == "manifest-5000-digit-int":
                data = text.replace('"embedding_dim": ', '"embedding_dim": ' + "9" * 5000 + ', "x": ', 1).encode()
            elif name == "manifest-truncated":
                data = text.encode()[: rng.randrange(1, len(text))]
            (f / "manifest.json").write_bytes(data)
        yield name, write, False
    for i in range(8 * scale):
        yield f"manifest-flip-{i}", (lambda f: (f / "manifest.json").write_bytes(flip((f / "manifest.json").read_bytes(), rng, 0, 1 << 30))), True


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]], path: Path, mode: str = "w") -> Path:
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _members(bundle: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    manifest = json.loads((bundle / "manifest.json").read_text())
    out = []
    for rel in ["manifest.json", *sorted(manifest["files"])]:
        data = (bundle / rel).read_bytes()
        info = tarfile.TarInfo(rel)
        info.size, info.mode = len(data), 0o644
        out.append((info, data))
    return out


def bundle_archive_mutations(bundle: Path, archive: Path, rng: random.Random, scale: int = 1) -> Iterator[tuple[str, Callable[[Path], Path], bool]]:
    """``(name, make(dst) -> archive path, may_install)``."""
    data = archive.read_bytes()
    n = len(data)
    for _ in range(4 * scale):
        k = rng.randrange(0, n)
        yield f"tar-trunc@{k}", (lambda d, k=k: (d.write_bytes(data[:k]), d)[1]), False
    for _ in range(6 * scale):
        yield "tar-flip", (lambda d: (d.write_bytes(flip(data, rng, 0, n, rng.randint(1, 4))), d)[1]), True
    yield "tar-garbage", (lambda d: (d.write_bytes(rng.randbytes(4096)), d)[1]), False
    yield "tar-empty-file", (lambda d: (d.write_bytes(b""), d)[1]), False
    yield "tar-zero-blocks", (lambda d: (d.write_bytes(bytes(10240)), d)[1]), False
    yield "tar-gzip", (lambda d: _tar(_members(bundle), d, "w:gz")), False
    members = _members(bundle)

    def variant(fn: Callable[[list], list]) -> Callable[[Path], Path]:
        return lambda d: _tar(fn(list(members)), d)

    def link(kind: bytes, name: str, target: str) -> tuple[tarfile.TarInfo, None]:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        return info, None

    def renamed(name: str, i: int = 1) -> Callable[[list], list]:
        def fn(ms: list) -> list:
            info = tarfile.TarInfo(name)
            info.size, info.mode = ms[i][0].size, 0o644
            return ms[:i] + [(info, ms[i][1])] + ms[i + 1:]
        return fn

    second = members[1][0].name
    yield "tar-symlink-member", variant(lambda ms: ms[:1] + [link(tarfile.SYMTYPE, second, "/etc/passwd")] + ms[2:]), False
    yield "tar-hardlink-member", variant(lambda ms: ms[:1] + [link(tarfile.LNKTYPE, second, "manifest.json")] + ms[2:]), False
    yield "tar-symlink-dir", variant(lambda ms: ms[:1] + [link(tarfile.SYMTYPE, second.split("/")[0], "/tmp")] + ms[1:]), False
    yield "tar-dotdot-member", variant(renamed("../../evil")), False
    yield "tar-absolute-member", variant(renamed("/tmp/evil")), False
    yield "tar-dotdot-inside", variant(renamed(f"{second.split('/')[0]}/../../evil")), False
    yield "tar-unlisted-member", variant(lambda ms: ms + [renamed("extra.bin", 0)(ms)[0]]), False
    yield "tar-duplicate-member", variant(lambda ms: ms + [ms[1]]), False
    yield "tar-manifest-not-first", variant(lambda ms: ms[1:] + ms[:1]), False
    yield "tar-missing-member", variant(lambda ms: ms[:-1]), False
    yield "tar-only-manifest", variant(lambda ms: ms[:1]), False
    yield "tar-empty-archive", variant(lambda ms: []), False

    def special(kind: bytes) -> Callable[[list], list]:
        def fn(ms: list) -> list:
            info = tarfile.TarInfo(second)
            info.type = kind
            return ms[:1] + [(info, None)] + ms[2:]
        return fn

    yield "tar-fifo-member", variant(special(tarfile.FIFOTYPE)), False
    yield "tar-chardev-member", variant(special(tarfile.CHRTYPE)), False
    yield "tar-dir-member", variant(special(tarfile.DIRTYPE)), False

    def manifest_edit(fn: Callable[[dict], Any]) -> Callable[[list], list]:
        def edit(ms: list) -> list:
            m = json.loads(ms[0][1])
            fn(m)
            text = json.dumps(m).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mode = len(text), 0o644
            return [(info, text)] + ms[1:]
        return edit

    yield "tar-declares-huge-size", variant(manifest_edit(_set_path(("files", second, "size"), 10**13))), False
    yield "tar-declares-negative-size", variant(manifest_edit(_set_path(("files", second, "size"), -1))), False
    yield "tar-declares-many-files", variant(manifest_edit(lambda m: m["files"].update({f"f{i}": {"sha256": "0" * 64, "size": 0} for i in range(20000)}))), False
    yield "tar-manifest-traversal", variant(manifest_edit(lambda m: m["files"].update({"../x": {"sha256": "0" * 64, "size": 1}}))), False

    def member_size(size: int) -> Callable[[Path], Path]:
        def make(d: Path) -> Path:
            raw = bytearray(_tar(list(members), d).read_bytes())
            # The second member's header is in the first block after the manifest's data (PAX may add one).
            off = raw.find(second.encode())
            struct.pack_into("12s", raw, off + 124, b"%011o\0" % size if size < 8**11 else b"\x80" + size.to_bytes(11, "big"))
            raw[off + 148:off + 156] = b"        "
            chk = sum(raw[off:off + 512])
            raw[off + 148:off + 156] = b"%06o\0 " % chk
            d.write_bytes(bytes(raw))
            return d
        return make

    yield "tar-member-header-huge-size", member_size(2**40), False
    yield "tar-member-header-size-0", member_size(0), False


def fuzz_bundles(bundle: Path, archive: Path, work: Path, tally: Tally, seed: int = SEED, scale: int = 1) -> None:
    """Every bundle mutation through Bundle.open (folders) and BundleStore.install (folders and
    archives), checking after each install attempt that the original bundle is still active."""
    from edge.bundle import Bundle
    from edge.bundle.store import BundleStore

    rng = random.Random(seed)
    store = BundleStore(work / "store", backends=["onnx"])
    original = store.install(archive)
    store_ok = True

    def check_store(name: str) -> None:
        nonlocal store_ok
        if store.current() != original.path:
            store_ok = False
            tally.add("bundle", f"{name}-store", "ActiveChanged", 0.0, False, f"active is {store.current()}")

    def installed_check(r, may_differ: bool) -> str | None:
        # The same id means the same manifest and, verified, the same files: nothing changed.
        # Without signatures (issue 8, item 2) a flipped byte in an unchecked manifest field
        # (a metric, created_at) makes a new bundle that verifies; only flips may do that.
        return None if r.id == original.id or may_differ else f"installed a damaged bundle as {r.id}"

    def installed_label(r) -> str:
        if r.id == original.id:
            return "ok-same-bundle"
        return "ok-altered-unsigned-manifest"

    def restore() -> None:
        if store.current() != original.path:
            store.rollback()  # undo a legitimate install of an altered manifest before checking

    for i, (name, mutate, may_open) in enumerate(bundle_folder_mutations(bundle, rng, scale)):
        folder = work / f"b{i}"
        shutil.copytree(bundle, folder)
        mutate(folder)
        allowed = (BundleError,)
        run_case(tally, "bundle", f"open:{name}", lambda: Bundle.open(folder), allowed,
                 lambda b: None if may_open else "opened a damaged bundle")
        # Installing what opened is legitimate (the same content keeps the same id); anything else must be refused.
        run_case(tally, "bundle", f"install-folder:{name}", lambda: store.install(folder), allowed,
                 lambda r: installed_check(r, may_open), lambda r: installed_label(r))
        restore()
        check_store(name)
        shutil.rmtree(folder, ignore_errors=True)
    for i, (name, make, may_install) in enumerate(bundle_archive_mutations(bundle, archive, rng, scale)):
        path = make(work / f"a{i}.tar")
        run_case(tally, "bundle", f"install-archive:{name}", lambda: store.install(path), (BundleError,),
                 lambda r: installed_check(r, may_install), lambda r: installed_label(r))
        restore()
        check_store(name)
        path.unlink(missing_ok=True)
    # A damaged or forged store pointer (a separate store, so the real one stays untouched).
    forged = work / "forged-store"
    (forged / "bundles").mkdir(parents=True)
    head = '{"format": "edgerec-store", "version": 1, '
    pointers = {"deep-nesting": "[" * 200_000 + "]" * 200_000, "not-json": "{", "list": "[]", "empty": "",
                "5000-digit-version": head.replace("1, ", "9" * 5000 + ", ") + '"active": null, "previous": []}',
                "active-traversal": head + '"active": "../../etc", "previous": []}', "active-nul": head + '"active": "a\u0000", "previous": []}',
                "active-missing-folder": head + '"active": "20300101T000000Z-abc", "previous": []}',
                "previous-not-list": head + '"active": null, "previous": "x"}', "over-1-MiB": " " * (1 << 20) + "{}"}
    for name, text in pointers.items():
        (forged / "current").write_text(text)
        run_case(tally, "bundle", f"pointer:{name}", lambda: BundleStore(forged, create=False).current(), (BundleError,),
                 lambda path: f"resolved to {path}")
    try:
        Bundle.open(store.current())
        leftovers = [p.name for p in store.bundles_dir.iterdir() if p.name.startswith(".")]
        tally.intact["bundle"] = store_ok and store.current() == original.path and not leftovers
    except BundleError:
        tally.intact["bundle"] = False


# ---------------------------------------------------------------------------------------------
# History databases


def make_history(path: Path, events: int = 300) -> dict[str, int]:
    """A real history file with two profiles and ``events`` events; returns events per profile."""
    from edge.history import HistoryStore

    with HistoryStore(path) as store:
        counts = {}
        for p in ("alice", "bob"):
            store.add_profile(p)
            for i in range(events // 2):
                store.record(p, f"i{i % 37:03d}", ("play", "complete", "skip")[i % 3], 1_700_000_000 + i * 60, tags=["x"])
            counts[p] = events // 2
    return counts


def history_mutations(data: bytes, rng: random.Random, scale: int = 1) -> Iterator[tuple[str, bytes, bytes | None]]:
    """``(name, db bytes, wal bytes or None)``."""
    page = struct.unpack(">H", data[16:18])[0] or 65536
    pages = len(data) // page
    for k in (0, 1, 50, 99, 100, page, page + 1, len(data) // 2, len(data) - 1):
        yield f"trunc@{k}", data[:k], None
    for _ in range(2 * scale):
        k = rng.randrange(1, len(data))
        yield f"trunc@{k}", data[:k], None
    for _ in range(6 * scale):
        yield "flip-header", flip(data, rng, 0, 100, rng.randint(1, 3)), None
    for _ in range(8 * scale):
        yield "flip-pages", flip(data, rng, 100, len(data), rng.randint(1, 16)), None
    for p in sorted({0, 1, min(2, pages - 1), pages - 1, rng.randrange(pages)}):
        b = bytearray(data)
        b[p * page:(p + 1) * page] = bytes(page) if p else bytes(100) + data[100:page]
        yield f"zero-page-{p}", bytes(b), None
    for off, v, name in ((16, b"\x00\x00", "page-size-0"), (16, b"\xff\xff", "page-size-ffff"), (18, b"\x03\x03", "version-3"),
                         (28, b"\xff\xff\xff\xff", "page-count-huge"), (44, b"\x00\x00\x00\x09", "schema-format-9"),
                         (56, b"\x00\x00\x00\x09", "encoding-9"), (60, b"\xff\xff\xff\xff", "user-version-huge")):
        yield f"header-{name}", data[:off] + v + data[off + len(v):], None
    # Regression: SQLite quotes the damaged schema in its message, which sqlite3 decodes as UTF-8.
    at = data.find(b"INDEX", 0, page)
    if at > 0:
        yield "schema-invalid-utf8", data[:at + 2] + b"\xc4" + data[at + 3:], None
    yield "text-file", b"this is not a database\n" * 10, None
    yield "random-bytes", rng.randbytes(len(data)), None
    yield "appended-garbage", data + rng.randbytes(5000), None
    # WAL companions: garbage, a valid-looking header with garbage frames, an empty one.
    wal_header = struct.pack(">IIIIIIII", 0x377F0682, 3007000, page, 0, rng.randrange(2**32), rng.randrange(2**32), 0, 0)
    yield "wal-garbage", data, rng.randbytes(3 * page)
    yield "wal-header-garbage-frames", data, wal_header + rng.randbytes(2 * (page + 24))
    yield "wal-empty", data, b""
    yield "wal-truncated-header", data, wal_header[:17]


def fuzz_histories(work: Path, tally: Tally, seed: int = SEED, scale: int = 1) -> None:
    """Open every damaged copy with HistoryStore: it opens (moving a damaged file aside, which
    must still exist byte for byte) or raises HistoryError; an opened store must read and write."""
    from edge.history import HistoryStore

    rng = random.Random(seed)
    base = work / "base.db"
    counts = make_history(base)
    data = base.read_bytes()
    nothing_lost = True
    for i, (name, db, wal) in enumerate(history_mutations(data, rng, scale)):
        folder = work / f"h{i}"
        folder.mkdir()
        path = folder / "history.db"
        path.write_bytes(db)
        if wal is not None:
            Path(f"{path}-wal").write_bytes(wal)

        def open_and_use() -> HistoryStore:
            store = HistoryStore(path)
            try:
                if store.recovered_from is None:
                    for p in counts:
                        try:
                            store.recent(p, 1000)
                        except HistoryError:
                            pass  # e.g. the profile's rows are gone from a file that still checks out
                else:
                    store.add_profile("after")
                    store.record("after", "i001", "play", 1_700_000_000)
                return store
            finally:
                store.close()

        def check(store) -> str | None:
            nonlocal nothing_lost
            moved = store.recovered_from
            if moved is not None and (not Path(moved).exists() or Path(moved).read_bytes() != db):
                nothing_lost = False
                return f"moved to {moved}, but that file is missing or differs from the damaged bytes"
            if moved is None and not path.exists():
                nothing_lost = False
                return "the file vanished"
            return None

        run_case(tally, "history", name, open_and_use, (HistoryError,), check,
                 lambda store: "recovered" if store.recovered_from is not None else "opened")
        shutil.rmtree(folder, ignore_errors=True)
    tally.intact["history_files"] = nothing_lost


# ---------------------------------------------------------------------------------------------
# Service requests


def service_requests(token: str, rng: random.Random, scale: int = 1) -> Iterator[tuple[str, bytes]]:
    """``(name, line)`` without the trailing newline; never touches the profile ``canary``."""
    t = json.dumps(token)
    templates = [
        {"token": token, "method": "recommend", "params": {"profile": "fz", "k": 5, "device": "tv"}, "id": 1},
        {"token": token, "method": "record", "params": {"profile": "fz", "item_id": "i002", "kind": "play", "timestamp": 1.7e9}},
        {"token": token, "method": "add_profile", "params": {"profile": "fz", "age_limit": 12}},
        {"token": token, "method": "block", "params": {"profile": "fz", "item_id": "i002"}},
        {"token": token, "method": "export", "params": {"profile": "fz"}, "id": "x"},
        {"token": token, "method": "forget", "params": {"profile": "fz"}},
        {"token": token, "method": "add_item", "params": {"source": "/nonexistent/a.wav", "title": "t", "profile": "fz"}},
        {"token": token, "method": "health", "params": {}},
    ]
    for _ in range(12 * scale):
        yield "random-bytes", rng.randbytes(rng.randint(1, 300)).replace(b"\n", b" ")
    for name, raw in (("utf8-lone-ff", b"\xff\xfe{}"), ("utf8-bad-cont", b'{"token": "\xc3\x28"}'), ("utf8-surrogate", b'{"a": "\xed\xa0\x80"}'),
                      ("utf8-overlong", b'{"\xc0\xaf": 1}'), ("escaped-surrogate", b'{"token": "\\ud800", "method": "health"}'),
                      ("nul-raw", b"\0\0\0"), ("nul-in-string", b'{"token": ' + t.encode() + b', "method": "rec\\u0000ommend", "params": {}}'),
                      ("nul-profile", b'{"token": ' + t.encode() + b', "method": "recommend", "params": {"profile": "a\\u0000b"}}'),
                      ("nul-raw-in-json", b'{"token": ' + t.encode() + b', "method": "health"\0}'),
                      ("blank", b"   "), ("empty", b""), ("crlf", b"{}\r")):
        yield name, raw
    for n in (10, 1000, 30000):
        yield f"deep-list-{n}", b"[" * n + b"]" * n
        yield f"deep-object-{n}", b'{"a":' * n + b"1" + b"}" * n
        yield f"deep-params-{n}", (f'{{"token": {t}, "method": "recommend", "params": {{"profile": ' + "[" * n + "]" * n + "}}").encode()
    for name, value in (("1e999", "1e999"), ("-1e999", "-1e999"), ("NaN", "NaN"), ("Infinity", "Infinity"), ("5000-digits", "9" * 5000),
                        ("2**64", str(2**64)), ("-2**63", str(-(2**63))), ("tiny", "1e-400")):
        for param in ("k", "timestamp"):
            yield f"huge-{param}={name}", f'{{"token": {t}, "method": "recommend", "params": {{"profile": "fz", "{param}": {value}}}}}'.encode()
        yield f"huge-id={name}", f'{{"token": {t}, "method": "health", "params": {{}}, "id": {value}}}'.encode()
    wrong = [("params-list", {"method": "recommend", "params": []}), ("params-str", {"method": "recommend", "params": "x"}),
             ("method-int", {"method": 7, "params": {}}), ("method-null", {"method": None}), ("method-list", {"method": ["recommend"]}),
             ("token-list", {"token": [token], "method": "health"}), ("token-int", {"token": 1, "method": "health"}),
             ("token-missing", {"method": "health"}), ("token-wrong", {"token": "x" * 43, "method": "health"}),
             ("id-object", {"method": "health", "id": {"a": 1}}), ("id-float", {"method": "health", "id": 1.5}),
             ("id-bool", {"method": "health", "id": True}), ("extra-field", {"method": "health", "zzz": 1}),
             ("k-str", {"method": "recommend", "params": {"profile": "fz", "k": "5"}}), ("k-float", {"method": "recommend", "params": {"profile": "fz", "k": 5.0}}),
             ("k-bool", {"method": "recommend", "params": {"profile": "fz", "k": True}}), ("k-zero", {"method": "recommend", "params": {"profile": "fz", "k": 0}}),
             ("k-huge", {"method": "recommend", "params": {"profile": "fz", "k": 10**12}}), ("k-negative", {"method": "recommend", "params": {"profile": "fz", "k": -3}}),
             ("profile-int", {"method": "recommend", "params": {"profile": 5}}), ("profile-null", {"method": "recommend", "params": {"profile": None}}),
             ("profile-empty", {"method": "recommend", "params": {"profile": ""}}), ("device-bad", {"method": "recommend", "params": {"profile": "fz", "device": "fridge"}}),
             ("tags-str", {"method": "add_item", "params": {"source": "/x.wav", "title": "t", "tags": "a"}}),
             ("tags-mixed", {"method": "add_item", "params": {"source": "/x.wav", "title": "t", "tags": ["a", 1]}}),
             ("source-relative", {"method": "add_item", "params": {"source": "x.wav", "title": "t"}}),
             ("source-dev-zero", {"method": "add_item", "params": {"source": "/dev/zero", "title": "t"}}),
             ("source-folder", {"method": "add_item", "params": {"source": "/", "title": "t"}}),
             ("kind-bad", {"method": "record", "params": {"profile": "fz", "item_id": "i002", "kind": "explode"}}),
             ("at-negative", {"method": "record", "params": {"profile": "fz", "item_id": "i002", "timestamp": -1e18}}),
             ("value-huge", {"method": "record", "params": {"profile": "fz", "item_id": "i002", "value": 1e300}}),
             ("item-unknown", {"method": "record", "params": {"profile": "fz", "item_id": "nope" * 10}}),
             ("age-huge", {"method": "add_profile", "params": {"profile": "fz2", "age_limit": 10**9}}),
             ("blocked-str", {"method": "block", "params": {"profile": "fz", "item_id": "i002", "blocked": "yes"}}),
             ("unknown-method", {"method": "drop_tables", "params": {}}), ("private-method", {"method": "_invoke", "params": {}}),
             ("dunder-method", {"method": "__class__", "params": {}})]
    for name, req in wrong:
        full = {"token": token, **req} if "token" not in req and name != "token-missing" else req
        yield f"wrong-{name}", json.dumps(full).encode()
    for n in (1000, 50_000):
        yield f"long-profile-{n}", json.dumps({"token": token, "method": "recommend", "params": {"profile": "p" * n}}).encode()
        yield f"long-method-{n}", json.dumps({"token": token, "method": "m" * n, "params": {}}).encode()
    yield "long-token", json.dumps({"token": "t" * 60_000, "method": "health"}).encode()
    yield "over-size-limit", json.dumps({"token": token, "method": "recommend", "params": {"profile": "p" * 70_000}}).encode()
    yield "long-unicode", json.dumps({"token": token, "method": "recommend", "params": {"profile": "\U0001f600" * 10_000}}, ensure_ascii=False).encode()
    for _ in range(40 * scale):
        text = bytearray(json.dumps(rng.choice(templates)).encode())
        for _ in range(rng.randint(1, 6)):
            op = rng.randrange(4)
            i = rng.randrange(len(text))
            if op == 0:
                text[i] ^= 1 << rng.randrange(8)
            elif op == 1:
                del text[i]
            elif op == 2:
                text.insert(i, rng.choice(b'{}[]",:0123456789eE.-+\\ntfu\x00\xff'))
            else:
                text[i:i] = text[rng.randrange(len(text)):][: rng.randint(1, 20)]
        yield "mutated-template", bytes(text).replace(b"\n", b" ")


def fuzz_service(bundle: Path, work: Path, socket_dir: Path, tally: Tally, seed: int = SEED, scale: int = 1) -> None:
    """Serve the tiny bundle, record canary events, send every malformed request, then check
    the server still answers a valid request and every canary event is still there."""
    from edge.recommender import Recommender
    from edge.service import Limits, Service

    rng = random.Random(seed)
    rec = Recommender.open(bundle, work / "service.db", backends=["onnx"])
    svc = Service(rec, socket_dir / "run" / "edgerec.sock", limits=Limits(rate_per_s=1e6, burst=1_000_000, read_timeout_s=10)).start()
    try:
        conn = _Line(svc.socket_path)

        def call(method: str, **params) -> dict:
            return conn.ask(json.dumps({"token": svc.token, "method": method, "params": params}).encode())

        items = [it.item_id for it in rec.bundle.items][:10]
        assert call("add_profile", profile="canary")["ok"]
        canary = [call("record", profile="canary", item_id=items[i % len(items)], kind="complete", timestamp=1_750_000_000 + 60 * i)["result"]["event_id"]
                  for i in range(20)]
        for name, line in service_requests(svc.token, rng, scale):
            def send(line=line) -> dict:
                nonlocal conn
                try:
                    return conn.ask(line)
                finally:
                    if conn.closed_by_server():
                        conn.close()
                        conn = _Line(svc.socket_path)

            def check(answer: dict) -> str | None:
                if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
                    return f"not an envelope: {str(answer)[:200]}"
                if not answer["ok"]:
                    err = answer.get("error") or {}
                    if err.get("type") == "InternalError" or not isinstance(err.get("message"), str):
                        return f"error answer {err}"
                return None

            run_case(tally, "service", name, send, (), check,
                     lambda answer: "ok" if answer.get("ok") else str((answer.get("error") or {}).get("type")))
        after = call("recommend", profile="canary", k=5)
        exported = call("export", profile="canary")
        kept = {e["id"] for e in exported["result"]["events"]} if exported.get("ok") else set()
        tally.intact["service_answers_after"] = bool(after.get("ok")) and len(after["result"]) == 5
        tally.intact["history"] = set(canary) <= kept
        conn.close()
    finally:
        svc.stop()
        rec.close()


class _Line:
    """One Unix-socket connection of the line protocol."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(CASE_LIMIT_S)
        self.sock.connect(str(path))
        self.reader = self.sock.makefile("rb")
        self._eof = False

    def ask(self, line: bytes) -> dict:
        self.sock.sendall(line + b"\n")
        answer = self.reader.readline()
        if not answer:
            self._eof = True
            raise ConnectionError("the server closed the connection without an answer")
        doc = json.loads(answer)
        if isinstance(doc, dict) and not doc.get("ok") and "closing the connection" in (doc.get("error") or {}).get("message", ""):
            self._eof = True
        return doc

    def closed_by_server(self) -> bool:
        return self._eof

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# The tests


if __name__ != "__main__":
    import pytest

    from tests.conftest import shared_data

    REPORT = Tally()

    @pytest.fixture(scope="module")
    def tally() -> Tally:
        return REPORT

    def test_mutated_media_end_in_feature_error_or_a_finite_vector(tmp_path, tally):
        clips = [shared_data("audio", name) for name in CLIPS]
        doc = run_media(clips, tmp_path / "media")
        tally.merge("media", doc["kinds"]["media"])
        tally.peak_rss_mb = doc["peak_rss_mb"]
        assert not tally.failures("media"), "\n".join(tally.failures("media"))
        assert tally.kinds["media"]["cases"] >= MINIMUM["media"]
        assert tally.kinds["media"]["outcomes"]["ok"] >= 9, "the intact clips must give vectors"
        # Regression: a PNG declaring 20000x12000 px made FFmpeg allocate ~750 MB before failing.
        assert doc["peak_rss_mb"] < 500, f"the media child peaked at {doc['peak_rss_mb']:.0f} MB"

    def test_malformed_bundles_are_refused_and_the_active_bundle_stays(device_bundle, tmp_path, tally):
        archive = device_bundle.bundle.with_name(device_bundle.bundle.name + ".tar")
        fuzz_bundles(device_bundle.bundle, archive, tmp_path, tally)
        assert not tally.failures("bundle"), "\n".join(tally.failures("bundle"))
        assert tally.intact["bundle"]

    def test_damaged_histories_open_fresh_keep_the_damaged_copy_or_raise_history_error(tmp_path, tally):
        fuzz_histories(tmp_path, tally)
        assert not tally.failures("history"), "\n".join(tally.failures("history"))
        assert tally.intact["history_files"]

    def test_malformed_requests_get_error_answers_and_the_service_keeps_serving(device_bundle, tmp_path, tally):
        socket_dir = Path(tempfile.mkdtemp(prefix="edgerec-fz-"))  # AF_UNIX paths must stay short
        try:
            fuzz_service(device_bundle.bundle, tmp_path, socket_dir, tally)
        finally:
            shutil.rmtree(socket_dir, ignore_errors=True)
        assert not tally.failures("service"), "\n".join(tally.failures("service"))
        assert tally.intact["service_answers_after"] and tally.intact["history"]

    def test_fuzz_report_lists_every_kind_and_nothing_lost(tmp_path_factory, tally):
        doc = tally.to_dict()
        (tmp_path_factory.getbasetemp() / "fuzz-report.json").write_text(json.dumps(doc, indent=1))
        print("\n" + tally.summary())
        if len(tally.kinds) < len(MINIMUM):
            pytest.skip(f"only {sorted(tally.kinds)} ran; run the whole file for the report")
        for kind, n in MINIMUM.items():
            assert doc["kinds"][kind]["cases"] >= n, kind
            assert not doc["kinds"][kind]["failures"], kind
        assert all(doc["intact"].values()), doc["intact"]
        assert doc["max_case_s"] < CASE_LIMIT_S


if __name__ == "__main__" and len(sys.argv) == 7 and sys.argv[1] == "media":
    media_child(json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
