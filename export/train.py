"""Fitting the teachers: both towers jointly on next-event prediction, full-softmax
cross-entropy over the catalogue (or a sampled subset of it for very large catalogues).

Each step samples users in proportion to how many predictions they offer, cuts a random window
of their events (:func:`export.sequences.window`), and scores every position's next event:
positives are cross-entropy targets; skips and dislikes are inputs and unlikelihood targets
(their probability is pushed down), never positives.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from export import distributed
from export.config import TeacherConfig, fit_to_data
from export.data.contract import Item
from export.models.teacher import Teacher
from export.models.text_encoder import item_text, new_text_encoder
from export.sequences import POSITIVE_CODES, UserEvents, window


def one_cycle(opt: torch.optim.Optimizer, lr: float, steps: int, warmup: float = 0.05) -> torch.optim.lr_scheduler.OneCycleLR:
    """The learning-rate schedule every trainer here uses (the teachers and both students).

    One-cycle; the warm-up is at least two steps so very short runs (tests) work.
    """
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 4), pct_start=max(warmup, 2.0 / max(steps, 4)))


def optimiser_step(opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler, loss: torch.Tensor,
                   params=None, clip_norm: float | None = None) -> float:
    """One step of every trainer here: backward, optional gradient clipping, optimiser and
    schedule step. :returns: the loss as a float (for the log)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, clip_norm)
    opt.step()
    sched.step()
    return loss.item()


class _TeacherLoss(torch.nn.Module):
    """One step's loss as a module, so DistributedDataParallel sees the whole forward pass:
    next-event cross-entropy over the candidates for positives, unlikelihood for skips.

    With ``log_q`` (sampled candidates) the logits are corrected by each candidate's log
    probability of being in the sample (Bengio & Senecal; Yi et al. 2019, "logQ"), so the
    sampled softmax estimates the full one instead of favouring rare items."""

    def __init__(self, model: Teacher, temperature: float, positive_codes: torch.Tensor) -> None:
        super().__init__()
        self.model, self.temperature = model, temperature
        self.register_buffer("positive_codes", positive_codes, persistent=False)

    def forward(self, items_t: torch.Tensor, kinds_t: torch.Tensor, ctx_t: torch.Tensor, cand: torch.Tensor,
                fresh: torch.Tensor, log_q: torch.Tensor | None = None) -> torch.Tensor:
        model = self.model
        tgt_items, tgt_kinds = items_t[:, 1:], kinds_t[:, 1:]
        valid = (tgt_kinds > 0) & (kinds_t[:, :-1] > 0)
        is_pos = torch.isin(tgt_kinds, self.positive_codes) & valid
        is_neg = valid & ~is_pos
        cand_vecs = model.fusion(cand, fresh)
        # The windows index the candidates (which hold every item in them), not the catalogue:
        # the step's tensors grow with the batch, never with the number of items.
        local = torch.where(items_t >= 0, torch.searchsorted(cand, items_t.clamp(min=0)), -1)
        states = model.user_states(cand_vecs, local[:, :-1], kinds_t[:, :-1], ctx_t[:, :-1], ctx_t[:, 1:])
        # Logits only where there is something to predict: short histories leave most of a
        # window padding, and (positions x catalogue) is the step's largest tensor.
        at = valid.nonzero(as_tuple=True)
        logits = states[at] @ cand_vecs.T / self.temperature  # (N, C)
        if log_q is not None:
            logits = logits - log_q  # sampled softmax: each candidate's log inclusion probability
        col = local[:, 1:][at]
        picked = torch.log_softmax(logits, dim=-1).gather(-1, col.unsqueeze(-1)).squeeze(-1)
        pos_at, neg_at = is_pos[at], is_neg[at]
        loss = -(picked * pos_at).sum() / pos_at.sum().clamp(min=1)
        if neg_at.any():
            # Unlikelihood: -log(1 - p(skipped item)).
            p_neg = picked[neg_at].exp().clamp(max=1 - 1e-6)
            loss = loss - torch.log1p(-p_neg).mean()
        return loss


def sample_log_q(freq: torch.Tensor, n_in_batch: int, n_uniform: int, n_items: int) -> torch.Tensor:
    """log of each candidate's probability of being in a step's sample: drawn as one of the
    ``n_in_batch`` events of the batch windows (each event is item ``i`` with probability
    ``freq[i]``, its share of the training events) or one of ``n_uniform`` uniform draws over
    ``n_items``: ``log(1 - (1 - freq)^n_in_batch (1 - 1/n_items)^n_uniform)``.

    :returns: float32, like ``freq``, at most 0.
    """
    miss = n_in_batch * torch.log1p(-freq.clamp(max=1 - 1e-12)) + n_uniform * np.log1p(-1.0 / max(n_items, 2))
    return torch.log(-torch.expm1(miss)).clamp(min=-50.0).float()


def new_teacher(cfg: TeacherConfig, items: Sequence[Item], features: np.ndarray, has_history: np.ndarray) -> Teacher:
    """A freshly initialised teacher over the catalogue ``items`` with their ``(n_items, F)``
    content ``features``; ``has_history[i]`` says item ``i`` gets an id embedding."""
    text = new_text_encoder([item_text(it) for it in items], cfg.dim, cfg.text_model, cfg.text_hidden, cfg.text_layers,
                            max_len=cfg.text_max_len)
    model = Teacher(cfg, text, features.shape[1])
    model.fusion.set_catalogue(features, has_history)
    return model


def train_teacher(events: list[UserEvents], items: Sequence[Item], features: np.ndarray, cfg: TeacherConfig,
                  progress: bool = True, exclude_items: np.ndarray | None = None) -> tuple[Teacher, dict]:
    """Fit both teachers on next-event prediction over random windows of the users' events.

    :param events: every user's training events (:func:`export.sequences.user_events`).
    :param features: ``(n_items, F)`` the fusion teacher's content input, catalogue order.
    :param exclude_items: catalogue rows that take no part in training at all (the cold-item
        probe's held-out items): never candidates, never negatives, their text never trained.
        The events must not contain them.
    :returns: the teacher (eval mode) and a log with loss and seconds.
    :raises ValueError: no user has two events.
    """
    cfg = fit_to_data(cfg, [len(ev.items) for ev in events])
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    n_items = len(items)
    has_history = np.zeros(n_items, bool)
    for ev in events:
        has_history[ev.items[ev.positive]] = True
    model = new_teacher(cfg, items, features, has_history)
    model.fusion.refresh_text()
    lengths = np.array([len(ev.items) for ev in events])
    users = np.flatnonzero(lengths >= 2)
    if len(users) == 0:
        raise ValueError("no user has two events: nothing to train the teacher on")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = one_cycle(opt, cfg.lr, cfg.steps)
    L = cfg.history_len
    allowed = np.ones(n_items, bool)
    if exclude_items is not None and len(exclude_items):
        allowed[np.asarray(exclude_items)] = False
        if any(not allowed[ev.items].all() for ev in events):
            raise ValueError("exclude_items appear in the training events; drop them first (user_events(exclude_items=...))")
    allowed_rows = np.flatnonzero(allowed)
    full = len(allowed_rows) <= cfg.max_candidates
    if not full and cfg.logq:
        # How often each item appears in the training events: the in-batch part of the sample.
        counts = np.bincount(np.concatenate([ev.items for ev in events]), minlength=n_items).astype(np.float64)
        freq = torch.from_numpy(counts / max(counts.sum(), 1.0))
    group = distributed.current()
    # Each rank trains on its own shard of users, with its own batches of batch/world rows.
    users = group.shard(users)
    weights = (lengths[users] - 1) / (lengths[users] - 1).sum()
    rng = np.random.default_rng([cfg.seed, group.rank] if group.active else cfg.seed)
    batch = group.per_rank(cfg.batch_size)
    step_loss = group.wrap(_TeacherLoss(model, cfg.temperature, torch.tensor(sorted(POSITIVE_CODES))))
    losses: list[float] = []
    n_cand = 0
    t0 = time.perf_counter()
    model.train()
    bar = tqdm(range(cfg.steps), desc="teacher", unit="step", disable=not progress or not group.is_main)
    for step in bar:
        bu = rng.choice(users, size=batch, p=weights)
        ends = np.array([rng.integers(2, lengths[u] + 1) for u in bu])
        w = window(events, bu, ends, L + 1)
        items_t = torch.from_numpy(w.items)
        log_q = None
        if full:
            cand = torch.from_numpy(allowed_rows)
        else:
            n_negs = cfg.max_candidates // 2
            negs = torch.from_numpy(allowed_rows[rng.integers(0, len(allowed_rows), size=n_negs)])
            in_batch = items_t[items_t >= 0]
            cand = torch.unique(torch.cat([in_batch, negs]))
            if cfg.logq:
                log_q = sample_log_q(freq[cand], len(in_batch), n_negs, len(allowed_rows))
        # A bounded random subset of candidates gets fresh text vectors with gradients.
        fresh = cand[torch.from_numpy(rng.choice(len(cand), size=min(cfg.text_items_per_step, len(cand)), replace=False))]
        n_cand += len(cand)
        loss = step_loss(items_t, torch.from_numpy(w.kinds), torch.from_numpy(w.context), cand, fresh, log_q)
        losses.append(optimiser_step(opt, sched, loss, model.parameters(), clip_norm=5.0))
        if step % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
    model.eval()
    log = {
        "steps": cfg.steps,
        "batch_size": cfg.batch_size,
        "processes": group.world,
        "softmax": "full" if full else ("sampled, logQ-corrected" if cfg.logq else "sampled, uncorrected"),
        "mean_candidates": n_cand / max(cfg.steps, 1),
        "steps_per_s": cfg.steps / max(time.perf_counter() - t0, 1e-9),
        "rule": "steps and batch from the data (export.config.fit_to_data)",
        "loss_first": float(np.mean(losses[:20])),
        "loss_last": float(np.mean(losses[-20:])),
        "train_s": time.perf_counter() - t0,
        "items_with_history": int(has_history.sum()),
        "text_model": cfg.text_model or "trained from scratch on the catalogue text",
    }
    return model, log


@torch.no_grad()
def teacher_user_vectors(model: Teacher, table: torch.Tensor, events: list[UserEvents], users: np.ndarray,
                         ends: np.ndarray, query_ts_ctx: np.ndarray, batch: int = 512) -> np.ndarray:
    """User vectors predicting event ``ends[i]`` from the ``history_len`` events before it.

    :param table: ``(n_items, dim)`` item vectors the events index.
    :param query_ts_ctx: ``(N, CONTEXT_DIM)`` context of each request.
    :returns: ``(N, dim)`` float32 unit vectors.
    """
    model.eval()
    L = model.cfg.history_len
    out = []
    for s in range(0, len(users), batch):
        w = window(events, users[s : s + batch], ends[s : s + batch], L)
        q = np.repeat(query_ts_ctx[s : s + batch, None, :], L, axis=1)
        st = model.user_states(table, torch.from_numpy(w.items), torch.from_numpy(w.kinds), torch.from_numpy(w.context), torch.from_numpy(q))
        out.append(st[:, -1].numpy())
    return np.concatenate(out) if out else np.zeros((0, model.cfg.dim), np.float32)
