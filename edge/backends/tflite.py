"""TFLite backend: ``ai_edge_litert``, falling back to the legacy ``tflite_runtime``.

Only fixed-shape models are supported (LiteRT's converter exports fixed shapes).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from edge.errors import BackendError


def _interpreter_class() -> tuple[type, str]:
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai_edge_litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # legacy; numpy<2 only

        return Interpreter, "tflite_runtime"
    except ImportError:
        raise BackendError("no TFLite interpreter: pip install ai-edge-litert (or tflite-runtime on numpy<2)") from None


class TFLiteModel:
    """A TFLite model on the LiteRT interpreter."""

    backend = "tflite"

    def __init__(self, path: str | Path, threads: int = 1, input_names: Sequence[str] | None = None) -> None:
        """Load ``path``.

        :param input_names: the model's inputs in argument order. litert-torch names converted
            inputs positionally (``args_0``, ``args_1``...); these names replace them.
        """
        Interpreter, self.runtime = _interpreter_class()
        try:
            self._interp = Interpreter(model_path=str(path), num_threads=threads)
            self._interp.allocate_tensors()
        except Exception as exc:
            raise BackendError(f"{path}: TFLite interpreter cannot load the model ({exc})") from None
        if self.runtime == "tflite_runtime" and any(t["dtype"] == np.int8 for t in self._interp.get_tensor_details()):
            # Measured (shared/TOOLCHAIN.md): tflite_runtime silently miscomputes dynamic-range
            # int8 files from ai-edge-quantizer (cosine 0.3). Refusing lets the next backend run.
            raise BackendError(f"{path}: int8 TFLite model refused on the legacy tflite_runtime, which miscomputes it; "
                               "install ai-edge-litert or use the onnx backend")
        details = self._interp.get_input_details()
        self._inputs = {}
        for d in details:
            # Converters name inputs like "serving_default_history:0"; keep the bare name.
            name = d["name"].split("serving_default_")[-1].split(":")[0]
            positional = re.fullmatch(r"args_(\d+)", name)
            if positional and input_names is not None:
                pos = int(positional.group(1))
                if pos >= len(input_names):
                    raise BackendError(f"{path}: input {name} has no name; the bundle lists {list(input_names)}")
                name = input_names[pos]
            self._inputs[name] = d
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
