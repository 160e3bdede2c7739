"""Offline evaluation: every model and baseline ranked the same way, on the same split.

- :mod:`export.evaluate.metrics`: the ranking metrics, one implementation (HR, NDCG, MRR,
  coverage, diversity, novelty).
- :mod:`export.evaluate.report`: the :class:`Scorer` protocol, :func:`evaluate` on a
  leave-last-out split and its :class:`EvalReport`.
- :mod:`export.evaluate.baselines`: popularity, item-kNN, EASE, Markov chain and ALS;
  :func:`sasrec_baseline` builds SASRec from :mod:`export.evaluate.sasrec` (torch).
- :mod:`export.evaluate.scorers`: the teacher, the students and bundles as scorers (torch).
- :mod:`export.evaluate.cold`: the cold-item probe (trains a second teacher; torch).

Importing this package loads numpy and scipy only; the torch-based modules are imported by name.
"""

from export.evaluate.baselines import (
    ALSScorer,
    EASEScorer,
    ItemKNNScorer,
    MarkovScorer,
    PopularityScorer,
    build_baselines,
    default_baselines,
    sasrec_baseline,
)
from export.evaluate.report import EvalReport, Scorer, evaluate

__all__ = [
    "Scorer",
    "PopularityScorer",
    "ItemKNNScorer",
    "EASEScorer",
    "ALSScorer",
    "MarkovScorer",
    "EvalReport",
    "evaluate",
    "default_baselines",
    "build_baselines",
    "sasrec_baseline",
]
