"""The knobs of the re-ranker and what it returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RankingConfig:
    """How the candidate list becomes the final list.

    ``candidates``: how many top-scored items the re-ranker considers. ``mmr_lambda``: 1.0 ranks
    by score alone, lower trades score for dissimilarity to what is already in the list.
    ``tag_cap``: at most this many items sharing one tag (0: no cap). ``negative_weight``: how
    much an item's similarity to recently skipped/disliked items lowers its score.
    ``explore_slots``: list positions given to an item from further down the ranking, so the
    profile keeps discovering (0: none).
    """

    candidates: int = 200
    mmr_lambda: float = 0.7
    tag_cap: int = 3
    negative_weight: float = 0.3
    explore_slots: int = 1
    explore_depth: int = 100

    def __post_init__(self) -> None:
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise ValueError(f"mmr_lambda must be in [0, 1], got {self.mmr_lambda}")
        if self.candidates < 1 or self.tag_cap < 0 or self.explore_slots < 0 or self.explore_depth < 1:
            raise ValueError("candidates and explore_depth must be >= 1; tag_cap and explore_slots >= 0")


@dataclass(frozen=True)
class Recommendation:
    """One recommended item with its score and a human-readable reason."""

    item_id: str
    title: str
    kind: str
    score: float
    reason: str
