"""The server job: teachers -> students -> int8 ONNX/TFLite -> parity and quality -> bundle.

Every stage reads and writes a work folder, so each can run alone (``edgerec pipeline train``,
``distill``, ``quantize``, ``bundle``) and :func:`build` runs them in order::

    work/
      features.npy            device feature vectors (edge.features), catalogue order
      teacher_features.npy    the same plus full-clip audio statistics (server only)
      teacher.pt              both teachers: config + state dict (export.checkpoints)
      teacher_items.npy       the teacher's item vectors: the catalogue's embeddings
      students.pt             fusion and interest students: config + state dicts
      models/                 {fusion,interest}.{onnx,tflite} fp32 and .int8 variants
      report.json             parity, quality, sizes and timings so far (the model card)
      per_user_ndcg.npz       each test user's NDCG@10 per model (for statistics over seeds)

The settings are :class:`export.config.BuildConfig`; the stages call :mod:`export.train`,
:mod:`export.distill`, :mod:`export.convert`/:mod:`export.quantize`, :mod:`export.evaluate` and
:mod:`export.bundle` in turn.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from edge.atomic import atomic_file, atomic_write
from edge.backends import load_model
from edge.context import context_matrix
from edge.contract.content import measured_content
from edge.contract.inputs import INTEREST_INPUTS, FUSION_INPUTS, interest_feed
from edge.contract.int8 import dequantize_rows, quantize_rows
from edge.errors import DataError
from edge.bundle.archive import pack_archive
from export import distributed
from export.bundle import (
    popularity_priors,
    write_bundle,
)
from export.checkpoints import load_students, load_teacher, save_students, save_teacher
from export.config import BuildConfig
from export.console import native_info_hidden
from export.convert import ConversionError, Parity, ParityError, check_parity, export_onnx, export_tflite
from export.data.contract import Dataset
from export.data.split import PROTOCOL, LeaveLastOut, leave_last_out
from export.distill import distill_fusion, distill_interest
from export.evaluate import EvalReport, evaluate
from export.evaluate.stats import paired_bootstrap
from export.evaluate.tuning import baseline_grids, tune_on_validation
from export.evaluate.cold import cold_item_probe
from export.evaluate.scorers import TeacherScorer, WindowScorer, device_user_fn, torch_user_fn
from export.features import catalogue_features, full_clip_audio
from export.models.text_encoder import TextEncoder
from export.quantize import export_text_teacher, quantize_onnx, quantize_tflite
from export.sequences import student_examples, user_events
from export.train import teacher_user_vectors, train_teacher

PARITY_TOLERANCE = 0.99


class StageOrderError(DataError):
    """A stage ran before the stage whose output it needs (its message names that stage)."""
# Fixed-shape TFLite models run one row at a time, so their parity sample is smaller.
TFLITE_PARITY_ROWS = 64
PARITY_ROWS = 256


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_file(path, "wb") as fh:
        np.save(fh, array)


@dataclass
class BuildResult:
    """What :func:`build` made."""

    bundle: Path
    work: Path
    report: dict
    split: LeaveLastOut
    timings: dict[str, float] = field(default_factory=dict)


def dataset_hash(ds: Dataset) -> str:
    """sha256 over the catalogue ids and the interaction log (its vocabularies and code
    columns, so hashing 20M events touches no per-row object), recorded in the manifest."""
    h = hashlib.sha256()
    h.update("\x1f".join(it.item_id for it in ds.items).encode())
    inter = ds.interactions
    for vocab in (inter.user_vocab, inter.item_vocab):
        h.update("\x1f".join(map(str, vocab)).encode())
        h.update(b"\x1e")
    for col in (inter.user_codes, inter.item_codes, inter.kinds, inter.timestamps):
        h.update(np.ascontiguousarray(col).tobytes())
    return h.hexdigest()


class Work:
    """The work folder shared by the stages, with its running report."""

    def __init__(self, folder: str | Path, ds: Dataset, cfg: BuildConfig) -> None:
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ds, self.cfg = ds, cfg
        self.split: LeaveLastOut = leave_last_out(ds)
        self.report_path = self.dir / "report.json"
        self.report: dict[str, Any] = json.loads(self.report_path.read_text()) if self.report_path.exists() else {}
        digest = dataset_hash(ds)
        if self.report.get("training_data", {}).get("sha256") not in (None, digest):
            # A work folder belongs to one dataset: stale teachers must not be mixed in.
            raise ValueError(f"{self.dir} was built from other data; use a new work folder")
        self.report["build_config"] = cfg.to_dict()
        self.report["training_data"] = {"name": ds.name, "sha256": digest, "n_items": len(ds.items), "n_interactions": len(ds.interactions)}

    def path(self, name: str) -> Path:
        return self.dir / name

    def save(self) -> None:
        """Write the running report (atomically: a crash leaves the previous one); only rank 0
        of a distributed build writes."""
        if distributed.current().is_main:
            atomic_write(self.report_path, json.dumps(self.report, indent=2, default=float))

    def features(self) -> np.ndarray:
        path = self.path("features.npy")
        if not path.exists():
            feats = catalogue_features(self.ds.items, self.cfg.spec, workers=self.cfg.workers, cache_dir=self.dir / "cache", progress=self.cfg.progress)
            _save_npy(path, feats)
        return np.load(path)

    def teacher_features(self) -> np.ndarray:
        """The fusion teacher's content input: the device features plus full-clip audio
        statistics, which only the server can afford."""
        path = self.path("teacher_features.npy")
        if not path.exists():
            extra = full_clip_audio(self.ds.items, self.cfg.spec, workers=self.cfg.workers, cache_dir=self.dir / "cache", progress=self.cfg.progress)
            _save_npy(path, np.concatenate([self.features(), extra], axis=1))
        return np.load(path)

    def need(self, name: str, stage: str) -> Path:
        p = self.path(name)
        if not p.exists():
            raise StageOrderError(f"{p} is missing: run the '{stage}' stage first (edgerec pipeline {stage} --work {self.dir})")
        return p


def _metrics(row: dict) -> dict:
    return {k: row[k] for k in ("hr@10", "ndcg@10", "mrr", "coverage@10") if k in row}


def stage_train(w: Work) -> None:
    """Train both teachers, evaluate the teacher, export its text encoder with optimum."""
    cfg = w.cfg
    events = user_events(w.split)
    model, log = train_teacher(events, w.ds.items, w.teacher_features(), cfg.teacher, progress=cfg.progress)
    if not distributed.current().is_main:
        return  # rank 0 saves, evaluates and exports the teacher
    table = model.item_table().numpy()
    save_teacher(model, w.path("teacher.pt"))
    _save_npy(w.path("teacher_items.npy"), table)
    report = evaluate([TeacherScorer(model, table, events)], w.split)
    w.report["teacher"] = {"log": log, "quality": _metrics(report.rows[0]), "params": sum(p.numel() for p in model.parameters())}
    if cfg.export_teacher and not isinstance(model.fusion.text, TextEncoder):
        # WordLlama's vectors are frozen numpy rows: there is no transformer for optimum.
        w.report["teacher"]["text_onnx"] = {"skipped": f"{model.fusion.text.pretrained}: frozen vectors, no transformer to export"}
    elif cfg.export_teacher:
        hf = w.path("teacher_text")
        model.fusion.text.save(hf)
        try:
            files = export_text_teacher(hf, w.path("teacher_text_onnx"))
            w.report["teacher"]["text_onnx"] = {k: {"file": str(v.relative_to(w.dir)), "bytes": v.stat().st_size} for k, v in files.items()}
        except ConversionError as exc:
            w.report["teacher"]["text_onnx"] = {"error": str(exc).splitlines()[0]}
    w.save()


def _device_table(table: np.ndarray) -> np.ndarray:
    """The catalogue as the device will hold it: int8 rows with a float scale."""
    return dequantize_rows(*quantize_rows(table))


def stage_distill(w: Work) -> None:
    """Distil the fusion and interest students from the saved teacher."""
    cfg = w.cfg
    model = load_teacher(w.need("teacher.pt", "train"))
    table = np.load(w.need("teacher_items.npy", "train"))
    events = user_events(w.split)
    ex = student_examples(events, cfg.student.history_len)
    t_users = teacher_user_vectors(model, torch.from_numpy(table), events, ex.users, ex.ends, ex.context)
    feats = w.features()
    fusion, flog = distill_fusion(feats, table, np.arange(len(table)), cfg.student, cfg.progress, t_users, ex.target,
                                  text_from=cfg.spec.item_dim - cfg.spec.text_dim)
    dev = _device_table(table)
    interest, ilog = distill_interest(ex, dev, t_users, cfg.student, cfg.progress)
    if not distributed.current().is_main:
        return
    save_students(fusion, interest, cfg.student, w.path("students.pt"))
    w.report["students"] = {"fusion": flog, "interest": ilog}
    w.save()


def _parity_inputs(w: Work, table: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Held-out inputs: test users' histories and the request contexts of their held-out
    events, which no training example contained; catalogue features for the fusion student."""
    L = w.cfg.student.history_len
    rng = np.random.default_rng(w.cfg.student.seed + 1)
    split = w.split
    pick = rng.choice(len(split.test_users), size=min(PARITY_ROWS, len(split.test_users)), replace=False)
    feats = w.features()
    return {
        "interest": interest_feed(table, [split.train_sequences[u] for u in split.test_users[pick]],
                                  context_matrix(split.test_timestamps[pick]), L),
        "fusion": {"features": feats[rng.choice(len(feats), size=min(PARITY_ROWS, len(feats)), replace=False)]},
    }


def stage_quantize(w: Work) -> None:
    """Export both students to ONNX and TFLite, fp32 and int8; check each file's parity with
    PyTorch through the device backends; score every variant on the held-out split."""
    students = load_students(w.need("students.pt", "distill"))
    table = np.load(w.need("teacher_items.npy", "train"))
    dev = _device_table(table)
    inputs = _parity_inputs(w, dev)
    models_dir = w.path("models")
    shutil.rmtree(models_dir, ignore_errors=True)
    parity: list[Parity] = []
    files: dict[str, dict[str, dict[str, Path]]] = {}
    for name in ("interest", "fusion"):
        module = students[name].eval()
        inp = inputs[name]
        onnx32 = export_onnx(module, {k: torch.from_numpy(v[:2]) for k, v in inp.items()}, models_dir / f"{name}.fp32.onnx")
        tfl32 = export_tflite(module, {k: torch.from_numpy(v[:1]) for k, v in inp.items()}, models_dir / f"{name}.fp32.tflite")
        onnx8 = quantize_onnx(onnx32, models_dir / f"{name}.int8.onnx")
        tfl8 = quantize_tflite(tfl32, models_dir / f"{name}.int8.tflite")
        files[name] = {"fp32": {"onnx": onnx32, "tflite": tfl32}, "int8": {"onnx": onnx8, "tflite": tfl8}}
        for precision, by_backend in files[name].items():
            for backend, path in by_backend.items():
                batch = 1 if backend == "tflite" else None
                sample = {k: v[:TFLITE_PARITY_ROWS] for k, v in inp.items()} if batch else inp
                p = check_parity(module, path, backend, sample, f"{name} {precision}", batch)
                parity.append(p)
    w.report["parity"] = {"tolerance": PARITY_TOLERANCE, "checks": [p.__dict__ for p in parity]}
    w.report["sizes"] = {f"{n}.{prec}.{b}": p.stat().st_size for n, d in files.items() for prec, bb in d.items() for b, p in bb.items()}
    w.save()
    for p in parity:
        p.check(PARITY_TOLERANCE)  # raises ParityError: nothing below bundles a failing model

    L = w.cfg.student.history_len
    names = list(inputs["interest"])
    scorers = [WindowScorer("student fp32 (PyTorch)", torch_user_fn(students["interest"]), dev, L)]
    for precision in ("int8",):
        for backend in ("onnx", "tflite"):
            with native_info_hidden():  # LiteRT announces its XNNPACK delegate on stderr
                m = load_model({backend: files["interest"][precision][backend]}, [backend], input_names=names)
            scorers.append(WindowScorer(f"student {precision} ({backend})", device_user_fn(m), dev, L, None if backend == "onnx" else 1))
    # Peers: each family's setting chosen on the validation target, then the test scored once.
    valid = leave_last_out(w.ds, "validation")
    grids = baseline_grids(w.split.n_items, seed=w.cfg.teacher.seed, sasrec_steps=w.cfg.sasrec_steps, threads=w.cfg.workers)
    peers, tuning = tune_on_validation(grids, valid) if len(valid.test_users) else ([g[0] for g in grids.values()], [])
    report = evaluate(scorers + peers, w.split)
    peer_names = [r["model"] for r in report.rows[len(scorers):]]
    quality: dict[str, Any] = {"protocol": PROTOCOL, "n_test_users": len(w.split.test_users), "rows": [
        {"model": r["model"], **_metrics(r)} for r in report.rows], "tuning": tuning}
    student = "student int8 (onnx)"
    if peer_names and student in report.per_user:
        best = max(peer_names, key=lambda n: next(r["ndcg@10"] for r in report.rows if r["model"] == n))
        quality["comparison"] = {"model": student, "best_peer": best, "metric": "ndcg@10",
                                 **paired_bootstrap(report.per_user[student], report.per_user[best], seed=w.cfg.teacher.seed)}
    w.report["quality"] = quality
    # Each test user's NDCG@10 per model (split.test_users order), for statistics over seeds.
    with atomic_file(w.path("per_user_ndcg.npz"), "wb") as fh:
        np.savez(fh, **{name: v for name, v in report.per_user.items()})
    w.save()


def stage_bundle(w: Work, out: str | Path) -> Path:
    """Write the verified bundle folder from the int8 students and the teacher's catalogue, and
    the same bundle as one archive, ``<out>.tar``, for shipping to devices."""
    if "quality" not in w.report:
        raise StageOrderError(f"{w.report_path} has no quality section: run the 'quantize' stage first (edgerec pipeline quantize --work {w.dir})")
    table = np.load(w.need("teacher_items.npy", "train"))
    models = {name: {b: w.need(f"models/{name}.int8.{ext}", "quantize") for b, ext in (("onnx", "onnx"), ("tflite", "tflite"))}
              for name in ("interest", "fusion")}
    inputs = {"interest": list(INTEREST_INPUTS), "fusion": list(FUSION_INPUTS)}
    split = w.split
    rows = np.concatenate(split.train_sequences) if split.train_sequences else np.zeros(0, np.int64)
    stamps = np.concatenate(split.train_timestamps) if split.train_timestamps else np.zeros(0, np.int64)
    priors = popularity_priors(rows, stamps, len(w.ds.items), [it.kind for it in w.ds.items])
    card = {k: w.report[k] for k in ("teacher", "students", "parity", "quality", "sizes", "cold_items") if k in w.report}
    card["students_bytes"] = sum(p.stat().st_size for d in models.values() for p in d.values())
    extra = {
        "model_card": card,
        "build_config": w.cfg.to_dict(),
        "training_data": w.report["training_data"],
        "precision": "int8",
    }
    folder = write_bundle(out, w.ds.items, table, models, inputs, priors, w.cfg.spec, w.cfg.student.history_len, extra,
                          version=w.cfg.bundle_version, valid_days=w.cfg.valid_days,
                          content=measured_content(w.features(), w.cfg.spec))
    pack_archive(folder)
    return folder


def stage_cold(w: Work) -> None:
    """Cold items: hold out a random ``cold_fraction`` of items from a second, independent
    teacher + fusion student; rank those items for their users from content alone and compare
    with a content-only baseline (cosine of raw features)."""
    w.report["cold_items"] = cold_item_probe(w.split, w.ds.items, w.features(), w.teacher_features(), w.cfg)
    w.save()


#: Stages every rank of a distributed build runs (the training ones); the rest run on rank 0.
_EVERY_RANK = ("features", "train", "distill")


def build(ds: Dataset, out: str | Path, work: str | Path, cfg: BuildConfig | None = None,
          say: Callable[[str], None] | None = None) -> BuildResult:
    """Run every stage in order and write the bundle to ``out``.

    In a process group (:mod:`export.distributed`) every rank trains the teachers and students
    on its shard of users with DistributedDataParallel; rank 0 alone evaluates, quantises and
    writes the bundle, and only its result names it.

    :raises ParityError: an exported model disagrees with PyTorch; no bundle is written.
    """
    cfg = cfg or BuildConfig()
    say = say or (lambda _m: None)
    w = Work(work, ds, cfg)
    stages: list[tuple[str, Callable[[], object]]] = [
        ("features", lambda: (w.features(), w.teacher_features())),
        ("train", lambda: stage_train(w)),
        ("distill", lambda: stage_distill(w)),
        ("quantize", lambda: stage_quantize(w)),
    ]
    if cfg.cold_fraction > 0:
        stages.append(("cold", lambda: stage_cold(w)))
    stages.append(("bundle", lambda: stage_bundle(w, out)))
    timings: dict[str, float] = {}
    group = distributed.current()
    bundle = None
    for name, run in stages:
        t = time.perf_counter()
        if name in _EVERY_RANK:
            if name == "features" and not group.is_main:
                group.barrier()  # rank 0 computes and caches them; the others then read them
            bundle = run()
            if name == "features" and group.is_main:
                group.barrier()
            group.barrier()
        elif group.is_main:
            with distributed.alone():
                bundle = run()
        timings[f"{name}_s"] = time.perf_counter() - t
        say(f"{name}: {timings[f'{name}_s']:.1f} s")
        w.report["timings"] = timings
        w.save()
    if not group.is_main:
        return BuildResult(Path(out), w.dir, w.report, w.split, timings)
    return BuildResult(Path(bundle), w.dir, w.report, w.split, timings)


def build_distributed(nproc: int, ds: Dataset, out: str | Path, work: str | Path, cfg: BuildConfig | None = None,
                      say: Callable[[str], None] | None = None) -> BuildResult:
    """:func:`build` on ``nproc`` processes of this machine (torchelastic, gloo on CPU): the
    training stages run on every rank with DistributedDataParallel, the rest on rank 0.

    ``cfg.workers`` threads are shared among the ranks.

    :returns: rank 0's result.
    """
    results = distributed.launch(nproc, build_rank, ds, str(out), str(work), cfg or BuildConfig(), say)
    return results[0]


def build_rank(ds: Dataset, out: str | Path, work: str | Path, cfg: BuildConfig | None = None,
               say: Callable[[str], None] | None = None) -> BuildResult:
    """One process of a distributed build (started by torchrun or :func:`build_distributed`):
    join the group the environment describes, take this rank's share of ``cfg.workers``
    threads, :func:`build`, leave the group. Alone (no ``WORLD_SIZE``) it is :func:`build`.

    ``say`` is called on rank 0 only.
    """
    cfg = cfg or BuildConfig()
    group = distributed.init_from_env()
    if group.active:
        share = distributed.threads_per_rank(cfg.workers)
        cfg = dataclasses.replace(cfg, workers=share, teacher=dataclasses.replace(cfg.teacher, threads=share),
                                  student=dataclasses.replace(cfg.student, threads=share))
    with distributed.membership(group):
        return build(ds, out, work, cfg, say=say if group.is_main else None)


__all__ = ["BuildResult", "Work", "build", "build_distributed", "build_rank", "stage_train", "stage_distill", "stage_quantize", "stage_bundle",
           "stage_cold", "ParityError", "StageOrderError", "EvalReport", "PARITY_TOLERANCE"]
