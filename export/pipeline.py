"""The server job end to end: features -> two-tower training -> ONNX and TFLite -> parity -> bundle."""

from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edge.context import context_matrix
from edge.features import FeatureSpec
from edge.ranking import history_window
from export.bundle import popularity_priors, write_bundle
from export.convert import Parity, check_parity, export_onnx, export_tflite
from export.data.contract import Dataset
from export.data.split import LeaveLastOut, leave_last_out
from export.features import catalogue_features
from export.models import FusionModel
from export.train import TrainConfig, item_embeddings, train_two_tower

PARITY_TOLERANCE = 0.99
# The fixed-shape TFLite models run one row at a time, so their parity sample is smaller.
TFLITE_PARITY_ROWS = 64


@dataclass
class BuildResult:
    """What :func:`build_bundle` made, with the seconds each stage took."""

    bundle: Path
    split: LeaveLastOut
    features: np.ndarray
    parity: list[Parity]
    train_log: dict
    timings: dict[str, float] = field(default_factory=dict)


def dataset_hash(ds: Dataset) -> str:
    """sha256 over the catalogue ids and the interaction log, recorded in the manifest."""
    h = hashlib.sha256()
    h.update("\x1f".join(it.item_id for it in ds.items).encode())
    inter = ds.interactions
    for col in (inter.user_ids, inter.item_ids, inter.events):
        h.update("\x1f".join(map(str, col)).encode())
    h.update(inter.timestamps.tobytes())
    return h.hexdigest()


def build_bundle(
    ds: Dataset,
    out: str | Path,
    cfg: TrainConfig | None = None,
    spec: FeatureSpec | None = None,
    workers: int = 2,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> BuildResult:
    """Train on ``ds`` (held-out last items excluded) and write a verified bundle to ``out``.

    :raises ParityError: an exported model disagrees with PyTorch; no bundle is written.
    """
    cfg = cfg or TrainConfig()
    spec = spec or FeatureSpec()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    split = leave_last_out(ds)
    timings["split_s"] = time.perf_counter() - t

    t = time.perf_counter()
    feats = catalogue_features(ds.items, spec, workers=workers, cache_dir=cache_dir, progress=progress)
    timings["features_s"] = time.perf_counter() - t

    t = time.perf_counter()
    model, log = train_two_tower(split, feats, cfg, progress=progress)
    emb = item_embeddings(model, feats)
    timings["train_s"] = time.perf_counter() - t

    t = time.perf_counter()
    rng = np.random.default_rng(cfg.seed + 1)
    # Held-out inputs: each test user's whole training history at the time of the held-out
    # event; no training example saw these windows or contexts.
    pick = rng.choice(len(split.test_users), size=min(256, len(split.test_users)), replace=False)
    windows = [history_window(split.train_sequences[u], cfg.history_len) for u in split.test_users[pick]]
    idx = np.stack([w[0] for w in windows])
    mask = np.stack([w[1] for w in windows])
    interest_inputs = {
        "history": (emb[idx.clip(min=0)] * mask[..., None]).astype(np.float32),
        "mask": mask,
        "context": context_matrix(split.test_timestamps[pick]),
    }
    fusion_inputs = {"features": feats[rng.choice(len(feats), size=min(256, len(feats)), replace=False)]}
    fusion = FusionModel(model.items.content).eval()
    parity: list[Parity] = []
    with tempfile.TemporaryDirectory() as scratch:
        modules = {"interest": (model.interest, interest_inputs), "fusion": (fusion, fusion_inputs)}
        files: dict[str, dict[str, Path]] = {}
        for name, (module, inputs) in modules.items():
            # ONNX keeps a dynamic batch axis; TFLite is converted at batch 1 (fixed shapes).
            onnx_path = export_onnx(module, {k: torch.from_numpy(v[:2]) for k, v in inputs.items()}, Path(scratch) / f"{name}.onnx")
            tflite_path = export_tflite(module, {k: torch.from_numpy(v[:1]) for k, v in inputs.items()}, Path(scratch) / f"{name}.tflite")
            files[name] = {"onnx": onnx_path, "tflite": tflite_path}
            for backend, path, batch in (("onnx", onnx_path, None), ("tflite", tflite_path, 1)):
                p = check_parity(module, path, backend, {k: v[:TFLITE_PARITY_ROWS] if batch else v for k, v in inputs.items()}, name, batch)
                p.check(PARITY_TOLERANCE)
                parity.append(p)
        timings["export_s"] = time.perf_counter() - t

        t = time.perf_counter()
        rows = np.concatenate(split.train_sequences) if split.train_sequences else np.zeros(0, np.int64)
        stamps = np.concatenate(split.train_timestamps) if split.train_timestamps else np.zeros(0, np.int64)
        priors = popularity_priors(rows, stamps, len(ds.items))
        extra = {
            "model_card": {
                "model": "two-tower (attention-pooling interest tower, content+id item tower)",
                "parity": [p.__dict__ for p in parity],
                "parity_tolerance": PARITY_TOLERANCE,
                "train": {k: v for k, v in log.items() if k != "model"},
            },
            "train_config": cfg.to_dict(),
            "model_config": log["model"],
            "training_data": {"name": ds.name, "sha256": dataset_hash(ds), "n_items": len(ds.items), "n_interactions": len(ds.interactions)},
        }
        bundle = write_bundle(
            out,
            ds.items,
            emb,
            files,
            {name: list(inputs) for name, (_, inputs) in modules.items()},
            priors,
            spec,
            cfg.history_len,
            extra,
        )
    timings["bundle_s"] = time.perf_counter() - t
    return BuildResult(bundle, split, feats, parity, log, timings)
