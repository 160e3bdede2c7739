"""Ranking on the device: one entry point, :func:`rank`, and the parts it is made of.

- :mod:`~edge.ranking.scoring`: int8 catalogue scoring (:class:`Int8Scorer`) and :func:`top_k`.
- :mod:`~edge.ranking.user`: the interest student's user vector and the request's
  :class:`UserState`.
- :mod:`~edge.ranking.filters`: age limit, availability window, device kind, exclusions.
- :mod:`~edge.ranking.priors`: cold-start popularity for the device kind and hour.
- :mod:`~edge.ranking.diversity`: "not this" penalties and MMR with a tag cap.
- :mod:`~edge.ranking.explain`: one reason per item.
- :mod:`~edge.ranking.rank`: :func:`rank`, which puts them together.
- :mod:`~edge.ranking.home`: the home screen's titled rows (:func:`home_rows`).
"""

from edge.ranking.catalogue import Catalogue, item_vectors
from edge.ranking.config import RankingConfig, Recommendation
from edge.ranking.diversity import mmr, negative_penalty
from edge.ranking.explain import explain
from edge.ranking.filters import allowed_rows, excluded_rows
from edge.ranking.home import HomeConfig, Row, home_rows
from edge.ranking.priors import prior_scores
from edge.ranking.rank import rank
from edge.ranking.scoring import CHUNK_ROWS, Int8Scorer, score_int8, top_k
from edge.ranking.user import LocalCandidate, UserState, negative_history, positive_history, user_vector

__all__ = [
    "rank", "RankingConfig", "Recommendation", "UserState", "LocalCandidate", "Catalogue", "Int8Scorer", "score_int8",
    "top_k", "CHUNK_ROWS", "mmr", "negative_penalty", "explain", "allowed_rows", "excluded_rows", "prior_scores",
    "item_vectors", "user_vector", "positive_history", "negative_history", "home_rows", "HomeConfig", "Row",
]
