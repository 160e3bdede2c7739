"""Distilling the students from the teachers: the losses, then one loop per student.

* Fusion student: cosine to the teacher's item embedding plus an in-batch contrastive term, so
  content the device finds itself lands in the catalogue's space; and, given the teacher's
  user vectors of training examples, a ranking term: each user vector must pick its true next
  item out of the catalogue *as the student embeds it from content*. Regressing onto the
  teacher's (mostly id-driven) vectors alone pulls a new item towards the mean; the ranking term
  spends the student's capacity on the content that tells users' choices apart (cold-item NDCG@10
  on ML-100K 0.175 -> 0.266 in the probe, warm cosine to the teacher unchanged at 0.91).
* Interest student: KL divergence to the teacher's scores over the teacher's top candidates,
  plus cross-entropy on the true next item, both scored against the catalogue as the device
  holds it (the dequantised int8 rows).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from export import distributed
from export.config import StudentConfig
from export.models.students import FusionStudent, InterestStudent
from export.sequences import StudentExamples
from export.train import one_cycle, optimiser_step


def fusion_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cosine distance to the teacher's vectors plus 0.1 x in-batch contrastive cross-entropy
    (each student vector must pick its own teacher vector out of the batch).

    :param student: ``(B, dim)`` unit student vectors. :param teacher: ``(B, dim)`` unit targets.
    """
    cos = 1.0 - (student * teacher).sum(-1).mean()
    contrast = F.cross_entropy(student @ teacher.T / temperature, torch.arange(len(student)))
    return cos + 0.1 * contrast


def fusion_rank_loss(model: FusionStudent, x: torch.Tensor, user_vectors: torch.Tensor, targets: torch.Tensor,
                     max_candidates: int, temperature: float, rng: np.random.Generator) -> torch.Tensor:
    """Cross-entropy of each user vector picking its next item among the candidates embedded
    by the student from content (all rows of ``x``, or a random ``max_candidates`` of them
    plus the targets when there are more).

    :param x: ``(R, F)`` content features of the candidate rows; ``targets`` index them.
    """
    if len(x) <= max_candidates:
        cand = torch.arange(len(x))
    else:
        cand = torch.unique(torch.cat([targets, torch.from_numpy(rng.integers(0, len(x), size=max_candidates))]))
    logits = user_vectors @ model(x[cand]).T / temperature
    return F.cross_entropy(logits, torch.searchsorted(cand, targets))


def interest_loss(s_logits: torch.Tensor, t_logits: torch.Tensor, target: torch.Tensor, k: int, kl_weight: float) -> torch.Tensor:
    """``kl_weight`` x KL(teacher || student) over the teacher's top ``k`` items, plus
    ``1 - kl_weight`` x cross-entropy on the true next item.

    :param s_logits: ``(B, n_items)`` student logits. :param t_logits: ``(B, n_items)`` teacher
        logits (no gradient). :param target: ``(B,)`` catalogue rows of the true next items.
    """
    t_top, top_idx = t_logits.topk(k, dim=-1)
    kl = F.kl_div(torch.log_softmax(s_logits.gather(-1, top_idx), -1), torch.log_softmax(t_top, -1), log_target=True, reduction="batchmean")
    ce = F.cross_entropy(s_logits, target)
    return kl_weight * kl + (1 - kl_weight) * ce


class _FusionLoss(torch.nn.Module):
    """The fusion student's step loss as one module, so DistributedDataParallel sees every use
    of the student in the step (the regression batch and the ranking candidates)."""

    def __init__(self, model: FusionStudent, cfg: StudentConfig, text_from: int | None = None) -> None:
        super().__init__()
        self.model, self.cfg, self.text_from = model, cfg, text_from

    def forward(self, x: torch.Tensor, y: torch.Tensor, b: torch.Tensor, users: torch.Tensor | None,
                targets: torch.Tensor | None, rng: np.random.Generator) -> torch.Tensor:
        cfg = self.cfg
        loss = fusion_loss(self.model(x[b]), y[b], cfg.temperature)
        if self.text_from is not None and cfg.fusion_text_only_weight > 0:
            text_only = x[b].clone()
            text_only[:, : self.text_from] = 0.0  # presence flags and media gone: what a query looks like
            loss = loss + cfg.fusion_text_only_weight * fusion_loss(self.model(text_only), y[b], cfg.temperature)
        if users is not None and targets is not None:
            loss = loss + cfg.fusion_rank_weight * fusion_rank_loss(self.model, x, users, targets, cfg.fusion_candidates,
                                                                    cfg.fusion_rank_temperature, rng)
        return loss


def distill_fusion(features: np.ndarray, targets: np.ndarray, rows: np.ndarray, cfg: StudentConfig,
                   progress: bool = True, user_vectors: np.ndarray | None = None,
                   next_items: np.ndarray | None = None, text_from: int | None = None) -> tuple[FusionStudent, dict]:
    """Fit the fusion student to the teacher's item vectors (and, given training examples, to
    rank each example's next item from content).

    :param features: ``(n_items, F)`` device feature vectors of the catalogue.
    :param targets: ``(n_items, dim)`` teacher item vectors (unit length).
    :param rows: the catalogue rows to learn from (e.g. items that are not held out); the
        ranking term's candidates are these rows only.
    :param user_vectors: ``(N, dim)`` the teacher's user vector of each training example.
    :param next_items: ``(N,)`` catalogue row each example engaged with next (all in ``rows``).
    :param text_from: first column of the text features (``spec.item_dim - spec.text_dim``):
        when given, the student also learns each item from its text alone
        (``cfg.fusion_text_only_weight``), the input a steering query gives it on the device.
    :returns: the student (eval mode) and a log with loss, train cosine and seconds.
    """
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    group = distributed.current()
    rng = np.random.default_rng([cfg.seed, group.rank] if group.active else cfg.seed)
    rows = np.asarray(rows, np.int64)
    x = torch.from_numpy(np.ascontiguousarray(features[rows], np.float32))
    y = torch.from_numpy(np.ascontiguousarray(targets[rows], np.float32))
    model = FusionStudent(x.shape[1], cfg)
    model.set_stats(x)
    rank = user_vectors is not None and next_items is not None and len(next_items) > 0 and cfg.fusion_rank_weight > 0
    if rank:
        where = np.full(len(features), -1, np.int64)
        where[rows] = np.arange(len(rows))
        tgt = torch.from_numpy(where[np.asarray(next_items, np.int64)])
        if (tgt < 0).any():
            raise ValueError("next_items must be among rows (a held-out item cannot be a training target)")
        uv = torch.from_numpy(np.ascontiguousarray(user_vectors, np.float32))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = one_cycle(opt, cfg.lr, cfg.fusion_steps)
    t0 = time.perf_counter()
    losses = []
    model.train()
    # Each rank draws from its own shard of items and of examples.
    own_items = group.shard(np.arange(len(x)))
    own_examples = group.shard(np.arange(len(tgt))) if rank else None
    step_loss = group.wrap(_FusionLoss(model, cfg, text_from))
    for _ in tqdm(range(cfg.fusion_steps), desc="distil fusion", unit="step", disable=not progress or not group.is_main):
        b = torch.from_numpy(rng.choice(own_items, size=group.per_rank(min(cfg.batch_size, len(x)))))
        e = torch.from_numpy(rng.choice(own_examples, size=group.per_rank(min(cfg.batch_size, len(tgt))))) if rank else None
        loss = step_loss(x, y, b, uv[e] if rank else None, tgt[e] if rank else None, rng)
        losses.append(optimiser_step(opt, sched, loss))
    model.eval()
    with torch.no_grad():
        fit_cos = float((model(x) * y).sum(-1).mean())
    return model, {"steps": cfg.fusion_steps, "loss_last": float(np.mean(losses[-20:])), "train_cosine": fit_cos,
                   "train_s": time.perf_counter() - t0, "items": int(len(rows))}


def distill_interest(ex: StudentExamples, item_vectors: np.ndarray, teacher_users: np.ndarray, cfg: StudentConfig,
                     progress: bool = True) -> tuple[InterestStudent, dict]:
    """Fit the interest student to the teacher's scores and the true next items.

    :param item_vectors: ``(n_items, dim)`` catalogue vectors as the device sees them (the
        dequantised int8 catalogue), used for histories and for scoring.
    :param teacher_users: ``(len(ex), dim)`` the teacher's user vector for each example.
    :returns: the student (eval mode) and a log with loss and seconds.
    """
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    group = distributed.current()
    rng = np.random.default_rng([cfg.seed, group.rank] if group.active else cfg.seed)
    table = torch.from_numpy(np.ascontiguousarray(item_vectors, np.float32))
    t_users = torch.from_numpy(np.ascontiguousarray(teacher_users, np.float32))
    model = InterestStudent(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-5)
    sched = one_cycle(opt, cfg.lr, cfg.interest_steps)
    k = min(cfg.kl_top, table.shape[0])
    t0 = time.perf_counter()
    losses = []
    model.train()
    net = group.wrap(model)
    own = group.shard(np.arange(len(ex)))
    for _ in tqdm(range(cfg.interest_steps), desc="distil interest", unit="step", disable=not progress or not group.is_main):
        b = rng.choice(own, size=group.per_rank(min(cfg.batch_size, len(ex))))
        # The history rows as the device feeds them: item vectors, zero where the mask pads.
        mask = torch.from_numpy(ex.mask[b])
        hist = table[torch.from_numpy(ex.history[b]).clamp(min=0)] * mask.unsqueeze(-1)
        s_logits = net(hist, mask, torch.from_numpy(ex.context[b])) @ table.T / cfg.temperature
        with torch.no_grad():
            t_logits = t_users[b] @ table.T / cfg.temperature
        loss = interest_loss(s_logits, t_logits, torch.from_numpy(ex.target[b]), k, cfg.kl_weight)
        losses.append(optimiser_step(opt, sched, loss))
    model.eval()
    return model, {"steps": cfg.interest_steps, "loss_last": float(np.mean(losses[-20:])), "train_s": time.perf_counter() - t0,
                   "examples": int(len(ex))}
