"""The catalogue plan: which item is which kind and genre, its media format and parameters
(the jobs the media writers run) and its latent quality and popularity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.data.contract import Item
from export.data.synthetic.genres import AUDIO_GENRES, GENRES, VIDEO_GENRES
from export.data.synthetic.text import _description, _group_name, _tags, _title

SAMPLE_RATES_HZ: tuple[int, ...] = (8000, 16000, 22050, 32000, 44100, 48000)
MIN_AUDIO_S = 5.0
MAX_AUDIO_S = 30.0
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


@dataclass(frozen=True)
class _MediaJob:
    """What a worker process needs to write one item's files (:mod:`export.data.synthetic.media`)."""

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
    series_of: list[str | None] = [None] * n_items
    next_in_group = np.full(n_items, -1, dtype=np.int64)
    for g in GENRES:
        for kind in ("audio", "video"):
            members = [i for i in range(n_items) if genres[i] == g and kinds[i] == kind]
            start = 0
            while start < len(members):
                run = members[start : start + int(rng.integers(3, 9))]
                name = _group_name(rng, g)
                series = f"s-{g}-{kind}-{ids[run[0]]}"  # names repeat across runs; the first member's id does not
                for pos, i in enumerate(run):
                    group_of[i], position_in_group[i], series_of[i] = name, pos, series
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
            series_id=series_of[i],
            episode=position_in_group[i] + 1 if series_of[i] else None,
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
