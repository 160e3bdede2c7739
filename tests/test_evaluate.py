"""Leave-last-out split and evaluation metrics: hand-computed cases, planted structure, MovieLens."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edge.errors import DataError
from export.data.contract import Dataset, Interactions, Item
from export.data.split import LeaveLastOut, leave_last_out
from export.evaluate import (
    EASEScorer,
    ItemKNNScorer,
    PopularityScorer,
    default_baselines,
    evaluate,
)

from tests.conftest import shared_data


def make_dataset(item_ids, rows) -> Dataset:
    """rows: (user, item, timestamp[, event]) tuples."""
    full = [(u, i, t, e[0] if e else "play", math.nan) for u, i, t, *e in rows]
    return Dataset([Item(i, f"title {i}") for i in item_ids], Interactions.from_rows(full))


class FixedScorer:
    """The same score row for every user."""

    name = "fixed"

    def __init__(self, row):
        self.row = np.asarray(row, dtype=np.float32)

    def fit(self, split: LeaveLastOut) -> None:
        pass

    def score(self, users):
        return np.tile(self.row, (len(users), 1))


class OracleScorer:
    """Knows the targets; optionally scores the user's training items even higher."""

    def __init__(self, cheat_with_training=False):
        self.name = "oracle"
        self.cheat = cheat_with_training

    def fit(self, split: LeaveLastOut) -> None:
        self.split = split
        self.target = dict(zip(split.test_users.tolist(), split.test_items.tolist()))

    def score(self, users):
        out = np.zeros((len(users), self.split.n_items), dtype=np.float32)
        for row, u in enumerate(users):
            out[row, self.target[int(u)]] = 1.0
            if self.cheat:
                out[row, self.split.train[int(u)].indices] = 2.0
        return out


class RandomScorer:
    name = "random"

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)

    def fit(self, split: LeaveLastOut) -> None:
        self.n_items = split.n_items

    def score(self, users):
        return self.rng.random((len(users), self.n_items), dtype=np.float32)


# 3 users, 5 items. Targets: u1 -> 2, u2 -> 4, u3 -> 3. Train counts 2, 1, 0, 1, 0 (n_train 4).
TINY_ROWS = [
    ("u1", "0", 100), ("u1", "1", 200), ("u1", "2", 300),
    ("u2", "3", 100), ("u2", "4", 200),
    ("u3", "0", 100), ("u3", "3", 200),
]  # fmt: skip
TINY_SCORES = [0.9, 0.8, 0.1, 0.7, 0.5]


@pytest.fixture
def tiny() -> LeaveLastOut:
    return leave_last_out(make_dataset(["0", "1", "2", "3", "4"], TINY_ROWS))


def test_tiny_split_is_as_planned(tiny):
    assert tiny.user_ids == ["u1", "u2", "u3"]
    assert tiny.test_users.tolist() == [0, 1, 2]
    assert tiny.test_items.tolist() == [2, 4, 3]
    assert tiny.test_timestamps.tolist() == [300, 200, 200]
    assert tiny.train.toarray().tolist() == [[1, 1, 0, 0, 0], [0, 0, 0, 1, 0], [1, 0, 0, 0, 0]]
    assert tiny.n_train == 4


def test_metrics_match_hand_computed_values(tiny):
    # Masked rankings: u1 [3, 4, 2] (target rank 2), u2 [0, 1, 4, 2] (rank 2), u3 [1, 3, 4, 2] (rank 1).
    row = evaluate([FixedScorer(TINY_SCORES)], tiny, k=2).rows[0]
    assert row["hr@2"] == pytest.approx(1 / 3)
    assert row["ndcg@2"] == pytest.approx((1 / math.log2(3)) / 3)
    assert row["mrr"] == pytest.approx((1 / 3 + 1 / 3 + 1 / 2) / 3)
    # Top-2 lists [3, 4], [0, 1], [1, 3]: items {0, 1, 3, 4} of 5.
    assert row["coverage@2"] == pytest.approx(0.8)
    # -log2 p: item 0 -> 1 bit (2/4), items 1, 3 -> 2 bits, items 2, 4 (count 0, taken as 1) -> 2 bits.
    assert row["novelty@2"] == pytest.approx((2.0 + 1.5 + 2.0) / 3)
    # Default vectors are the train columns: cos(3, 4) = 0 (item 4 unseen), cos(0, 1) = 1/sqrt2, cos(1, 3) = 0.
    assert row["diversity@2"] == pytest.approx((1.0 + (1 - 1 / math.sqrt(2)) + 1.0) / 3)
    assert row["n_users"] == 3


def test_diversity_uses_given_item_vectors(tiny):
    vectors = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1]], dtype=np.float64)
    row = evaluate([FixedScorer(TINY_SCORES)], tiny, k=2, item_vectors=vectors * 3.0).rows[0]
    # cos(3, 4) = 1/sqrt2, cos(0, 1) = 1, cos(1, 3) = 0.
    assert row["diversity@2"] == pytest.approx(((1 - 1 / math.sqrt(2)) + 0.0 + 1.0) / 3)


def test_score_ties_are_broken_by_item_index(tiny):
    # All equal: u1 ranks [2, 3, 4] -> target 2 first; u2 [0, 1, 2, 4] -> rank 3; u3 [1, 2, 3, 4] -> rank 2.
    row = evaluate([FixedScorer([0.0] * 5)], tiny, k=1).rows[0]
    assert row["hr@1"] == pytest.approx(1 / 3)
    assert row["mrr"] == pytest.approx((1 + 1 / 4 + 1 / 3) / 3)


def test_oracle_scores_perfectly(tiny):
    row = evaluate([OracleScorer()], tiny).rows[0]
    assert row["hr@10"] == row["ndcg@10"] == row["mrr"] == 1.0


def test_training_items_are_excluded_from_ranking(tiny):
    # Training items score above the target, yet the target still ranks first.
    row = evaluate([OracleScorer(cheat_with_training=True)], tiny, k=1).rows[0]
    assert row["hr@1"] == row["ndcg@1"] == row["mrr"] == 1.0


def test_evaluate_does_not_modify_the_scorers_array(tiny):
    scores = np.tile(np.float32(TINY_SCORES), (3, 1))

    class Shared(FixedScorer):
        def score(self, users):
            return scores[: len(users)]

    evaluate([Shared(TINY_SCORES)], tiny)
    assert np.isfinite(scores).all()


def test_bad_scorer_output_is_named(tiny):
    with pytest.raises(ValueError, match="fixed: score\\(\\) returned shape"):
        evaluate([FixedScorer([1.0, 2.0])], tiny)
    with pytest.raises(ValueError, match="NaN"):
        evaluate([FixedScorer([math.nan] * 5)], tiny)


def test_no_test_users_is_a_data_error():
    split = leave_last_out(make_dataset(["a", "b"], [("u", "a", 1)]))
    with pytest.raises(DataError, match="nothing to evaluate"):
        evaluate([PopularityScorer()], split)


def test_same_second_events_keep_their_log_order():
    # No item order breaks ties: "10" was logged after "9" in the same second, so it is the target.
    split = leave_last_out(make_dataset(["9", "10", "2"], [("u", "2", 1), ("u", "9", 5), ("u", "10", 5)]))
    assert split.item_ids[split.test_items[0]] == "10"
    assert [split.item_ids[i] for i in split.train_sequences[0]] == ["2", "9"]
    # The same events logged the other way round: the other item is the target.
    split = leave_last_out(make_dataset(["9", "10", "2"], [("u", "2", 1), ("u", "10", 5), ("u", "9", 5)]))
    assert split.item_ids[split.test_items[0]] == "9"
    assert [split.item_ids[i] for i in split.train_sequences[0]] == ["2", "10"]


def test_log_order_ties_hold_for_any_ids_and_are_independent_of_catalogue_order():
    rows = [("u", "b", 1), ("u", "a9", 5), ("u", "a10", 5)]
    for catalogue in (["b", "a10", "a9"], ["a9", "a10", "b"]):
        split = leave_last_out(make_dataset(catalogue, rows))
        assert split.item_ids[split.test_items[0]] == "a10"
        assert [split.item_ids[i] for i in split.train_sequences[0]] == ["b", "a9"]


def test_skips_keep_their_place_among_same_second_positives():
    from export.sequences import user_events

    rows = [("u", "a", 5), ("u", "c", 5, "skip"), ("u", "b", 5), ("u", "d", 5)]
    split = leave_last_out(make_dataset(["a", "b", "c", "d"], rows))
    ev = user_events(split)[0]
    assert [split.item_ids[i] for i in ev.items] == ["a", "c", "b"]


def test_validation_target_is_the_second_to_last_new_item():
    rows = [("u", "a", 1), ("u", "b", 2), ("u", "c", 3, "skip"), ("u", "b", 4), ("u", "c", 5), ("u", "d", 6),
            ("w", "a", 1), ("w", "b", 2)]  # fmt: skip
    ds = make_dataset(["a", "b", "c", "d"], rows)
    test, valid = leave_last_out(ds), leave_last_out(ds, "validation")
    assert [test.item_ids[i] for i in test.test_items] == ["d", "b"]
    assert valid.target == "validation" and valid.test_users.tolist() == [0]  # w has one item left
    assert valid.item_ids[valid.test_items[0]] == "c" and valid.test_timestamps.tolist() == [5]
    # Nothing at or after the validation target is visible: not the test target, not the repeat.
    assert [valid.item_ids[i] for i in valid.train_sequences[0]] == ["a", "b", "b"]
    assert [valid.item_ids[i] for i in valid.negatives[0]] == ["c"]
    assert valid.train.toarray().tolist() == [[1, 1, 0, 0], [1, 0, 0, 0]]
    with pytest.raises(ValueError, match="target"):
        leave_last_out(ds, "train")


def test_skips_and_dislikes_are_never_targets_or_positives():
    rows = [
        ("u", "a", 10, "play"), ("u", "c", 15, "skip"), ("u", "b", 20, "like"), ("u", "d", 30, "dislike"),
        ("v", "a", 10, "complete"), ("v", "b", 20, "skip"),
    ]  # fmt: skip
    split = leave_last_out(make_dataset(["a", "b", "c", "d"], rows))
    assert split.user_ids == ["u", "v"]
    assert split.test_users.tolist() == [0]  # v has one positive: training only
    assert split.item_ids[split.test_items[0]] == "b"
    assert split.train.toarray().tolist() == [[1, 0, 0, 0], [1, 0, 0, 0]]
    assert [split.item_ids[i] for i in split.negatives[0]] == ["c"]  # the dislike came after the target
    assert [split.item_ids[i] for i in split.negatives[1]] == ["b"]


def test_target_is_the_last_newly_seen_item_and_later_repeats_are_dropped():
    rows = [("u", "x", 1), ("u", "y", 2), ("u", "y", 3, "complete"), ("u", "x", 4), ("w", "x", 1), ("w", "x", 2)]
    split = leave_last_out(make_dataset(["x", "y"], rows))
    assert split.test_users.tolist() == [0]  # w only ever saw x: no target
    assert split.item_ids[split.test_items[0]] == "y"
    assert split.test_timestamps.tolist() == [2]
    assert split.train_sequences[0].tolist() == [0] and split.train_timestamps[0].tolist() == [1]
    assert split.train_sequences[1].tolist() == [0, 0]  # repeats kept in sequences
    assert split.train.toarray().tolist() == [[1, 0], [1, 0]]


def test_unknown_item_in_log_is_a_data_error():
    ds = make_dataset(["a"], [("u", "a", 1)])
    ds.interactions.item_vocab[0] = "zzz"
    with pytest.raises(DataError, match="'zzz' is not in the catalogue"):
        leave_last_out(ds)


@pytest.fixture(scope="module")
def planted() -> LeaveLastOut:
    """8 groups x 25 items; 30 users per group, each with 8 items of its group and 1 random item."""
    rng = np.random.default_rng(7)
    n_groups, per_group = 8, 25
    rows = []
    for g in range(n_groups):
        for u in range(30):
            items = rng.choice(per_group, size=8, replace=False) + g * per_group
            noise = rng.integers(n_groups * per_group)
            for t, i in enumerate([noise, *items]):
                rows.append((f"g{g}u{u}", str(i), 1000 + t))
    return leave_last_out(make_dataset([str(i) for i in range(n_groups * per_group)], rows))


@pytest.mark.parametrize("model", [EASEScorer(l2=10.0), ItemKNNScorer(k_neighbours=30)], ids=["ease", "item-knn"])
def test_models_beat_random_on_planted_structure(planted, model):
    report = evaluate([model, RandomScorer(seed=1)], planted)
    fitted, rand = report.rows
    assert fitted["hr@10"] > 0.5
    assert fitted["ndcg@10"] > 3 * rand["ndcg@10"]
    assert fitted["mrr"] > 3 * rand["mrr"]


def test_ease_refuses_catalogues_above_its_limit(planted):
    with pytest.raises(ValueError, match="max_items=100"):
        EASEScorer(max_items=100).fit(planted)


def test_report_has_one_row_per_model_and_serialises(planted):
    progress: list[str] = []
    report = evaluate(default_baselines(), planted, progress=progress.append)
    assert [r["model"] for r in report.rows] == ["popularity", "item-knn", "ease"]
    for r in report.rows:
        assert set(r) == {"model", "hr@10", "ndcg@10", "mrr", "coverage@10", "diversity@10", "novelty@10",
                          "fit_s", "score_s", "n_users"}  # fmt: skip
        assert r["fit_s"] >= 0 and r["score_s"] >= 0 and r["n_users"] == 240
    info = json.loads(json.dumps(report.to_json()))
    assert info["n_users"] == 240 and info["n_items"] == 200 and info["n_train"] == planted.n_train
    assert "leave-last-out" in info["protocol"] and len(info["rows"]) == 3
    lines = report.format_table().splitlines()
    assert len(lines) == 2 + 3 and lines[0].split()[:3] == ["model", "hr@10", "ndcg@10"]
    assert len({len(line) for line in lines}) == 1  # aligned
    assert len(progress) == 6


@pytest.fixture(scope="module")
def ml_report():
    from export.data.movielens import load_movielens

    split = leave_last_out(load_movielens(shared_data("movielens-100k", "u.data").parent))
    assert (split.n_users, split.n_items, split.n_train, len(split.test_users)) == (943, 1682, 99_057, 943)
    return {r["model"]: r for r in evaluate(default_baselines(), split).rows}


def test_movielens_popularity_matches_sanity_figures(ml_report):
    pop = ml_report["popularity"]
    # SANITY.md: ties in file order give popularity NDCG@10 0.0450, HR@10 0.0859.
    assert abs(pop["ndcg@10"] - 0.0450) <= 0.002
    assert abs(pop["hr@10"] - 0.0859) <= 0.003


def test_movielens_ease_and_knn_are_in_sane_ranges(ml_report):
    pop, knn, ease = ml_report["popularity"], ml_report["item-knn"], ml_report["ease"]
    assert ease["ndcg@10"] > pop["ndcg@10"] + 0.01
    assert 0.03 < ease["ndcg@10"] < 0.08 and 0.06 < ease["hr@10"] < 0.15
    assert pop["ndcg@10"] < knn["ndcg@10"] < ease["ndcg@10"]
    assert pop["coverage@10"] < knn["coverage@10"] and pop["coverage@10"] < ease["coverage@10"]
    assert pop["novelty@10"] < ease["novelty@10"]
    for row in ml_report.values():
        assert 0 < row["diversity@10"] < 1 and 0 < row["mrr"] < 1
