"""The teachers: a multimodal fusion model (item tower) and a SASRec-style interest model (user
tower), trained jointly on next-item prediction (:mod:`export.train`).

Fusion: ``text`` (transformer over title/tags/description), ``content`` (MLP over the
``edge.features`` vector plus server-only extras) and ``id`` (an embedding for items with
training history) are each projected to ``dim`` and mixed by a learned per-item gate; the sum is
L2-normalised. Items without history have no id modality and the gate ignores it.

Interest: a causal transformer over the user's events, each token the item's embedding plus an
event-kind and a context embedding; the state after the last event plus the embedding of the
*request's* context is the user vector.

The modules are built from their config and sizes alone; the catalogue (content features, which
items have history, the texts' token ids) is held in buffers, so ``state_dict`` is the whole
trained teacher.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edge.context import CONTEXT_DIM
from edge.contract.events import N_KIND_CODES
from export.config import TeacherConfig
from export.models.text_encoder import TextEncoder
from export.models.text_wordllama import WordLlamaText


class FusionTeacher(nn.Module):
    """Item tower: gated sum of text, content and id modalities -> unit ``dim`` vector.

    :param text: the text encoder over the catalogue's texts (one per item, catalogue order).
    :param feature_dim: width of the content input; fill it with :meth:`set_catalogue`.
    """

    def __init__(self, cfg: TeacherConfig, text: TextEncoder | WordLlamaText, feature_dim: int) -> None:
        super().__init__()
        n, f = text.n_texts, feature_dim
        self.text = text
        self.register_buffer("features", torch.zeros(n, f))
        self.register_buffer("mean", torch.zeros(f))
        self.register_buffer("std", torch.ones(f))
        self.content = nn.Sequential(nn.Linear(f, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, cfg.dim))
        self.ids = nn.Embedding(n, cfg.dim)
        nn.init.normal_(self.ids.weight, std=0.02)
        self.register_buffer("has_id", torch.zeros(n, dtype=torch.bool))
        self.gate = nn.Linear(3 * cfg.dim, 3)
        self.id_dropout = cfg.id_dropout
        # Text vectors of every item, refreshed for a subset each step (the text transformer is
        # the costly part; the content and id paths are recomputed every step).
        self.register_buffer("text_cache", torch.zeros(n, cfg.dim), persistent=False)

    @torch.no_grad()
    def set_catalogue(self, features: np.ndarray, has_history: np.ndarray) -> None:
        """Hold the catalogue's ``(n_items, feature_dim)`` content features (and their per-column
        mean and std; constant columns get std 1) and which items have training history."""
        feats = torch.from_numpy(np.ascontiguousarray(features, np.float32))
        std = feats.std(0)
        self.features.copy_(feats)
        self.mean.copy_(feats.mean(0))
        self.std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))
        self.has_id.copy_(torch.from_numpy(np.asarray(has_history, bool)))

    @torch.no_grad()
    def refresh_text(self, batch: int = 512) -> None:
        """Recompute every item's cached text vector."""
        n = self.text_cache.shape[0]
        for s in range(0, n, batch):
            self.text_cache[s : s + batch] = self.text(torch.arange(s, min(s + batch, n)))

    def forward(self, rows: torch.Tensor, fresh_text: torch.Tensor | None = None) -> torch.Tensor:
        """Unit vectors of catalogue ``rows``; ``fresh_text`` are rows whose text vector is
        recomputed with gradients (others come from the cache)."""
        text = self.text_cache[rows]
        if fresh_text is not None and len(fresh_text):
            vec = self.text(fresh_text)
            self.text_cache[fresh_text] = vec.detach()
            pos = torch.full((self.text_cache.shape[0],), -1, dtype=torch.long)
            pos[rows] = torch.arange(len(rows))
            at = pos[fresh_text]
            ok = at >= 0
            text = text.index_put((at[ok],), vec[ok])
        content = self.content((self.features[rows] - self.mean) / self.std)
        ids = self.ids(rows)
        present = self.has_id[rows]
        if self.training and self.id_dropout > 0:
            # Teach the content and text paths to stand alone: they are all a new item has.
            present = present & (torch.rand(len(rows)) >= self.id_dropout)
        ids = ids * present.unsqueeze(-1)
        logits = self.gate(torch.cat([text, content, ids], dim=-1))
        logits = logits.masked_fill(torch.stack([torch.zeros_like(present), torch.zeros_like(present), ~present], -1), -1e4)
        g = torch.softmax(logits, dim=-1)
        z = g[:, :1] * text + g[:, 1:2] * content + g[:, 2:] * ids
        return F.normalize(z, dim=-1)


class InterestTeacher(nn.Module):
    """SASRec: causal self-attention over event tokens (item + kind + context + position)."""

    def __init__(self, cfg: TeacherConfig) -> None:
        super().__init__()
        self.position = nn.Embedding(cfg.history_len, cfg.dim)
        self.kind = nn.Embedding(N_KIND_CODES, cfg.dim, padding_idx=0)  # event codes; 0 pads
        # Item vectors are unit length and enter scaled by sqrt(dim) (as in SASRec); position and
        # kind start small so they do not drown the items.
        nn.init.normal_(self.position.weight, std=0.1)
        nn.init.normal_(self.kind.weight, std=0.1)
        with torch.no_grad():
            self.kind.weight[0].zero_()
        self.scale = cfg.dim**0.5
        self.ctx = nn.Linear(CONTEXT_DIM, cfg.dim)
        self.query_ctx = nn.Linear(CONTEXT_DIM, cfg.dim)
        layer = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, cfg.hidden, cfg.dropout, activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.heads = cfg.heads
        causal = torch.triu(torch.ones(cfg.history_len, cfg.history_len, dtype=torch.bool), diagonal=1)
        self.register_buffer("causal", causal, persistent=False)

    def forward(self, item_vecs: torch.Tensor, kinds: torch.Tensor, ctx: torch.Tensor, query_ctx: torch.Tensor) -> torch.Tensor:
        """User vectors after every position: ``(B, L, dim)`` unit vectors.

        :param item_vecs: ``(B, L, dim)`` item vectors (zeros at padding, ``kinds == 0``).
        :param query_ctx: ``(B, L, CONTEXT_DIM)`` context of the event each position predicts.
        """
        L = item_vecs.shape[1]
        pad = kinds == 0
        x = item_vecs * self.scale + self.kind(kinds) + self.ctx(ctx) * (~pad).unsqueeze(-1) + self.position.weight[-L:]
        x = self.drop(x)
        # Keys that are padding are hidden; every position may still see itself, so a padded
        # query row never becomes an all-masked (NaN) softmax.
        blocked = self.causal[-L:, -L:].unsqueeze(0) | pad.unsqueeze(1)
        blocked = blocked & ~torch.eye(L, dtype=torch.bool)
        h = self.blocks(x, mask=blocked.repeat_interleave(self.heads, dim=0))
        return F.normalize(self.norm(h) + self.query_ctx(query_ctx), dim=-1)


class Teacher(nn.Module):
    """Both teachers together."""

    def __init__(self, cfg: TeacherConfig, text: TextEncoder | WordLlamaText, feature_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.fusion = FusionTeacher(cfg, text, feature_dim)
        self.interest = InterestTeacher(cfg)

    def user_states(self, table: torch.Tensor, items: torch.Tensor, kinds: torch.Tensor, ctx: torch.Tensor, query_ctx: torch.Tensor) -> torch.Tensor:
        """Run the interest teacher over windows whose item rows index ``table`` (-1 = pad)."""
        vecs = table[items.clamp(min=0)] * (items >= 0).unsqueeze(-1)
        return self.interest(vecs, kinds, ctx, query_ctx)

    @torch.no_grad()
    def item_table(self) -> torch.Tensor:
        """Unit vectors of every catalogue item (eval mode, fresh text)."""
        self.eval()
        self.fusion.refresh_text()
        return self.fusion(torch.arange(self.fusion.features.shape[0]))
