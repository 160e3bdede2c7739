"""Seeds and intervals (export.evaluate.stats): the bootstrap brackets the truth, seeds are
summarised, and the comparison is against the best peer."""

import numpy as np
import pytest

from export.evaluate.stats import evaluate_seeds, format_seed_table, paired_bootstrap
from tests.test_evaluate import FixedScorer, make_dataset
from export.data.split import leave_last_out


def test_bootstrap_of_a_model_against_itself_is_centred_on_zero():
    a = np.random.default_rng(1).random(500)
    r = paired_bootstrap(a, a)
    assert r["diff"] == 0 and r["diff_lo"] == 0 and r["diff_hi"] == 0 and r["ratio"] == pytest.approx(1.0)


def test_bootstrap_interval_excludes_zero_for_a_clear_gain_and_brackets_it():
    rng = np.random.default_rng(2)
    b = rng.random(2000)
    a = b + 0.1 + rng.normal(0, 0.05, 2000)  # true mean gain 0.1
    r = paired_bootstrap(a, b, seed=3)
    assert r["diff_lo"] < r["diff"] < r["diff_hi"]
    assert 0.09 < r["diff_lo"] and r["diff_hi"] < 0.11
    assert r["p_a_not_better"] == 0.0 and r["ratio_lo"] > 1.0
    # Same inputs, same seed: the same interval.
    assert paired_bootstrap(a, b, seed=3) == r


def test_bootstrap_rejects_unpaired_input():
    with pytest.raises(ValueError, match="equal"):
        paired_bootstrap(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="non-empty"):
        paired_bootstrap(np.ones(0), np.ones(0))


class SeededScorer(FixedScorer):
    """Scores that depend on the seed: the target item up front for odd seeds only."""

    def __init__(self, seed: int, name: str) -> None:
        super().__init__([0.0] * 5)
        self.name, self.seed = name, seed

    def score(self, users):
        rows = np.tile(np.arange(5, dtype=np.float32), (len(users), 1))
        return rows if self.seed % 2 else -rows


def test_evaluate_seeds_reports_mean_sd_and_the_best_peer():
    rows = [(u, str(i), t) for u in "abcdef" for t, i in enumerate([0, 1, 2, 4] if u in "abc" else [1, 2, 3, 4])]
    split = leave_last_out(make_dataset([str(i) for i in range(5)], rows))
    runs = evaluate_seeds(lambda s: [SeededScorer(s, "model"), FixedScorer([5, 4, 3, 2, 1]), FixedScorer([1, 2, 3, 4, 5.0])],
                          split, seeds=[0, 1], model="model", peers=["fixed"])
    model = next(r for r in runs.summary if r["model"] == "model")
    ndcgs = [next(x for x in rep.rows if x["model"] == "model")["ndcg@10"] for rep in runs.reports]
    assert ndcgs[0] != ndcgs[1]
    assert model["ndcg@10"] == pytest.approx(np.mean(ndcgs)) and model["ndcg@10_sd"] == pytest.approx(np.std(ndcgs, ddof=1))
    assert runs.comparison["best_peer"] == "fixed" and runs.comparison["n_users"] == len(split.test_users)
    text = format_seed_table(runs)
    assert "±" in text and "paired bootstrap" in text
    with pytest.raises(ValueError, match="not among"):
        evaluate_seeds(lambda s: [FixedScorer([1, 2, 3, 4, 5.0])], split, seeds=1, model="nope")


def test_tuning_refuses_the_test_target_and_picks_the_best_validation_candidate():
    from export.evaluate.tuning import tune_on_validation

    rows = [(u, str(i), t) for u in "abcdef" for t, i in enumerate([0, 1, 2, 3, 4])]
    ds = make_dataset([str(i) for i in range(5)], rows)
    good, bad = FixedScorer([0, 0, 0, 5.0, 0]), FixedScorer([0, 0, 0, 0, 5.0])  # item 3 is every validation target
    with pytest.raises(ValueError, match="validation"):
        tune_on_validation({"f": [bad, good]}, leave_last_out(ds))
    chosen, log = tune_on_validation({"f": [bad, good]}, leave_last_out(ds, "validation"))
    assert chosen == [good] and [t["chosen"] for t in log] == [False, True]


def test_training_length_follows_the_data():
    from export.config import TeacherConfig, fit_to_data

    cfg = TeacherConfig(history_len=50)
    dense = fit_to_data(cfg, [200] * 1000)  # long histories: windows are full
    sparse = fit_to_data(cfg, [6] * 30000)  # short histories: more users per step
    assert dense.batch_size == 64 and sparse.batch_size == 640
    assert dense.steps == round(40 * 199 * 1000 / 3200) and sparse.steps == round(40 * 5 * 30000 / 3200)
    assert fit_to_data(cfg, [3] * 10).steps == cfg.min_steps  # tiny data: the floor
    fixed = fit_to_data(TeacherConfig(steps=7, batch_size=5), [200] * 1000)
    assert (fixed.steps, fixed.batch_size) == (7, 5)  # explicit settings win
