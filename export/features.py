"""Server-side feature extraction for a whole catalogue, using :mod:`edge.features` itself."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from edge.features import FeatureSpec, item_vector
from export.data.contract import Item
from export.parallel import process_pool


def _one(args: tuple[Item, dict]) -> np.ndarray:
    item, spec_dict = args
    spec = FeatureSpec.from_dict(spec_dict)
    return item_vector(item.title, item.tags, item.description, item.audio, item.frames, spec)


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
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"features-{_cache_key(items, spec)}.npy"
        if cache.is_file():
            return np.load(cache)
    jobs = [(it, spec.to_dict()) for it in items]
    bar = tqdm(total=len(jobs), desc="features", unit="item", disable=not progress)
    out = []
    if workers > 1:
        with process_pool(workers) as pool:
            for vec in pool.map(_one, jobs, chunksize=16):
                out.append(vec)
                bar.update()
    else:
        for job in jobs:
            out.append(_one(job))
            bar.update()
    bar.close()
    matrix = np.stack(out).astype(np.float32) if out else np.zeros((0, spec.item_dim), np.float32)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npy")
        np.save(tmp, matrix)
        tmp.replace(cache)
    return matrix
