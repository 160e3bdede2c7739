"""Every backend through the same assertions, on the models of the committed fixture bundle
(no server side needed): input names, shapes, dtypes, unit-length outputs, agreement between
backends, top-k against a numpy reference, and errors. A backend that cannot load here fails;
none is silently dropped. Export from PyTorch is checked in tests/test_export_backends.py."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import FIXTURE_BUNDLE

from edge.backends import load_model
from edge.bundle import Bundle
from edge.context import context_matrix
from edge.contract.inputs import MODEL_INPUTS, interest_feed
from edge.contract.int8 import dequantize_rows
from edge.contract.vectors import unit_rows
from edge.errors import BackendError
from edge.ranking import score_int8, top_k
from edge.contract.int8 import quantize_rows

BACKENDS = ("onnx", "tflite")


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return Bundle.open(FIXTURE_BUNDLE)


def _inputs(b: Bundle, name: str, n: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """``n`` single-row feeds for model ``name``, built as the device builds them."""
    rng = np.random.default_rng(seed)
    if name == "fusion":
        return [{"features": rng.standard_normal((1, b.feature_spec.item_dim)).astype(np.float32)} for _ in range(n)]
    table = b.item_embeddings(np.arange(len(b.items)))
    feeds = []
    for j in range(n):
        seq = rng.choice(len(b.items), size=int(rng.integers(1, b.history_len + 1)))
        feeds.append(interest_feed(table, [seq], context_matrix(np.array([1_750_000_000 + 3600 * j])), b.history_len))
    return feeds


def _load(b: Bundle, name: str, backend: str):
    return load_model({backend: b.model_paths(name)[backend]}, [backend], input_names=b.manifest["models"][name]["inputs"])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["interest", "fusion"])
def test_shapes_dtypes_and_input_names(bundle, name, backend):
    model = _load(bundle, name, backend)
    assert model.backend == backend
    assert set(model.input_names) == set(MODEL_INPUTS[name])
    for feed in _inputs(bundle, name, 4):
        out = model.run(feed)
        assert out.shape == (1, bundle.embedding_dim) and out.dtype == np.float32
        assert np.linalg.norm(out) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("name", ["interest", "fusion"])
def test_backends_agree_on_the_same_inputs(bundle, name):
    onnx, tflite = (_load(bundle, name, b) for b in BACKENDS)
    for feed in _inputs(bundle, name, 16, seed=1):
        a, c = unit_rows(onnx.run(feed)), unit_rows(tflite.run(feed))
        assert float((a * c).sum()) >= 0.98  # two int8 files of one float model


@pytest.mark.parametrize("backend", BACKENDS)
def test_top10_over_the_int8_catalogue_matches_a_numpy_reference(bundle, backend):
    model = _load(bundle, "interest", backend)
    deq = dequantize_rows(bundle.embeddings_int8, bundle.scales)
    for feed in _inputs(bundle, "interest", 8, seed=2):
        u = model.run(feed)[0]
        got = top_k(score_int8(bundle.embeddings_int8, bundle.scales, u, chunk_rows=7), 10)
        assert got.tolist() == np.argsort(-(deq @ u), kind="stable")[:10].tolist()


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_input_is_a_backend_error(bundle, backend):
    model = _load(bundle, "interest", backend)
    with pytest.raises(BackendError, match="missing model input"):
        model.run({"history": _inputs(bundle, "interest", 1)[0]["history"]})


def test_unloadable_file_lists_every_backend_reason(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not a model")
    with pytest.raises(BackendError) as err:
        load_model({"onnx": bad, "tflite": bad}, ["onnx", "tflite"])
    assert "onnx:" in str(err.value) and "tflite:" in str(err.value)


def test_score_int8_chunks_and_top_k_match_brute_force():
    rng = np.random.default_rng(4)
    q, scale = quantize_rows(rng.standard_normal((1000, 16)).astype(np.float32))
    u = rng.standard_normal(16).astype(np.float32)
    scores = score_int8(q, scale, u, chunk_rows=97)
    np.testing.assert_allclose(scores, (q.astype(np.float32) * scale[:, None]) @ u, rtol=1e-5, atol=1e-5)
    exclude = np.argsort(-scores)[:3]
    best = top_k(scores, 10, exclude)
    assert best.tolist() == np.argsort(-scores)[3:13].tolist()
    assert top_k(np.array([np.nan, 1.0, -np.inf], np.float32), 5).tolist() == [1]
