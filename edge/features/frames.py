"""Frame features: colour, brightness, texture and motion statistics of sampled RGB frames.

Frames are downscaled first (a few samples per output pixel, averaged), so a 1080p frame
costs about what a thumbnail does; every statistic below runs on the small frames.
"""

from __future__ import annotations

import numpy as np

from edge.errors import FeatureError
from edge.features.spec import FeatureSpec

# Pixels averaged per output pixel along each axis when shrinking: a cheap anti-alias.
_TAPS = 4
# Gradient magnitude (0..1 intensity units per pixel) counted as an edge.
_EDGE_THRESHOLD = 0.1
# Consecutive frames whose colour histograms differ by more than this (total variation, 0..1)
# are a scene cut (flat-colour cartoon cuts measure 0.3-0.5; steady shots stay under 0.05).
_CUT_DISTANCE = 0.25


def check_frames(frames: np.ndarray, name: str = "<frames>") -> None:
    """Raise FeatureError unless ``frames`` is uint8 ``(N, H, W, 3)`` with N, H, W >= 1."""
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        got = getattr(frames, "dtype", type(frames).__name__)
        raise FeatureError(f"{name}: frames must be a uint8 RGB array (N, H, W, 3), got {got}")
    if frames.ndim == 3 and frames.shape[-1] == 3:
        raise FeatureError(f"{name}: got one frame of shape {frames.shape}; pass a batch (N, H, W, 3), e.g. frame[None]")
    if frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape[:3]) < 1:
        raise FeatureError(f"{name}: frames must have shape (N, H, W, 3) with N, H, W >= 1, got {frames.shape}")


def _axis(size: int, out: int) -> tuple[slice, int, int]:
    """A strided slice taking ``taps`` evenly spaced pixels in each of ``out`` equal cells."""
    out = min(size, out)
    taps = max(1, min(_TAPS, size // out))
    stride = size // (out * taps)
    start = (size - stride * out * taps) // 2 + stride // 2
    return slice(start, start + stride * out * taps, stride), out, taps


def downscale(frames: np.ndarray, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """Pick at most ``spec.max_frames`` frames, evenly spread, and shrink them to at most
    ``spec.frame_height_px`` x ``spec.frame_width_px`` by averaging a grid of samples per cell.

    Only the sampled pixels are read (strided views, no fancy indexing), so a memory-mapped
    strip of 1080p frames is never loaded whole.

    :returns: ``(small, picked)``: float32 ``(n, h, w, 3)`` in [0, 1], and the indices of the
        frames used.
    """
    n, h, w, _ = frames.shape
    pick = np.unique(np.linspace(0, n - 1, min(n, spec.max_frames)).round().astype(np.intp))
    rows, out_h, ty = _axis(h, spec.frame_height_px)
    cols, out_w, tx = _axis(w, spec.frame_width_px)
    grid = np.stack([frames[i, rows, cols] for i in pick]).reshape(pick.size, out_h, ty, out_w, tx, 3)
    # uint16 holds a sum of up to 257 uint8 samples; summing tap by tap beats a strided reduce.
    acc = grid[:, :, 0, :, 0].astype(np.uint16)
    for i in range(ty):
        for j in range(tx):
            if i or j:
                acc += grid[:, :, i, :, j]
    return acc.astype(np.float32) * np.float32(1 / (255 * ty * tx)), pick


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx, mn = rgb.max(axis=-1), rgb.min(axis=-1)
    delta = mx - mn
    safe = np.where(delta > 0, delta, 1.0)
    hue = np.where(mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6.0
    hue = np.where(delta > 0, hue, 0.0)
    sat = np.where(mx > 0, delta / np.where(mx > 0, mx, 1.0), 0.0)
    return hue, sat, mx


def _hist(values: np.ndarray, bins: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Per-frame histograms of values in [0, 1]: ``(n, bins)``, each row summing to 1 (or 0)."""
    n = values.shape[0]
    idx = np.minimum((values.reshape(n, -1) * bins).astype(np.intp), bins - 1) + bins * np.arange(n)[:, None]
    w = None if weights is None else weights.reshape(n, -1).ravel()
    counts = np.bincount(idx.ravel(), weights=w, minlength=n * bins).reshape(n, bins)
    total = counts.sum(axis=1, keepdims=True)
    return counts / np.where(total > 0, total, 1.0)


def frame_features(
    frames: np.ndarray, spec: FeatureSpec | None = None, name: str = "<frames>", times_s: np.ndarray | None = None
) -> np.ndarray:
    """Pool colour, texture and motion statistics over sampled frames.

    :param frames: uint8 RGB, shape ``(N, H, W, 3)``, any size, in time order.
    :param spec: feature parameters (default :class:`FeatureSpec`).
    :param name: what error messages call the input.
    :param times_s: optional time of each frame (s); consecutive frames more than twice the
        median gap apart (e.g. across excerpt windows) are not compared for motion or cuts.
    :returns: float32 array of shape ``(spec.frames_dim,)``; layout in ``spec.frames_names``:
        hue histogram (saturation-weighted), saturation and value histograms, R/G/B mean, std
        and skewness (0..1 units), brightness mean and its std over frames, contrast (std of
        luma), colourfulness (Hasler-Suesstrunk), edge density (share of pixels with gradient
        > 0.1), texture (mean absolute Laplacian of luma), motion energy (mean absolute luma
        change between consecutive frames) and scene-cut rate (share of consecutive pairs that
        are cuts).
    :raises FeatureError: wrong dtype or shape, or ``times_s`` not one per frame.
    """
    spec = spec or FeatureSpec()
    check_frames(frames, name)
    if times_s is not None and (np.ndim(times_s) != 1 or len(times_s) != frames.shape[0]):
        raise FeatureError(f"{name}: frame times of shape {np.shape(times_s)} for {frames.shape[0]} frames; expected one time (s) per frame")
    x, picked = downscale(frames, spec)
    n = x.shape[0]
    hue, sat, val = _hsv(x)
    hue_h = _hist(hue, spec.hue_bins, weights=sat)
    sat_h = _hist(sat, spec.sv_bins)
    val_h = _hist(val, spec.sv_bins)

    flat = x.reshape(-1, 3)
    mean = flat.mean(axis=0)
    centred = flat - mean
    std = np.sqrt((centred**2).mean(axis=0))
    skew = (centred**3).mean(axis=0) / np.maximum(std, 1e-6) ** 3

    luma = x @ np.array([0.299, 0.587, 0.114], np.float32)  # (n, h, w)
    bright = luma.mean(axis=(1, 2))
    contrast = luma.reshape(n, -1).std(axis=1)
    rg = (x[..., 0] - x[..., 1]).reshape(n, -1)
    yb = (0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]).reshape(n, -1)
    colourful = np.sqrt(rg.var(axis=1) + yb.var(axis=1)) + 0.3 * np.sqrt(rg.mean(axis=1) ** 2 + yb.mean(axis=1) ** 2)
    gx = np.diff(luma, axis=2)[:, :-1, :] if luma.shape[1] > 1 and luma.shape[2] > 1 else np.zeros((n, 0, 0), np.float32)
    gy = np.diff(luma, axis=1)[:, :, :-1] if luma.shape[1] > 1 and luma.shape[2] > 1 else gx
    edges = float(np.mean(np.hypot(gx, gy) > _EDGE_THRESHOLD)) if gx.size else 0.0
    if luma.shape[1] > 2 and luma.shape[2] > 2:
        lap = 4 * luma[:, 1:-1, 1:-1] - luma[:, :-2, 1:-1] - luma[:, 2:, 1:-1] - luma[:, 1:-1, :-2] - luma[:, 1:-1, 2:]
        texture = float(np.abs(lap).mean())
    else:
        texture = 0.0

    motion = cut_rate = 0.0
    if n > 1:
        pairs = np.ones(n - 1, bool)
        if times_s is not None:
            gaps = np.diff(np.asarray(times_s, dtype=np.float64)[picked])
            pairs = gaps <= 2.0 * np.median(gaps) + 1e-9
        if pairs.any():
            diffs = np.abs(np.diff(luma, axis=0)).mean(axis=(1, 2))
            # Total variation of hue and value histograms, averaged: 0 (same) .. 1 (disjoint).
            dist = 0.25 * (np.abs(np.diff(hue_h, axis=0)).sum(axis=1) + np.abs(np.diff(val_h, axis=0)).sum(axis=1))
            motion = float(diffs[pairs].mean())
            cut_rate = float(np.mean(dist[pairs] > _CUT_DISTANCE))

    scalars = [bright.mean(), bright.std(), contrast.mean(), colourful.mean(), edges, texture, motion, cut_rate]
    vec = np.concatenate([hue_h.mean(axis=0), sat_h.mean(axis=0), val_h.mean(axis=0), mean, std, skew, scalars])
    return vec.astype(np.float32)
