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
"""

from __future__ import annotations

import colorsys
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from edge.errors import DataError
from export.data.contract import Interactions, Item, write_interactions, write_items
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
#: The simulated history ends here (2026-06-01T00:00:00Z), so it does not depend on the clock.
EPOCH_END_S = int(datetime(2026, 6, 1, tzinfo=timezone.utc).timestamp())
HISTORY_DAYS = 90

AUDIO_GENRES: tuple[str, ...] = (
    "classical", "rock", "electronic", "jazz", "ambient", "hiphop", "talk", "news", "podcast",
)
VIDEO_GENRES: tuple[str, ...] = ("sports", "cartoons", "news", "drama", "nature", "documentary", "kids")
#: Every genre once; "news" is both an audio and a video genre, and users' tastes span both.
GENRES: tuple[str, ...] = AUDIO_GENRES + tuple(g for g in VIDEO_GENRES if g not in AUDIO_GENRES)
SAMPLE_RATES_HZ: tuple[int, ...] = (8000, 16000, 22050, 32000, 44100, 48000)

FRAME_HEIGHT_PX = 72
FRAME_WIDTH_PX = 128
MIN_AUDIO_S = 5.0
MAX_AUDIO_S = 30.0
MIN_POSITIVE_EVENTS = 5
AUDIO_SHARE = 0.55

# Share of audio files per container. Vorbis encoding costs ~10x WAV in libsndfile, so OGG
# is a fifth of the files and only at the three lowest rates.
_FORMATS = (("wav", "WAV", "PCM_16", 0.45), ("flac", "FLAC", "PCM_16", 0.35), ("ogg", "OGG", "VORBIS", 0.20))
_OGG_RATES_HZ = (8000, 16000, 22050)
# Lower rates are commoner so the demo stays small on disk and quick to decode.
_RATE_WEIGHTS = (0.15, 0.25, 0.25, 0.15, 0.12, 0.08)
_STEREO_SHARE = 0.35

# Independent random streams, so adding draws to one never shifts another.
_STREAM_CATALOGUE, _STREAM_AUDIO, _STREAM_FRAMES, _STREAM_USER = 0, 1, 2, 3

_TABLE = 2048  # wavetable length, samples; a power of two so phase wraps with a bit mask
_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_MINOR = np.array([0, 2, 3, 5, 7, 8, 10])


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


# --------------------------------------------------------------------------------------------
# Audio synthesis. Everything is float32 at the file's own sample rate, built from wavetables
# indexed by a running phase, so a voice costs a cumsum and a gather rather than K sines.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Style:
    """How one music style sounds.

    Drum patterns are 16 sixteenth-note steps of a 4/4 bar: ``x`` always hits, ``o`` hits
    half the time, ``.`` rests. ``chord`` holds extra voices as scale steps above the lead.
    """

    bpm: tuple[float, float]
    harmonics: tuple[float, ...]  # amplitude of harmonic 1, 2, ... of the lead voice
    attack_s: float
    decay_s: float
    tonic_midi: tuple[int, int]
    notes_per_beat: float
    rest_p: float
    chord: tuple[int, ...] = ()
    drive: float = 0.0  # tanh overdrive gain; 0 is clean
    loop_notes: int = 0  # repeat a motif of this many notes; 0 is a free random walk
    minor_p: float = 0.5
    vibrato: float = 0.0  # relative depth of a 5.5 Hz vibrato
    bass: float = 0.0  # bass level relative to the lead
    bass_notes_per_beat: float = 0.25
    bass_decay_s: float = 1.0
    kick: str = ""
    snare: str = ""
    hat: str = ""
    hat_decay_s: float = 0.04
    drums: float = 0.0
    pump: float = 0.0  # sidechain depth: the lead ducks after every beat
    noise_bed: float = 0.0  # level of a dark noise wash


_STRINGS = (1.0, 0.55, 0.4, 0.3, 0.22, 0.16, 0.12, 0.09, 0.06)
_STYLES: dict[str, _Style] = {
    "classical": _Style((60, 100), _STRINGS, 0.08, 1.2, (55, 72), 1, 0.1, chord=(2, 4), vibrato=0.006,
                        bass=0.5, bass_notes_per_beat=0.5, bass_decay_s=1.5),
    "rock": _Style((100, 150), (1, 0.5, 0.33, 0.25, 0.2, 0.17, 0.14, 0.12), 0.005, 0.35, (40, 55), 2, 0.05,
                   chord=(4,), drive=5.0, loop_notes=8, minor_p=0.6, bass=0.7, bass_notes_per_beat=2,
                   bass_decay_s=0.3, kick="x.....x.x.......", snare="....x.......x...", hat="x.x.x.x.x.x.x.x.",
                   drums=0.9),
    "electronic": _Style((120, 135), (1, 0, 0.33, 0, 0.2, 0, 0.14, 0, 0.11), 0.002, 0.12, (57, 72), 4, 0.15,
                         loop_notes=16, minor_p=0.6, bass=0.8, bass_notes_per_beat=1, bass_decay_s=0.25,
                         kick="x...x...x...x...", snare="....x.......x...", hat="..x...x...x...x.",
                         hat_decay_s=0.05, drums=1.0, pump=0.6),
    "jazz": _Style((80, 140), (1, 0.7, 0.45, 0.3, 0.2, 0.12, 0.08, 0.05), 0.004, 0.6, (50, 65), 2, 0.25,
                   chord=(2, 4, 6), minor_p=0.4, bass=0.6, bass_notes_per_beat=1, bass_decay_s=0.5,
                   kick="x.......o.......", snare="......o.......o.", hat="x..ox..ox..ox..o", hat_decay_s=0.25,
                   drums=0.45),
    "ambient": _Style((50, 75), (1, 0.3, 0.12, 0.05), 1.5, 5.0, (48, 64), 0.25, 0.1, chord=(2, 4), vibrato=0.002,
                      bass=0.4, bass_notes_per_beat=0.125, bass_decay_s=6.0, noise_bed=0.25),
    "hiphop": _Style((80, 100), (1, 0.45, 0.25, 0.12, 0.06), 0.01, 0.45, (55, 70), 1, 0.3, loop_notes=8,
                     minor_p=0.75, bass=1.2, bass_notes_per_beat=0.5, bass_decay_s=0.7,
                     kick="x......x..x.....", snare="....x.......x...", hat="x.x.x.x.x.x.xxx.", hat_decay_s=0.03,
                     drums=1.0),
    # Soundtrack-only styles.
    "cartoon": _Style((130, 170), (1, 0, 0, 0.5, 0, 0, 0, 0, 0.25), 0.002, 0.15, (67, 79), 2, 0.15, minor_p=0.1,
                      bass=0.5, bass_notes_per_beat=1, bass_decay_s=0.2, kick="x.......x.......",
                      snare="....x.......x...", drums=0.5),
    "drama": _Style((50, 70), _STRINGS, 0.3, 3.0, (45, 60), 0.5, 0.1, chord=(2, 4), minor_p=0.9, vibrato=0.008,
                    bass=0.6, bass_notes_per_beat=0.25, bass_decay_s=4.0),
    "kids": _Style((100, 130), (1, 0.2, 0.1), 0.02, 0.4, (64, 76), 1, 0.15, loop_notes=8, minor_p=0.05,
                   bass=0.4, bass_notes_per_beat=1, bass_decay_s=0.3, kick="x.......x.......",
                   snare="....x.......x...", hat="x...x...x...x...", drums=0.6),
}

#: Target RMS loudness per recipe, dBFS; each item varies by +-2 dB around it.
_LOUDNESS_DBFS: dict[str, float] = {
    "audio/classical": -23, "audio/rock": -12, "audio/electronic": -13, "audio/jazz": -19,
    "audio/ambient": -27, "audio/hiphop": -12, "audio/talk": -20, "audio/news": -17, "audio/podcast": -21,
    "soundtrack/sports": -15, "soundtrack/cartoons": -14, "soundtrack/news": -17, "soundtrack/drama": -26,
    "soundtrack/nature": -25, "soundtrack/documentary": -21, "soundtrack/kids": -15,
}

# Formants F1..F3 (Hz) of six vowels; enough to make voiced segments sound speech-like.
_VOWELS_HZ = np.array(
    [(730, 1090, 2440), (530, 1840, 2480), (270, 2290, 3010), (570, 840, 2410), (300, 870, 2240), (660, 1720, 2410)],
    dtype=np.float64,
)


def _wavetable(harmonics: np.ndarray, phases: np.ndarray | None = None) -> np.ndarray:
    """One period of a waveform with the given harmonic amplitudes; shape (_TABLE,), float32, peak 1."""
    spectrum = np.zeros(_TABLE // 2 + 1, dtype=np.complex128)
    k = np.arange(1, len(harmonics) + 1)
    spectrum[k] = harmonics * (1.0 if phases is None else np.exp(1j * phases))
    table = np.fft.irfft(spectrum, _TABLE)
    return (table / max(np.abs(table).max(), 1e-9)).astype(np.float32)


def _phase_index(freq_hz: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """Wavetable indices for an oscillator following ``freq_hz`` (one value per sample)."""
    # float64 cumsum: 30 s of a 1 kHz tone is 3e4 cycles, far inside float64's exact range.
    phase = np.cumsum(freq_hz, dtype=np.float64) * (_TABLE / sample_rate_hz)
    return phase.astype(np.int64) & (_TABLE - 1)


def _note_envelope(length: int, sample_rate_hz: int, attack_s: float, decay_s: float) -> np.ndarray:
    """Attack/decay envelope of one note, ``length`` samples, with a 5 ms release against clicks."""
    t = np.arange(length, dtype=np.float32) / sample_rate_hz
    env = (1.0 - np.exp(-t / attack_s)) * np.exp(-t / decay_s)
    release = min(length, max(1, int(0.005 * sample_rate_hz)))
    env[-release:] *= np.linspace(1.0, 0.0, release, dtype=np.float32)
    return env.astype(np.float32)


def _midi_hz(midi: np.ndarray) -> np.ndarray:
    return (440.0 * 2.0 ** ((midi - 69) / 12.0)).astype(np.float32)


def _scale_semitones(degrees: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return 12 * (degrees // 7) + scale[degrees % 7]


def _melody_degrees(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random walk over scale steps, kept within about an octave and a half of the tonic."""
    steps = rng.choice(np.array([-2, -1, -1, 0, 1, 1, 2]), size=n)
    return np.clip(np.cumsum(steps), -3, 9)


def _lowpass_noise(rng: np.random.Generator, n: int, pole: float) -> np.ndarray:
    """White noise through a one-pole low-pass (pole in (0, 1); nearer 1 is darker), RMS 1."""
    from scipy.signal import lfilter

    x = lfilter([1.0 - pole], [1.0, -pole], rng.standard_normal(n)).astype(np.float32)
    return x / max(float(np.sqrt(np.mean(x * x))), 1e-9)


def _drum_templates(rng: np.random.Generator, sample_rate_hz: int, hat_decay_s: float) -> dict[str, np.ndarray]:
    sr = sample_rate_hz
    t = np.arange(int(0.3 * sr), dtype=np.float32) / sr
    kick_hz = 45.0 + 90.0 * np.exp(-t / 0.03)
    kick = np.sin(2 * np.pi * np.cumsum(kick_hz) / sr) * np.exp(-t / 0.12)
    snare = 0.7 * rng.standard_normal(len(t)).astype(np.float32) * np.exp(-t / 0.09)
    snare += 0.5 * np.sin(2 * np.pi * 190.0 * t) * np.exp(-t / 0.05)
    th = np.arange(int(min(0.6, 5 * hat_decay_s) * sr), dtype=np.float32) / sr
    # A first difference of white noise tilts it towards high frequencies: cymbal-like.
    hat = 0.35 * np.diff(rng.standard_normal(len(th) + 1)).astype(np.float32) * np.exp(-th / hat_decay_s)
    return {"kick": kick.astype(np.float32), "snare": snare.astype(np.float32), "hat": hat}


def _drums(rng: np.random.Generator, style: _Style, sample_rate_hz: int, n: int, beat_s: float) -> np.ndarray:
    out = np.zeros(n, dtype=np.float32)
    templates = _drum_templates(rng, sample_rate_hz, style.hat_decay_s)
    step = beat_s / 4.0 * sample_rate_hz
    steps = np.arange(int(n / step) + 1)
    weight = {"x": 1.0, "o": 0.5, ".": 0.0}
    for name, pattern in (("kick", style.kick), ("snare", style.snare), ("hat", style.hat)):
        if not pattern:
            continue
        prob = np.array([weight[c] for c in pattern])[steps % 16]
        hits = steps[rng.random(len(steps)) < prob]
        velocity = rng.uniform(0.7, 1.0, len(hits)).astype(np.float32)
        tmpl = templates[name]
        # A few hundred hits at most per file: a loop of slice adds is cheaper than convolving.
        for pos, vel in zip(np.round(hits * step).astype(np.int64), velocity):
            seg = out[pos : pos + len(tmpl)]
            seg += vel * tmpl[: len(seg)]
    return out


def _music(rng: np.random.Generator, style: _Style, sample_rate_hz: int, n: int) -> np.ndarray:
    """A few bars of ``style``: lead (+ chord voices), bass, drums; shape (n,), float32."""
    sr = sample_rate_hz
    beat_s = 60.0 / rng.uniform(*style.bpm)
    scale = _MINOR if rng.random() < style.minor_p else _MAJOR
    tonic = int(rng.integers(style.tonic_midi[0], style.tonic_midi[1] + 1))

    note_len = max(1, int(round(sr * beat_s / style.notes_per_beat)))
    n_notes = -(-n // note_len)
    if style.loop_notes:
        degrees = np.resize(_melody_degrees(rng, style.loop_notes), n_notes)
    else:
        degrees = _melody_degrees(rng, n_notes)
    # Per-item timbre: each harmonic +-30 %, so items within a style differ.
    harm = np.asarray(style.harmonics) * rng.uniform(0.7, 1.3, len(style.harmonics))
    table = _wavetable(harm)
    vibrato = None
    if style.vibrato:
        t = np.arange(n, dtype=np.float32) / sr
        vibrato = 1.0 + style.vibrato * np.sin(2 * np.pi * 5.5 * t + rng.uniform(0, 2 * np.pi)).astype(np.float32)
    lead = np.zeros(n, dtype=np.float32)
    for offset in (0, *style.chord):
        freq = np.repeat(_midi_hz(tonic + _scale_semitones(degrees + offset, scale)), note_len)[:n]
        if vibrato is not None:
            freq = freq * vibrato
        lead += (1.0 if offset == 0 else 0.5) * table[_phase_index(freq, sr)]
    playing = (rng.random(n_notes) >= style.rest_p).astype(np.float32)
    env = np.tile(_note_envelope(note_len, sr, style.attack_s, style.decay_s), n_notes)[:n]
    lead *= env * np.repeat(playing, note_len)[:n]
    if style.drive:
        lead = np.tanh(style.drive * lead) / np.tanh(style.drive)
    if style.pump:
        beat_len = max(1, int(round(sr * beat_s)))
        duck = 1.0 - style.pump * np.exp(-np.arange(beat_len, dtype=np.float32) / (0.12 * sr))
        lead *= np.tile(duck, -(-n // beat_len))[:n]
    mix = lead
    if style.bass:
        bass_len = max(1, int(round(sr * beat_s / style.bass_notes_per_beat)))
        n_bass = -(-n // bass_len)
        roots = rng.choice(np.array([0, 3, 4, 5]), size=n_bass)
        # Two octaves down, or one for low tonics, so the bass stays above ~40 Hz.
        bass_tonic = tonic - 24 if tonic >= 52 else tonic - 12
        freq = np.repeat(_midi_hz(bass_tonic + _scale_semitones(roots, scale)), bass_len)[:n]
        bass_table = _wavetable(np.array([1.0, 0.25, 0.05]))
        bass_env = np.tile(_note_envelope(bass_len, sr, 0.01, style.bass_decay_s), n_bass)[:n]
        mix = mix + style.bass * bass_table[_phase_index(freq, sr)] * bass_env
    if style.drums:
        mix = mix + style.drums * _drums(rng, style, sr, n, beat_s)
    if style.noise_bed:
        mix = mix + style.noise_bed * 0.3 * _lowpass_noise(rng, n, 0.98)
    return mix.astype(np.float32)


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


# --------------------------------------------------------------------------------------------
# Frame strips: float32 (N, H, W, 3) canvases painted per genre, then noise and uint8.
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Media jobs: what a worker process needs to write one item's files.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MediaJob:
    seed: int
    index: int
    genre: str
    recipe: str
    audio_path: str
    audio_format: str
    audio_subtype: str
    sample_rate_hz: int
    channels: int
    n_samples: int
    frames_path: str | None
    n_frames: int


def _write_media(job: _MediaJob) -> None:
    """Synthesise and write one item's audio (and frame strip, for video). Runs in a worker."""
    import soundfile as sf  # only media writing needs libsndfile

    rng = np.random.default_rng([job.seed, _STREAM_AUDIO, job.index])
    mono = _synthesise(rng, job.recipe, job.sample_rate_hz, job.n_samples)
    if job.channels == 2:
        # A short delayed copy on the right channel: correlated but not identical channels.
        delay = max(1, int(0.011 * job.sample_rate_hz))
        data = np.stack([mono, 0.8 * mono + 0.2 * np.roll(mono, delay)], axis=1)
    else:
        data = mono
    sf.write(job.audio_path, data, job.sample_rate_hz, format=job.audio_format, subtype=job.audio_subtype)
    if job.frames_path is not None:
        frames = _frames(np.random.default_rng([job.seed, _STREAM_FRAMES, job.index]), job.genre, job.n_frames)
        np.save(job.frames_path, frames)


# --------------------------------------------------------------------------------------------
# Catalogue text: titles, tags and descriptions from per-genre word lists. About a quarter of
# the description phrases and a few tags come from other genres, so text is informative about
# genre but noisy.
# --------------------------------------------------------------------------------------------

_VOCAB: dict[str, dict[str, tuple[str, ...]]] = {
    "classical": dict(
        adj=("Moonlit", "Pastoral", "Autumn", "Winter", "Eternal", "Noble", "Quiet", "Royal", "Silver", "Tender"),
        noun=("Sonata", "Nocturne", "Etude", "Prelude", "Serenade", "Fugue", "Concerto", "Waltz", "Adagio", "Symphony"),
        tags=("orchestral", "piano", "strings", "baroque", "romantic", "chamber", "instrumental", "calm"),
        phrases=("a slow string adagio", "a graceful piano sonata", "a chamber ensemble in full bloom",
                 "baroque counterpoint for harpsichord and strings", "a romantic symphony movement",
                 "soaring violins over a soft cello line")),
    "rock": dict(
        adj=("Electric", "Broken", "Wild", "Burning", "Loud", "Midnight", "Restless", "Iron", "Neon", "Reckless"),
        noun=("Highway", "Riot", "Engine", "Thunder", "Heart", "Road", "Fire", "Machine", "Rebel", "Anthem"),
        tags=("guitar", "drums", "energetic", "loud", "live", "indie", "classic-rock", "band"),
        phrases=("distorted guitars and pounding drums", "a stadium anthem with a huge chorus",
                 "raw riffs from a garage band", "a driving rock groove", "an overdriven guitar solo",
                 "a loud live set from a four-piece band")),
    "electronic": dict(
        adj=("Digital", "Neon", "Infinite", "Pulse", "Hyper", "Crystal", "Night", "Solar", "Binary", "Deep"),
        noun=("Circuit", "Signal", "Drive", "Wave", "Grid", "Orbit", "Loop", "Voltage", "Club", "Sequence"),
        tags=("synth", "dance", "house", "techno", "club", "beats", "edm", "bass"),
        phrases=("four-on-the-floor beats and pulsing synths", "a hypnotic techno loop",
                 "sidechained pads for the dance floor", "an arpeggiated synth line", "a deep house groove",
                 "a club track built on a driving kick")),
    "jazz": dict(
        adj=("Blue", "Smoky", "Late", "Cool", "Velvet", "Lazy", "Swinging", "Golden", "Mellow", "After-Hours"),
        noun=("Standard", "Ballad", "Bop", "Swing", "Groove", "Lounge", "Quartet", "Session", "Trio", "Riff"),
        tags=("saxophone", "swing", "trio", "bebop", "improvisation", "double-bass", "piano", "lounge"),
        phrases=("a piano trio improvising over a walking bass", "brushed drums and a mellow saxophone",
                 "a swinging standard from a smoky club", "bebop lines over changing chords",
                 "a laid-back lounge session", "a late-night quartet with a soft ride cymbal")),
    "ambient": dict(
        adj=("Drifting", "Floating", "Distant", "Still", "Endless", "Misty", "Soft", "Deep", "Slow", "Hazy"),
        noun=("Horizon", "Tide", "Cloud", "Haze", "Field", "Dream", "Ether", "Space", "Glow", "Echo"),
        tags=("calm", "drone", "relax", "sleep", "meditation", "atmospheric", "pads", "chill"),
        phrases=("slowly evolving pads", "a calm drone for sleep and focus", "warm washes of sound",
                 "an atmospheric soundscape", "soft textures that drift and fade", "a meditative piece with no beat")),
    "hiphop": dict(
        adj=("Street", "Real", "Heavy", "Hustle", "Golden", "Fresh", "Block", "Smooth", "Dirty", "Late"),
        noun=("Flow", "Cypher", "Beat", "Block", "Hustle", "Verse", "Corner", "Bars", "Crew", "Boom"),
        tags=("rap", "beats", "808", "boom-bap", "urban", "trap", "bass", "lyrics"),
        phrases=("a boom-bap beat with heavy 808 bass", "laid-back rap over a dusty sample",
                 "a head-nodding beat with crisp snares", "hard-hitting trap drums", "a smooth flow over a jazzy loop",
                 "booming bass and rolling hi-hats")),
    "talk": dict(
        adj=("Open", "Honest", "Long", "Late", "Candid", "Weekly", "Morning", "Quiet", "Big", "Real"),
        noun=("Conversation", "Interview", "Talk", "Call-In", "Debate", "Chat", "Forum", "Story", "Hour", "Table"),
        tags=("interview", "conversation", "speech", "radio", "call-in", "opinion", "culture", "voices"),
        phrases=("a long conversation with a guest", "listeners call in to share their stories",
                 "an honest interview about life and work", "a relaxed chat about culture",
                 "two hosts debate the week's topics", "a spoken-word hour of stories")),
    "news": dict(
        adj=("Morning", "Evening", "Daily", "World", "Breaking", "Local", "Business", "National", "Midday", "Weekend"),
        noun=("Bulletin", "Report", "Headlines", "Briefing", "Update", "Roundup", "Desk", "Digest", "Edition", "Wire"),
        tags=("headlines", "current-affairs", "politics", "weather", "business", "world", "breaking", "report"),
        phrases=("the latest headlines from around the world", "a briefing on politics and business",
                 "today's top stories and the weather", "breaking news and analysis",
                 "a roundup of local and national news", "reports from correspondents abroad")),
    "podcast": dict(
        adj=("Curious", "Hidden", "True", "Deep", "Weird", "Everyday", "Untold", "Smart", "Lost", "Little"),
        noun=("Podcast", "Episodes", "Show", "Hour", "Stories", "Mysteries", "Minds", "Facts", "Files", "Cast"),
        tags=("podcast", "episode", "storytelling", "science", "comedy", "true-crime", "hosts", "series"),
        phrases=("two hosts unpack a curious story", "a weekly episode about science and ideas",
                 "a true-crime investigation in several parts", "comedians riff on everyday life",
                 "an episode exploring a forgotten history", "a deep dive with an expert guest")),
    "sports": dict(
        adj=("Northfield", "Riverton", "Lakeside", "Westport", "Eastvale", "Hillcrest", "Bayside", "Stonebridge",
             "Redwater", "Kingsbury"),
        noun=("Rovers", "United", "Eagles", "Lions", "Comets", "Wolves", "Rangers", "Falcons", "Titans", "Sharks"),
        tags=("football", "match", "live", "highlights", "league", "goals", "stadium", "cup"),
        phrases=("highlights from a league match", "a late goal decides a tense derby",
                 "live coverage from a packed stadium", "the cup final with extra time",
                 "fast counter-attacks and a penalty", "post-match analysis of every goal")),
    "cartoons": dict(
        adj=("Super", "Silly", "Tiny", "Magic", "Crazy", "Jolly", "Zippy", "Wacky", "Bouncy", "Cosmic"),
        noun=("Critters", "Pals", "Robots", "Pirates", "Bunnies", "Heroes", "Gang", "Squad", "Monsters", "Ducks"),
        tags=("animation", "animated", "comedy", "colourful", "slapstick", "characters", "funny", "toons"),
        phrases=("an animated comedy full of slapstick", "colourful characters on a wild adventure",
                 "a cartoon chase with plenty of pratfalls", "zany heroes save the day again",
                 "a fast-paced animated episode", "bright toons and silly gags")),
    "drama": dict(
        adj=("Silent", "Broken", "Hidden", "Last", "Cold", "Distant", "Secret", "Fading", "Bitter", "Long"),
        noun=("Promise", "Winter", "House", "Letters", "Shadows", "Summer", "Truth", "Return", "Inheritance",
              "Confession"),
        tags=("drama", "series", "family", "romance", "period", "thriller", "character", "emotional"),
        phrases=("a family torn apart by a secret", "a slow-burning period drama",
                 "a tense story of loyalty and betrayal", "an emotional portrait of a marriage",
                 "quiet rooms and long silences", "a character drama set in a small town")),
    "nature": dict(
        adj=("Wild", "Hidden", "Frozen", "Living", "Blue", "Green", "Ancient", "Untamed", "Secret", "Deep"),
        noun=("Forest", "Ocean", "Planet", "Islands", "Valley", "Rivers", "Savanna", "Reef", "Mountains", "Wetlands"),
        tags=("wildlife", "nature", "animals", "landscape", "ocean", "forest", "birds", "planet"),
        phrases=("wildlife in a remote forest", "whales and dolphins of the open ocean",
                 "birds return to the wetlands in spring", "a year in the life of a mountain valley",
                 "predators and prey on the savanna", "the hidden life of a coral reef")),
    "documentary": dict(
        adj=("Untold", "Inside", "Lost", "Modern", "Secret", "Great", "Forgotten", "Real", "Hidden", "Rising"),
        noun=("History", "Empire", "Cities", "Machines", "Story", "Frontier", "Century", "Inventors", "Archive",
              "Journey"),
        tags=("documentary", "history", "science", "investigation", "biography", "factual", "archive", "society"),
        phrases=("archive footage tells the story of an empire", "an investigation into a forgotten scandal",
                 "the engineers who built modern cities", "a biography of an unlikely inventor",
                 "how science changed the last century", "interviews and archive film about a lost era")),
    "kids": dict(
        adj=("Happy", "Little", "Sunny", "Busy", "Friendly", "Rainbow", "Tiny", "Clever", "Cheerful", "Playful"),
        noun=("Friends", "Garden", "School", "Farm", "Train", "Songs", "Town", "Club", "Adventures", "Playtime"),
        tags=("kids", "family", "preschool", "learning", "songs", "educational", "fun", "children"),
        phrases=("songs and games for young children", "friendly characters learn to share",
                 "a gentle story for preschoolers", "counting and colours with puppets",
                 "a playful adventure on the farm", "learning the alphabet with songs")),
}
_GENERIC_SENTENCES = (
    "A fan favourite.", "New this week.", "Recommended by our editors.", "A popular choice.",
    "Available in high quality.", "Part of a long-running collection.", "Perfect for a quiet evening.",
    "Loved by listeners and viewers alike.",
)
_KEYS = ("C major", "D minor", "E-flat major", "G minor", "A major", "F minor", "B-flat major", "E minor")
_SERIES_GENRES = frozenset({"cartoons", "drama", "nature", "documentary", "kids", "podcast", "talk"})


def _pick(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    return words[int(rng.integers(len(words)))]


def _group_name(rng: np.random.Generator, genre: str) -> str:
    v = _VOCAB[genre]
    if genre == "sports":
        return f"The {_pick(rng, v['adj'])} Cup"
    return f"{_pick(rng, v['adj'])} {_pick(rng, v['noun'])}"


def _title(rng: np.random.Generator, genre: str, group: str, position: int) -> str:
    v = _VOCAB[genre]
    if genre == "classical":
        return f"{_pick(rng, v['noun'])} No. {int(rng.integers(1, 30))} in {_pick(rng, _KEYS)}"
    if genre == "sports":
        home, away = rng.choice(len(v["adj"]), 2, replace=False)
        return f"{v['adj'][home]} {_pick(rng, v['noun'])} vs {v['adj'][away]} {_pick(rng, v['noun'])}"
    if genre == "news":
        return f"{group}, Edition {position + 1}"
    if genre in _SERIES_GENRES:
        return f"{group}: Episode {position + 1}"
    suffix = _pick(rng, ("", "", "", " (Live)", " (Remix)", " Part II"))
    return f"{_pick(rng, v['adj'])} {_pick(rng, v['noun'])}{suffix}"


def _tags(rng: np.random.Generator, genre: str) -> tuple[str, ...]:
    pool = _VOCAB[genre]["tags"]
    chosen = [pool[i] for i in rng.choice(len(pool), int(rng.integers(2, 5)), replace=False)]
    if rng.random() < 0.15:
        chosen[-1] = _pick(rng, _VOCAB[_pick(rng, GENRES)]["tags"])
    return tuple(dict.fromkeys([genre, *chosen]))  # genre first, no duplicates


def _description(rng: np.random.Generator, genre: str, group: str) -> str:
    def phrase() -> str:
        source = genre if rng.random() < 0.75 else _pick(rng, GENRES)
        return _pick(rng, _VOCAB[source]["phrases"])

    first, second = phrase(), phrase()
    template = int(rng.integers(4))
    if template == 0:
        text = f"{first[0].upper()}{first[1:]}."
    elif template == 1:
        text = f"{first[0].upper()}{first[1:]}, with {second}."
    elif template == 2:
        text = f"Featuring {first} and {second}."
    else:
        text = f"Expect {first}."
    if rng.random() < 0.4:
        text += f" From {group}."
    elif rng.random() < 0.5:
        text += " " + _pick(rng, _GENERIC_SENTENCES)
    return text


# --------------------------------------------------------------------------------------------
# The catalogue plan: which item is which kind and genre, its media parameters and latents.
# --------------------------------------------------------------------------------------------


@dataclass
class _Catalogue:
    items: list[Item]
    jobs: list[_MediaJob]
    genre: np.ndarray  # (n_items,) int, index into GENRES
    quality: np.ndarray  # (n_items,) float, latent quality, standard normal
    popularity: np.ndarray  # (n_items,) float > 0, long-tailed (lognormal)
    next_in_group: np.ndarray  # (n_items,) int, next episode/track of the same series/album, or -1
    runtime_s: np.ndarray  # (n_items,) float, nominal full runtime used only to space events


def _quota(rng: np.random.Generator, weights: tuple[float, ...], n: int) -> np.ndarray:
    """``n`` category indices in the exact proportions of ``weights`` (largest remainder), shuffled.

    Unlike independent draws, this guarantees every category with weight >= 1/n appears, so
    small test catalogues still hold every format, rate and channel count.
    """
    w = np.asarray(weights, dtype=np.float64) / sum(weights)
    counts = np.floor(w * n).astype(np.int64)
    order = np.argsort(-(w * n - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    out = np.repeat(np.arange(len(w)), counts)
    rng.shuffle(out)
    return out


# Typical full runtime per genre (s); how far apart a user's consecutive events are.
_RUNTIME_S = {
    "classical": 420, "rock": 240, "electronic": 300, "jazz": 360, "ambient": 600, "hiphop": 210,
    "talk": 1200, "news": 700, "podcast": 2400, "sports": 3600, "cartoons": 660, "drama": 2700,
    "nature": 1800, "documentary": 2700, "kids": 600,
}
# Talk genres are a little rarer than music in the audio catalogue.
_AUDIO_GENRE_WEIGHTS = tuple(0.8 if g in ("talk", "news", "podcast") else 1.0 for g in AUDIO_GENRES)


def _plan_catalogue(root: Path, seed: int, n_items: int) -> _Catalogue:
    rng = np.random.default_rng([seed, _STREAM_CATALOGUE])
    n_audio = int(round(AUDIO_SHARE * n_items))
    kinds = np.array(["audio"] * n_audio + ["video"] * (n_items - n_audio))
    rng.shuffle(kinds)
    audio_genre = iter(np.array(AUDIO_GENRES)[_quota(rng, _AUDIO_GENRE_WEIGHTS, n_audio)])
    video_genre = iter(np.array(VIDEO_GENRES)[_quota(rng, (1.0,) * len(VIDEO_GENRES), n_items - n_audio)])
    genres = [str(next(audio_genre) if k == "audio" else next(video_genre)) for k in kinds]

    # Every item has exactly one audio file (the soundtrack for video), so formats, rates and
    # channels are apportioned over all n_items files.
    fmt_idx = _quota(rng, tuple(f[3] for f in _FORMATS), n_items)
    stereo = _quota(rng, (1.0 - _STEREO_SHARE, _STEREO_SHARE), n_items)
    is_ogg = fmt_idx == 2
    rates = np.empty(n_items, dtype=np.int64)
    rates[is_ogg] = np.array(_OGG_RATES_HZ)[_quota(rng, (1.0, 1.0, 1.0), int(is_ogg.sum()))]
    rates[~is_ogg] = np.array(SAMPLE_RATES_HZ)[_quota(rng, _RATE_WEIGHTS, int((~is_ogg).sum()))]
    # Skewed towards short clips (mean ~11 s) to keep synthesis and decoding cheap.
    durations = MIN_AUDIO_S + (MAX_AUDIO_S - MIN_AUDIO_S) * rng.beta(1.2, 3.6, n_items)

    width = max(5, len(str(n_items)))
    ids = [f"{'a' if k == 'audio' else 'v'}{i + 1:0{width}d}" for i, k in enumerate(kinds)]

    # Series/albums: each genre's items, in id order, cut into runs of 3..8 consecutive entries.
    group_of, position_in_group = [""] * n_items, [0] * n_items
    next_in_group = np.full(n_items, -1, dtype=np.int64)
    for g in GENRES:
        for kind in ("audio", "video"):
            members = [i for i in range(n_items) if genres[i] == g and kinds[i] == kind]
            start = 0
            while start < len(members):
                run = members[start : start + int(rng.integers(3, 9))]
                name = _group_name(rng, g)
                for pos, i in enumerate(run):
                    group_of[i], position_in_group[i] = name, pos
                    if pos + 1 < len(run):
                        next_in_group[i] = run[pos + 1]
                start += len(run)

    items: list[Item] = []
    jobs: list[_MediaJob] = []
    for i in range(n_items):
        ext, fmt, subtype, _ = _FORMATS[fmt_idx[i]]
        sr = int(rates[i])
        n_samples = int(round(durations[i] * sr))
        folder = "audio" if kinds[i] == "audio" else "soundtracks"
        audio_path = root / "media" / folder / f"{ids[i]}.{ext}"
        frames_path = root / "media" / "frames" / f"{ids[i]}.npy" if kinds[i] == "video" else None
        g = genres[i]
        items.append(Item(
            item_id=ids[i],
            title=_title(rng, g, group_of[i], position_in_group[i]),
            tags=_tags(rng, g),
            kind=str(kinds[i]),
            duration_s=n_samples / sr,
            audio=audio_path,
            frames=frames_path,
            description=_description(rng, g, group_of[i]),
        ))
        jobs.append(_MediaJob(
            seed=seed, index=i, genre=g, recipe=f"{'audio' if kinds[i] == 'audio' else 'soundtrack'}/{g}",
            audio_path=str(audio_path), audio_format=fmt, audio_subtype=subtype, sample_rate_hz=sr,
            channels=2 if stereo[i] else 1, n_samples=n_samples,
            frames_path=None if frames_path is None else str(frames_path),
            n_frames=int(rng.integers(8, 17)),
        ))
    genre_index = np.array([GENRES.index(g) for g in genres], dtype=np.int64)
    return _Catalogue(
        items=items,
        jobs=jobs,
        genre=genre_index,
        quality=rng.standard_normal(n_items),
        popularity=rng.lognormal(0.0, 1.2, n_items),
        next_in_group=next_in_group,
        runtime_s=np.array([_RUNTIME_S[g] for g in genres]) * rng.uniform(0.6, 1.4, n_items),
    )


# --------------------------------------------------------------------------------------------
# Simulated users.
# --------------------------------------------------------------------------------------------

# Hours (UTC) when each genre is watched or heard more: (peak hour, width h, weight) on top of
# a flat 0.25, so genre and time of day are visibly linked (news in the morning, kids in the
# afternoon, drama late).
_GENRE_HOURS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "classical": ((10, 2, 1.0), (22, 2, 1.5)), "rock": ((17, 3, 1.5),), "electronic": ((22, 2.5, 2.0),),
    "jazz": ((21, 2, 2.0),), "ambient": ((23, 2, 2.0), (6, 1.5, 1.0)), "hiphop": ((17, 3, 1.5),),
    "talk": ((10, 2, 2.0),), "news": ((7.5, 1.2, 4.0), (19, 1, 1.5)), "podcast": ((8, 1.2, 2.5), (17.5, 1.2, 2.0)),
    "sports": ((20, 2, 2.5), (15, 2, 1.0)), "cartoons": ((16, 1.5, 3.0), (8, 1, 1.0)), "drama": ((21, 1.5, 3.0),),
    "nature": ((19, 2.5, 1.5),), "documentary": ((21, 2, 2.0),), "kids": ((16, 1.5, 3.5), (8, 1, 1.5)),
}


def _circular_bump(peak_h: float, width_h: float) -> np.ndarray:
    """Gaussian bump over the 24 hours of a day, wrapping at midnight; shape (24,)."""
    d = np.abs(np.arange(24) + 0.5 - peak_h)
    d = np.minimum(d, 24 - d)
    return np.exp(-0.5 * (d / width_h) ** 2)


_HOUR_AFFINITY = np.array(
    [0.25 + sum(w * _circular_bump(p, s) for p, s, w in _GENRE_HOURS[g]) for g in GENRES]
)  # (n_genres, 24)

# Dirichlet mixture over genres: each user draws an archetype, then tastes from its Dirichlet.
_ARCHETYPES: tuple[dict[str, float], ...] = (
    {"rock": 1, "electronic": 1, "hiphop": 1, "jazz": 0.4, "sports": 0.3},  # music fan
    {"classical": 1, "jazz": 1, "ambient": 1, "nature": 0.5, "documentary": 0.5},  # mellow
    {"news": 1, "talk": 1, "podcast": 1, "documentary": 0.6, "sports": 0.3},  # informed
    {"kids": 1, "cartoons": 1, "nature": 0.6, "classical": 0.2},  # family
    {"sports": 1, "rock": 0.6, "news": 0.5, "hiphop": 0.4},  # sports fan
    {"drama": 1, "documentary": 0.8, "nature": 0.6, "jazz": 0.4, "podcast": 0.3},  # evening viewer
)
_ARCHETYPE_ALPHA = np.array([[0.08 + 1.5 * a.get(g, 0.0) for g in GENRES] for a in _ARCHETYPES])
_HABIT_HOURS = np.array([7.5, 12.5, 16.5, 20.5, 22.5])
_HABIT_WEIGHTS = np.array([0.2, 0.1, 0.2, 0.35, 0.15])
_HABIT_FLOOR = 0.08  # even a strict evening user sometimes turns the TV on at breakfast

_P_CONTINUE_GENRE = 0.7  # next pick in a session stays in the genre
_P_NEXT_IN_GROUP = 0.35  # ... and is the next episode/track of the series/album
_P_EXPLORE = 0.1  # a pick from any genre, usually off-taste: most skips and dislikes
# Watched fraction = sigmoid(gain * affinity + bias + noise); below 0.25 is a skip.
_WATCH_GAIN, _WATCH_BIAS = 0.9, -0.5
_P_LIKE = 0.25  # at most; scaled down for items the user only half likes


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _simulate_user(rng: np.random.Generator, cat: _Catalogue, genre_cdf: list[np.ndarray | None],
                   genre_members: list[np.ndarray], has_items: np.ndarray) -> list[tuple[int, int, str, float]]:
    """One user's history as ``(timestamp, item index, event, value)``, strictly increasing in time."""
    n_genres = len(GENRES)
    archetype = int(rng.integers(len(_ARCHETYPES)))
    taste = rng.dirichlet(_ARCHETYPE_ALPHA[archetype] * rng.uniform(0.7, 1.5))
    taste = 0.97 * taste + 0.03 / n_genres
    log_taste = np.log(taste * n_genres)  # 0 for a genre liked as much as under uniform taste

    n_peaks = int(rng.integers(1, 4))
    peaks = rng.choice(len(_HABIT_HOURS), n_peaks, replace=False, p=_HABIT_WEIGHTS)
    habit = _HABIT_FLOOR + sum(
        _circular_bump(_HABIT_HOURS[p] + rng.normal(0, 0.75), rng.uniform(0.8, 2.0)) for p in peaks
    )
    # A session's opening (hour, genre) is drawn jointly from habit x taste x genre-hour
    # affinity, so a news lover's news sessions drift to the morning even if they mostly
    # watch in the evening.
    opening = habit[:, None] * (taste * has_items)[None, :] * _HOUR_AFFINITY.T  # (24, n_genres)
    opening_cdf = np.cumsum(opening.ravel())

    n_target = int(np.clip(round(rng.lognormal(math.log(45), 0.6)), 8, 300))
    lengths = []
    while sum(lengths) < n_target:
        lengths.append(min(12, 1 + int(rng.poisson(3.5)), n_target - sum(lengths)))
    history_start = EPOCH_END_S - HISTORY_DAYS * 86400
    days = np.sort(rng.integers(0, HISTORY_DAYS - 1, len(lengths)))
    hour_genre = np.searchsorted(opening_cdf, rng.random(len(lengths)) * opening_cdf[-1])
    hours, openers = np.divmod(hour_genre, n_genres)
    starts = history_start + days * 86400 + hours * 3600 + rng.integers(0, 3600, len(lengths))
    order = np.argsort(starts, kind="stable")
    starts, openers = starts[order], openers[order]

    def choose_genre(hour: int) -> int:
        w = taste * _HOUR_AFFINITY[:, hour] * has_items
        return int(np.searchsorted(np.cumsum(w), rng.random() * w.sum()))

    def choose_item(g: int) -> int:
        cdf = genre_cdf[g]
        return int(genre_members[g][np.searchsorted(cdf, rng.random() * cdf[-1])])

    events: list[tuple[int, int, str, float]] = []
    primaries: list[tuple[int, float]] = []  # (index into events, affinity) of play/complete/skip
    clock = -1
    for start, opener, length in zip(starts, openers, np.array(lengths)[order]):
        t = max(int(start), clock + 1800)  # sessions at least half an hour apart
        genre, prev = int(opener), -1
        for j in range(length):
            hour = int((t % 86400) // 3600)
            if j > 0 and rng.random() >= _P_CONTINUE_GENRE:
                genre = choose_genre(hour)
            if rng.random() < _P_EXPLORE:
                pick_genre = int(rng.choice(np.flatnonzero(has_items)))
                item = choose_item(pick_genre)
            elif (prev >= 0 and cat.next_in_group[prev] >= 0 and cat.genre[prev] == genre
                  and rng.random() < _P_NEXT_IN_GROUP):
                item = int(cat.next_in_group[prev])
            else:
                item = choose_item(genre)
                if item == prev:
                    item = choose_item(genre)
            affinity = log_taste[cat.genre[item]] + 0.7 * cat.quality[item] + rng.normal(0, 0.6)
            # Rounded first, so the value written and the event kind agree (a skip is < 0.25).
            watched = max(0.001, round(_sigmoid(_WATCH_GAIN * affinity + _WATCH_BIAS + rng.normal(0, 0.8)), 3))
            if watched < 0.25:
                event = "skip"
            elif watched >= 0.9:
                event = "complete"
            else:
                event = "play"
            primaries.append((len(events), affinity))
            events.append((t, item, event, watched))
            # Minutes apart: long items are not followed to the end before the next pick, and
            # a like/dislike lands 5 s after that point, always before the next pick (>= 60 s).
            advance_s = int(min(watched * cat.runtime_s[item], 1500.0))
            if event == "skip" and affinity < -1.0 and rng.random() < 0.3:
                events.append((t + advance_s + 5, item, "dislike", math.nan))
            elif watched >= 0.6 and rng.random() < _P_LIKE * _sigmoid(2.0 * (affinity - 0.5)):
                events.append((t + advance_s + 5, item, "like", math.nan))
            t += advance_s + int(rng.integers(60, 300))
            prev = item
        clock = t

    events = [e for e in events if e[0] < EPOCH_END_S]
    primaries = [p for p in primaries if p[0] < len(events)]
    # Guarantee MIN_POSITIVE_EVENTS: turn the user's best-liked skips into plays.
    positives = sum(e[2] in ("play", "complete", "like") for e in events)
    for idx, _ in sorted(primaries, key=lambda p: -p[1]):
        if positives >= MIN_POSITIVE_EVENTS:
            break
        t, item, event, _value = events[idx]
        if event == "skip":
            events[idx] = (t, item, "play", round(float(rng.uniform(0.3, 0.6)), 3))
            positives += 1
    events = [e for k, e in enumerate(events) if not (e[2] == "dislike" and k > 0 and events[k - 1][2] != "skip")]
    while positives < MIN_POSITIVE_EVENTS:  # only if almost nothing fell inside the window
        favourite = choose_item(int(np.argmax(taste * has_items)))
        events.insert(0, (events[0][0] - 600 if events else EPOCH_END_S - 86400, favourite, "play", 0.8))
        positives += 1
    return events


def _simulate_users(seed: int, cat: _Catalogue, n_users: int) -> Interactions:
    """Every user's history as one chronological log (sorted by timestamp, then user)."""
    n_genres = len(GENRES)
    genre_members = [np.flatnonzero(cat.genre == g) for g in range(n_genres)]
    # Within a genre, picks follow popularity x quality: a long tail of rarely played items.
    weight = cat.popularity * np.exp(0.5 * cat.quality)
    genre_cdf = [np.cumsum(weight[m]) if len(m) else None for m in genre_members]
    has_items = np.array([len(m) > 0 for m in genre_members], dtype=np.float64)
    width = max(4, len(str(n_users)))
    rows = []
    for u in range(n_users):
        rng = np.random.default_rng([seed, _STREAM_USER, u])
        user_id = f"u{u + 1:0{width}d}"
        for t, item, event, value in _simulate_user(rng, cat, genre_cdf, genre_members, has_items):
            rows.append((t, u, user_id, cat.items[item].item_id, event, value))
    rows.sort(key=lambda r: (r[0], r[1]))  # one chronological log, like a real export
    return Interactions.from_rows((uid, iid, t, ev, val) for t, _, uid, iid, ev, val in rows)


# --------------------------------------------------------------------------------------------
# The public entry point.
# --------------------------------------------------------------------------------------------


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
