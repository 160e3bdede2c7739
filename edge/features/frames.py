"""Frame features: colour, brightness, texture and motion statistics of sampled RGB frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.errors import FeatureError
from edge.features.spec import FeatureSpec


def load_frames(path: str | Path) -> np.ndarray:
    """Load a frame strip saved as ``.npy`` (uint8, shape ``(N, H, W, 3)``), memory-mapped.

    :raises FeatureError: unreadable file, wrong dtype or shape.
    """
    path = Path(path)
    try:
        frames = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FeatureError(f"{path}: cannot read frames ({exc})") from None
    check_frames(frames, str(path))
    return frames


def check_frames(frames: np.ndarray, name: str = "<frames>") -> None:
    """Raise FeatureError unless ``frames`` is uint8 ``(N, H, W, 3)`` with N, H, W >= 1."""
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise FeatureError(f"{name}: frames must be a uint8 array, got {getattr(frames, 'dtype', type(frames).__name__)}")
    if frames.ndim == 3:
        raise FeatureError(f"{name}: got one frame of shape {frames.shape}; pass a batch (N, H, W, 3)")
    if frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape[:3]) < 1:
        raise FeatureError(f"{name}: frames must have shape (N, H, W, 3), got {frames.shape}")


def _downscale(frames: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    n, h, w, _ = frames.shape
    pick = np.linspace(0, n - 1, min(n, spec.max_frames)).round().astype(int)
    # Nearest-neighbour sampling: cheap, and the statistics below are all global averages.
    rows = np.linspace(0, h - 1, min(h, spec.frame_height_px)).round().astype(int)
    cols = np.linspace(0, w - 1, min(w, spec.frame_width_px)).round().astype(int)
    return np.asarray(frames[pick][:, rows][:, :, cols], dtype=np.float32) / 255.0


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx, mn = rgb.max(axis=-1), rgb.min(axis=-1)
    delta = mx - mn
    safe = np.where(delta > 0, delta, 1.0)
    hue = np.where(mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6.0
    hue = np.where(delta > 0, hue, 0.0)
    sat = np.where(mx > 0, delta / np.where(mx > 0, mx, 1.0), 0.0)
    return hue, sat, mx


def frame_features(frames: np.ndarray, spec: FeatureSpec | None = None, name: str = "<frames>") -> np.ndarray:
    """Pool colour, texture and motion statistics over sampled frames.

    :param frames: uint8 RGB, shape ``(N, H, W, 3)``, any size.
    :returns: float32 array of shape ``(spec.frames_dim,)``: hue histogram (saturation-weighted),
        saturation and value histograms, RGB means and stds, then brightness, contrast,
        colourfulness, edge density, motion energy and scene-cut rate (cuts per frame pair).
    :raises FeatureError: wrong dtype or shape.
    """
    spec = spec or FeatureSpec()
    check_frames(frames, name)
    x = _downscale(frames, spec)
    hue, sat, val = _hsv(x)
    hue_hist = np.histogram(hue, bins=spec.hue_bins, range=(0, 1), weights=sat)[0]
    hue_hist = hue_hist / max(float(hue_hist.sum()), 1e-6)
    sat_hist = np.histogram(sat, bins=spec.sv_bins, range=(0, 1))[0] / sat.size
    val_hist = np.histogram(val, bins=spec.sv_bins, range=(0, 1))[0] / val.size
    rgb_mean = x.mean(axis=(0, 1, 2))
    rgb_std = x.std(axis=(0, 1, 2))
    gray = x.mean(axis=-1)
    brightness, contrast = gray.mean(), gray.std()
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    colourfulness = np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    gx = np.abs(np.diff(gray, axis=2))
    gy = np.abs(np.diff(gray, axis=1))
    edges = 0.5 * ((gx > 0.1).mean() + (gy > 0.1).mean())
    if x.shape[0] > 1:
        diffs = np.abs(np.diff(gray, axis=0)).mean(axis=(1, 2))
        motion = diffs.mean()
        cut_rate = np.mean(diffs > 0.25)
    else:
        motion = cut_rate = 0.0
    scalars = np.array([brightness, contrast, colourfulness, edges, motion, cut_rate], dtype=np.float32)
    return np.concatenate([hue_hist, sat_hist, val_hist, rgb_mean, rgb_std, scalars]).astype(np.float32)
