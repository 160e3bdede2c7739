"""Tests for the synthetic demo generator (export/data/synthetic/).

Small catalogues (60 items, 30 users) keep these fast; one slow test runs the defaults.
"""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

# The generator is a server tool (its process pool pins threads with threadpoolctl).
pytest.importorskip("threadpoolctl", reason="the synthetic data generator needs the export extra: pip install 'edgerec[export]'")

from edge.errors import DataError
from export.data import synthetic as demo
from edge.contract.events import POSITIVE_KINDS
from export.data.contract import load_dataset
from export.data.synthetic import EPOCH_END_S, DemoData, generate_demo

N_ITEMS, N_USERS = 60, 30


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> DemoData:
    return generate_demo(tmp_path_factory.mktemp("seed0") / "demo", seed=0, n_items=N_ITEMS, n_users=N_USERS, workers=2)


@pytest.fixture(scope="module")
def small_again_inline(tmp_path_factory) -> DemoData:
    out = tmp_path_factory.mktemp("seed0b") / "demo"
    return generate_demo(out, seed=0, n_items=N_ITEMS, n_users=N_USERS, workers=1)


@pytest.fixture(scope="module")
def small_other_seed(tmp_path_factory) -> DemoData:
    return generate_demo(tmp_path_factory.mktemp("seed1") / "demo", seed=1, n_items=N_ITEMS, n_users=N_USERS, workers=2)


@pytest.fixture(scope="module")
def dataset(small):
    return load_dataset(small.interactions_csv, small.items_csv, small.media_root)


def _media_files(d: DemoData) -> dict[str, Path]:
    return {p.relative_to(d.root).as_posix(): p for p in sorted((d.root / "media").rglob("*")) if p.is_file()}


def _mono(path: Path) -> tuple[np.ndarray, int]:
    data, sr = sf.read(str(path), dtype="float64", always_2d=True)
    return data.mean(axis=1), sr


def _rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-12)


def _centroid_hz(x: np.ndarray, sr: int, top_hz: float = 4000.0) -> float:
    # Only up to 4 kHz, which every file's rate covers, so the sample rate does not bias it.
    spectrum = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    band = freqs < top_hz
    return float((spectrum[band] * freqs[band]).sum() / spectrum[band].sum())


def _by_genre(dataset, kind: str) -> dict[str, list]:
    out = collections.defaultdict(list)
    for item in dataset.items:
        if item.kind == kind:
            out[item.tags[0]].append(item)
    return out


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_gives_identical_csvs_and_media_whatever_the_worker_count(small, small_again_inline):
    assert small.items_csv.read_bytes() == small_again_inline.items_csv.read_bytes()
    assert small.interactions_csv.read_bytes() == small_again_inline.interactions_csv.read_bytes()
    a, b = _media_files(small), _media_files(small_again_inline)
    assert a.keys() == b.keys()
    for rel, path in a.items():
        if rel.endswith(".ogg"):
            # Vorbis may embed a random stream serial; the decoded samples must still match.
            assert np.array_equal(sf.read(str(path))[0], sf.read(str(b[rel]))[0]), rel
        else:
            assert path.read_bytes() == b[rel].read_bytes(), rel


def test_different_seed_gives_different_data(small, small_other_seed):
    assert small.items_csv.read_bytes() != small_other_seed.items_csv.read_bytes()
    assert small.interactions_csv.read_bytes() != small_other_seed.interactions_csv.read_bytes()
    def contents(d: DemoData, ext: str) -> set[bytes]:
        return {p.read_bytes() for rel, p in _media_files(d).items() if rel.endswith(ext)}

    for ext in (".npy", ".wav", ".flac"):
        a, b = contents(small, ext), contents(small_other_seed, ext)
        assert a and b and not (a & b), ext


# --- layout and the data contract ------------------------------------------------------------


def test_output_loads_with_the_data_contract_and_holds_both_kinds(small, dataset):
    kinds = collections.Counter(item.kind for item in dataset.items)
    assert len(dataset.items) == N_ITEMS
    assert set(kinds) == {"audio", "video"}
    assert 0.5 <= kinds["audio"] / N_ITEMS <= 0.6
    assert len(dataset.interactions) == small.n_events > 0
    meta = json.loads((small.root / "demo.json").read_text())
    assert meta["synthetic"] is True
    assert (meta["seed"], meta["n_items"], meta["n_users"], meta["n_events"]) == (0, N_ITEMS, N_USERS, small.n_events)
    assert set(meta["audio_genres"]) == set(demo.AUDIO_GENRES)
    assert set(meta["video_genres"]) == set(demo.VIDEO_GENRES)


def test_items_have_media_in_the_documented_layout_and_ids(dataset):
    root = dataset.media_root.resolve()
    for item in dataset.items:
        assert item.title and item.description
        assert item.tags[0] in demo.GENRES
        if item.kind == "audio":
            assert item.item_id[0] == "a" and item.frames is None
            assert item.audio.parent == root / "media" / "audio"
        else:
            assert item.item_id[0] == "v"
            assert item.audio.parent == root / "media" / "soundtracks"
            assert item.frames == root / "media" / "frames" / f"{item.item_id}.npy"
        assert item.audio.stem == item.item_id and item.item_id[1:].isdigit()
    every_genre = {(item.kind, item.tags[0]) for item in dataset.items}
    assert every_genre == {("audio", g) for g in demo.AUDIO_GENRES} | {("video", g) for g in demo.VIDEO_GENRES}


def test_audio_files_mix_formats_sample_rates_and_channels_within_5_to_30_s(dataset):
    formats, rates, channels = set(), set(), set()
    for item in dataset.items:
        info = sf.info(str(item.audio))
        formats.add((info.format, info.subtype))
        rates.add(info.samplerate)
        channels.add(info.channels)
        assert info.samplerate in demo.SAMPLE_RATES_HZ
        assert 5.0 <= info.duration <= 30.0
        assert item.duration_s == pytest.approx(info.duration, abs=1e-3)
    assert {("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")} <= formats
    assert len(rates) > 1
    assert channels == {1, 2}


def test_frames_are_uint8_rgb_strips(dataset):
    videos = [item for item in dataset.items if item.kind == "video"]
    assert videos
    for item in videos:
        frames = np.load(item.frames)
        assert frames.dtype == np.uint8
        assert frames.ndim == 4 and frames.shape[1:] == (72, 128, 3)
        assert 8 <= frames.shape[0] <= 16


# --- genres are measurably different ----------------------------------------------------------


def test_music_genres_differ_in_loudness_and_spectral_centroid(dataset):
    audio = _by_genre(dataset, "audio")
    loudness = {g: np.mean([_rms_db(_mono(it.audio)[0]) for it in items]) for g, items in audio.items()}
    centroid = {g: np.mean([_centroid_hz(*_mono(it.audio)) for it in items]) for g, items in audio.items()}
    assert loudness["rock"] > loudness["ambient"] + 8.0
    assert loudness["hiphop"] > loudness["classical"] + 5.0
    assert centroid["electronic"] > centroid["ambient"] * 1.3


def test_talk_has_silent_pauses_and_music_does_not(dataset):
    def silent_share(path: Path) -> float:
        x, sr = _mono(path)
        hop = sr // 20  # 50 ms windows
        windows = x[: len(x) // hop * hop].reshape(-1, hop)
        level = np.sqrt((windows**2).mean(axis=1))
        return float((level < 0.01 * level.max()).mean())

    audio = _by_genre(dataset, "audio")
    talk = [silent_share(it.audio) for g in ("talk", "news", "podcast") for it in audio[g]]
    music = [silent_share(it.audio) for g in ("rock", "electronic", "hiphop") for it in audio[g]]
    # A median, not a minimum: a 5 s podcast may be all intro music and one long phrase.
    assert np.median(talk) > 0.05
    assert max(music) < 0.01


def test_video_genres_differ_in_motion_and_brightness(dataset):
    video = _by_genre(dataset, "video")

    def motion(item) -> float:
        frames = np.load(item.frames).astype(np.int16)
        return float(np.abs(np.diff(frames, axis=0)).mean())

    def brightness(item) -> float:
        return float(np.load(item.frames).mean())

    assert np.mean([motion(v) for v in video["sports"]]) > 2.0 * np.mean([motion(v) for v in video["drama"]])
    assert np.mean([brightness(v) for v in video["drama"]]) < 0.6 * np.mean([brightness(v) for v in video["kids"]])
    assert np.mean([brightness(v) for v in video["drama"]]) < np.mean([brightness(v) for v in video["sports"]])


# --- simulated users ---------------------------------------------------------------------------


def test_every_user_has_at_least_five_positive_events(dataset):
    inter = dataset.interactions
    users = set(inter.user_ids)
    assert users == {f"u{i:04d}" for i in range(1, N_USERS + 1)}
    positive = np.isin(inter.events, list(POSITIVE_KINDS))
    per_user = collections.Counter(inter.user_ids[positive])
    assert min(per_user[u] for u in users) >= 5


def test_log_has_skips_likes_and_dislikes_with_watched_fractions(dataset):
    inter = dataset.interactions
    kinds = collections.Counter(inter.events)
    assert {"play", "complete", "skip", "like", "dislike"} <= set(kinds)
    assert kinds["dislike"] < kinds["skip"] < kinds["play"]
    watched = np.isin(inter.events, ["play", "complete", "skip"])
    assert np.all((inter.values[watched] > 0) & (inter.values[watched] <= 1))
    assert np.all(inter.values[inter.events == "skip"] < 0.25)
    assert np.all(inter.values[inter.events == "complete"] >= 0.9)
    assert np.all(np.isnan(inter.values[np.isin(inter.events, ["like", "dislike"])]))


def test_timestamps_increase_within_each_user_and_span_about_90_days(dataset):
    inter = dataset.interactions
    assert np.all(np.diff(inter.timestamps) >= 0)  # the file is one chronological log
    for user in np.unique(inter.user_ids):
        ts = inter.timestamps[inter.user_ids == user]
        assert np.all(np.diff(ts) > 0), user
    assert inter.timestamps.max() < EPOCH_END_S
    assert inter.timestamps.min() >= EPOCH_END_S - 91 * 86400
    assert inter.timestamps.max() - inter.timestamps.min() > 60 * 86400


@pytest.fixture(scope="module")
def many_users(tmp_path_factory):
    # Hour-of-day shares are noisy with 30 users; users are cheap, media are not.
    d = generate_demo(tmp_path_factory.mktemp("users") / "demo", seed=0, n_items=20, n_users=300, workers=1)
    return load_dataset(d.interactions_csv, d.items_csv, d.media_root)


def test_hour_of_day_depends_on_genre(many_users):
    inter = many_users.interactions
    genre = {item.item_id: item.tags[0] for item in many_users.items}
    genres = np.array([genre[i] for i in inter.item_ids])
    hours = (inter.timestamps % 86400) // 3600
    morning, afternoon, evening = (hours >= 6) & (hours < 10), (hours >= 14) & (hours < 18), hours >= 19
    assert morning[genres == "news"].mean() > 1.8 * morning.mean()
    assert afternoon[np.isin(genres, ["kids", "cartoons"])].mean() > 1.5 * afternoon.mean()
    assert evening[genres == "drama"].mean() > 1.2 * evening.mean()


def test_sessions_tend_to_stay_in_one_genre(dataset):
    inter = dataset.interactions
    genre = {item.item_id: item.tags[0] for item in dataset.items}
    picks = np.isin(inter.events, ["play", "complete", "skip"])
    same_session = same_genre = 0
    for user in np.unique(inter.user_ids):
        mask = picks & (inter.user_ids == user)
        ts, items = inter.timestamps[mask], inter.item_ids[mask]
        for k in range(1, len(ts)):
            if ts[k] - ts[k - 1] < 3600:
                same_session += 1
                same_genre += genre[items[k]] == genre[items[k - 1]]
    shares = np.array(list(collections.Counter(genre[i] for i in inter.item_ids[picks]).values()), dtype=float)
    chance = ((shares / shares.sum()) ** 2).sum()
    assert same_session > 100
    assert same_genre / same_session > 3 * chance


# --- re-runs, replacement and failure --------------------------------------------------------------


def test_rerun_with_same_arguments_returns_the_existing_demo_without_rewriting(small, monkeypatch):
    before = {p: p.stat().st_mtime_ns for p in [*_media_files(small).values(), small.items_csv, small.interactions_csv,
                                                small.root / "demo.json"]}

    def no_synthesis(*args, **kwargs):
        raise AssertionError("a cached demo must not be synthesised again")

    monkeypatch.setattr(demo, "_write_media", no_synthesis)
    monkeypatch.setattr(demo, "_simulate_users", no_synthesis)
    again = generate_demo(small.root, seed=0, n_items=N_ITEMS, n_users=N_USERS, workers=1)
    assert again == small
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_changed_arguments_replace_an_existing_demo(tmp_path):
    out = tmp_path / "demo"
    first = generate_demo(out, seed=3, n_items=20, n_users=5, workers=1)
    second = generate_demo(out, seed=3, n_items=20, n_users=7, workers=1)
    assert (first.n_users, second.n_users) == (5, 7)
    reloaded = load_dataset(second.interactions_csv, second.items_csv, second.media_root)
    assert len(set(reloaded.interactions.user_ids)) == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # no staging or old folders left


def test_refuses_to_overwrite_a_folder_that_is_not_a_demo(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not a demo folder"):
        generate_demo(out, n_items=20, n_users=5, workers=1)
    assert (out / "notes.txt").read_text() == "keep me"


def test_a_crash_leaves_no_demo_and_no_partial_folder(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(demo, "_simulate_users", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate_demo(tmp_path / "demo", n_items=20, n_users=5, workers=1)
    assert list(tmp_path.iterdir()) == []


def test_progress_reports_every_media_item(tmp_path):
    calls = []
    generate_demo(tmp_path / "demo", seed=2, n_items=24, n_users=5, workers=2,
                  progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k, 24) for k in range(1, 25)]


@pytest.mark.parametrize(
    "kwargs",
    [dict(seed=-1), dict(n_items=10), dict(n_users=0), dict(workers=0)],
)
def test_bad_arguments_are_rejected_before_writing(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate_demo(tmp_path / "demo", **{"n_items": 20, "n_users": 5, **kwargs})
    assert not (tmp_path / "demo").exists()


# --- the defaults -------------------------------------------------------------------------------


@pytest.mark.slow
def test_default_demo_has_1500_items_and_500_users(tmp_path):
    d = generate_demo(tmp_path / "demo", workers=min(2, os.cpu_count() or 1))
    ds = load_dataset(d.interactions_csv, d.items_csv, d.media_root)
    kinds = collections.Counter(item.kind for item in ds.items)
    assert len(ds.items) == 1500 and 0.5 <= kinds["audio"] / 1500 <= 0.6
    assert len(set(ds.interactions.user_ids)) == 500
    assert 20_000 <= len(ds.interactions) <= 40_000
