"""Model definitions (PyTorch): a first two-tower recommender.

The item tower maps content features (plus a learned id embedding for catalogue items) to a
unit vector; the interest tower pools the embeddings of a user's recent items with attention
and mixes in the context. Both end in L2 normalisation so scores are cosines.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
import torch.nn.functional as F


@dataclass
class TwoTowerConfig:
    """Sizes of the two towers."""

    feature_dim: int
    n_items: int
    context_dim: int
    dim: int = 64
    hidden: int = 256
    history_len: int = 50
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


class ContentEncoder(nn.Module):
    """Standardise the feature vector, then an MLP to ``dim``. Exported alone as the fusion model."""

    def __init__(self, cfg: TwoTowerConfig) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(cfg.feature_dim))
        self.register_buffer("std", torch.ones(cfg.feature_dim))
        self.mlp = nn.Sequential(
            nn.Linear(cfg.feature_dim, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, cfg.dim)
        )

    def set_stats(self, features: torch.Tensor) -> None:
        """Store per-column mean and std of the training features (constant columns get std 1)."""
        self.mean.copy_(features.mean(0))
        std = features.std(0)
        self.std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp((features - self.mean) / self.std)


class ItemTower(nn.Module):
    """Content encoder plus an id embedding for items seen in training."""

    def __init__(self, cfg: TwoTowerConfig) -> None:
        super().__init__()
        self.content = ContentEncoder(cfg)
        self.ids = nn.Embedding(cfg.n_items, cfg.dim)
        nn.init.normal_(self.ids.weight, std=0.01)

    def forward(self, features: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.content(features) + self.ids(item_idx), dim=-1)


class FusionModel(nn.Module):
    """What the device runs for new content: content features -> unit vector."""

    def __init__(self, content: ContentEncoder) -> None:
        super().__init__()
        self.content = content

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.content(features), dim=-1)


class InterestTower(nn.Module):
    """Attention pooling over recent item vectors (with a padding mask) plus context.

    Inputs: ``history`` (B, L, dim), ``mask`` (B, L) with 1.0 for real items, ``context``
    (B, context_dim). Attention pooling, not a GRU: it quantises cleanly to int8.
    """

    def __init__(self, cfg: TwoTowerConfig) -> None:
        super().__init__()
        self.position = nn.Parameter(torch.zeros(cfg.history_len, cfg.dim))
        self.attn = nn.Linear(cfg.dim, 1)
        self.ctx = nn.Sequential(nn.Linear(cfg.context_dim, cfg.dim), nn.GELU())
        self.out = nn.Sequential(nn.Linear(3 * cfg.dim, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.dim))

    def forward(self, history: torch.Tensor, mask: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        h = history + self.position
        logits = self.attn(h).squeeze(-1) + (mask - 1.0) * 1e4
        weights = torch.softmax(logits, dim=-1) * mask
        pooled = (weights.unsqueeze(-1) * h).sum(1)
        # The last real item is right-aligned at position L-1: a strong next-item signal.
        last = history[:, -1, :]
        z = self.out(torch.cat([pooled, last, self.ctx(context)], dim=-1))
        return F.normalize(z, dim=-1)
