"""A pretrained text encoder that installs with its weights: WordLlama sentence vectors.

WordLlama (MIT, ``pip install wordllama``) ships token embeddings distilled from large language
models inside its wheel and pools them with numpy, so a server without network access or a
model cache still gets text vectors that know what a title or a description means. The
vectors are computed once per catalogue and frozen; a small trainable MLP maps them into the
teacher's item space. Selected by ``--text-model wordllama`` (optionally ``wordllama:DIM``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from edge.errors import DataError

WORDLLAMA = "wordllama"
CONFIG = "l2_supercat"  # the configuration whose weights the wheel carries
DIMS = (64, 128, 256)  # Matryoshka truncations of the packaged 256-d weights


def is_wordllama(name: str | None) -> bool:
    """Whether a ``--text-model`` value names WordLlama (``wordllama`` or ``wordllama:DIM``)."""
    return bool(name) and str(name).split(":", 1)[0] == WORDLLAMA


def wordllama_dim(name: str) -> int:
    """The vector width a ``wordllama[:DIM]`` value asks for (default 256).

    :raises DataError: not one of the packaged widths.
    """
    _, _, dim = str(name).partition(":")
    try:
        value = int(dim) if dim else 256
    except ValueError:
        value = -1
    if value not in DIMS:
        raise DataError(f"--text-model {name}: the width must be one of {', '.join(map(str, DIMS))} (e.g. wordllama:256)")
    return value


def wordllama_vectors(texts: Sequence[str], dim: int = 256) -> np.ndarray:
    """Unit WordLlama vectors ``(len(texts), dim)`` float32, from the weights inside the wheel.

    :raises DataError: wordllama is not installed or its packaged weights are missing.
    """
    try:
        import wordllama
        from wordllama import WordLlama
    except ImportError as exc:
        raise DataError("--text-model wordllama needs the wordllama package: pip install wordllama") from exc
    # The wheel holds weights/ and tokenizers/ in the layout of its cache folder; pointing the
    # cache there keeps the public loader and never downloads.
    try:
        model = WordLlama.load(config=CONFIG, dim=256, trunc_dim=None if dim == 256 else dim,
                               cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    except FileNotFoundError as exc:
        raise DataError(f"wordllama is installed without its packaged {CONFIG} weights ({exc})") from exc
    if not texts:
        return np.zeros((0, dim), np.float32)
    return np.ascontiguousarray(model.embed([t or " " for t in texts], norm=True), np.float32)


class WordLlamaText(nn.Module):
    """Frozen WordLlama vectors of each item's text through a trainable two-layer MLP.

    Same interface as :class:`export.models.text_encoder.TextEncoder`: ``forward(rows)``,
    ``n_texts``, ``architecture()``; the vectors are a buffer, saved with the weights.
    """

    def __init__(self, texts: Sequence[str], out_dim: int, dim: int = 256, hidden: int = 128,
                 arch: dict | None = None) -> None:
        """:param arch: rebuild from :meth:`architecture` (the vectors then come with
            ``load_state_dict``)."""
        super().__init__()
        if arch is not None:
            dim, hidden, out_dim = arch["dim"], arch["hidden"], arch["out_dim"]
            vectors = torch.zeros(arch["n_texts"], dim)
        else:
            vectors = torch.from_numpy(wordllama_vectors(list(texts), dim))
        self.pretrained = f"{WORDLLAMA}:{dim}"
        self.register_buffer("vectors", vectors)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    @property
    def n_texts(self) -> int:
        """How many catalogue texts the encoder holds."""
        return int(self.vectors.shape[0])

    def architecture(self) -> dict:
        """What rebuilds this module (``arch=``), as plain types."""
        return {"kind": WORDLLAMA, "config": CONFIG, "dim": int(self.vectors.shape[1]), "hidden": self.mlp[0].out_features,
                "out_dim": self.mlp[2].out_features, "n_texts": self.n_texts, "pretrained": self.pretrained}

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """Text vectors of catalogue ``rows``."""
        return self.mlp(self.vectors[rows])
