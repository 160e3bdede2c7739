"""Settings chosen on the validation target, never on the test target.

Each baseline family comes as a small grid of scorers; every candidate is fitted on the
validation split (``leave_last_out(ds, "validation")``: each user's second-to-last new item is
the target, nothing at or after it is seen) and the one with the best validation NDCG@k is the
family's representative on the test split, which is then scored once.

Usage::

    chosen, log = tune_on_validation({"ease": [EASEScorer(l2=v) for v in (50, 250, 1000)]}, valid)
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import numpy as np

from export.data.split import LeaveLastOut
from export.evaluate.report import Scorer, evaluate

__all__ = ["tune_on_validation"]


#: Validation users a tuning run scores at most (a fixed random sample above it): choosing
#: between settings needs far fewer users than reporting a result, and every candidate costs a
#: full ranking per user.
MAX_TUNING_USERS = 5000


def sample_users(split: LeaveLastOut, max_users: int, seed: int = 0) -> LeaveLastOut:
    """The split with at most ``max_users`` of its target users (a fixed random sample)."""
    if len(split.test_users) <= max_users:
        return split
    pick = np.sort(np.random.default_rng(seed).choice(len(split.test_users), size=max_users, replace=False))
    return dataclasses.replace(split, test_users=split.test_users[pick], test_items=split.test_items[pick],
                               test_timestamps=split.test_timestamps[pick])


def tune_on_validation(grids: Mapping[str, Sequence[Scorer]], valid: LeaveLastOut, k: int = 10,
                       progress: Callable[[str], None] | None = None,
                       max_users: int = MAX_TUNING_USERS) -> tuple[list[Scorer], list[dict]]:
    """Pick each family's best candidate by validation NDCG@k (on at most ``max_users`` users).

    :param grids: family name -> candidate scorers (a family with one candidate is kept as is,
        without fitting it here).
    :param valid: the validation split (``target == "validation"``).
    :returns: the chosen scorers (unfitted state does not matter: :func:`evaluate` refits them
        on the test split) and one log row per candidate (family, model, settings, validation
        NDCG@k, chosen).
    :raises ValueError: ``valid`` is not a validation split, or a family has no candidate.
    """
    if valid.target != "validation":
        raise ValueError(f"tune on the validation target, not on {valid.target!r}")
    valid = sample_users(valid, max_users)
    chosen: list[Scorer] = []
    log: list[dict] = []
    for family, grid in grids.items():
        grid = list(grid)
        if not grid:
            raise ValueError(f"family {family!r} has no candidate")
        if len(grid) == 1:
            chosen.append(grid[0])
            continue
        rows = evaluate(grid, valid, k=k, progress=progress).rows
        best = max(range(len(grid)), key=lambda i: rows[i][f"ndcg@{k}"])
        chosen.append(grid[best])
        for i, (scorer, row) in enumerate(zip(grid, rows)):
            log.append({"family": family, "model": row["model"], "settings": settings_of(scorer),
                        f"valid_ndcg@{k}": row[f"ndcg@{k}"], "chosen": i == best, "n_users": row["n_users"]})
    return chosen, log


def settings_of(scorer: Scorer) -> dict:
    """The scorer's public numeric and string settings (for the report)."""
    return {k: v for k, v in vars(scorer).items()
            if not k.startswith("_") and k != "name" and isinstance(v, (int, float, str, bool))}


#: Above this many items an EASE fit costs minutes (a dense n x n inverse), so one setting is
#: used instead of a grid.
EASE_GRID_MAX_ITEMS = 5000


def baseline_grids(n_items: int, seed: int = 0, sasrec_steps: int = 0, threads: int = 2) -> dict[str, list[Scorer]]:
    """The peers every build is compared with, each family as its validation grid: popularity,
    a first-order Markov chain, item-kNN, EASE, implicit's ALS with confidence scaling (when the
    ``dev`` extra is installed) and, when ``sasrec_steps > 0``, a SASRec trained with full-softmax
    cross-entropy (minutes).

    :param n_items: catalogue size (EASE gets one setting above :data:`EASE_GRID_MAX_ITEMS`).
    :param seed: seed of the stochastic baselines (ALS, SASRec).
    :param threads: ALS's threads (SASRec always runs on one).
    """
    from export.evaluate.baselines import EASEScorer, ItemKNNScorer, MarkovScorer, PopularityScorer

    grids: dict[str, list[Scorer]] = {
        "popularity": [PopularityScorer()],
        "markov": [MarkovScorer()],
        "item-knn": [ItemKNNScorer(k_neighbours=k) for k in (50, 200)],
        "ease": [EASEScorer(l2=v) for v in ((100.0, 500.0, 2000.0) if n_items <= EASE_GRID_MAX_ITEMS else (250.0,))],
    }
    try:
        import implicit  # noqa: F401  (dev extra; the build runs without it)
        from export.evaluate.baselines import ALSScorer

        grids["als"] = [ALSScorer(alpha=a, seed=seed, threads=threads) for a in (2.0, 10.0, 40.0)]
    except ImportError:
        pass
    if sasrec_steps > 0:
        from export.evaluate.sasrec import SASRecScorer

        # One thread: its small matmuls ran 25x slower on two threads here (thread hand-offs
        # dominate); ``threads`` goes to ALS, whose work splits well.
        grids["sasrec"] = [SASRecScorer(steps=sasrec_steps, seed=seed, threads=1)]
    return grids
