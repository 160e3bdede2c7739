"""Text features: signed hashing of word and character n-grams (no vocabulary file).

Hashing keeps the dimension fixed and works for any language offline; a second hash bit picks
each token's sign, so tokens that collide in a bucket cancel in expectation instead of adding up.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from itertools import chain
from typing import Iterable

import numpy as np

from edge.features.spec import FeatureSpec

_WORD = re.compile(r"\w+", re.UNICODE)
#: Characters of each text field hashed; the rest is ignored (bounded time and memory on any input).
MAX_TEXT_CHARS = 100_000


def normalise_text(text: str) -> str:
    """NFKC-normalise, case-fold and collapse whitespace."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def text_words(text: str) -> list[str]:
    """The words the text features see in ``text``: normalised (:func:`normalise_text`), then
    ``\\w+`` runs (any script)."""
    return _WORD.findall(normalise_text(text))


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
    :param spec: ``text_dim`` (buckets) and the word and character n-gram ranges.
    :returns: float32 array of shape ``(spec.text_dim,)``; all zeros for empty text.
    """
    spec = spec or FeatureSpec()
    tags = [str(t)[:MAX_TEXT_CHARS] for t in tags]
    text = normalise_text(f"{title[:MAX_TEXT_CHARS]} {description[:MAX_TEXT_CHARS]}")
    tokens = chain(
        _ngrams(text, spec),
        ("t:" + normalise_text(t) for t in tags),
        _ngrams(normalise_text(" ".join(tags)[:MAX_TEXT_CHARS]), spec),
    )
    counts = [0.0] * spec.text_dim
    for tok in tokens:
        # crc32 is stable across processes and platforms, unlike Python's salted hash().
        h = zlib.crc32(tok.encode("utf-8"))
        counts[h % spec.text_dim] += 1.0 if (h >> 31) & 1 else -1.0
    vec = np.asarray(counts, dtype=np.float32)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec
