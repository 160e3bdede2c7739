"""Cold items: how well does the device rank content nobody has interacted with yet?

A random ``cold_fraction`` of the catalogue is held out of training entirely: a second teacher
and fusion student learn without any event on those items, and the items are never candidates or
negatives of either (``train_teacher(exclude_items=...)``), so the probe sees what a device sees
when a new item arrives. For every user with a positive event
on a cold item, the cold items are ranked for the user's warm history: item vectors from the
fusion student (content only, as on the device), user vectors from the teacher. The baseline in
the same run is content-only: cosine between the mean standardised feature vector of the user's
warm items and each cold item's feature vector. NDCG@10 and HR@10 over each user's set of cold
items come from :func:`export.evaluate.metrics.set_metrics`, the held-out evaluation's metrics.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch

from edge.context import context_matrix
from edge.contract.vectors import unit_rows
from export.config import BuildConfig, fit_to_data
from export.data.contract import Item
from export.data.split import LeaveLastOut
from export.distill import distill_fusion
from export.evaluate.metrics import set_metrics
from export.sequences import student_examples, user_events
from export.train import teacher_user_vectors, train_teacher


@dataclasses.dataclass
class ColdSetup:
    """What the probe trains and holds out, for the report here and for experiments
    (``benchmarks/cold_content.py``) that rank the same cold items another way."""

    cold: np.ndarray            # held-out item indices (sorted)
    warm: np.ndarray            # every other item
    users: np.ndarray           # users with a positive event on a cold item
    relevant: list[np.ndarray]  # per user: positions in ``cold`` of their cold positives
    events: list                # warm-only event sequences (export.sequences.user_events)
    table: np.ndarray           # the cold teacher's item vectors (warm items learnt from events)
    cold_vecs: np.ndarray       # fusion student output for the cold items (content only)
    user_vecs: np.ndarray       # teacher user vectors of ``users`` from their warm history
    steps: int
    train_s: float


def cold_split(split: LeaveLastOut, cfg: BuildConfig) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The held-out items, and the users with a positive event on one (any positive event,
    training or held-out target) with positions in the held-out set of their cold items."""
    rng = np.random.default_rng(cfg.teacher.seed + 7)
    n = split.n_items
    cold = np.sort(rng.choice(n, size=max(1, int(round(cfg.cold_fraction * n))), replace=False))
    is_cold = np.zeros(n, bool)
    is_cold[cold] = True
    relevant, users = [], []
    for u in range(split.n_users):
        seen = list(split.train_sequences[u])
        k = np.searchsorted(split.test_users, u)
        if k < len(split.test_users) and split.test_users[k] == u:
            seen.append(split.test_items[k])
        rel = np.unique([i for i in seen if is_cold[i]])
        if len(rel):
            relevant.append(np.searchsorted(cold, rel))
            users.append(u)
    return cold, np.array(users, np.int64), relevant


def train_cold_models(split: LeaveLastOut, items: Sequence[Item], features: np.ndarray, teacher_features: np.ndarray,
                      cfg: BuildConfig) -> ColdSetup | None:
    """Train a teacher and a fusion student without the cold items; ``None`` when no user
    interacted with a cold item."""
    cold, users_a, relevant = cold_split(split, cfg)
    if not len(users_a):
        return None
    warm = np.setdiff1d(np.arange(split.n_items), cold)
    events = user_events(split, exclude_items=cold)
    steps = cfg.cold_steps or max(1, fit_to_data(cfg.teacher, [len(ev.items) for ev in events]).steps // 2)
    tcfg = dataclasses.replace(cfg.teacher, steps=steps)
    teacher, log = train_teacher(events, items, teacher_features, tcfg, progress=cfg.progress, exclude_items=cold)
    table = teacher.item_table().numpy()
    # The student learns as in the build, from warm examples only (held-out items are never
    # candidates, targets or history).
    ex = student_examples(events, cfg.student.history_len)
    ex_users = teacher_user_vectors(teacher, torch.from_numpy(table), events, ex.users, ex.ends, ex.context)
    student, _ = distill_fusion(features, table, warm, cfg.student, cfg.progress, ex_users, ex.target,
                                text_from=cfg.spec.item_dim - cfg.spec.text_dim)
    with torch.no_grad():
        cold_vecs = student(torch.from_numpy(np.ascontiguousarray(features[cold], np.float32))).numpy()
    # The request context: the user's last warm event (no cold event is visible to the model).
    ends = np.array([len(events[u].items) for u in users_a])
    last_ts = np.array([events[u].timestamps[-1] if len(events[u].timestamps) else 0 for u in users_a])
    uv = teacher_user_vectors(teacher, torch.from_numpy(table), events, users_a, ends, context_matrix(last_ts))
    return ColdSetup(cold, warm, users_a, relevant, events, table, cold_vecs, uv, steps, log["train_s"])


def raw_feature_scores(setup: ColdSetup, features: np.ndarray) -> np.ndarray:
    """The content-only baseline: cosine between the mean standardised feature vector of each
    user's warm positives and each cold item's (standardised on warm items)."""
    warm = setup.warm
    std = features[warm].std(0)
    z = (features - features[warm].mean(0)) / np.where(std > 1e-6, std, 1.0)
    z = unit_rows(z, np.float64)
    ev = setup.events
    prof = np.stack([z[ev[u].items[ev[u].positive]].mean(0) if ev[u].positive.any() else np.zeros(z.shape[1]) for u in setup.users])
    return prof @ z[setup.cold].T


def cold_item_probe(split: LeaveLastOut, items: Sequence[Item], features: np.ndarray, teacher_features: np.ndarray,
                    cfg: BuildConfig) -> dict:
    """Train without the cold items and rank them from content; returns the report section.

    :param features: device feature vectors (the fusion student's input and the baseline's).
    :param teacher_features: the fusion teacher's richer content input.
    """
    n_cold = max(1, int(round(cfg.cold_fraction * split.n_items)))
    section: dict = {"fraction": cfg.cold_fraction, "n_cold_items": n_cold,
                     "protocol": "cold items ranked among themselves for each user with a positive event on one; "
                                 "user vector from the user's warm training history; NDCG@10 over the set of their cold items"}
    setup = train_cold_models(split, items, features, teacher_features, cfg)
    if setup is None:
        section.update(n_users=0, note="no user interacted with a cold item")
        return section
    section["n_users"] = len(setup.users)
    relevant, uv = setup.relevant, setup.user_vecs
    rows = []
    ndcg, hr = set_metrics(uv @ setup.cold_vecs.T, relevant)
    rows.append({"model": "fusion student (content only) + teacher user vector", "ndcg@10": ndcg, "hr@10": hr})
    # The teacher's own vector for an item without history (text + content, no id).
    ndcg, hr = set_metrics(uv @ setup.table[setup.cold].T, relevant)
    rows.append({"model": "teacher item tower without id (text + content)", "ndcg@10": ndcg, "hr@10": hr})
    ndcg, hr = set_metrics(raw_feature_scores(setup, features), relevant)
    rows.append({"model": "content-only baseline (cosine of raw features)", "ndcg@10": ndcg, "hr@10": hr})
    rand = np.random.default_rng(cfg.teacher.seed + 8).random((len(setup.users), len(setup.cold)))
    ndcg, hr = set_metrics(rand, relevant)
    rows.append({"model": "random order", "ndcg@10": ndcg, "hr@10": hr})
    section.update({"teacher_steps": setup.steps, "teacher_train_s": setup.train_s, "rows": rows})
    return section
