"""Frames from files: ``.npy`` frame strips, image files, folders of images, and video files.

Images and video are decoded with PyAV (the optional ``video`` extra, imported only here, only
when needed) and scaled down inside the decoder, so a 4K frame never exists at full size in
numpy. Video is sampled by seeking: never the whole file.
"""

from __future__ import annotations

from pathlib import Path
from tokenize import TokenError

import numpy as np

from edge.errors import FeatureError
from edge.features.frames import check_frames
from edge.features.spec import FeatureSpec

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
# Decoding forward is cheaper than a seek (which restarts at a keyframe) for targets this close.
_DECODE_FORWARD_S = 2.0
# Frames decoded after a seek before giving up on reaching a target (a broken index).
_MAX_DECODE_PER_TARGET = 2000
#: Largest picture (width x height, px) FFmpeg may decode. It allocates a whole frame before
#: reading any pixel data (while probing in av.open, and again in the decoder), so without this
#: a 300-byte PNG declaring 20000x12000 px costs ~750 MB and seconds before failing.
MAX_PICTURE_PX = 100_000_000
_AV_OPTIONS = {"max_pixels": str(MAX_PICTURE_PX)}


def _av(path: Path):
    try:
        import av
    except ImportError:
        raise FeatureError(f"{path}: decoding images and video needs PyAV: pip install 'edgerec[video]'") from None
    return av


def _decode_size(width: int, height: int, spec: FeatureSpec) -> tuple[int, int]:
    # Scale to a few pixels per output cell (see frames.downscale) but never up.
    w = min(width, spec.frame_width_px * 4)
    h = min(height, spec.frame_height_px * 4)
    return max(1, w), max(1, h)


def _to_rgb(frame, spec: FeatureSpec) -> np.ndarray:
    w, h = _decode_size(frame.width, frame.height, spec)
    return frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()


def _check_file(path: Path) -> None:
    if not path.exists():
        raise FeatureError(f"{path}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise FeatureError(f"{path}: file is empty (0 bytes)")


def read_image(path: str | Path, spec: FeatureSpec | None = None) -> np.ndarray:
    """Decode one image file, scaled down to a few times the spec's frame size.

    :returns: uint8 RGB array ``(1, h, w, 3)``.
    :raises FeatureError: missing, empty, or not a decodable image; PyAV not installed.
    """
    spec = spec or FeatureSpec()
    path = Path(path)
    _check_file(path)
    av = _av(path)
    try:
        with av.open(str(path), options=_AV_OPTIONS) as container:
            if not container.streams.video:
                raise FeatureError(f"{path}: image does not decode (no picture in the file)")
            container.streams.video[0].codec_context.options = dict(_AV_OPTIONS)  # the decoder opens with its own options
            for frame in container.decode(video=0):
                return _to_rgb(frame, spec)[None]
    except av.FFmpegError as exc:
        raise FeatureError(f"{path}: image does not decode ({exc.strerror or exc})") from None
    raise FeatureError(f"{path}: image does not decode (no frame in the file)")


def sample_times(duration_s: float, spec: FeatureSpec) -> np.ndarray:
    """Times (s) at which a video of ``duration_s`` is sampled: every ``frame_interval_s``
    inside the spec's excerpt windows (the whole clip, up to ``max_read_s``, when None), at
    most ``max_frames`` of them, evenly thinned."""
    step = spec.frame_interval_s
    if spec.excerpt_windows is None or sum(length for _, length in spec.excerpt_windows) >= duration_s:
        spans = [(0.0, min(duration_s, spec.max_read_s))]
    else:
        spans = [(min(pos * duration_s, duration_s - length), length) for pos, length in spec.excerpt_windows]
    times = np.unique(np.concatenate([start + np.arange(0.0, length, step) for start, length in spans]))
    # Nothing in the last half step: the final frame usually starts a little before the end.
    times = times[: max(1, int(np.count_nonzero(times <= duration_s - step / 2)))]
    if times.size > spec.max_frames:
        times = times[np.linspace(0, times.size - 1, spec.max_frames).round().astype(np.intp)]
    return times


def read_video(path: str | Path, spec: FeatureSpec | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sample frames of a video file at :func:`sample_times`, seeking between distant targets.

    :returns: ``(frames, times_s)``: uint8 RGB ``(n, h, w, 3)`` scaled down in the decoder, and
        the presentation time (s) of each.
    :raises FeatureError: missing, empty, no video stream, undecodable; PyAV not installed.
    """
    spec = spec or FeatureSpec()
    path = Path(path)
    _check_file(path)
    av = _av(path)
    frames, times = [], []
    try:
        with av.open(str(path), options=_AV_OPTIONS) as container:
            if not container.streams.video:
                raise FeatureError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.codec_context.options = dict(_AV_OPTIONS)
            base = float(stream.time_base) if stream.time_base else 1e-6
            if stream.duration:
                duration = stream.duration * base
            elif container.duration:
                duration = container.duration / 1_000_000
            else:
                duration = 0.0
            start = (stream.start_time or 0) * base
            decoder = None
            position = -1.0
            # Without a known duration (some live WebM/Matroska), sample from the start.
            targets = sample_times(duration, spec) if duration > 0 else np.arange(spec.max_frames) * spec.frame_interval_s
            for target in targets:
                if decoder is None or target < position or target - position > _DECODE_FORWARD_S:
                    container.seek(int((start + target) / base), stream=stream, backward=True, any_frame=False)
                    decoder = container.decode(stream)
                for _ in range(_MAX_DECODE_PER_TARGET):
                    frame = next(decoder, None)
                    if frame is None:
                        break
                    position = (frame.time or 0.0) - start
                    if position >= target - 1e-3:
                        frames.append(_to_rgb(frame, spec))
                        times.append(position)
                        break
                else:
                    raise FeatureError(f"{path}: could not reach t={target:.2f} s after seeking")
    except av.FFmpegError as exc:
        raise FeatureError(f"{path}: video does not decode ({exc.strerror or exc})") from None
    if not frames:
        raise FeatureError(f"{path}: no video frame could be decoded")
    return np.stack(frames), np.asarray(times)


def load_frames(path: str | Path, spec: FeatureSpec | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Frames of a media path, by kind: a ``.npy`` strip (uint8 ``(N, H, W, 3)``, memory-mapped),
    an image file, a folder of images (sorted by name), or a video file.

    :returns: ``(frames, times_s)``: uint8 ``(N, H, W, 3)``, and frame times (s) for video, else
        None.
    :raises FeatureError: naming the file: unreadable, wrong dtype or shape, not decodable.
    """
    spec = spec or FeatureSpec()
    path = Path(path)
    _check_file(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise FeatureError(f"{path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        pick = np.unique(np.linspace(0, len(images) - 1, min(len(images), spec.max_frames)).round().astype(np.intp))
        decoded = [read_image(images[i], spec)[0] for i in pick]
        shapes = {f.shape for f in decoded}
        if len(shapes) > 1:
            # Different sizes: bring all to the first one's (they are small already).
            h, w = decoded[0].shape[:2]
            decoded = [f[np.linspace(0, f.shape[0] - 1, h).astype(int)][:, np.linspace(0, f.shape[1] - 1, w).astype(int)] for f in decoded]
        return np.stack(decoded), None
    if suffix == ".npy":
        try:
            frames = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, OverflowError, SyntaxError, TokenError) as exc:
            # A damaged header: numpy's parser raises TokenError or SyntaxError, and mmap an
            # OverflowError for a declared size that does not fit.
            raise FeatureError(f"{path}: cannot read frames ({exc})") from None
        check_frames(frames, str(path))
        return frames, None
    if suffix in IMAGE_SUFFIXES:
        return read_image(path, spec), None
    return read_video(path, spec)
