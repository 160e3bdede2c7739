"""Checkpoints of the teachers and students: weights plus the config that rebuilds the module.

Each file is one ``torch.save`` of plain data, read back with ``torch.load(weights_only=True)``
(no pickled classes, so a checkpoint cannot run code when it is loaded)::

    teacher.pt   {"format": "edgerec-teacher/1", "config": asdict(TeacherConfig),
                  "feature_dim": int, "text_encoder": <text encoder>.architecture(),
                  "state_dict": Teacher.state_dict()}
    students.pt  {"format": "edgerec-students/1", "config": asdict(StudentConfig),
                  "feature_dim": int, "state_dict": {"fusion": ..., "interest": ...}}

The catalogue the teacher was trained on (content features, which items have history, the
texts' token ids) is part of its state dict. Files are written atomically (:mod:`edge.atomic`).
"""

from __future__ import annotations

import pickle
from dataclasses import asdict
from pathlib import Path

import torch

from edge.atomic import atomic_file
from edge.errors import DataError
from export.config import StudentConfig, TeacherConfig
from export.models.students import FusionStudent, InterestStudent
from export.models.teacher import Teacher
from export.models.text_encoder import rebuild_text_encoder

TEACHER_FORMAT = "edgerec-teacher/1"
STUDENTS_FORMAT = "edgerec-students/1"


def _save(obj: dict, path: Path) -> Path:
    with atomic_file(path, "wb") as fh:
        torch.save(obj, fh)
    return Path(path)


def _load(path: Path, fmt: str) -> dict:
    try:
        ckpt = torch.load(path, weights_only=True)
    except pickle.UnpicklingError as exc:
        # A pickled module (work folders of older versions): it is never unpickled here.
        raise DataError(f"{path}: not an {fmt} checkpoint (it holds pickled objects); run the stage that writes it again") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise DataError(f"{path}: not an {fmt} checkpoint (found {got!r}); run the stage that writes it again")
    return ckpt


def save_teacher(model: Teacher, path: Path) -> Path:
    """Write both teachers' weights with their config to ``path``."""
    return _save({"format": TEACHER_FORMAT, "config": asdict(model.cfg), "feature_dim": int(model.fusion.features.shape[1]),
                  "text_encoder": model.fusion.text.architecture(), "state_dict": model.state_dict()}, path)


def load_teacher(path: Path) -> Teacher:
    """The teacher :func:`save_teacher` wrote, rebuilt from its config (eval mode).

    :raises DataError: the file is not a teacher checkpoint of this format (e.g. a pickled
        module from an older work folder).
    """
    ckpt = _load(path, TEACHER_FORMAT)
    cfg = TeacherConfig(**ckpt["config"])
    model = Teacher(cfg, rebuild_text_encoder(ckpt["text_encoder"], cfg.dim), ckpt["feature_dim"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def save_students(fusion: FusionStudent, interest: InterestStudent, cfg: StudentConfig, path: Path) -> Path:
    """Write both students' weights with the config they were distilled with to ``path``."""
    return _save({"format": STUDENTS_FORMAT, "config": asdict(cfg), "feature_dim": int(fusion.mean.shape[0]),
                  "state_dict": {"fusion": fusion.state_dict(), "interest": interest.state_dict()}}, path)


def load_students(path: Path) -> dict[str, torch.nn.Module]:
    """``{"fusion": FusionStudent, "interest": InterestStudent}`` as :func:`save_students`
    wrote them, rebuilt from the config (eval mode).

    :raises DataError: the file is not a students checkpoint of this format.
    """
    ckpt = _load(path, STUDENTS_FORMAT)
    cfg = StudentConfig(**ckpt["config"])
    students = {"fusion": FusionStudent(ckpt["feature_dim"], cfg), "interest": InterestStudent(cfg)}
    for name, module in students.items():
        module.load_state_dict(ckpt["state_dict"][name])
        module.eval()
    return students
