"""Frame features: statistics that track what they name, any frame size, images, video by seeking."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge.errors import FeatureError
from edge.features import FeatureSpec, frame_features, frame_features_from_file, load_frames, read_video
from edge.features.frame_files import sample_times
from tests.conftest import shared_data

SPEC = FeatureSpec()
NAMES = SPEC.frames_names


def _at(vec: np.ndarray, name: str) -> float:
    return float(vec[NAMES.index(name)])


PALETTE = [(200, 40, 30), (30, 160, 60), (40, 60, 210), (230, 220, 200), (20, 20, 30), (200, 180, 20)]


def _scene(seed: int, n: int = 6, h: int = 90, w: int = 160) -> np.ndarray:
    """``n`` copies of one shot: a dominant colour with block texture."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(-40, 40, size=(1, h // 10, w // 10, 1)).repeat(10, axis=1).repeat(10, axis=2)
    base = np.clip(np.array(PALETTE[seed % len(PALETTE)]) + texture, 0, 255)
    return np.repeat(base, n, axis=0).astype(np.uint8)


def test_vector_shape_and_layout():
    v = frame_features(_scene(0))
    assert v.shape == (SPEC.frames_dim,) == (len(NAMES),) and v.dtype == np.float32 and np.isfinite(v).all()
    hue = v[: SPEC.hue_bins]
    assert hue.sum() == pytest.approx(1.0, abs=1e-5)


def test_brightness_contrast_and_colourfulness():
    dark = np.full((4, 40, 60, 3), 30, np.uint8)
    grey = np.full((4, 40, 60, 3), 200, np.uint8)
    red = np.zeros((4, 40, 60, 3), np.uint8)
    red[..., 0] = 230
    a, b, c = frame_features(dark), frame_features(grey), frame_features(red)
    assert _at(a, "brightness_mean") < 0.2 < 0.7 < _at(b, "brightness_mean")
    assert _at(a, "contrast") == pytest.approx(0.0, abs=1e-6)
    assert _at(c, "colourfulness") > 0.25 > 0.01 > _at(b, "colourfulness")
    assert _at(c, "hue_hist[0]") == pytest.approx(1.0)  # red hue, fully saturated
    assert _at(c, "r_mean") == pytest.approx(230 / 255, abs=1e-3)


def test_edges_and_texture_separate_flat_from_checkerboard():
    flat = np.full((2, 72, 128, 3), 128, np.uint8)
    yy, xx = np.mgrid[:72, :128]
    check = ((((yy // 4) + (xx // 4)) % 2) * 255).astype(np.uint8)
    board = np.repeat(np.stack([check] * 3, axis=-1)[None], 2, axis=0)
    a, b = frame_features(flat), frame_features(board)
    assert _at(a, "edge_density") == 0.0 and _at(a, "texture") == pytest.approx(0.0, abs=1e-6)
    assert _at(b, "edge_density") > 0.3 and _at(b, "texture") > 0.1


def test_motion_energy_and_scene_cuts():
    still = _scene(1)
    moving = np.stack([np.roll(_scene(1, n=1)[0], 8 * i, axis=1) for i in range(6)])
    cuts = np.concatenate([_scene(s, n=2) for s in range(3)])  # cut every second frame
    a, b, c = frame_features(still), frame_features(moving), frame_features(cuts)
    assert _at(a, "motion_energy") == 0.0 and _at(a, "scene_cut_rate") == 0.0
    assert _at(b, "motion_energy") > 0.05 and _at(b, "scene_cut_rate") == 0.0
    assert _at(c, "scene_cut_rate") == pytest.approx(2 / 5)


def test_pairs_across_a_time_gap_are_not_compared():
    frames = np.concatenate([_scene(1, n=3), _scene(2, n=3)])
    times = np.array([0.0, 0.5, 1.0, 60.0, 60.5, 61.0])
    assert _at(frame_features(frames), "scene_cut_rate") > 0
    assert _at(frame_features(frames, times_s=times), "scene_cut_rate") == 0.0


def test_frame_size_barely_matters_after_downscaling():
    small = _scene(3, n=4, h=90, w=160)
    big = small.repeat(12, axis=1).repeat(12, axis=2)  # 1080x1920, same picture
    a, b = frame_features(small), frame_features(big)
    keep = [i for i, n in enumerate(NAMES) if n != "edge_density" and not n.endswith("_skew")]  # both sampling-sensitive
    np.testing.assert_allclose(a[keep], b[keep], atol=0.05)
    tiny = frame_features(np.full((1, 1, 1, 3), 90, np.uint8))  # one pixel, one frame
    assert np.isfinite(tiny).all() and _at(tiny, "motion_energy") == 0.0


def test_only_max_frames_are_used():
    frames = np.concatenate([_scene(5, n=SPEC.max_frames), _scene(5, n=100)])
    spec = dataclasses.replace(SPEC, max_frames=4)
    assert frame_features(frames, spec).shape == (spec.frames_dim,)


@pytest.mark.parametrize(
    "bad, words",
    [
        (np.zeros((4, 8, 8, 3), np.float32), "must be a uint8"),
        (np.zeros((8, 8, 3), np.uint8), "one frame of shape"),
        (np.zeros((2, 8, 8, 4), np.uint8), r"shape \(N, H, W, 3\)"),
        (np.zeros((0, 8, 8, 3), np.uint8), r"shape \(N, H, W, 3\)"),
        ([[1, 2, 3]], "must be a uint8"),
    ],
)
def test_frames_of_wrong_dtype_or_shape(bad, words):
    with pytest.raises(FeatureError, match=f"cam: .*{words}"):
        frame_features(bad, name="cam")


# -- files ------------------------------------------------------------------------------------


def _write_image(path, rgb: np.ndarray) -> None:
    av = pytest.importorskip("av")
    codec = {".png": "png", ".jpg": "mjpeg"}[path.suffix]
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height = rgb.shape[1], rgb.shape[0]
    ctx.pix_fmt = "rgb24" if codec == "png" else "yuvj444p"
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=ctx.pix_fmt)
    path.write_bytes(b"".join(bytes(p) for p in ctx.encode(frame) + ctx.encode(None)))


def test_npy_strip_image_and_image_folder(tmp_path):
    frames = _scene(7, n=3)
    np.save(tmp_path / "strip.npy", frames)
    folder = tmp_path / "shots"
    folder.mkdir()
    for i, f in enumerate(frames):
        _write_image(folder / f"{i:02d}.png", f)
    _write_image(tmp_path / "one.jpg", frames[0])
    strip = frame_features_from_file(tmp_path / "strip.npy")
    np.testing.assert_allclose(frame_features_from_file(folder), strip, atol=0.02)  # PNG is lossless
    one = frame_features_from_file(tmp_path / "one.jpg")
    np.testing.assert_allclose(one[: SPEC.hue_bins], frame_features(frames[:1])[: SPEC.hue_bins], atol=0.1)
    arr, times = load_frames(tmp_path / "strip.npy")
    assert isinstance(arr, np.memmap) and times is None


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "file is empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image does not decode"),
        (b"hello, not a picture at all" * 10, "image does not decode"),
    ],
)
def test_images_that_do_not_decode(tmp_path, content, words):
    pytest.importorskip("av")
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(FeatureError, match=f"broken.png: {words}"):
        frame_features_from_file(path)


def test_bad_frame_files(tmp_path):
    np.save(tmp_path / "f.npy", np.zeros((2, 4, 4, 3), np.float64))
    with pytest.raises(FeatureError, match="f.npy: frames must be a uint8"):
        frame_features_from_file(tmp_path / "f.npy")
    (tmp_path / "g.npy").write_bytes(b"not numpy")
    with pytest.raises(FeatureError, match="g.npy: cannot read frames"):
        frame_features_from_file(tmp_path / "g.npy")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(FeatureError, match="empty_dir: folder holds no images"):
        frame_features_from_file(tmp_path / "empty_dir")
    with pytest.raises(FeatureError, match="missing.mp4: no such file"):
        frame_features_from_file(tmp_path / "missing.mp4")
    pytest.importorskip("av")
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    with pytest.raises(FeatureError, match="clip.mp4: (video does not decode|no video)"):
        frame_features_from_file(tmp_path / "clip.mp4")


def test_sample_times_follow_the_excerpt_windows():
    assert list(sample_times(5.0, SPEC)) == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]  # short: whole clip
    long = sample_times(7200.0, SPEC)
    assert len(long) == SPEC.max_frames and long[0] == 0.0 and long[8] == 3600.0
    full = sample_times(7200.0, dataclasses.replace(SPEC, excerpt_windows=None, max_read_s=600.0))
    assert len(full) == SPEC.max_frames and full[-1] < 600.0


@pytest.mark.parametrize("name", ["flower.mp4", "flower.webm"])
def test_video_sampled_by_seeking(name):
    pytest.importorskip("av")
    path = shared_data("video", name)
    frames, times = read_video(path)
    assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[1:3] == (SPEC.frame_height_px * 4, SPEC.frame_width_px * 4)
    np.testing.assert_allclose(times, np.arange(10) * 0.5, atol=0.05)
    v = frame_features_from_file(path)
    assert v.shape == (SPEC.frames_dim,) and np.isfinite(v).all()
    assert 0 < _at(v, "motion_energy") < 0.2 and _at(v, "scene_cut_rate") == 0.0  # one continuous shot


def test_mp4_and_webm_of_the_same_clip_agree():
    pytest.importorskip("av")
    a = frame_features_from_file(shared_data("video", "flower.mp4"))
    b = frame_features_from_file(shared_data("video", "flower.webm"))
    np.testing.assert_allclose(a, b, atol=0.01)


def test_long_video_decodes_only_near_the_sample_times(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "long.mp4"
    rate, seconds = 10, 120
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.gop_size = 20
        for i in range(rate * seconds):
            img = np.full((48, 64, 3), (i * 2) % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    decoded = []
    real_decode = av.container.InputContainer.decode

    def counting_decode(self, *args, **kwargs):
        for frame in real_decode(self, *args, **kwargs):
            decoded.append(frame)
            yield frame

    av.container.InputContainer.decode = counting_decode
    try:
        frames, times = read_video(path)
    finally:
        av.container.InputContainer.decode = real_decode
    assert len(frames) == SPEC.max_frames
    assert times[8] == pytest.approx(60.0, abs=0.15)
    assert len(decoded) < rate * seconds / 4  # two 4 s windows plus keyframe lead-in, not 120 s
