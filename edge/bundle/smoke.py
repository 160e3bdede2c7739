"""The smoke query: a verified bundle's models loaded and run once on plausible inputs on every
installed backend, before a store switches to it (or rolls back to it)."""

from __future__ import annotations

import importlib.util
from typing import Sequence

import numpy as np

from edge.backends import BACKENDS, load_model
from edge.bundle.reader import Bundle
from edge.context import Context
from edge.contract.inputs import interest_feed
from edge.errors import BackendError, BundleError

__all__ = ["smoke_query"]


def smoke_query(bundle: Bundle, backends: Sequence[str] = BACKENDS, threads: int = 1) -> dict[str, list[str]]:
    """Load the ``interest`` and ``fusion`` models and run each once on plausible inputs of
    the bundle's shapes, then score a few catalogue rows with the user vector.

    Every backend in ``backends`` that has a file in the bundle and whose runtime is installed
    on this device must load and answer with finite vectors of the bundle's embedding size;
    a backend whose runtime is absent is skipped, but each model needs at least one.

    :param backends: backend names in the device's order (e.g. ``("onnx", "tflite")``).
    :param threads: intra-op threads for each backend.
    :returns: model name -> backends that answered.
    :raises BundleError: naming the model, backend and what went wrong.
    """
    dim, length = bundle.embedding_dim, bundle.history_len
    n = len(bundle.items)
    if n == 0:
        raise BundleError(f"{bundle.root}: the catalogue is empty; nothing could be recommended")
    ctx = Context(hour=20, weekday=4).vector()
    if int(bundle.manifest["context_dim"]) != ctx.size:
        raise BundleError(
            f"{bundle.root}: bundle expects context_dim {bundle.manifest['context_dim']}, this edgerec encodes {ctx.size}; "
            "install a bundle built for this edgerec version"
        )
    # A plausible history: the first few catalogue items.
    real = min(n, length, 4)
    inputs = {
        "interest": interest_feed(bundle.item_embeddings(np.arange(real)), [np.arange(real)], ctx[None], length),
        "fusion": {"features": np.zeros((1, bundle.feature_spec.item_dim), np.float32)},
    }
    answered: dict[str, list[str]] = {}
    user = None
    for name, feed in inputs.items():
        paths = bundle.model_paths(name)
        input_names = bundle.manifest["models"][name]["inputs"]
        answered[name] = []
        for backend in backends:
            if backend not in paths or not _runtime_installed(backend):
                continue
            where = f"{bundle.root}: model '{name}' on {backend} ({paths[backend].name})"
            try:
                out = load_model({backend: paths[backend]}, [backend], threads, input_names=input_names).run(feed)
            except BackendError as exc:
                raise BundleError(f"{where} fails the smoke query: {exc}") from None
            vec = np.asarray(out, dtype=np.float32).reshape(-1)
            if vec.size != dim:
                raise BundleError(f"{where} returned {vec.size} values, expected embedding_dim {dim}")
            if not np.all(np.isfinite(vec)):
                raise BundleError(f"{where} returned non-finite values on a plausible input")
            answered[name].append(backend)
            if name == "interest" and user is None:
                user = vec
        if not answered[name]:
            raise BundleError(
                f"{bundle.root}: no backend on this device can run model '{name}' "
                f"(bundle has {sorted(paths)}, device order {list(backends)}); install onnxruntime or ai-edge-litert"
            )
    # The last row too: proves the memory map spans the file, not only its first pages.
    rows = np.unique(np.r_[np.arange(min(n, 8)), n - 1])
    scores = bundle.item_embeddings(rows) @ user
    if not np.all(np.isfinite(scores)):
        raise BundleError(f"{bundle.root}: catalogue scores are not finite (check catalog/scales.npy)")
    return answered


def _runtime_installed(backend: str) -> bool:
    modules = {"onnx": ("onnxruntime",), "tflite": ("ai_edge_litert", "tflite_runtime")}.get(backend, ())
    return any(importlib.util.find_spec(m) is not None for m in modules)
