"""The teachers: a multimodal fusion model (item tower) and a SASRec-style interest model (user
tower), trained jointly on next-item prediction with full-softmax cross-entropy.

Fusion: ``text`` (transformer over title/tags/description), ``content`` (MLP over the
``edge.features`` vector plus server-only extras) and ``id`` (an embedding for items with
training history) are each projected to ``dim`` and mixed by a learned per-item gate; the sum is
L2-normalised. Items without history have no id modality and the gate ignores it.

Interest: a causal transformer over the user's events, each token the item's embedding plus an
event-kind and a context embedding; the state after the last event plus the embedding of the
*request's* context is the user vector. Skips and dislikes are inputs and unlikelihood targets
(their probability is pushed down), never positives.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from edge.context import CONTEXT_DIM
from export.data.contract import Item
from export.data.split import LeaveLastOut
from export.schedule import one_cycle
from export.sequences import N_KINDS, POSITIVE_CODES, UserEvents, window
from export.text_encoder import TextEncoder, item_text


@dataclass
class TeacherConfig:
    """Teacher sizes and training settings (defaults: a few thousand items on 2 CPU cores)."""

    dim: int = 64
    hidden: int = 256
    layers: int = 2
    heads: int = 2
    history_len: int = 50
    dropout: float = 0.2
    id_dropout: float = 0.5
    text_model: str | None = None
    text_hidden: int = 64
    text_layers: int = 2
    text_max_len: int = 48
    text_items_per_step: int = 64
    steps: int = 1200
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.07
    max_candidates: int = 20000
    seed: int = 0
    threads: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


class FusionTeacher(nn.Module):
    """Item tower: gated sum of text, content and id modalities -> unit ``dim`` vector."""

    def __init__(self, cfg: TeacherConfig, texts: Sequence[str], features: np.ndarray, has_history: np.ndarray) -> None:
        super().__init__()
        n, f = features.shape
        self.text = TextEncoder(texts, cfg.dim, cfg.text_model, cfg.text_hidden, cfg.text_layers, max_len=cfg.text_max_len)
        feats = torch.from_numpy(np.ascontiguousarray(features, np.float32))
        std = feats.std(0)
        self.register_buffer("features", feats, persistent=False)
        self.register_buffer("mean", feats.mean(0))
        self.register_buffer("std", torch.where(std > 1e-6, std, torch.ones_like(std)))
        self.content = nn.Sequential(nn.Linear(f, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, cfg.dim))
        self.ids = nn.Embedding(n, cfg.dim)
        nn.init.normal_(self.ids.weight, std=0.02)
        self.register_buffer("has_id", torch.from_numpy(np.asarray(has_history, bool)), persistent=False)
        self.gate = nn.Linear(3 * cfg.dim, 3)
        self.id_dropout = cfg.id_dropout
        # Text vectors of every item, refreshed for a subset each step (the text transformer is
        # the costly part; the content and id paths are recomputed every step).
        self.register_buffer("text_cache", torch.zeros(n, cfg.dim), persistent=False)
        self.text_items_per_step = cfg.text_items_per_step

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
        self.kind = nn.Embedding(N_KINDS, cfg.dim, padding_idx=0)
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

    def __init__(self, cfg: TeacherConfig, items: Sequence[Item], features: np.ndarray, has_history: np.ndarray) -> None:
        super().__init__()
        self.cfg = cfg
        self.fusion = FusionTeacher(cfg, [item_text(it) for it in items], features, has_history)
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


def train_teacher(split: LeaveLastOut, events: list[UserEvents], items: Sequence[Item], features: np.ndarray,
                  cfg: TeacherConfig, progress: bool = True,
                  on_step: Callable[[int, "Teacher"], None] | None = None) -> tuple[Teacher, dict]:
    """Fit both teachers on next-event prediction over random windows of the users' events.

    :param on_step: called as ``on_step(step, model)`` after every step (monitoring, curves).

    :returns: the teacher (eval mode) and a log with loss and seconds.
    """
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    n_items = len(items)
    has_history = np.zeros(n_items, bool)
    for ev in events:
        has_history[ev.items[ev.positive]] = True
    model = Teacher(cfg, items, features, has_history)
    model.fusion.refresh_text()
    lengths = np.array([len(ev.items) for ev in events])
    users = np.flatnonzero(lengths >= 2)
    if len(users) == 0:
        raise ValueError("no user has two events: nothing to train the teacher on")
    # Sample users in proportion to how many predictions they offer.
    weights = (lengths[users] - 1) / (lengths[users] - 1).sum()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = one_cycle(opt, cfg.lr, cfg.steps)
    L = cfg.history_len
    full = n_items <= cfg.max_candidates
    positive_codes = torch.tensor(sorted(POSITIVE_CODES))
    losses: list[float] = []
    t0 = time.perf_counter()
    model.train()
    bar = tqdm(range(cfg.steps), desc="teacher", unit="step", disable=not progress)
    for step in bar:
        bu = rng.choice(users, size=cfg.batch_size, p=weights)
        ends = np.array([rng.integers(2, lengths[u] + 1) for u in bu])
        w = window(events, bu, ends, L + 1)
        items_t = torch.from_numpy(w.items)
        kinds_t = torch.from_numpy(w.kinds)
        ctx_t = torch.from_numpy(w.context)
        tgt_items, tgt_kinds = items_t[:, 1:], kinds_t[:, 1:]
        valid = (tgt_kinds > 0) & (kinds_t[:, :-1] > 0)
        is_pos = torch.isin(tgt_kinds, positive_codes) & valid
        is_neg = valid & ~is_pos
        if full:
            cand = torch.arange(n_items)
        else:
            negs = torch.from_numpy(rng.integers(0, n_items, size=cfg.max_candidates // 2))
            cand = torch.unique(torch.cat([items_t[items_t >= 0], negs]))
        # A bounded random subset of candidates gets fresh text vectors with gradients.
        fresh = cand[torch.from_numpy(rng.choice(len(cand), size=min(cfg.text_items_per_step, len(cand)), replace=False))]
        cand_vecs = model.fusion(cand, fresh)
        table = torch.zeros(n_items, cfg.dim).index_put((cand,), cand_vecs)
        states = model.user_states(table, items_t[:, :-1], kinds_t[:, :-1], ctx_t[:, :-1], ctx_t[:, 1:])
        logits = states @ cand_vecs.T / cfg.temperature  # (B, L, C)
        col = torch.searchsorted(cand, tgt_items.clamp(min=0))
        logp = torch.log_softmax(logits, dim=-1)
        picked = logp.gather(-1, col.unsqueeze(-1)).squeeze(-1)
        loss = -(picked * is_pos).sum() / is_pos.sum().clamp(min=1)
        if is_neg.any():
            # Unlikelihood: -log(1 - p(skipped item)).
            p_neg = picked[is_neg].exp().clamp(max=1 - 1e-6)
            loss = loss - torch.log1p(-p_neg).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        if on_step is not None:
            on_step(step + 1, model)
    model.eval()
    log = {
        "steps": cfg.steps,
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

    :param query_ts_ctx: ``(N, CONTEXT_DIM)`` context of each request.
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


def save_teacher(model: Teacher, path: Path) -> None:
    """Checkpoint the teacher's weights and config."""
    torch.save({"config": model.cfg.to_dict(), "state": model.state_dict()}, path)
