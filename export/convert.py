"""Export trained towers to ONNX and prove each file computes what PyTorch computes."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edge.backends import load_model
from edge.contract.vectors import unit_rows
from edge.errors import EdgeError
from export.console import captured_native_output, log_tail, native_info_hidden


class ParityError(EdgeError):
    """An exported model disagrees with its PyTorch original beyond the tolerance."""


@dataclass(frozen=True)
class Parity:
    """Cosine agreement between an exported model and PyTorch on held-out inputs."""

    model: str
    backend: str
    min_cosine: float
    mean_cosine: float
    n: int

    def check(self, tolerance: float = 0.99) -> None:
        """Raise ParityError naming model, backend and tolerance if min cosine < tolerance."""
        if not self.min_cosine >= tolerance:
            raise ParityError(
                f"{self.model} on {self.backend}: min cosine {self.min_cosine:.5f} over {self.n} inputs "
                f"is below the tolerance {tolerance}; the model is not bundled"
            )


def export_onnx(module: torch.nn.Module, example: dict[str, torch.Tensor], path: Path) -> Path:
    """Export ``module`` to one ONNX file with a dynamic batch axis.

    :param example: input name -> example tensor; every input's first axis is the batch.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes = {name: {0: batch} for name in example}
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    # The exporter logs a warning per torchvision op it cannot register; none are used here.
    onnx_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # One axis named for every input: the exporter says it merges them, as intended.
            warnings.filterwarnings("ignore", message=r"# The axis name: .* will not be used", category=UserWarning)
            # torch's own exporter still calls a pytree API torch has deprecated.
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
            torch.onnx.export(
                module.eval(),
                tuple(example.values()),
                str(path),
                input_names=list(example),
                output_names=["embedding"],
                dynamic_shapes=shapes,
                external_data=False,
                dynamo=True,
                verbose=False,
            )
    finally:
        onnx_log.setLevel(level)
    return path


class ConversionError(EdgeError):
    """A model could not be converted; the message carries the converter's own log."""


def export_tflite(module: torch.nn.Module, example: dict[str, torch.Tensor], path: Path) -> Path:
    """Convert ``module`` to TFLite with litert-torch at the example's fixed shapes (LiteRT's
    converter supports no dynamic axes); inputs are named positionally (``args_0``...), so the
    bundle records their names in argument order.

    :raises ConversionError: litert-torch is missing or fails, with its log.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with captured_native_output() as log:
        try:
            import litert_torch
            from litert_torch import progress

            progress.console.quiet = True  # its rich console prints every conversion stage
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
                litert_torch.convert(module.eval(), tuple(example.values())).export(str(path))
        except ImportError:
            raise ConversionError("TFLite export needs litert-torch: pip install 'edgerec[export]'") from None
        except Exception as exc:
            raise ConversionError(f"litert-torch could not convert the model to {path.name}: {exc}\n{log_tail(log)}") from exc
    return path


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (unit_rows(a) * unit_rows(b)).sum(axis=1)


@torch.no_grad()
def check_parity(module: torch.nn.Module, path: Path, backend: str, inputs: dict[str, np.ndarray], name: str, batch_size: int | None = None) -> Parity:
    """Run the exported file through the device runtime's backend and compare with PyTorch.

    :param inputs: held-out inputs, each with the batch on axis 0.
    :param batch_size: feed this many rows at a time (1 for fixed-shape models).
    """
    with native_info_hidden():  # LiteRT announces its XNNPACK delegate on stderr
        model = load_model({backend: path}, [backend], input_names=list(inputs))
    n = len(next(iter(inputs.values())))
    step = batch_size or n
    got = np.concatenate([model.run({k: v[i : i + step] for k, v in inputs.items()}) for i in range(0, n, step)])
    want = module.eval()(*[torch.from_numpy(v) for v in inputs.values()]).numpy()
    cos = _cosines(got, want)
    return Parity(name, backend, float(cos.min()), float(cos.mean()), n)
