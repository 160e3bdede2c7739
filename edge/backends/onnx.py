"""onnxruntime backend."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from edge.errors import BackendError


_ARM64 = frozenset({"aarch64", "arm64"})


def ort_session(path: str | Path, threads: int = 1):
    """An onnxruntime CPU session on ``threads`` intra-op threads, one inter-op thread and
    warnings off: the one session setup of the device runtime.

    :raises BackendError: onnxruntime is missing or cannot load the file.
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - onnxruntime is a base dependency
        raise BackendError(f"onnxruntime is not installed ({exc}); pip install onnxruntime") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if platform.machine().lower() in _ARM64:
        # onnxruntime 1.32 on aarch64 (measured under qemu, tests/test_backends.py): the
        # extended-level fusion of DynamicQuantizeLinear + MatMulInteger gives int8 students
        # a cosine of 0.43-0.78 to fp32; with basic optimisations it is 0.998+. The students
        # are a few small matmuls, so the lost fusions cost microseconds.
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        raise BackendError(f"{path}: onnxruntime cannot load the model ({exc})") from None


class OnnxModel:
    """An ONNX model on onnxruntime's CPU provider."""

    backend = "onnx"

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        self._session = ort_session(path, threads)
        self.input_names = tuple(i.name for i in self._session.get_inputs())
        self._output = self._session.get_outputs()[0].name

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Run once; inputs must name every model input."""
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise BackendError(f"missing model input(s) {missing}; the model takes {list(self.input_names)}")
        feed = {n: np.ascontiguousarray(inputs[n], dtype=np.float32) for n in self.input_names}
        try:
            return self._session.run([self._output], feed)[0]
        except Exception as exc:
            raise BackendError(f"onnxruntime failed to run the model ({exc})") from None
