"""Shared fixtures: a tiny real catalogue (WAV/FLAC audio, .npy frames) with planted tastes."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from export.data.contract import Interactions, Item, load_dataset, write_interactions, write_items

SHARED = Path(os.environ.get("EDGEREC_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "datasets"


def shared_data(*parts: str) -> Path:
    """A path under ``shared/datasets`` (set EDGEREC_SHARED to move it).

    Absent on a developer's machine: the test is skipped with the reason. Absent in CI, where
    shared/ always sits beside the clone: the test fails, so real-data checks cannot vanish.
    """
    path = SHARED.joinpath(*parts)
    if not path.exists():
        msg = f"{path} not found (real data is read from shared/, never copied into the repo)"
        if os.environ.get("CI"):
            pytest.fail(msg + "; CI expects shared/ beside the clone")
        pytest.skip(msg)
    return path


#: Availability bounds used by the tiny catalogue (a 2020 end, a 2030 start).
EXPIRED, NOT_YET = 1_600_000_000, 1_900_000_000


def make_tiny_catalogue(root: Path, n_items: int = 40, n_users: int = 80, seed: int = 0) -> tuple[Path, Path, Path]:
    """Write a small catalogue in the data contract; users prefer one of two item groups.

    Returns ``(interactions_csv, items_csv, media_root)``.
    """
    rng = np.random.default_rng(seed)
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(n_items):
        group = i % 2
        iid = f"i{i:03d}"
        if i % 4 < 2:  # audio item: low tone vs high tone by group
            rate = (16000, 22050)[i % 2]
            t = np.arange(int(rate * 2.0)) / rate
            x = 0.3 * np.sin(2 * np.pi * (220 if group == 0 else 1760) * t) + 0.01 * rng.standard_normal(t.size)
            path = media / f"{iid}.{'wav' if i % 3 else 'flac'}"
            sf.write(path, x.astype(np.float32), rate)
            items.append(Item(iid, f"Song {i} {'calm' if group == 0 else 'loud'}", ("calm",) if group == 0 else ("loud",), "audio", 2.0, path, None, "a song"))
        else:  # video item: dark vs bright frames by group
            base = 40 if group == 0 else 200
            frames = np.clip(base + rng.integers(-20, 20, size=(4, 18, 32, 3)), 0, 255).astype(np.uint8)
            path = media / f"{iid}.npy"
            np.save(path, frames)
            # Two series, one per group, episodes in catalogue order.
            items.append(Item(iid, f"Show {i} {'night' if group == 0 else 'day'}", ("night",) if group == 0 else ("day",), "video", 60.0, None, path,
                              "a show", series_id=("night-show", "day-show")[group], episode=i // 4 + 1))
    rows = []
    t0 = 1_700_000_000
    for u in range(n_users):
        group = u % 2
        liked = [j for j in range(n_items) if j % 2 == group]
        seq = rng.permutation(liked)[:8]
        for s, j in enumerate(seq):
            rows.append((f"u{u:02d}", f"i{j:03d}", t0 + u * 10_000 + s * 600, "complete" if s % 3 else "play", 0.9))
        off = (group + 1) % 2
        rows.append((f"u{u:02d}", f"i{off:03d}", t0 + u * 10_000 + 5 * 600 + 1, "skip", 0.05))
    # Filters: every 10th item is rated 18+, some are no longer (or not yet) available.
    items = [
        dataclasses.replace(it, age_rating=18 if i % 10 == 0 else (7 if i % 10 == 1 else None),
                            available_until=EXPIRED if i % 10 == 5 else None, available_from=NOT_YET if i % 10 == 9 else None)
        for i, it in enumerate(items)
    ]
    write_items(root / "items.csv", items, root)
    write_interactions(root / "interactions.csv", Interactions.from_rows(rows))
    return root / "interactions.csv", root / "items.csv", root


def tiny_build_config(**overrides):
    """A :class:`~export.config.BuildConfig` that trains for seconds, not minutes."""
    from export.config import BuildConfig, StudentConfig, TeacherConfig

    teacher = TeacherConfig(steps=200, batch_size=32, hidden=64, layers=1, text_hidden=32, text_layers=1, text_max_len=16,
                            text_items_per_step=16, threads=1)
    student = StudentConfig(fusion_steps=200, interest_steps=200, batch_size=64, fusion_hidden=64, interest_hidden=64, threads=1)
    cfg = BuildConfig(teacher=teacher, student=student, workers=1, cold_fraction=0.1, progress=False)
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    inter, items, media = make_tiny_catalogue(root)
    return load_dataset(inter, items, media)


#: The bundle the device-side tests use: built by tests/fixtures/build_device_bundle.py and
#: checked by tests/test_device_fixture.py to be what the current exporter writes.
FIXTURE_BUNDLE = Path(__file__).resolve().parent / "fixtures" / "device_bundle"


@dataclasses.dataclass(frozen=True)
class DeviceBundle:
    """A copy of the fixture bundle (``bundle``) with its ``.tar`` archive beside it."""

    bundle: Path


@pytest.fixture(scope="session")
def device_bundle(tmp_path_factory) -> DeviceBundle:
    """The committed fixture bundle, copied (tests may sign or damage their own copies) and
    packed as ``bundle.tar`` beside it. Needs no server side: the device-side suite runs on a
    base install and on emulated aarch64 with it."""
    from edge.bundle.archive import pack_archive

    dst = tmp_path_factory.mktemp("device") / "bundle"
    shutil.copytree(FIXTURE_BUNDLE, dst)
    pack_archive(dst)
    return DeviceBundle(dst)


@pytest.fixture(scope="session")
def tiny_build(tiny_dataset, tmp_path_factory):
    """A bundle built by the whole pipeline on the tiny catalogue (shared: it takes ~1 min).
    For tests of the server side; device-side tests use :func:`device_bundle`."""
    pytest.importorskip("torch", reason="building a bundle needs the server side: pip install 'edgerec[export]'")
    from export.pipeline import build

    root = tmp_path_factory.mktemp("bundle")
    return build(tiny_dataset, root / "bundle", root / "work", tiny_build_config())
