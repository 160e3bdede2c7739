"""Music synthesis: wavetable oscillators, per-genre styles (tempo, timbre, chords, bass,
drums) and a few bars of a style as mono float32 audio.

Everything is float32 at the file's own sample rate, built from wavetables indexed by a running
phase, so a voice costs a cumsum and a gather rather than K sines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_TABLE = 2048  # wavetable length, samples; a power of two so phase wraps with a bit mask
_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_MINOR = np.array([0, 2, 3, 5, 7, 8, 10])


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
