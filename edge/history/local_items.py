"""Content the device found itself (a recording, a USB file), kept with its embedding.

Embeddings are stored as little-endian float32 blobs with their dimension, so a file written
on an ARM device reads back the same anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.errors import HistoryError

#: Largest embedding dimension accepted.
MAX_EMBEDDING_DIM = 4096
#: Longest title (characters).
MAX_TITLE_LEN = 512
LOCAL_ITEM_KINDS: tuple[str, ...] = ("audio", "video")
_DTYPE = np.dtype("<f4")


@dataclass(frozen=True, eq=False)
class LocalItem:
    """A local item: ``profile`` is ``None`` for one shared by the household; ``added_at`` is
    Unix seconds; ``embedding`` is float32 ``(dim,)``."""

    item_id: str
    profile: str | None
    kind: str | None
    title: str | None
    added_at: float
    embedding: np.ndarray

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.embedding.shape[0])


def encode_embedding(item_id: str, embedding: object) -> tuple[int, bytes]:
    """``(dim, blob)`` for a 1-D finite vector.

    :raises HistoryError: wrong shape, empty, too long, not numeric, or NaN/infinite values.
    """
    try:
        vec = np.asarray(embedding, dtype=np.float64)
    except (TypeError, ValueError):
        raise HistoryError(f"embedding of local item {item_id!r} is not numeric") from None
    if vec.ndim != 1 or vec.size == 0:
        raise HistoryError(f"embedding of local item {item_id!r} has shape {vec.shape}; expected (dim,) with dim >= 1")
    if vec.size > MAX_EMBEDDING_DIM:
        raise HistoryError(f"embedding of local item {item_id!r} has dim {vec.size}; at most {MAX_EMBEDDING_DIM} allowed")
    if not np.isfinite(vec).all():
        raise HistoryError(f"embedding of local item {item_id!r} has {int((~np.isfinite(vec)).sum())} NaN or infinite values")
    with np.errstate(over="ignore"):  # overflow is reported just below
        f32 = vec.astype(_DTYPE)
    if not np.isfinite(f32).all():
        raise HistoryError(f"embedding of local item {item_id!r} overflows float32")
    return int(vec.size), f32.tobytes()


def decode_embedding(dim: int, blob: bytes) -> np.ndarray:
    """float32 ``(dim,)`` from a stored blob.

    :raises HistoryError: a blob whose length does not match ``dim``.
    """
    if len(blob) != 4 * dim:
        raise HistoryError(f"stored embedding has {len(blob)} bytes, expected {4 * dim} for dim {dim}; the row is damaged")
    return np.frombuffer(blob, dtype=_DTYPE).astype(np.float32)
