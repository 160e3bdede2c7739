"""Content features computed on the device and, from this same code, on the server.

``audio``, ``frames`` and ``text`` each turn one modality into a fixed-length vector; the
:class:`FeatureSpec` holds every parameter and names every vector entry. :func:`item_vector`
concatenates them into the input of the fusion model::

    from edge.features import FeatureSpec, audio_features, item_vector
    spec = FeatureSpec()                                  # what bundles are built with
    vec = audio_features("programme.ogg", spec)           # (spec.audio_dim,)
    full = FeatureSpec(excerpt_windows=None)              # whole clip, up to max_read_s
    stream = AudioStream(48000, channels=2, spec=spec)    # live PCM, pushed in chunks

Every failure on bad input is an :class:`edge.errors.FeatureError` naming the input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from edge.features.spec import FeatureSpec

# Decoders, scipy and python_speech_features load on first use: opening a bundle and
# recommending need only FeatureSpec, and a device should not pay ~30 MB and ~1 s for them.
_LAZY = {
    "AudioInfo": "edge.features.audio", "audio_features": "edge.features.audio",
    "audio_features_from_samples": "edge.features.audio", "excerpt_ranges": "edge.features.audio",
    "probe_audio": "edge.features.audio", "AudioStream": "edge.features.audio_stream",
    "load_frames": "edge.features.frame_files", "read_image": "edge.features.frame_files",
    "read_video": "edge.features.frame_files", "frame_features": "edge.features.frames",
    "delta": "edge.features.cepstral", "logfbank": "edge.features.cepstral", "mfcc": "edge.features.cepstral",
    "StreamResampler": "edge.features.resampling", "resample": "edge.features.resampling",
    "text_features": "edge.features.text",
    "soundtrack_features": "edge.features.soundtrack", "optional_soundtrack": "edge.features.soundtrack",
    "probe_soundtrack": "edge.features.soundtrack",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edge.features' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "FeatureSpec",
    "AudioStream",
    "AudioInfo",
    "audio_features",
    "audio_features_from_samples",
    "probe_audio",
    "excerpt_ranges",
    "mfcc",
    "logfbank",
    "delta",
    "resample",
    "StreamResampler",
    "frame_features",
    "frame_features_from_file",
    "load_frames",
    "read_image",
    "read_video",
    "text_features",
    "soundtrack_features",
    "optional_soundtrack",
    "probe_soundtrack",
    "item_vector",
    "text_item_vector",
]


def frame_features_from_file(path: str | Path, spec: FeatureSpec | None = None) -> np.ndarray:
    """The frame vector of a ``.npy`` strip, an image, a folder of images or a video file.

    :returns: float32 array of shape ``(spec.frames_dim,)``.
    :raises FeatureError: naming the file (see :func:`load_frames`).
    """
    from edge.features.frame_files import load_frames
    from edge.features.frames import frame_features

    spec = spec or FeatureSpec()
    frames, times = load_frames(path, spec)
    return frame_features(frames, spec, name=str(path), times_s=times)


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
    MovieLens) still get text features. A video file given as ``frames`` without ``audio``
    also gives its soundtrack, when it has one that is not silent (server and device alike).

    :param audio: an audio file, or a video file whose soundtrack is the audio.
    :param frames: uint8 RGB frames ``(N, H, W, 3)``, or a path :func:`load_frames` reads.
    :returns: float32 array of shape ``(spec.item_dim,)``; names in ``spec.item_names``.
    :raises FeatureError: when a given media file cannot be decoded.
    """
    from edge.features.audio import audio_features
    from edge.features.frames import frame_features
    from edge.features.soundtrack import is_video_file, optional_soundtrack
    from edge.features.text import text_features

    spec = spec or FeatureSpec()
    a = np.zeros(spec.audio_dim, np.float32)
    f = np.zeros(spec.frames_dim, np.float32)
    has_audio = audio is not None
    if audio is not None:
        a = audio_features(audio, spec)
    elif isinstance(frames, (str, Path)) and is_video_file(frames):
        sound = optional_soundtrack(frames, spec)
        if sound is not None:
            a, has_audio = sound, True
    if isinstance(frames, np.ndarray):
        f = frame_features(frames, spec)
    elif frames is not None:
        f = frame_features_from_file(frames, spec)
    t = text_features(title, tags, description, spec)
    return np.concatenate([[float(has_audio)], a, [float(frames is not None)], f, t]).astype(np.float32)


def text_item_vector(title: str, tags: Iterable[str] = (), description: str = "", spec: FeatureSpec | None = None) -> np.ndarray:
    """The :func:`item_vector` of text alone (no audio, no frames: both flags 0), e.g. a spoken
    or typed request; loads no media decoder."""
    from edge.features.text import text_features

    spec = spec or FeatureSpec()
    out = np.zeros(spec.item_dim, np.float32)
    out[-spec.text_dim:] = text_features(title, tags, description, spec)
    return out
