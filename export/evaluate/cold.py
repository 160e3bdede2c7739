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


def cold_item_probe(split: LeaveLastOut, items: Sequence[Item], features: np.ndarray, teacher_features: np.ndarray,
                    cfg: BuildConfig) -> dict:
    """Train without the cold items and rank them from content; returns the report section.

    :param features: device feature vectors (the fusion student's input and the baseline's).
    :param teacher_features: the fusion teacher's richer content input.
    """
    rng = np.random.default_rng(cfg.teacher.seed + 7)
    n = split.n_items
    cold = np.sort(rng.choice(n, size=max(1, int(round(cfg.cold_fraction * n))), replace=False))
    is_cold = np.zeros(n, bool)
    is_cold[cold] = True
    # Relevant cold items per user: any positive event, training or held-out target.
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
    section: dict = {"fraction": cfg.cold_fraction, "n_cold_items": int(len(cold)), "n_users": len(users),
                     "protocol": "cold items ranked among themselves for each user with a positive event on one; "
                                 "user vector from the user's warm training history; NDCG@10 over the set of their cold items"}
    if not users:
        section["note"] = "no user interacted with a cold item"
        return section
    users_a = np.array(users)
    events = user_events(split, exclude_items=cold)
    steps = cfg.cold_steps or max(1, fit_to_data(cfg.teacher, [len(ev.items) for ev in events]).steps // 2)
    tcfg = dataclasses.replace(cfg.teacher, steps=steps)
    teacher, log = train_teacher(events, items, teacher_features, tcfg, progress=cfg.progress, exclude_items=cold)
    table = teacher.item_table().numpy()
    warm = np.flatnonzero(~is_cold)
    # The student learns as in the build, from warm examples only (held-out items are never
    # candidates, targets or history).
    ex = student_examples(events, cfg.student.history_len)
    ex_users = teacher_user_vectors(teacher, torch.from_numpy(table), events, ex.users, ex.ends, ex.context)
    student, _ = distill_fusion(features, table, warm, cfg.student, cfg.progress, ex_users, ex.target)
    with torch.no_grad():
        cold_vecs = student(torch.from_numpy(np.ascontiguousarray(features[cold], np.float32))).numpy()
    # The request context: the user's last warm event (no cold event is visible to the model).
    ends = np.array([len(events[u].items) for u in users_a])
    last_ts = np.array([events[u].timestamps[-1] if len(events[u].timestamps) else 0 for u in users_a])
    uv = teacher_user_vectors(teacher, torch.from_numpy(table), events, users_a, ends, context_matrix(last_ts))
    rows = []
    ndcg, hr = set_metrics(uv @ cold_vecs.T, relevant)
    rows.append({"model": "fusion student (content only) + teacher user vector", "ndcg@10": ndcg, "hr@10": hr})
    # The teacher's own vector for an item without history (text + content, no id).
    ndcg, hr = set_metrics(uv @ table[cold].T, relevant)
    rows.append({"model": "teacher item tower without id (text + content)", "ndcg@10": ndcg, "hr@10": hr})
    std = features[warm].std(0)
    z = (features - features[warm].mean(0)) / np.where(std > 1e-6, std, 1.0)
    z = unit_rows(z, np.float64)
    prof = np.stack([z[events[u].items[events[u].positive]].mean(0) if events[u].positive.any() else np.zeros(z.shape[1]) for u in users_a])
    ndcg, hr = set_metrics(prof @ z[cold].T, relevant)
    rows.append({"model": "content-only baseline (cosine of raw features)", "ndcg@10": ndcg, "hr@10": hr})
    rand = rng.random((len(users_a), len(cold)))
    ndcg, hr = set_metrics(rand, relevant)
    rows.append({"model": "random order", "ndcg@10": ndcg, "hr@10": hr})
    section.update({"teacher_steps": steps, "teacher_train_s": log["train_s"], "rows": rows})
    return section
