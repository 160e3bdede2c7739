"""Scorers (:class:`export.evaluate.Scorer`) for the teacher, the students in PyTorch, exported
student files run through the device backends, and whole bundles through the device runtime
(edge.bundle + edge.backends): the same protocol for every stage of the model."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from edge.backends import Model
from edge.bundle import Bundle
from edge.context import context_matrix
from edge.contract.inputs import INTEREST_INPUTS, interest_feed
from edge.errors import BundleError
from export.console import native_info_hidden
from export.data.split import LeaveLastOut
from export.models.teacher import Teacher
from export.sequences import UserEvents
from export.train import teacher_user_vectors

UserFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _request_context(split: LeaveLastOut, users: np.ndarray) -> np.ndarray:
    return context_matrix(split.test_timestamps[np.searchsorted(split.test_users, users)])


class TeacherScorer:
    """The teacher as trained: SASRec over all training events, float item table."""

    def __init__(self, model: Teacher, table: np.ndarray, events: list[UserEvents], name: str = "teacher (PyTorch)") -> None:
        self.model, self.table, self.events, self.name = model, table, events, name

    def fit(self, split: LeaveLastOut) -> None:
        self._split = split

    def score(self, users: np.ndarray) -> np.ndarray:
        ends = np.array([len(self.events[u].items) for u in users])
        uv = teacher_user_vectors(self.model, torch.from_numpy(self.table), self.events, users, ends, _request_context(self._split, users))
        return uv @ self.table.T


class WindowScorer:
    """Any student given as ``user_fn(history, mask, context) -> user vectors`` over the last
    ``history_len`` positive training items, scored against ``item_vectors`` as on the device."""

    def __init__(self, name: str, user_fn: UserFn, item_vectors: np.ndarray, history_len: int, batch_size: int | None = 256) -> None:
        self.name, self.user_fn, self.items, self.L = name, user_fn, item_vectors, history_len
        self.batch_size = batch_size

    def fit(self, split: LeaveLastOut) -> None:
        self._split = split

    def score(self, users: np.ndarray) -> np.ndarray:
        feed = interest_feed(self.items, [self._split.train_sequences[u] for u in users], _request_context(self._split, users), self.L)
        hist, mask, ctx = (feed[name] for name in INTEREST_INPUTS)
        step = self.batch_size or len(users)
        uv = np.concatenate([self.user_fn(hist[s : s + step], mask[s : s + step], ctx[s : s + step]) for s in range(0, len(users), step)])
        return uv @ self.items.T


def torch_user_fn(module: torch.nn.Module) -> UserFn:
    """A PyTorch interest student as a ``user_fn``."""

    @torch.no_grad()
    def run(h: np.ndarray, m: np.ndarray, c: np.ndarray) -> np.ndarray:
        return module.eval()(torch.from_numpy(h), torch.from_numpy(m), torch.from_numpy(c)).numpy()

    return run


def device_user_fn(model: Model) -> UserFn:
    """A loaded device model (onnxruntime or TFLite) as a ``user_fn``."""
    return lambda h, m, c: model.run(dict(zip(INTEREST_INPUTS, (h, m, c))))


class BundleScorer(WindowScorer):
    """Scores users with a bundle's interest model and int8 catalogue, as a device would."""

    def __init__(self, bundle: str | Path | Bundle, backend: str = "onnx", batch_size: int = 256) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
        self.backend = backend
        with native_info_hidden():  # LiteRT announces its XNNPACK delegate on stderr
            model = self.bundle.load_model("interest", [backend])
        # Fixed-shape backends (TFLite) take one row at a time.
        super().__init__(f"bundle ({backend}, int8 catalogue)", device_user_fn(model), np.zeros((0, 0), np.float32),
                         self.bundle.history_len, batch_size if backend == "onnx" else 1)

    def fit(self, split: LeaveLastOut) -> None:
        """Map the split's item order onto the bundle's catalogue rows (nothing is trained)."""
        missing = [i for i in split.item_ids if i not in self.bundle.index]
        if missing:
            raise BundleError(f"{len(missing)} evaluation item(s) are not in the bundle, e.g. {missing[:3]}")
        rows = np.array([self.bundle.index[i] for i in split.item_ids], dtype=np.int64)
        self.items = self.bundle.item_embeddings()[rows]
        super().fit(split)
