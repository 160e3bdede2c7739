"""TFLite backend: ``ai_edge_litert``, falling back to the legacy ``tflite_runtime``.

Only fixed-shape models are supported (LiteRT's converter exports fixed shapes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.errors import BackendError


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # legacy; numpy<2 only

        return Interpreter
    except ImportError:
        raise BackendError("no TFLite interpreter: pip install ai-edge-litert (or tflite-runtime on numpy<2)") from None


class TFLiteModel:
    """A TFLite model on the LiteRT interpreter."""

    backend = "tflite"

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        Interpreter = _interpreter_class()
        try:
            self._interp = Interpreter(model_path=str(path), num_threads=threads)
            self._interp.allocate_tensors()
        except Exception as exc:
            raise BackendError(f"{path}: TFLite interpreter cannot load the model ({exc})") from None
        details = self._interp.get_input_details()
        # Converters name inputs like "serving_default_history:0"; match on the bare name.
        self._inputs = {d["name"].split("serving_default_")[-1].split(":")[0]: d for d in details}
        self.input_names = tuple(self._inputs)
        self._output = self._interp.get_output_details()[0]["index"]

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Run once; each input must match the model's fixed shape."""
        for name, d in self._inputs.items():
            if name not in inputs:
                raise BackendError(f"missing model input {name!r}; the model takes {list(self.input_names)}")
            arr = np.ascontiguousarray(inputs[name], dtype=np.float32)
            if tuple(arr.shape) != tuple(d["shape"]):
                raise BackendError(f"input {name!r} has shape {arr.shape}; this TFLite model needs {tuple(d['shape'])}")
            self._interp.set_tensor(d["index"], arr)
        self._interp.invoke()
        return np.array(self._interp.get_tensor(self._output))
