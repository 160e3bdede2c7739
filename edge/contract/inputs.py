"""The students' inputs: their names, and the one builder of the interest model's feed.

The interest student reads a right-aligned window of the last ``history_len`` positive items
(float32 ``history (B, L, d)`` with a ``mask (B, L)`` of 1.0 for real entries), plus the
request context ``(B, CONTEXT_DIM)`` from :mod:`edge.context`. Training, the parity checks,
held-out scoring, the install smoke query, the bench and the device's ``recommend`` all build
it with :func:`interest_feed`, so the layout cannot differ between them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: Input names of each model a bundle ships, in the order the exporters declare them.
INTEREST_INPUTS: tuple[str, ...] = ("history", "mask", "context")
FUSION_INPUTS: tuple[str, ...] = ("features",)
#: The integer scorer: the query in offset binary (uint8 ``(1, d)``, see
#: :func:`edge.contract.int8.query_offset_binary`) and the catalogue transposed (int8 ``(d, n)``).
SCORER_INPUTS: tuple[str, ...] = ("user", "catalog_t")
#: The scorer of bundles before it: offset-binary catalogue (uint8 ``(n, d)``), int8 query.
LEGACY_SCORER_INPUTS: tuple[str, ...] = ("catalog", "user")
MODEL_INPUTS: dict[str, tuple[str, ...]] = {"interest": INTEREST_INPUTS, "fusion": FUSION_INPUTS}


def history_window(seq: np.ndarray | Sequence[int], length: int) -> tuple[np.ndarray, np.ndarray]:
    """The last ``length`` entries of ``seq`` (oldest first), right-aligned.

    :param seq: item indices in time order, shape ``(n,)``.
    :returns: ``(idx, mask)``: int64 ``(length,)`` with -1 where padded, float32 ``(length,)``
        with 1.0 for real entries.
    """
    seq = np.asarray(seq, dtype=np.int64)[-length:] if length > 0 else np.zeros(0, np.int64)
    idx = np.full(length, -1, dtype=np.int64)
    mask = np.zeros(length, dtype=np.float32)
    if seq.size:
        idx[length - seq.size :] = seq
        mask[length - seq.size :] = 1.0
    return idx, mask


def interest_feed(vectors: np.ndarray, sequences: Sequence[np.ndarray | Sequence[int]], contexts: np.ndarray,
                  length: int) -> dict[str, np.ndarray]:
    """The interest model's inputs for a batch of users.

    :param vectors: ``(N, d)`` item vectors the sequences index (the catalogue as the device
        sees it, or just one user's history items).
    :param sequences: per user, indices into ``vectors`` oldest first; only the last
        ``length`` are used.
    :param contexts: ``(B, CONTEXT_DIM)`` float32, one row per user.
    :param length: the bundle's ``history_len``.
    :returns: ``{"history": (B, length, d), "mask": (B, length), "context": (B, CONTEXT_DIM)}``,
        all float32; padded positions are zero vectors with mask 0.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    contexts = np.asarray(contexts, dtype=np.float32)
    if contexts.ndim != 2 or len(contexts) != len(sequences):
        raise ValueError(f"contexts must be (B, C) with B = {len(sequences)} sequences, got {contexts.shape}")
    history = np.zeros((len(sequences), length, vectors.shape[1]), np.float32)
    mask = np.zeros((len(sequences), length), np.float32)
    for j, seq in enumerate(sequences):
        idx, m = history_window(seq, length)
        real = m > 0
        history[j, real] = vectors[idx[real]]
        mask[j] = m
    return {"history": history, "mask": mask, "context": contexts}
