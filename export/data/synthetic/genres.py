"""The synthetic catalogue's genres: every table in :mod:`export.data.synthetic` is keyed by them."""

from __future__ import annotations

AUDIO_GENRES: tuple[str, ...] = (
    "classical", "rock", "electronic", "jazz", "ambient", "hiphop", "talk", "news", "podcast",
)
VIDEO_GENRES: tuple[str, ...] = ("sports", "cartoons", "news", "drama", "nature", "documentary", "kids")
#: Every genre once; "news" is both an audio and a video genre, and users' tastes span both.
GENRES: tuple[str, ...] = AUDIO_GENRES + tuple(g for g in VIDEO_GENRES if g not in AUDIO_GENRES)
