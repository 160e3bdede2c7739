"""``edgerec features audio|frames|text PATH...``: print content feature vectors and their cost."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from edge.errors import FeatureError
from edge.features.media_path import check_media_path
from edge.features.spec import FeatureSpec


def _spec(args: argparse.Namespace) -> FeatureSpec:
    spec = FeatureSpec()
    if getattr(args, "resampler", None):
        spec = dataclasses.replace(spec, resampler=args.resampler)
    if getattr(args, "full_clip", False):
        spec = dataclasses.replace(spec, excerpt_windows=None, max_read_s=args.max_read_s)
    return spec


def _read_text(source: str, literal: bool) -> str:
    if literal:
        return source
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    if path.exists():
        check_media_path(path, folder_ok=False)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FeatureError(f"{path}: no such file (use --literal to pass the text itself)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FeatureError(f"{path}: cannot read UTF-8 text ({exc})") from None


def _cmd(args: argparse.Namespace) -> int:
    # Imported here: `edgerec --help` builds every parser and should not load numpy and scipy.
    import numpy as np

    from edge.features import audio_features, frame_features_from_file, text_features

    spec = _spec(args)
    names = {"audio": spec.audio_names, "frames": spec.frames_names, "text": spec.text_names}[args.modality]
    results = []
    for source in args.paths:
        start = time.perf_counter()
        if args.modality != "text":
            check_media_path(source, folder_ok=args.modality == "frames")
        if args.modality == "audio":
            vec = audio_features(source, spec)
        elif args.modality == "frames":
            vec = frame_features_from_file(source, spec)
        else:
            vec = text_features(_read_text(source, args.literal), spec=spec)
        results.append((source, vec, time.perf_counter() - start))
    if args.json:
        out = [
            {"path": src, "modality": args.modality, "dim": int(v.size), "seconds": round(s, 6),
             "feature_spec_hash": spec.hash(), "names": list(names), "vector": [round(float(x), 6) for x in v]}
            for src, v, s in results
        ]  # fmt: skip
        print(json.dumps(out, indent=1, ensure_ascii=False))
        return 0
    for src, v, s in results:
        print(f"{src}: {args.modality} vector, dim {v.size}, {s * 1000:.2f} ms")
        if args.modality == "text":
            nz = np.flatnonzero(v)
            print("  " + " ".join(f"{i}:{v[i]:+.3f}" for i in nz))
        else:
            for n, x in zip(names, v):
                print(f"  {n:<22} {x: .5g}")
    return 0


def register(sub: "argparse._SubParsersAction") -> None:
    """Add ``features audio|frames|text`` to ``sub``."""
    p = sub.add_parser(
        "features",
        help="compute content feature vectors (audio, frames, text) and time them",
        description="Compute the content features the device uses, exactly as bundles are built with, "
        "and print each vector with the time it took.",
    )
    fsub = p.add_subparsers(dest="features_command", metavar="MODALITY", required=True)

    a = fsub.add_parser(
        "audio",
        help="audio vector of audio files (WAV, FLAC, OGG, MP3) or of video soundtracks (MP4, MOV, MKV, WebM)",
        description="Decode the excerpt windows of each audio file (or the whole clip with --full-clip), "
        "and print MFCC/delta/filterbank statistics and descriptors.",
    )
    a.add_argument("paths", nargs="+", metavar="PATH", help="audio files, or video files whose soundtrack is read")
    a.add_argument("--resampler", choices=["scipy", "soxr"], help="resampler (default: the spec's, scipy)")
    a.add_argument("--full-clip", action="store_true", help="read the whole clip instead of the excerpt windows")
    a.add_argument("--max-read-s", type=float, default=FeatureSpec().max_read_s,
                   help="with --full-clip: stop after this many seconds (default %(default)s)")  # fmt: skip

    f = fsub.add_parser(
        "frames",
        help="frame vector of videos, images, image folders or .npy strips",
        description="Sample frames (video files need PyAV: pip install 'edgerec[video]'), downscale them, "
        "and print colour, texture and motion statistics.",
    )
    f.add_argument("paths", nargs="+", metavar="PATH", help="video file, image file, folder of images, or .npy (N, H, W, 3) uint8")

    t = fsub.add_parser(
        "text",
        help="hashed n-gram vector of text files (titles, tags, programme-guide text)",
        description="Hash the words and character n-grams of each UTF-8 text file into a fixed-size vector; "
        "prints the non-zero buckets.",
    )
    t.add_argument("paths", nargs="+", metavar="PATH", help="UTF-8 text files ('-' reads stdin)")
    t.add_argument("--literal", action="store_true", help="treat each PATH as the text itself")

    for parser in (a, f, t):
        parser.add_argument("--json", action="store_true", help="print JSON: vector, names, dim, seconds, spec hash")
        parser.set_defaults(func=_cmd, modality=parser.prog.split()[-1])
