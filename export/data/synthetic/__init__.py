"""Synthetic demo catalogue: audio and video items with real media files, and simulated users.

This data is SYNTHETIC. It exists so that ``edgerec demo``, the test suite and speed
measurements have a catalogue of the right shape (both item kinds, several audio formats,
sample rates and channel counts, frame strips, long-tail popularity, sessions, skips) without
downloading anything. Genres are made to differ measurably, so the pipeline has something to
learn: the timbre, tempo and loudness of the audio; the palette, brightness and motion of the
frames; the words of titles, tags and descriptions; and the hours and sequences in which the
simulated users play them. Numbers measured on it say that the pipeline runs and how fast.
Recommendation quality is judged on real data, never on this.

Layout under the output folder::

    demo.json                                   seed, counts, genres, "synthetic": true
    items.csv, interactions.csv                 the data contract (export.data.contract)
    media/audio/<item_id>.<wav|flac|ogg>        audio items
    media/frames/<item_id>.npy                  video items: uint8 RGB, shape (N, 72, 128, 3)
    media/soundtracks/<item_id>.<wav|flac|ogg>  video items' soundtracks

Media paths in ``items.csv`` are relative to the output folder. The first tag of every item is
its genre. ``duration_s`` is the length of the item's audio file (the soundtrack for video).
Timestamps are Unix seconds over the 90 days before 2026-06-01T00:00Z; hours of day are UTC.

Everything is a function of ``seed``. Each item's media comes from a generator seeded with
``(seed, stream, item index)``, so any number of worker processes writes the same samples;
WAV, FLAC, NPY and both CSVs are byte-identical between runs (OGG/Vorbis files hold the same
samples, but the encoder may embed a random stream serial).

Modules: :mod:`~export.data.synthetic.catalogue` plans the items (kinds, genres, formats;
titles and tags from :mod:`~export.data.synthetic.text`); :mod:`~export.data.synthetic.media`
writes each item's files (:mod:`~export.data.synthetic.audio` mixes
:mod:`~export.data.synthetic.music` and :mod:`~export.data.synthetic.speech`;
:mod:`~export.data.synthetic.video` paints frame strips); :mod:`~export.data.synthetic.users`
simulates the users. :func:`generate_demo` here writes the folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from edge.errors import DataError
from export.data.contract import write_interactions, write_items
from export.data.synthetic.catalogue import SAMPLE_RATES_HZ, _plan_catalogue
from export.data.synthetic.genres import AUDIO_GENRES, GENRES, VIDEO_GENRES
from export.data.synthetic.media import _write_media
from export.data.synthetic.users import EPOCH_END_S, HISTORY_DAYS, _simulate_users
from export.parallel import process_pool

__all__ = [
    "DemoData",
    "generate_demo",
    "AUDIO_GENRES",
    "VIDEO_GENRES",
    "GENRES",
    "SAMPLE_RATES_HZ",
    "EPOCH_END_S",
]

#: Bump when the output for a given seed changes, so stale cached demos are regenerated.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class DemoData:
    """Where a generated demo lives and what it holds.

    ``media_root`` is the folder the media paths in ``items.csv`` are relative to (the demo
    root itself); pass it to :func:`export.data.contract.load_dataset`.
    """

    root: Path
    items_csv: Path
    interactions_csv: Path
    media_root: Path
    n_items: int
    n_users: int
    n_events: int
    seed: int


def _manifest(seed: int, n_items: int, n_users: int) -> dict:
    return {
        "synthetic": True,
        "note": "Synthetic demo data for demos, tests and speed measurements; "
        "recommendation quality is judged on real data.",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "n_items": n_items,
        "n_users": n_users,
        "audio_genres": list(AUDIO_GENRES),
        "video_genres": list(VIDEO_GENRES),
        "genres": list(GENRES),
        "history_end": datetime.fromtimestamp(EPOCH_END_S, timezone.utc).isoformat().replace("+00:00", "Z"),
        "history_days": HISTORY_DAYS,
    }


def _cached(root: Path, seed: int, n_items: int, n_users: int) -> DemoData | None:
    """The demo already in ``root`` if it was made by this generator with these arguments."""
    try:
        meta = json.loads((root / "demo.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    expected = _manifest(seed, n_items, n_users)
    if not isinstance(meta, dict) or any(meta.get(k) != v for k, v in expected.items()):
        return None
    items_csv, interactions_csv = root / "items.csv", root / "interactions.csv"
    if not (items_csv.is_file() and interactions_csv.is_file() and (root / "media").is_dir()):
        return None
    return DemoData(root, items_csv, interactions_csv, root, n_items, n_users, int(meta.get("n_events", 0)), seed)


def generate_demo(
    out: str | Path,
    seed: int = 0,
    n_items: int = 1500,
    n_users: int = 500,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> DemoData:
    """Write a synthetic demo catalogue (items, media files, simulated users) into ``out``.

    About 55 % of items are audio (music, talk, news, podcasts: WAV/FLAC/OGG at 8-48 kHz, mono
    or stereo, 5-30 s), the rest video (a frame strip ``.npy`` plus a soundtrack). Users have
    Dirichlet-mixture genre tastes, time-of-day habits and sessions over the 90 days before
    2026-06-01 UTC; every user has at least 5 positive events (play, complete, like).

    The demo is built in a temporary sibling folder and renamed into place at the end, so a
    crash never leaves a half-written demo that looks complete. If ``out`` already holds a
    demo made by this generator with the same ``seed``, ``n_items`` and ``n_users``, it is
    returned as is without touching any file.

    :param out: output folder; created, or replaced if it holds an older demo (a ``demo.json``)
        or is empty.
    :param seed: non-negative integer; the same seed gives byte-identical CSV, WAV, FLAC and
        NPY files (OGG: identical samples) whatever ``workers`` is.
    :param n_items: catalogue size, at least 20 (so every genre has an item).
    :param n_users: number of simulated users, at least 1; ids ``u0001``... .
    :param workers: processes writing media files; 1 writes them in this process.
    :param progress: called as ``progress(done, total)`` in this process as media items finish.
    :returns: :class:`DemoData` with the paths and the counts.
    :raises ValueError: for a negative seed, fewer than 20 items, or fewer than 1 user or worker.
    :raises DataError: if ``out`` exists and is neither empty nor a demo folder (nothing is
        overwritten).
    """
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if n_items < 20:
        raise ValueError(f"n_items must be at least 20 so every genre gets an item, got {n_items}")
    if n_users < 1 or workers < 1:
        raise ValueError(f"n_users and workers must be at least 1, got n_users={n_users}, workers={workers}")
    root = Path(out).absolute()
    cached = _cached(root, seed, n_items, n_users)
    if cached is not None:
        return cached
    if root.exists() and not (root.is_dir() and ((root / "demo.json").is_file() or not any(root.iterdir()))):
        raise DataError(
            f"{root}: exists and is not a demo folder (no demo.json); refusing to overwrite it. "
            "Choose a new or empty folder."
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    try:
        for sub in ("audio", "soundtracks", "frames"):
            (staging / "media" / sub).mkdir(parents=True)
        cat = _plan_catalogue(staging, seed, n_items)
        total = len(cat.jobs)
        if workers == 1:
            for done, job in enumerate(cat.jobs, start=1):
                _write_media(job)
                if progress is not None:
                    progress(done, total)
        else:
            with process_pool(workers) as pool:
                for done, _ in enumerate(pool.map(_write_media, cat.jobs, chunksize=8), start=1):
                    if progress is not None:
                        progress(done, total)
        inter = _simulate_users(seed, cat, n_users)
        write_items(staging / "items.csv", cat.items, staging)
        write_interactions(staging / "interactions.csv", inter)
        meta = _manifest(seed, n_items, n_users)
        meta.update(n_events=len(inter), n_audio_items=sum(it.kind == "audio" for it in cat.items),
                    n_video_items=sum(it.kind == "video" for it in cat.items))
        (staging / "demo.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if root.exists():
            # Move the old demo aside first: rename cannot replace a non-empty folder.
            old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
            os.rename(root, old / "demo")
            os.rename(staging, root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return DemoData(root, root / "items.csv", root / "interactions.csv", root, n_items, n_users, len(inter), seed)
