"""The soundtrack of a video file (MP4, M4V, MOV, MKV, WebM) as the audio vector.

A TV's local content is mostly video files, and their audio (speech or music, loudness, tempo)
is half of what the device can know about them. libsndfile reads no video container, so the
audio stream is decoded with PyAV (the optional ``video`` extra, imported only here) and pushed
into the same :class:`~edge.features.audio_stream.AudioStream` as an audio file's PCM: same
features, same excerpt windows (placed by :func:`~edge.features.audio.excerpt_ranges`, reached
by seeking) and the same header limits. A container without an audio stream has no soundtrack
(:func:`probe_soundtrack` returns None); a broken one is a :class:`FeatureError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.errors import FeatureError
from edge.features.audio_info import AudioInfo, check_header, excerpt_ranges
from edge.features.audio_stream import AudioStream
from edge.features.frame_files import _AV_OPTIONS, _av, _check_file
from edge.features.spec import FeatureSpec

#: Containers whose audio stream is read through PyAV rather than libsndfile.
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm"})
# A container's duration is an estimate (codec delay, the last packet's length): a stream that
# ends this close to the declared end is complete, not truncated.
_END_SLACK_S = 1.0
# Audio decoded after a seek before the target is reached, beyond which the index is broken.
_MAX_SEEK_OVERSHOOT_S = 30.0
_INT_SCALE = {"u8": None, "s16": 1 / 32768, "s32": 1 / 2147483648, "s64": 1 / 9223372036854775808}


def is_video_file(path: str | Path) -> bool:
    """Whether ``path`` names a video container (by its suffix) whose soundtrack PyAV decodes."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _open(path: Path):
    _check_file(path)
    if not path.is_file():
        raise FeatureError(f"{path}: not a regular file")
    av = _av(path)
    try:
        return av, av.open(str(path), options=_AV_OPTIONS)
    except av.FFmpegError as exc:
        raise FeatureError(f"{path}: container does not open ({exc.strerror or exc})") from None


def _info(container, path: Path):
    """The first audio stream and its checked header as an AudioInfo, or None without one."""
    if not container.streams.audio:
        return None, None
    stream = container.streams.audio[0]
    rate = int(stream.codec_context.sample_rate or 0)
    channels = int(stream.codec_context.channels or 0)
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000
    else:
        duration = 0.0
    info = check_header(AudioInfo(path, rate, channels, int(round(duration * rate)), str(container.format.name)), "soundtrack ")
    if info.frames <= 0:
        raise FeatureError(f"{path}: soundtrack declares no duration; cannot place excerpt windows")
    return stream, info


def probe_soundtrack(path: str | Path):
    """Check a video file's audio stream without decoding it.

    :returns: its :class:`~edge.features.audio_info.AudioInfo` (``format`` is FFmpeg's container
        name), or None when the container has no audio stream.
    :raises FeatureError: missing, empty, not a container PyAV opens, a rate outside
        8..192 kHz, channels outside 1..8, no or an absurd declared duration; PyAV not installed.
    """
    path = Path(path)
    av, container = _open(path)
    with container:
        try:
            return _info(container, path)[1]
        except av.FFmpegError as exc:
            raise FeatureError(f"{path}: container does not decode ({exc.strerror or exc})") from None


def _pcm(frame, path: Path) -> np.ndarray:
    """One decoded audio frame as float32 ``(n, channels)``."""
    a = frame.to_ndarray()
    fmt = frame.format
    channels = len(frame.layout.channels)
    a = a.T if fmt.is_planar else a.reshape(-1, channels)
    base = fmt.name.rstrip("p")
    if base in _INT_SCALE:
        scale = _INT_SCALE[base]
        a = (a.astype(np.float32) - 128.0) / 128.0 if scale is None else (a * scale).astype(np.float32)
    elif a.dtype.kind == "f":
        a = a.astype(np.float32, copy=False)
    else:
        raise FeatureError(f"{path}: soundtrack sample format {fmt.name!r} is not supported")
    return a


def soundtrack_features(path: str | Path, spec: FeatureSpec | None = None) -> np.ndarray:
    """The audio vector of a video file's first audio stream (see :func:`optional_soundtrack`).

    :raises FeatureError: as :func:`optional_soundtrack`, and also when the file has no audio
        stream or its soundtrack is silent.
    """
    path = Path(path)
    vec = optional_soundtrack(path, spec)
    if vec is None:
        raise FeatureError(f"{path}: no soundtrack (no audio stream, or every frame below the silence threshold)")
    return vec


def optional_soundtrack(path: str | Path, spec: FeatureSpec | None = None) -> np.ndarray | None:
    """The audio vector of a video file's first audio stream, from the spec's excerpt windows.

    :returns: float32 ``(spec.audio_dim,)``, as :func:`~edge.features.audio.audio_features`
        gives for an audio file with the same PCM; None when the container has no audio stream
        or only silence (a video without a soundtrack is still a video).
    :raises FeatureError: naming the file: not decodable, truncated well before its declared
        end, the header limits of :func:`probe_soundtrack`, and the failures of
        :class:`AudioStream` other than silence (NaN, too short); PyAV not installed.
    """
    spec = spec or FeatureSpec()
    path = Path(path)
    av, container = _open(path)
    with container:
        try:
            stream, info = _info(container, path)
            if stream is None:
                return None
            out = AudioStream(info.rate_hz, info.channels, spec, name=str(path))
            start_s = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
            for first, length in excerpt_ranges(info.frames, info.rate_hz, spec):
                _decode_range(container, stream, info, start_s, first, length, out)
                out.end_segment()
        except av.FFmpegError as exc:
            raise FeatureError(f"{path}: soundtrack does not decode ({exc.strerror or exc})") from None
    if out.silent:
        return None
    return out.vector()


def _decode_range(container, stream, info, start_s: float, first: int, length: int, out: AudioStream) -> None:
    """Push samples ``[first, first + length)`` of the stream, seeking to the range's start."""
    rate = info.rate_hz
    if first > 0:
        container.seek(int((start_s + first / rate) / stream.time_base), stream=stream, backward=True, any_frame=False)
    position: int | None = None  # sample index of the next decoded sample
    wanted = length
    skipped = 0  # samples decoded before the range: bounded, so a broken index cannot decode a whole film
    limit = int(_MAX_SEEK_OVERSHOOT_S * rate)
    for frame in container.decode(stream):
        if frame.sample_rate != rate:
            raise FeatureError(f"{info.path}: soundtrack changes sample rate mid-stream ({rate} -> {frame.sample_rate} Hz)")
        pcm = _pcm(frame, info.path)
        if frame.time is not None:
            position = int(round((frame.time - start_s) * rate))
        elif position is None:
            position = first  # no timestamps: trust the seek
        lead = first - position  # samples of this frame before the range
        position += pcm.shape[0]
        if lead >= pcm.shape[0]:
            skipped += pcm.shape[0]
            if skipped > limit:
                raise FeatureError(f"{info.path}: could not reach t={first / rate:.2f} s after seeking; the index is broken")
            continue
        take = pcm[max(lead, 0):][:wanted]
        out.push(take)
        wanted -= take.shape[0]
        if wanted <= 0:
            return
    if wanted > _END_SLACK_S * rate:
        raise FeatureError(
            f"{info.path}: truncated soundtrack: it declares {info.duration_s:.1f} s, decoding stopped "
            f"{wanted / rate:.1f} s short of the window ending at {(first + length) / rate:.1f} s"
        )
