"""What the ranker reads from a catalogue, as a protocol: a verified bundle is one, and tests
build small ones in memory to check every ranker against a brute-force answer."""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

import numpy as np


class CatalogueItems(Protocol):
    """Item metadata as columns, one entry per catalogue row."""

    item_ids: Sequence[str]
    titles: Sequence[str]
    tags: Sequence[tuple[str, ...]]
    is_audio: np.ndarray  # bool (n,)


class Catalogue(Protocol):
    """The catalogue side of a ranking request (see :class:`edge.bundle.Bundle`)."""

    items: CatalogueItems
    index: Mapping[str, int]
    age_ratings: np.ndarray  # (n,) minimum age; 0 for everyone
    available_from: np.ndarray  # (n,) Unix s
    available_until: np.ndarray  # (n,) Unix s
    video_rows: np.ndarray  # int64 rows that are not audio
    priors: Mapping[str, Any]  # cold-start lists, see edge.ranking.priors

    @property
    def embedding_dim(self) -> int: ...

    def item_embeddings(self, rows: np.ndarray) -> np.ndarray: ...


def item_vectors(catalogue: Catalogue, ids: Sequence[str], local: Mapping[str, np.ndarray]) -> np.ndarray:
    """float32 ``(len(ids), d)``: catalogue items dequantised, local items as stored; an id in
    neither stays zero."""
    out = np.zeros((len(ids), catalogue.embedding_dim), np.float32)
    cat = [(j, catalogue.index[i]) for j, i in enumerate(ids) if i in catalogue.index]
    if cat:
        js, rows = zip(*cat)
        out[list(js)] = catalogue.item_embeddings(np.array(rows))
    for j, i in enumerate(ids):
        if i in local:
            out[j] = local[i]
    return out
