"""Students exported from PyTorch by the server, run on every device backend: cosine against
PyTorch, top-k against the float model, and the legacy tflite_runtime refusing int8 files.
The device-only assertions on a bundle's models are in tests/test_backends.py."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="exporting models needs the server side: pip install 'edgerec[export]'")

from edge.backends import load_model
from edge.context import CONTEXT_DIM
from edge.errors import BackendError
from edge.ranking import score_int8, top_k
from edge.contract.int8 import quantize_rows
from export.convert import check_parity, export_onnx, export_tflite
from export.config import StudentConfig
from export.models.students import InterestStudent

CFG = StudentConfig(dim=32, interest_hidden=64, history_len=12)


@pytest.fixture(scope="module")
def tower():
    torch.manual_seed(0)
    return InterestStudent(CFG).eval()


def _inputs(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    hist = rng.standard_normal((n, CFG.history_len, CFG.dim)).astype(np.float32)
    mask = np.ones((n, CFG.history_len), np.float32)
    for j, real in enumerate(rng.integers(1, CFG.history_len + 1, size=n)):
        mask[j, : CFG.history_len - real] = 0.0
        hist[j, : CFG.history_len - real] = 0.0
    ctx = rng.standard_normal((n, CONTEXT_DIM)).astype(np.float32)
    return {"history": hist, "mask": mask, "context": ctx}


@pytest.fixture(scope="module", params=["onnx", "tflite"])
def exported(request, tower, tmp_path_factory):
    backend = request.param
    folder = tmp_path_factory.mktemp(backend)
    example = {k: torch.from_numpy(v) for k, v in _inputs(1).items()}
    if backend == "onnx":
        path = export_onnx(tower, example, folder / "interest.onnx")
    else:
        path = export_tflite(tower, example, folder / "interest.tflite")
    return backend, path


def _run_rows(model, inputs: dict[str, np.ndarray]) -> np.ndarray:
    n = len(inputs["mask"])
    return np.concatenate([model.run({k: v[i : i + 1] for k, v in inputs.items()}) for i in range(n)])


def test_cosine_against_pytorch(exported, tower):
    backend, path = exported
    parity = check_parity(tower, path, backend, _inputs(32, seed=1), "interest", batch_size=1)
    assert parity.min_cosine >= 0.9999, parity


def test_top10_matches_numpy_reference_over_int8_catalogue(exported, tower):
    backend, path = exported
    model = load_model({backend: path}, [backend], input_names=["history", "mask", "context"])
    inputs = _inputs(8, seed=2)
    users = _run_rows(model, inputs)
    with torch.no_grad():
        want = tower(*[torch.from_numpy(v) for v in inputs.values()]).numpy()
    catalogue = np.random.default_rng(3).standard_normal((300, CFG.dim)).astype(np.float32)
    q, scale = quantize_rows(catalogue)
    deq = q.astype(np.float32) * scale[:, None]
    for u, w in zip(users, want):
        got = top_k(score_int8(q, scale, u, chunk_rows=64), 10)
        ref = np.argsort(-(deq @ w), kind="stable")[:10]
        assert len(set(got) & set(ref)) >= 9  # int8/backend rounding may swap a near-tie at the edge
        assert got[0] == ref[0]


def test_legacy_tflite_runtime_refuses_int8_files_but_runs_fp32(tiny_build, monkeypatch):
    """tflite_runtime silently miscomputes dynamic-range int8 files: refuse them so the next
    backend in the order runs instead; fp32 files stay usable there."""
    from ai_edge_litert.interpreter import Interpreter

    import edge.backends.tflite as tfl

    monkeypatch.setattr(tfl, "_interpreter_class", lambda: (Interpreter, "tflite_runtime"))
    models = tiny_build.work / "models"
    with pytest.raises(BackendError, match="int8 TFLite model refused on the legacy tflite_runtime"):
        load_model({"tflite": models / "fusion.int8.tflite"}, ["tflite"], input_names=["features"])
    assert load_model({"tflite": models / "fusion.fp32.tflite"}, ["tflite"], input_names=["features"]).backend == "tflite"
    both = load_model({"tflite": models / "fusion.int8.tflite", "onnx": models / "fusion.int8.onnx"}, ["tflite", "onnx"], input_names=["features"])
    assert both.backend == "onnx"
