"""Text features: signed hashing of word and character n-grams (no vocabulary file).

Hashing keeps the dimension fixed and works for any language offline; the sign hash halves
the bias that collisions add to dot products.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from typing import Iterable

import numpy as np

from edge.features.spec import FeatureSpec

_WORD = re.compile(r"\w+", re.UNICODE)


def normalise_text(text: str) -> str:
    """NFKC-normalise, case-fold and collapse whitespace."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _ngrams(text: str, spec: FeatureSpec) -> Iterable[str]:
    words = _WORD.findall(text)
    lo, hi = spec.word_ngrams
    for n in range(lo, hi + 1):
        for i in range(len(words) - n + 1):
            yield "w:" + " ".join(words[i : i + n])
    clo, chi = spec.char_ngrams
    for word in words:
        padded = f"<{word}>"
        for n in range(clo, chi + 1):
            for i in range(len(padded) - n + 1):
                yield "c:" + padded[i : i + n]


def text_features(title: str, tags: Iterable[str] = (), description: str = "", spec: FeatureSpec | None = None) -> np.ndarray:
    """Hash title, tags and description into one L2-normalised vector.

    :param title: item title, any language.
    :param tags: tags; each also counts as a whole token ``t:<tag>``.
    :param description: programme-guide text.
    :returns: float32 array of shape ``(spec.text_dim,)``; all zeros for empty text.
    """
    spec = spec or FeatureSpec()
    vec = np.zeros(spec.text_dim, dtype=np.float32)
    tokens = list(_ngrams(normalise_text(f"{title} {description}"), spec))
    tokens += ["t:" + normalise_text(t) for t in tags]
    tokens += list(_ngrams(normalise_text(" ".join(tags)), spec))
    for tok in tokens:
        # crc32 is stable across processes and platforms, unlike Python's salted hash().
        h = zlib.crc32(tok.encode("utf-8"))
        vec[h % spec.text_dim] += 1.0 if (h >> 31) & 1 else -1.0
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec
