"""Evaluate a bundle through the device runtime path (edge.bundle + edge.backends), not PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.bundle import Bundle
from edge.errors import BundleError
from export.data.split import LeaveLastOut
from export.scorers import WindowScorer, device_user_fn


class BundleScorer(WindowScorer):
    """Scores users with a bundle's interest model and int8 catalogue, as a device would."""

    def __init__(self, bundle: str | Path | Bundle, backend: str = "onnx", batch_size: int = 256) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
        self.backend = backend
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
