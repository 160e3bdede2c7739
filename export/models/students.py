"""The students the device runs (distilled from the teachers in :mod:`export.distill`).

* Fusion student: standardise the ``edge.features`` vector, a small MLP, L2-normalise, so
  content the device finds itself lands in the catalogue's space.
* Interest student: attention pooling over at most ``history_len`` recent item vectors with a
  padding mask, plus the last item and the context (inputs as :mod:`edge.contract.inputs`
  names them). Pooling, not a GRU: it quantises cleanly to int8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edge.context import CONTEXT_DIM
from export.config import StudentConfig


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
