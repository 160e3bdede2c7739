"""One item's audio from its recipe (``audio/<genre>`` or ``soundtrack/<genre>``): music,
speech and sound effects mixed per genre, then loudness-normalised."""

from __future__ import annotations

from typing import Callable

import numpy as np

from export.data.synthetic.music import _STYLES, _lowpass_noise, _music
from export.data.synthetic.speech import _speech, _voice_f0

#: Target RMS loudness per recipe, dBFS; each item varies by +-2 dB around it.
_LOUDNESS_DBFS: dict[str, float] = {
    "audio/classical": -23, "audio/rock": -12, "audio/electronic": -13, "audio/jazz": -19,
    "audio/ambient": -27, "audio/hiphop": -12, "audio/talk": -20, "audio/news": -17, "audio/podcast": -21,
    "soundtrack/sports": -15, "soundtrack/cartoons": -14, "soundtrack/news": -17, "soundtrack/drama": -26,
    "soundtrack/nature": -25, "soundtrack/documentary": -21, "soundtrack/kids": -15,
}


def _bumps(rng: np.random.Generator, sample_rate_hz: int, n: int, count: int, width_s: tuple[float, float],
           make: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Sum of ``count`` short events at random times; ``make(t)`` renders one from its local time (s)."""
    out = np.zeros(n, dtype=np.float32)
    for _ in range(count):
        length = int(rng.uniform(*width_s) * sample_rate_hz)
        start = int(rng.integers(0, max(1, n - length)))
        local = np.arange(min(length, n - start), dtype=np.float32) / sample_rate_hz
        out[start : start + len(local)] += make(local)
    return out


def _synthesise(rng: np.random.Generator, recipe: str, sample_rate_hz: int, n: int) -> np.ndarray:
    """Mono audio for ``recipe`` (``audio/<genre>`` or ``soundtrack/<genre>``), loudness-normalised."""
    sr = sample_rate_hz
    nyquist_safe = 0.45 * sr
    kind, genre = recipe.split("/")
    if kind == "audio" and genre in _STYLES:
        x = _music(rng, _STYLES[genre], sr, n)
    elif genre == "talk":
        speakers = [_voice_f0(rng) for _ in range(int(rng.integers(1, 3)))]
        x = _speech(rng, sr, n, rng.uniform(3.3, 4.2), speakers, (0.2, 0.8))
    elif genre == "news":
        x = _speech(rng, sr, n, rng.uniform(4.2, 5.0), [_voice_f0(rng)], (0.1, 0.35))
        # A three-tone jingle opens the bulletin.
        jingle_len = min(n, int(1.2 * sr))
        tj = np.arange(jingle_len, dtype=np.float32) / sr
        tone_hz = np.repeat(rng.choice([523.3, 659.3, 784.0, 880.0], 3), -(-jingle_len // 3))[:jingle_len]
        x[:jingle_len] += 0.5 * np.sin(2 * np.pi * tone_hz * tj) * np.exp(-(tj % 0.4) / 0.15)
    elif genre == "podcast":
        x = _speech(rng, sr, n, rng.uniform(3.6, 4.5), [_voice_f0(rng), _voice_f0(rng)], (0.15, 0.6), (1, 3))
        intro = min(n, int(3.0 * sr))
        x[:intro] += 0.4 * _music(rng, _STYLES["jazz"], sr, intro) * np.linspace(1, 0, intro, dtype=np.float32)
    elif genre == "sports":
        t = np.arange(n, dtype=np.float32) / sr
        swell = 0.6 + 0.25 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t + rng.uniform(0, 6.3))
        swell += _bumps(rng, sr, n, int(rng.integers(1, 4)), (1.5, 4.0),
                        lambda lt: rng.uniform(0.8, 2.0) * np.sin(np.pi * lt / lt[-1]) ** 2)
        x = _lowpass_noise(rng, n, rng.uniform(0.6, 0.8)) * swell.astype(np.float32)
        whistle_hz = min(rng.uniform(2800, 3600), nyquist_safe)
        x += _bumps(rng, sr, n, int(rng.integers(1, 4)), (0.3, 0.9),
                    lambda lt: 1.2 * np.sin(2 * np.pi * whistle_hz * lt) * (0.6 + 0.4 * np.sin(2 * np.pi * 25 * lt)))
        x += 0.6 * _speech(rng, sr, n, rng.uniform(4.5, 5.5), [_voice_f0(rng) * 1.15], (0.05, 0.3))
    elif genre == "cartoons":
        x = _music(rng, _STYLES["cartoon"], sr, n)

        def boing(lt: np.ndarray) -> np.ndarray:
            f = np.minimum(rng.uniform(150, 300) * (1 + 2.5 * lt / lt[-1]), nyquist_safe) * (
                1 + 0.1 * np.sin(2 * np.pi * 12 * lt))
            return np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-lt / 0.25)

        x += _bumps(rng, sr, n, int(rng.integers(2, 6)), (0.3, 0.6), boing)
    elif genre == "drama":
        x = _music(rng, _STYLES["drama"], sr, n)
    elif genre == "nature":
        t = np.arange(n, dtype=np.float32) / sr
        wind = _lowpass_noise(rng, n, 0.995) * (0.7 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t))
        x = 0.5 * _music(rng, _STYLES["ambient"], sr, n) + 0.3 * wind

        def chirp(lt: np.ndarray) -> np.ndarray:
            f0, f1 = rng.uniform(2000, 4500), rng.uniform(1500, 5000)
            f = np.minimum(f0 + (f1 - f0) * lt / lt[-1], nyquist_safe)
            return 0.4 * np.sin(2 * np.pi * np.cumsum(f) / sr) * np.sin(np.pi * lt / lt[-1])

        x += _bumps(rng, sr, n, int(rng.poisson(1.5 * n / sr)), (0.05, 0.15), chirp)
    elif genre == "documentary":
        narrator = float(rng.uniform(90, 125) if rng.random() < 0.6 else rng.uniform(160, 200))
        x = _speech(rng, sr, n, rng.uniform(3.0, 3.8), [narrator], (0.3, 0.9))
        x += 0.35 * _music(rng, _STYLES["ambient"], sr, n)
    elif genre == "kids":
        x = _music(rng, _STYLES["kids"], sr, n)
    else:  # pragma: no cover - recipes come from the genre tables above
        raise ValueError(f"unknown audio recipe {recipe!r}")
    target_rms = 10.0 ** ((_LOUDNESS_DBFS[recipe] + rng.uniform(-2.0, 2.0)) / 20.0)
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    x = x * np.float32(target_rms / max(rms, 1e-9))
    return np.clip(x, -0.99, 0.99).astype(np.float32)
