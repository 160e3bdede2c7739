"""Speech-like audio: formant-shaped vowel syllables, consonant bursts and pauses, one or
several speakers taking turns (talk, news, podcasts, commentary, narration)."""

from __future__ import annotations

import numpy as np

from export.data.synthetic.music import _phase_index, _wavetable

# Formants F1..F3 (Hz) of six vowels; enough to make voiced segments sound speech-like.
_VOWELS_HZ = np.array(
    [(730, 1090, 2440), (530, 1840, 2480), (270, 2290, 3010), (570, 840, 2410), (300, 870, 2240), (660, 1720, 2410)],
    dtype=np.float64,
)


def _vowel_tables(f0_hz: float, sample_rate_hz: int) -> np.ndarray:
    """One wavetable per vowel for a voice at ``f0_hz``; shape (6, _TABLE), float32."""
    top_hz = min(0.45 * sample_rate_hz, 5000.0)
    k = np.arange(1, max(2, int(top_hz / f0_hz)) + 1)
    bandwidth_hz = np.array([90.0, 110.0, 160.0])
    gain = np.array([1.0, 0.7, 0.4])
    tables = []
    for formants in _VOWELS_HZ:
        resonance = gain / (1.0 + ((k[:, None] * f0_hz - formants) / bandwidth_hz) ** 2)
        # 1/k: the -6 dB/octave tilt of a glottal source.
        tables.append(_wavetable(resonance.sum(axis=1) / k))
    return np.stack(tables)


def _speech(
    rng: np.random.Generator,
    sample_rate_hz: int,
    n: int,
    syllable_hz: float,
    f0s_hz: list[float],
    pause_s: tuple[float, float],
    turn_phrases: tuple[int, int] = (1, 4),
) -> np.ndarray:
    """Speech-like audio: voiced vowel syllables at ``syllable_hz`` (about 4 Hz amplitude
    modulation), consonant noise bursts, phrases separated by silences; speakers with
    fundamentals ``f0s_hz`` take turns of a few phrases. Shape (n,), float32."""
    sr = sample_rate_hz
    n_vowels = len(_VOWELS_HZ)
    tables = np.concatenate([_vowel_tables(f0, sr) for f0 in f0s_hz])
    t = np.arange(n, dtype=np.float32) / sr
    indices = []
    for f0 in f0s_hz:
        # Intonation: a slow drift plus a faster wobble, +-17 % at most.
        contour = 1.0 + 0.12 * np.sin(2 * np.pi * 0.23 * t + rng.uniform(0, 6.3)) + 0.05 * np.sin(
            2 * np.pi * 1.1 * t + rng.uniform(0, 6.3)
        )
        indices.append(_phase_index(f0 * contour, sr))
    env = np.zeros(n, dtype=np.float32)
    label = np.zeros(n, dtype=np.int64)
    consonants = np.zeros(n, dtype=np.float32)
    pos = int(sr * rng.uniform(0.1, 0.4))
    speaker, turn_left = 0, int(rng.integers(*turn_phrases))
    burst = max(1, int(0.05 * sr))
    while pos < n:
        for _ in range(int(rng.integers(3, 12))):
            if pos >= n:
                break
            length = max(8, int(sr / syllable_hz * rng.uniform(0.6, 1.4)))
            end = min(n, pos + length)
            env[pos:end] = np.hanning(length)[: end - pos] * rng.uniform(0.6, 1.0)
            label[pos:end] = speaker * n_vowels + int(rng.integers(n_vowels))
            if rng.random() < 0.5:
                seg = consonants[pos : pos + burst]
                seg += 0.25 * np.diff(rng.standard_normal(len(seg) + 1)).astype(np.float32)
            pos += length
        pos += int(sr * rng.uniform(*pause_s))
        if rng.random() < 0.1:
            pos += int(sr * rng.uniform(0.5, 1.2))  # a longer silence now and then
        turn_left -= 1
        if turn_left <= 0:
            speaker = (speaker + 1) % len(f0s_hz)
            turn_left = int(rng.integers(*turn_phrases))
    if len(indices) == 1:
        phase = indices[0]
    else:
        phase = np.choose(label // n_vowels, indices)
    return (tables[label, phase] * env + consonants).astype(np.float32)


def _voice_f0(rng: np.random.Generator) -> float:
    return float(rng.uniform(95, 140) if rng.random() < 0.5 else rng.uniform(170, 240))
