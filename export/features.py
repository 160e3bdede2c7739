"""Server-side feature extraction for a whole catalogue, using :mod:`edge.features` itself.

:func:`catalogue_features` computes exactly what a device computes (the fusion student's input);
:func:`full_clip_audio` is a richer view only the server can afford (statistics over the whole
recording rather than the excerpt windows), an extra input of the fusion teacher.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from edge.atomic import atomic_file
from edge.features import FeatureSpec, audio_features, item_vector
from export.data.contract import Item
from export.parallel import process_pool


def _one(args: tuple[Item, dict]) -> np.ndarray:
    item, spec_dict = args
    spec = FeatureSpec.from_dict(spec_dict)
    return item_vector(item.title, item.tags, item.description, item.audio, item.frames, spec)


def _full_audio(args: tuple[Item, dict]) -> np.ndarray:
    item, spec_dict = args
    spec = FeatureSpec.from_dict(spec_dict)
    if item.audio is None:
        return np.zeros(spec.audio_dim, np.float32)
    return audio_features(item.audio, spec)


def _cache_key(items: Sequence[Item], spec: FeatureSpec) -> str:
    h = hashlib.sha256(spec.hash().encode())
    for it in items:
        h.update(repr((it.item_id, it.title, it.tags, it.description, str(it.audio), str(it.frames))).encode())
        for p in (it.audio, it.frames):
            if p is not None:
                st = Path(p).stat()
                h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def catalogue_features(
    items: Sequence[Item], spec: FeatureSpec | None = None, workers: int = 2, cache_dir: Path | None = None, progress: bool = True
) -> np.ndarray:
    """Item vectors for every item, in order.

    :param workers: processes; decoding dominates, so this scales with cores.
    :param cache_dir: if given, results are stored there keyed by the spec and the media files'
        sizes and mtimes, so a re-run with unchanged inputs costs nothing.
    :returns: float32 ``(len(items), spec.item_dim)``.
    :raises FeatureError: for the first item whose media cannot be decoded.
    """
    spec = spec or FeatureSpec()
    return _map_items(_one, items, spec, spec.item_dim, "features", workers, cache_dir, progress)


def full_clip_audio(
    items: Sequence[Item], spec: FeatureSpec | None = None, workers: int = 2, cache_dir: Path | None = None, progress: bool = True
) -> np.ndarray:
    """Audio statistics over each whole recording (up to ``spec.max_read_s``), zeros for items
    without audio: ``(len(items), spec.audio_dim)`` float32. Same caching as
    :func:`catalogue_features`."""
    full = replace(spec or FeatureSpec(), excerpt_windows=None)
    return _map_items(_full_audio, items, full, full.audio_dim, "full-clip audio", workers, cache_dir, progress)


def _map_items(fn, items: Sequence[Item], spec: FeatureSpec, dim: int, what: str, workers: int,
               cache_dir: Path | None, progress: bool) -> np.ndarray:
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"{fn.__name__.strip('_')}-{_cache_key(items, spec)}.npy"
        if cache.is_file():
            return np.load(cache)
    jobs = [(it, spec.to_dict()) for it in items]
    bar = tqdm(total=len(jobs), desc=what, unit="item", disable=not progress)
    out = []
    if workers > 1:
        with process_pool(workers) as pool:
            for vec in pool.map(fn, jobs, chunksize=16):
                out.append(vec)
                bar.update()
    else:
        for job in jobs:
            out.append(fn(job))
            bar.update()
    bar.close()
    matrix = np.stack(out).astype(np.float32) if out else np.zeros((0, dim), np.float32)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(cache, "wb") as fh:
            np.save(fh, matrix)
    return matrix
