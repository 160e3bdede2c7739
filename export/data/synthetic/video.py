"""Frame strips for video items: float32 (N, H, W, 3) canvases painted per genre (palette,
brightness, motion), then sensor noise and uint8."""

from __future__ import annotations

import colorsys
from typing import Callable

import numpy as np

FRAME_HEIGHT_PX = 72
FRAME_WIDTH_PX = 128

_YY, _XX = (a.astype(np.float32) for a in np.mgrid[0:FRAME_HEIGHT_PX, 0:FRAME_WIDTH_PX])
_KITS = np.array([(220, 30, 30), (240, 240, 240), (30, 60, 200), (250, 200, 0), (20, 20, 20), (120, 0, 160)],
                 dtype=np.float32)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32) * 255.0


def _ellipse(img: np.ndarray, cy: float, cx: float, ry: float, rx: float, colour: np.ndarray) -> None:
    """Fill an axis-aligned ellipse (centre and radii in px) on an (H, W, 3) canvas."""
    y0, y1 = max(0, int(cy - ry)), min(FRAME_HEIGHT_PX, int(cy + ry) + 2)
    x0, x1 = max(0, int(cx - rx)), min(FRAME_WIDTH_PX, int(cx + rx) + 2)
    if y0 >= y1 or x0 >= x1:
        return
    inside = ((_YY[y0:y1, x0:x1] - cy) / ry) ** 2 + ((_XX[y0:y1, x0:x1] - cx) / rx) ** 2 <= 1.0
    img[y0:y1, x0:x1][inside] = colour


def _bounce(pos: np.ndarray, vel: np.ndarray, margin: float = 0.0) -> None:
    """Advance (K, 2) positions (y, x) by velocities, reflecting off the frame edges, in place."""
    pos += vel
    for axis, size in ((0, FRAME_HEIGHT_PX), (1, FRAME_WIDTH_PX)):
        low, high = pos[:, axis] < margin, pos[:, axis] > size - margin
        vel[low | high, axis] *= -1
        pos[:, axis] = np.clip(pos[:, axis], margin, size - margin)


def _paint_sports(rng: np.random.Generator, n: int) -> np.ndarray:
    """Green striped pitch panning fast, two teams of small blobs and a ball moving fast."""
    out = np.empty((n, FRAME_HEIGHT_PX, FRAME_WIDTH_PX, 3), dtype=np.float32)
    grass = np.array([rng.uniform(35, 65), rng.uniform(115, 160), rng.uniform(35, 60)], dtype=np.float32)
    stripe_px, pan = rng.uniform(8, 14), rng.uniform(3, 7) * rng.choice([-1, 1])
    kits = _KITS[rng.choice(len(_KITS), 2, replace=False)]
    n_players = int(rng.integers(8, 15))
    pos = rng.uniform([10, 0], [FRAME_HEIGHT_PX - 4, FRAME_WIDTH_PX], (n_players, 2))
    vel = rng.uniform(-5, 5, (n_players, 2))
    ball, ball_vel = rng.uniform([10, 10], [60, 118], (1, 2)), rng.uniform(-9, 9, (1, 2))
    for f in range(n):
        world_x = _XX + pan * f
        img = grass + (((world_x // stripe_px) % 2) * 14.0)[..., None]
        img[np.abs(world_x % 160.0 - 80.0) < 1.0] = 225.0
        for j in range(n_players):
            _ellipse(img, pos[j, 0], pos[j, 1], 4.0, 2.5, kits[j % 2])
        _ellipse(img, ball[0, 0], ball[0, 1], 1.5, 1.5, np.float32(245))
        img[2:9, 2:34] = (20, 20, 40)  # scoreboard
        img[4:7, 4:14], img[4:7, 20:30] = kits[0], kits[1]
        out[f] = img
        _bounce(pos, vel, 4.0)
        _bounce(ball, ball_vel, 2.0)
    return out


def _paint_cartoons(rng: np.random.Generator, n: int) -> np.ndarray:
    """Fully saturated flat colours, shapes sliding, a scene cut every two to four frames."""
    out = np.empty((n, FRAME_HEIGHT_PX, FRAME_WIDTH_PX, 3), dtype=np.float32)
    f = 0
    while f < n:
        palette = [_hsv(rng.random(), 1.0, 1.0) for _ in range(5)]
        shapes = []
        for _ in range(int(rng.integers(3, 7))):
            shapes.append((rng.random() < 0.5, rng.uniform(0, FRAME_HEIGHT_PX), rng.uniform(0, FRAME_WIDTH_PX),
                           rng.uniform(6, 20), rng.uniform(6, 30), palette[int(rng.integers(1, 5))],
                           rng.uniform(-4, 4), rng.uniform(-4, 4)))
        scene_len = int(rng.integers(2, 5))
        for k in range(min(scene_len, n - f)):
            img = np.empty((FRAME_HEIGHT_PX, FRAME_WIDTH_PX, 3), dtype=np.float32)
            img[:] = palette[0]
            for is_rect, cy, cx, ry, rx, colour, vy, vx in shapes:
                cy, cx = cy + vy * k, cx + vx * k
                if is_rect:
                    y0, y1, x0, x1 = (max(0, int(v)) for v in (cy - ry, cy + ry, cx - rx, cx + rx))
                    img[y0:y1, x0:x1] = colour
                else:
                    _ellipse(img, cy, cx, ry, rx, colour)
            out[f + k] = img
        f += scene_len
    return out


def _paint_news(rng: np.random.Generator, n: int) -> np.ndarray:
    """Static blue/grey studio, an anchor at a desk, a lower-third bar and a slow ticker."""
    top = np.array([rng.uniform(15, 35), rng.uniform(35, 55), rng.uniform(80, 120)], dtype=np.float32)
    grey = rng.uniform(90, 120)
    bottom = np.array([grey, grey, grey + 15], dtype=np.float32)
    base = top + (bottom - top) * (_YY / FRAME_HEIGHT_PX)[..., None]
    anchor_x = rng.uniform(45, 83)
    suit = np.array(rng.choice([(30, 30, 40), (50, 40, 40), (20, 30, 60), (90, 20, 30)]), dtype=np.float32)
    skin = _hsv(rng.uniform(0.05, 0.1), rng.uniform(0.3, 0.6), rng.uniform(0.5, 0.95))
    _ellipse(base, 47, anchor_x, 13, 15, suit)
    base[44:54] = (150, 150, 160)  # desk
    bar = _KITS[int(rng.choice([0, 1, 2]))]
    base[54:63, 4:124] = bar
    text_x = 8
    while text_x < 116:  # dark "words" on the lower third
        width = int(rng.integers(4, 14))
        base[57:60, text_x : min(116, text_x + width)] = 25
        text_x += width + 3
    base[3:11, 112:124] = _hsv(rng.random(), 0.9, 0.9)  # channel logo
    ticker = np.where(rng.random(512) < 0.6, 230.0, 20.0).astype(np.float32)
    ticker = np.repeat(ticker[::4], 4)  # blocks 4 px wide
    out = np.empty((n, FRAME_HEIGHT_PX, FRAME_WIDTH_PX, 3), dtype=np.float32)
    for f in range(n):
        img = base.copy()
        _ellipse(img, 26 + rng.normal(0, 0.4), anchor_x + rng.normal(0, 0.4), 7, 6, skin)
        img[64:70] = ticker[(np.arange(FRAME_WIDTH_PX) + 3 * f) % len(ticker)][:, None]
        out[f] = img
    return out


def _paint_drama(rng: np.random.Generator, n: int) -> np.ndarray:
    """Dark warm interior, a lamp's glow, vignette, one or two silhouettes drifting slowly."""
    warm = np.array([rng.uniform(70, 100), rng.uniform(38, 58), rng.uniform(18, 32)], dtype=np.float32)
    half_h, half_w = FRAME_HEIGHT_PX / 2, FRAME_WIDTH_PX / 2
    r2 = ((_YY - half_h) / half_h) ** 2 + ((_XX - half_w) / half_w) ** 2
    vignette = np.clip(1.0 - 0.45 * r2, 0.15, 1.0)[..., None]
    ly, lx, sigma = rng.uniform(10, 40), rng.uniform(10, 118), rng.uniform(10, 20)
    glow = np.exp(-((_YY - ly) ** 2 + (_XX - lx) ** 2) / (2 * sigma**2))[..., None] * np.array([90, 60, 28], np.float32)
    base = (warm + glow) * vignette
    dim = rng.uniform(0.55, 0.8)
    figures = rng.uniform([35, 20], [55, 108], (int(rng.integers(1, 3)), 2))
    drift = rng.uniform(-0.4, 0.4, figures.shape)
    shadow = np.array([28, 18, 12], dtype=np.float32)
    out = np.empty((n, FRAME_HEIGHT_PX, FRAME_WIDTH_PX, 3), dtype=np.float32)
    for f in range(n):
        img = base.copy()
        for cy, cx in figures + drift * f:
            _ellipse(img, cy, cx, 18, 8, shadow)
            _ellipse(img, cy - 22, cx, 6, 5, shadow)
        out[f] = img * (dim * (1.0 + 0.015 * rng.standard_normal()))
    return out


def _paint_nature(rng: np.random.Generator, n: int) -> np.ndarray:
    """Sky over green hills (and sometimes water), panning slowly, clouds drifting."""
    sky_top = np.array([rng.uniform(90, 140), rng.uniform(150, 190), rng.uniform(210, 245)], dtype=np.float32)
    sky_bottom = np.array([rng.uniform(170, 200), rng.uniform(200, 225), rng.uniform(230, 250)], dtype=np.float32)
    land = np.array([rng.uniform(30, 70), rng.uniform(100, 150), rng.uniform(30, 70)], dtype=np.float32)
    water = np.array([rng.uniform(20, 50), rng.uniform(70, 110), rng.uniform(130, 180)], dtype=np.float32)
    sky = sky_top + (sky_bottom - sky_top) * (_YY / FRAME_HEIGHT_PX)[..., None]
    horizon0, lam1, lam2 = FRAME_HEIGHT_PX * rng.uniform(0.35, 0.55), rng.uniform(60, 140), rng.uniform(15, 40)
    ph1, ph2 = rng.uniform(0, 6.3, 2)
    water_row = int(FRAME_HEIGHT_PX * rng.uniform(0.72, 0.85)) if rng.random() < 0.6 else FRAME_HEIGHT_PX
    pan = rng.uniform(0.5, 1.5)
    clouds = rng.uniform([4, 0], [20, FRAME_WIDTH_PX], (int(rng.integers(2, 5)), 2))
    cloud_speed = rng.uniform(0.3, 1.0)
    white = np.float32(245)
    out = np.empty((n, FRAME_HEIGHT_PX, FRAME_WIDTH_PX, 3), dtype=np.float32)
    for f in range(n):
        world_x = _XX[0] + pan * f
        horizon = (horizon0 + 5 * np.sin(2 * np.pi * world_x / lam1 + ph1)
                   + 2.5 * np.sin(2 * np.pi * world_x / lam2 + ph2))
        texture = 0.85 + 0.15 * np.sin(0.7 * world_x[None, :] + 1.3 * _YY)
        img = np.where((_YY < horizon[None, :])[..., None], sky, land * texture[..., None])
        if water_row < FRAME_HEIGHT_PX:
            img[water_row:] = water * (0.9 + 0.1 * np.sin(0.5 * world_x + f))[:, None]
        for cy, cx in clouds:
            _ellipse(img, cy, (cx + cloud_speed * f) % (FRAME_WIDTH_PX + 20) - 10, 4, 12, white)
        out[f] = img
    return out


def _paint_documentary(rng: np.random.Generator, n: int) -> np.ndarray:
    """Muted earthy stills under a slow zoom (Ken Burns), sometimes one cut."""

    def still() -> np.ndarray:
        hue = rng.uniform(0.04, 0.14)
        img = _hsv(hue, rng.uniform(0.1, 0.3), rng.uniform(0.4, 0.7)) * (0.8 + 0.4 * (_YY / FRAME_HEIGHT_PX))[..., None]
        for _ in range(int(rng.integers(6, 11))):
            colour = _hsv(hue + rng.uniform(-0.05, 0.05), rng.uniform(0.1, 0.35), rng.uniform(0.3, 0.75))
            y0, x0 = int(rng.integers(0, FRAME_HEIGHT_PX - 8)), int(rng.integers(0, FRAME_WIDTH_PX - 8))
            img[y0 : y0 + int(rng.integers(8, 40)), x0 : x0 + int(rng.integers(8, 40))] = colour
        return img

    image, cut = still(), (n // 2 if rng.random() < 0.5 else n)
    cy, cx = rng.uniform(28, 44), rng.uniform(50, 78)
    rate = rng.uniform(0.01, 0.03)
    out = np.empty((n, FRAME_HEIGHT_PX, FRAME_WIDTH_PX, 3), dtype=np.float32)
    for f in range(n):
        if f == cut:
            image = still()
        zoom = 1.0 + rate * f
        sy = np.clip(cy + (_YY[:, 0] - cy) / zoom, 0, FRAME_HEIGHT_PX - 1).astype(np.int64)
        sx = np.clip(cx + (_XX[0] - cx) / zoom, 0, FRAME_WIDTH_PX - 1).astype(np.int64)
        out[f] = image[sy[:, None], sx[None, :]]
    return out


def _paint_kids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Bright pastel background with big bright balls bouncing around and a sun."""
    background = _hsv(rng.random(), rng.uniform(0.15, 0.3), rng.uniform(0.92, 1.0))
    n_balls = int(rng.integers(3, 7))
    radius = rng.uniform(7, 15, n_balls)
    colours = [_hsv(rng.random(), 0.85, 1.0) for _ in range(n_balls)]
    pos = rng.uniform([15, 15], [57, 113], (n_balls, 2))
    vel = rng.uniform(-5, 5, (n_balls, 2))
    sun = _hsv(0.14, 0.9, 1.0)
    out = np.empty((n, FRAME_HEIGHT_PX, FRAME_WIDTH_PX, 3), dtype=np.float32)
    for f in range(n):
        img = np.empty((FRAME_HEIGHT_PX, FRAME_WIDTH_PX, 3), dtype=np.float32)
        img[:] = background
        _ellipse(img, 8, 118, 9, 9, sun)
        for j in range(n_balls):
            _ellipse(img, pos[j, 0], pos[j, 1], radius[j], radius[j], colours[j])
        out[f] = img
        _bounce(pos, vel, 6.0)
    return out


_PAINTERS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "sports": _paint_sports, "cartoons": _paint_cartoons, "news": _paint_news, "drama": _paint_drama,
    "nature": _paint_nature, "documentary": _paint_documentary, "kids": _paint_kids,
}


def _frames(rng: np.random.Generator, genre: str, n_frames: int) -> np.ndarray:
    """A frame strip for a video ``genre``; shape (n_frames, 72, 128, 3), uint8 RGB."""
    frames = _PAINTERS[genre](rng, n_frames)
    frames += rng.standard_normal(frames.shape, dtype=np.float32) * 2.5  # sensor noise
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)
