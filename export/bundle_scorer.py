"""Evaluate a bundle through the device runtime path (edge.bundle + edge.backends), not PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.bundle import Bundle
from edge.context import context_matrix
from edge.errors import BundleError
from edge.ranking import history_window
from export.data.split import LeaveLastOut


class BundleScorer:
    """Scores users with a bundle's interest model and int8 catalogue, as a device would."""

    def __init__(self, bundle: str | Path | Bundle, backend: str = "onnx", batch_size: int = 256) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
        self.backend = backend
        self.name = f"bundle ({backend}, int8 catalogue)"
        self.batch_size = batch_size
        self.model = self.bundle.load_model("interest", [backend])

    def fit(self, split: LeaveLastOut) -> None:
        """Map the split's item order onto the bundle's catalogue rows (nothing is trained)."""
        missing = [i for i in split.item_ids if i not in self.bundle.index]
        if missing:
            raise BundleError(f"{len(missing)} evaluation item(s) are not in the bundle, e.g. {missing[:3]}")
        self._rows = np.array([self.bundle.index[i] for i in split.item_ids], dtype=np.int64)
        self._split = split
        self._ts = dict(zip(split.test_users.tolist(), split.test_timestamps.tolist()))
        self._emb = self.bundle.item_embeddings()[self._rows]

    def score(self, users: np.ndarray) -> np.ndarray:
        """``(len(users), n_items)`` float32 scores in the split's item order."""
        L, d = self.bundle.history_len, self.bundle.embedding_dim
        out = np.empty((len(users), len(self._rows)), dtype=np.float32)
        for start in range(0, len(users), self.batch_size):
            batch = users[start : start + self.batch_size]
            hist = np.zeros((len(batch), L, d), np.float32)
            mask = np.zeros((len(batch), L), np.float32)
            for j, u in enumerate(batch):
                idx, m = history_window(self._split.train_sequences[u], L)
                hist[j, m > 0] = self._emb[idx[m > 0]]
                mask[j] = m
            ts = np.array([self._ts.get(int(u), 0) for u in batch])
            ctx = context_matrix(ts)
            if self.backend == "onnx":
                uvec = self.model.run({"history": hist, "mask": mask, "context": ctx})
            else:  # fixed-shape backends take one row at a time
                uvec = np.concatenate([self.model.run({"history": hist[j : j + 1], "mask": mask[j : j + 1], "context": ctx[j : j + 1]}) for j in range(len(batch))])
            out[start : start + len(batch)] = uvec @ self._emb.T
        return out
