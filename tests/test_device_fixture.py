"""The committed fixture bundle (``tests/fixtures/device_bundle/``, used by the device-side
tests) is still what the current exporter writes: same format, feature spec, dimensions,
models and their input/output signatures, catalogue files and columns. When this fails, the
exporter changed: rebuild the fixture with ``python tests/fixtures/build_device_bundle.py``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.conftest import FIXTURE_BUNDLE

from edge.bundle import Bundle


def _onnx_io(path: Path) -> dict:
    from edge.backends.onnx import ort_session

    s = ort_session(path)
    side = lambda xs: [(x.name, x.type, [d if isinstance(d, int) else "dynamic" for d in x.shape]) for x in xs]  # noqa: E731
    return {"inputs": side(s.get_inputs()), "outputs": side(s.get_outputs())}


def _tflite_io(path: Path) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    side = lambda xs: sorted((np.dtype(x["dtype"]).name, x["shape"].tolist()) for x in xs)  # noqa: E731
    return {"inputs": side(it.get_input_details()), "outputs": side(it.get_output_details())}


def bundle_contract(root: Path) -> dict:
    """Everything about a bundle the device relies on, without values that change per build
    (weights, hashes, sizes, dates, metrics)."""
    b = Bundle.open(root)  # verifies it, too
    m = b.manifest
    models = {}
    for name, entry in m["models"].items():
        io = {backend: (_onnx_io if backend == "onnx" else _tflite_io)(root / rel) for backend, rel in entry["files"].items()}
        models[name] = {"inputs": entry["inputs"], "files": entry["files"], "io": io}
    items_path = root / m["catalog"]["items"]
    if items_path.suffix == ".npz":
        with np.load(items_path, allow_pickle=False) as npz:
            items = {k: npz[k].dtype.str for k in npz.files}
    else:
        items = json.loads(items_path.read_text(encoding="utf-8"))
    priors = json.loads((root / m["catalog"]["priors"]).read_text(encoding="utf-8"))
    return {
        "manifest_keys": sorted(m),
        "model_card_keys": sorted(m.get("model_card", {})),
        **{k: m[k] for k in ("format", "format_version", "feature_spec", "feature_spec_hash", "embedding_dim", "history_len",
                              "context_dim", "catalog", "precision")},
        "files": sorted(m["files"]),
        "models": models,
        "item_columns": sorted(items) if isinstance(items, dict) else "rows",
        "priors": {k: sorted(v) if isinstance(v, dict) else type(v).__name__ for k, v in priors.items()},
        "embeddings": (b.embeddings_int8.dtype.name, b.embeddings_int8.shape[1], b.scales.dtype.name),
        "item_ids": list(b.items.item_ids),
    }


def test_fixture_bundle_is_what_the_exporter_writes(tiny_build):
    assert bundle_contract(FIXTURE_BUNDLE) == bundle_contract(tiny_build.bundle), (
        "the exporter's output changed: rebuild the fixture with `python tests/fixtures/build_device_bundle.py`"
    )


def test_contract_notices_a_changed_model_signature(tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(FIXTURE_BUNDLE, copy)
    before = bundle_contract(copy)
    m = json.loads((copy / "manifest.json").read_text())
    m["history_len"] = m["history_len"] + 1
    (copy / "manifest.json").write_text(json.dumps(m))
    after = bundle_contract(copy)
    assert after != before and after["history_len"] == before["history_len"] + 1
