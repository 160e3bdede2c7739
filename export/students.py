"""The students the device runs, and their distillation from the teachers.

* Fusion student: standardise the ``edge.features`` vector, a small MLP, L2-normalise. Distilled
  to the teacher's item embeddings (cosine + in-batch contrastive), so content the device finds
  itself lands in the catalogue's space.
* Interest student: attention pooling over at most ``history_len`` recent item vectors with a
  padding mask, plus the last item and the context. Distilled from the teacher's scores (KL over
  the teacher's top candidates) plus cross-entropy on the true next item. Pooling, not a GRU:
  it quantises cleanly to int8.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from edge.context import CONTEXT_DIM
from export.schedule import one_cycle
from export.sequences import StudentExamples


@dataclass
class StudentConfig:
    """Student sizes and distillation settings."""

    dim: int = 64
    fusion_hidden: int = 256
    interest_hidden: int = 128
    history_len: int = 50
    fusion_steps: int = 1500
    interest_steps: int = 2500
    batch_size: int = 256
    lr: float = 2e-3
    temperature: float = 0.07
    kl_top: int = 100
    kl_weight: float = 0.5
    seed: int = 0
    threads: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


class FusionStudent(nn.Module):
    """Device features -> unit vector in the teacher's item space."""

    def __init__(self, feature_dim: int, cfg: StudentConfig) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(feature_dim))
        self.register_buffer("std", torch.ones(feature_dim))
        self.mlp = nn.Sequential(nn.Linear(feature_dim, cfg.fusion_hidden), nn.GELU(), nn.Linear(cfg.fusion_hidden, cfg.dim))

    def set_stats(self, features: torch.Tensor) -> None:
        """Per-column mean and std of the training features (constant columns get std 1)."""
        self.mean.copy_(features.mean(0))
        std = features.std(0)
        self.std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp((features - self.mean) / self.std), dim=-1)


class InterestStudent(nn.Module):
    """Inputs ``history`` (B, L, dim) right-aligned item vectors, ``mask`` (B, L) 1.0 for real
    items, ``context`` (B, CONTEXT_DIM); output a unit user vector."""

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        self.position = nn.Parameter(torch.zeros(cfg.history_len, cfg.dim))
        self.attn = nn.Linear(cfg.dim, 1)
        self.ctx = nn.Sequential(nn.Linear(CONTEXT_DIM, cfg.dim), nn.GELU())
        self.out = nn.Sequential(nn.Linear(3 * cfg.dim, cfg.interest_hidden), nn.GELU(), nn.Linear(cfg.interest_hidden, cfg.dim))

    def forward(self, history: torch.Tensor, mask: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        h = history + self.position
        logits = self.attn(h).squeeze(-1) + (mask - 1.0) * 1e4
        weights = torch.softmax(logits, dim=-1) * mask
        pooled = (weights.unsqueeze(-1) * h).sum(1)
        # The newest item sits at position L-1 (right-aligned): a strong next-item signal.
        last = history[:, -1, :]
        z = self.out(torch.cat([pooled, last, self.ctx(context)], dim=-1))
        return F.normalize(z, dim=-1)


def distill_fusion(features: np.ndarray, targets: np.ndarray, rows: np.ndarray, cfg: StudentConfig,
                   progress: bool = True) -> tuple[FusionStudent, dict]:
    """Fit the fusion student to the teacher's item vectors.

    :param features: ``(n_items, F)`` device feature vectors of the catalogue.
    :param targets: ``(n_items, dim)`` teacher item vectors (unit length).
    :param rows: the catalogue rows to learn from (e.g. items that are not held out).
    """
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    x = torch.from_numpy(np.ascontiguousarray(features[rows], np.float32))
    y = torch.from_numpy(np.ascontiguousarray(targets[rows], np.float32))
    model = FusionStudent(x.shape[1], cfg)
    model.set_stats(x)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = one_cycle(opt, cfg.lr, cfg.fusion_steps)
    t0 = time.perf_counter()
    losses = []
    model.train()
    for _ in tqdm(range(cfg.fusion_steps), desc="distil fusion", unit="step", disable=not progress):
        b = torch.from_numpy(rng.integers(0, len(x), size=min(cfg.batch_size, len(x))))
        s, t = model(x[b]), y[b]
        cos = 1.0 - (s * t).sum(-1).mean()
        # In-batch ranking: each student vector must pick its own teacher vector out of the batch.
        contrast = F.cross_entropy(s @ t.T / cfg.temperature, torch.arange(len(b)))
        loss = cos + 0.1 * contrast
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
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
    """
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    table = torch.from_numpy(np.ascontiguousarray(item_vectors, np.float32))
    t_users = torch.from_numpy(np.ascontiguousarray(teacher_users, np.float32))
    model = InterestStudent(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-5)
    sched = one_cycle(opt, cfg.lr, cfg.interest_steps)
    k = min(cfg.kl_top, table.shape[0])
    t0 = time.perf_counter()
    losses = []
    model.train()
    for _ in tqdm(range(cfg.interest_steps), desc="distil interest", unit="step", disable=not progress):
        b = rng.integers(0, len(ex), size=min(cfg.batch_size, len(ex)))
        idx = torch.from_numpy(ex.history[b])
        mask = torch.from_numpy(ex.mask[b])
        hist = table[idx.clamp(min=0)] * mask.unsqueeze(-1)
        s_user = model(hist, mask, torch.from_numpy(ex.context[b]))
        s_logits = s_user @ table.T / cfg.temperature
        with torch.no_grad():
            t_logits = t_users[b] @ table.T / cfg.temperature
            t_top, top_idx = t_logits.topk(k, dim=-1)
        kl = F.kl_div(torch.log_softmax(s_logits.gather(-1, top_idx), -1), torch.log_softmax(t_top, -1), log_target=True, reduction="batchmean")
        ce = F.cross_entropy(s_logits, torch.from_numpy(ex.target[b]))
        loss = cfg.kl_weight * kl + (1 - cfg.kl_weight) * ce
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return model, {"steps": cfg.interest_steps, "loss_last": float(np.mean(losses[-20:])), "train_s": time.perf_counter() - t0,
                   "examples": int(len(ex))}
