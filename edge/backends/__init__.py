"""Inference backends behind one small interface.

A backend loads one model file and runs it on a dict of named float32 arrays. The runtime asks
:func:`load_model` for the first backend in the profile's order that can load the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from edge.errors import BackendError

__all__ = ["Model", "load_model", "BACKENDS"]


class Model(Protocol):
    """A loaded model: named inputs in, the first output out."""

    backend: str
    input_names: tuple[str, ...]

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Run once; returns the model's first output as float32."""
        ...


BACKENDS: tuple[str, ...] = ("onnx", "tflite")


def load_model(paths: dict[str, Path], order: Sequence[str] = BACKENDS, threads: int = 1, input_names: Sequence[str] | None = None) -> Model:
    """Load the first model in ``order`` for which a file and a working backend exist.

    :param paths: backend name -> model file, e.g. ``{"onnx": Path("models/interest.onnx")}``.
    :param order: backends to try, best first.
    :param threads: intra-op threads for the backend.
    :param input_names: the model's inputs in argument order, for files that name them
        positionally (TFLite from litert-torch).
    :raises BackendError: listing why each backend failed.
    """
    reasons = []
    for name in order:
        path = paths.get(name)
        if path is None:
            reasons.append(f"{name}: no model file in the bundle")
            continue
        try:
            if name == "onnx":
                from edge.backends.onnx import OnnxModel

                return OnnxModel(path, threads)
            if name == "tflite":
                from edge.backends.tflite import TFLiteModel

                return TFLiteModel(path, threads, input_names)
            reasons.append(f"{name}: unknown backend (known: {', '.join(BACKENDS)})")
        except BackendError as exc:
            reasons.append(f"{name}: {exc}")
    raise BackendError("no backend could load the model: " + "; ".join(reasons))
