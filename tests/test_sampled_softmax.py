"""Sampled softmax with logQ correction for catalogues past ``max_candidates``: the correction
is each candidate's real inclusion probability, and a teacher trained that way learns."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import tiny_build_config

torch = pytest.importorskip("torch", reason="training needs the server side: pip install 'edgerec[export]'")


def test_log_q_is_the_probability_of_being_in_the_sample():
    from export.train import sample_log_q

    rng = np.random.default_rng(0)
    n, events, uniform, trials = 50, 30, 10, 20_000
    freq = rng.dirichlet(np.full(n, 0.3))
    seen = np.zeros(n)
    for _ in range(trials):
        drawn = np.concatenate([rng.choice(n, size=events, p=freq), rng.integers(0, n, size=uniform)])
        seen[np.unique(drawn)] += 1
    want = seen / trials
    got = sample_log_q(torch.from_numpy(freq), events, uniform, n).exp().numpy()
    # 20,000 trials: the binomial standard error is at most 0.0036.
    np.testing.assert_allclose(got, want, atol=0.02)
    assert (got <= 1.0).all() and (got > 0).all()


def test_a_teacher_trained_on_sampled_candidates_learns(tiny_dataset):
    from export.data.split import leave_last_out
    from export.features import catalogue_features
    from export.sequences import user_events
    from export.train import train_teacher

    cfg = tiny_build_config().teacher
    split = leave_last_out(tiny_dataset)
    events = user_events(split)
    feats = catalogue_features(tiny_dataset.items, progress=False)
    n = len(tiny_dataset.items)
    sampled = type(cfg)(**{**cfg.__dict__, "max_candidates": n // 4})  # forces the sampled path
    model, log = train_teacher(events, tiny_dataset.items, feats, sampled, progress=False)
    assert log["loss_last"] < log["loss_first"]
    assert torch.isfinite(model.item_table()).all()
