"""Content features computed on the device and, from this same code, on the server.

``audio``, ``frames`` and ``text`` each turn one modality into a fixed-length vector; the
:class:`FeatureSpec` holds every parameter. :func:`item_vector` concatenates them into the input
of the fusion model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from edge.features.audio import audio_features, audio_features_from_samples
from edge.features.frames import frame_features, load_frames
from edge.features.spec import FeatureSpec
from edge.features.text import text_features

__all__ = [
    "FeatureSpec",
    "audio_features",
    "audio_features_from_samples",
    "frame_features",
    "load_frames",
    "text_features",
    "item_vector",
]


def item_vector(
    title: str,
    tags: Iterable[str] = (),
    description: str = "",
    audio: str | Path | None = None,
    frames: str | Path | np.ndarray | None = None,
    spec: FeatureSpec | None = None,
) -> np.ndarray:
    """Concatenate ``[has_audio, audio, has_frames, frames, text]`` for one item.

    A missing modality is zeros with its presence flag 0, so catalogues without media (e.g.
    MovieLens) still get text features.

    :returns: float32 array of shape ``(spec.item_dim,)``.
    :raises FeatureError: when a given media file cannot be decoded.
    """
    spec = spec or FeatureSpec()
    a = np.zeros(spec.audio_dim, np.float32)
    f = np.zeros(spec.frames_dim, np.float32)
    if audio is not None:
        a = audio_features(audio, spec)
    if frames is not None:
        arr = load_frames(frames) if not isinstance(frames, np.ndarray) else frames
        f = frame_features(arr, spec, name=str(frames) if not isinstance(frames, np.ndarray) else "<frames>")
    t = text_features(title, tags, description, spec)
    return np.concatenate(
        [[float(audio is not None)], a, [float(frames is not None)], f, t]
    ).astype(np.float32)
