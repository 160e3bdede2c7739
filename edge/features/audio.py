"""Audio files to the audio vector: checked decoding with soundfile, excerpt windows read by
seeking, summarised by :class:`~edge.features.audio_stream.AudioStream`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile as sf

from edge.errors import FeatureError
from edge.features.audio_info import MAX_DURATION_S, AudioInfo, check_header, excerpt_ranges
from edge.features.audio_stream import AudioStream
from edge.features.soundtrack import is_video_file, probe_soundtrack, soundtrack_features
from edge.features.spec import FeatureSpec

__all__ = ["MAX_DURATION_S", "AudioInfo", "audio_features", "audio_features_from_samples", "excerpt_ranges", "probe_audio"]

# Frames decoded per read: bounds memory whatever the window or file length (~2 MB at 48 kHz stereo).
_READ_BLOCK = 1 << 18
# libsndfile notes a WAV whose header promises more data than the file holds, e.g.
# "data : 96000 (should be 47978)", and then quietly reads what is there.
_SHORT_DATA = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _open(path: Path) -> sf.SoundFile:
    if not path.exists():
        raise FeatureError(f"{path}: no such file")
    if not path.is_file():
        raise FeatureError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise FeatureError(f"{path}: file is empty (0 bytes)")
    try:
        return sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        reason = str(exc).split(": ", 1)[-1]
        raise FeatureError(f"{path}: not an audio file soundfile can decode ({reason})") from None


def _check(fh: sf.SoundFile, path: Path) -> AudioInfo:
    info = check_header(AudioInfo(path, int(fh.samplerate), int(fh.channels), int(fh.frames), str(fh.format)))
    if info.frames <= 0:
        # A truncated OGG looks the same to libsndfile: its length comes from the last page.
        raise FeatureError(f"{path}: zero-length audio: no samples declared (empty, or truncated before its first complete block)")
    short = _SHORT_DATA.search(fh.extra_info or "")
    if short and int(short.group(2)) < int(short.group(1)):
        raise FeatureError(
            f"{path}: truncated: the header declares {short.group(1)} bytes of audio, the file holds {short.group(2)}"
        )
    return info


def probe_audio(path: str | Path) -> AudioInfo:
    """Read and check an audio file's header without decoding it.

    A video file's soundtrack is probed through PyAV.

    :raises FeatureError: missing, empty, not audio, a video without an audio stream, truncated WAV, rate outside 8..192 kHz,
        channels outside 1..8, zero-length, or a declared duration over a day.
    """
    path = Path(path)
    if is_video_file(path):
        info = probe_soundtrack(path)
        if info is None:
            raise FeatureError(f"{path}: no audio stream (a video without a soundtrack)")
        return info
    with _open(path) as fh:
        return _check(fh, path)


def audio_features(path: str | Path, spec: FeatureSpec | None = None) -> np.ndarray:
    """The audio vector of a file (WAV, FLAC, OGG/Vorbis, MP3 where libsndfile reads it), or of
    a video file's soundtrack (MP4, M4V, MOV, MKV, WebM; decoded by PyAV, see
    :mod:`edge.features.soundtrack`).

    Only the spec's excerpt windows are decoded, by seeking, so a long recording costs the same
    as a short one; memory is bounded by the read block whatever the window length.

    :param path: the audio file.
    :param spec: feature parameters (default :class:`FeatureSpec`).
    :returns: float32 array of shape ``(spec.audio_dim,)``; layout in ``spec.audio_names``.
    :raises FeatureError: naming the file: empty, not audio, truncated, zero-length, too short,
        all silent, NaN/Inf samples, rate outside 8..192 kHz, channels outside 1..8, absurd
        declared duration.
    """
    spec = spec or FeatureSpec()
    path = Path(path)
    if is_video_file(path):
        return soundtrack_features(path, spec)
    with _open(path) as fh:
        info = _check(fh, path)
        stream = AudioStream(info.rate_hz, info.channels, spec, name=str(path))
        try:
            for start, length in excerpt_ranges(info.frames, info.rate_hz, spec):
                _read_range(fh, info, start, length, stream)
                stream.end_segment()
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise FeatureError(f"{path}: truncated or corrupt audio ({exc})") from None
    return stream.vector()


def _read_range(fh: sf.SoundFile, info: AudioInfo, start: int, length: int, stream: AudioStream) -> None:
    if start:
        if fh.seekable():
            fh.seek(start)
        else:  # read and drop, block by block
            skip = start
            while skip > 0:
                got = fh.read(min(skip, _READ_BLOCK), dtype="float32", always_2d=True).shape[0]
                if got == 0:
                    break
                skip -= got
    remaining = length
    while remaining > 0:
        block = fh.read(min(remaining, _READ_BLOCK), dtype="float32", always_2d=True)
        if block.shape[0] == 0:
            raise FeatureError(
                f"{info.path}: truncated: the header declares {info.frames} samples, decoding stopped at {start + length - remaining}"
            )
        stream.push(block)
        remaining -= block.shape[0]


def audio_features_from_samples(
    samples: np.ndarray, rate_hz: int, spec: FeatureSpec | None = None, name: str = "<samples>"
) -> np.ndarray:
    """The audio vector of PCM already in memory, all of it (no excerpt windows).

    :param samples: float PCM in [-1, 1] (or int16/int32), shape ``(n,)`` or ``(n, channels)``.
    :param rate_hz: their sample rate (Hz), 8000..192000.
    :param name: what error messages call the input.
    :returns: float32 array of shape ``(spec.audio_dim,)``.
    :raises FeatureError: see :class:`AudioStream`.
    """
    a = np.asarray(samples)
    channels = a.shape[1] if a.ndim == 2 else 1
    stream = AudioStream(rate_hz, channels, spec, name=name)
    stream.push(a)
    stream.end_segment()
    return stream.vector()
