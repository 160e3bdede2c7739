"""SASRec (Kang & McAuley, ICDM 2018) as a sequential baseline, trained with a full softmax.

A causal self-attention model over each user's most recent positive training items:

* input ``x_t = E[item_t] + P[t]`` over a right-aligned window of ``history_len`` items (left
  padded; row 0 of ``E`` is padding), learnable position embeddings ``P``, dropout;
* ``blocks`` pre-LayerNorm transformer blocks (``heads``-head causal self-attention, then a
  two-layer ReLU feed-forward of width ``dim``), each sub-layer residual with dropout; padded
  positions are never attended to, and are zeroed after every block;
* a final LayerNorm; the score of item ``j`` at step ``t`` is ``h_t . E[j]`` (the input item
  embedding is shared with the output).

Training differs from the paper's binary cross-entropy with one sampled negative: every
non-padded position of a window predicts the next item with a cross-entropy over the *whole*
catalogue (the stronger, now usual choice). Each step draws ``batch_size`` users uniformly (users
with at least two training events) and one window per user: for a sequence longer than
``history_len + 1``, a window of ``history_len + 1`` items ending at a uniformly drawn position
(a random crop), otherwise the whole sequence. Adam (``lr``, betas 0.9/0.98), no weight decay.

``score`` runs each user's last ``history_len`` training items and returns the scores at the
last position. Everything is seeded (``seed`` drives numpy's sampling and torch's
initialisation and dropout, inside a forked torch RNG so the caller's is untouched); ``threads``
bounds torch's intra-op threads during ``fit`` and ``score`` and is restored afterwards.

Usage::

    scorer = SASRecScorer(steps=12_000, seed=0, threads=1, progress=True)
    report = evaluate([scorer], leave_last_out(dataset))
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from export.data.split import LeaveLastOut

__all__ = ["SASRecConfig", "SASRec", "SASRecScorer"]


@dataclass
class SASRecConfig:
    """Model and training settings (defaults: the paper's architecture, 64-d, 2 blocks, 1 head)."""

    history_len: int = 50
    dim: int = 64
    blocks: int = 2
    heads: int = 1
    dropout: float = 0.2
    batch_size: int = 32
    steps: int = 12_000
    lr: float = 1e-3
    score_batch: int = 256


class SASRec(nn.Module):
    """The network: item and position embeddings, causal blocks, a final LayerNorm.

    Items are ``1..n_items`` (0 pads); :meth:`forward` takes ``(B, L)`` int64 and returns
    ``(B, L, dim)`` hidden states, :meth:`logits` maps them to ``(..., n_items)`` scores.
    """

    def __init__(self, n_items: int, cfg: SASRecConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.item = nn.Embedding(n_items + 1, cfg.dim, padding_idx=0)
        self.position = nn.Embedding(cfg.history_len, cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.attn_norms = nn.ModuleList(nn.LayerNorm(cfg.dim) for _ in range(cfg.blocks))
        self.attns = nn.ModuleList(
            nn.MultiheadAttention(cfg.dim, cfg.heads, dropout=cfg.dropout, batch_first=True) for _ in range(cfg.blocks)
        )
        self.ffn_norms = nn.ModuleList(nn.LayerNorm(cfg.dim) for _ in range(cfg.blocks))
        self.ffns = nn.ModuleList(
            nn.Sequential(nn.Linear(cfg.dim, cfg.dim), nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.dim, cfg.dim))
            for _ in range(cfg.blocks)
        )
        self.out_norm = nn.LayerNorm(cfg.dim)
        for emb in (self.item, self.position):
            nn.init.normal_(emb.weight, std=0.02)
        with torch.no_grad():
            self.item.weight[0].zero_()

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """:param seq: ``(B, L)`` int64 item ids, 0 for padding. :returns: ``(B, L, dim)``."""
        B, L = seq.shape
        keep = (seq > 0).unsqueeze(-1).to(self.item.weight.dtype)
        x = self.drop(self.item(seq) + self.position.weight[-L:].unsqueeze(0)) * keep
        # True = may not attend: the future, and padded keys; a position may always see itself,
        # so a padded query has one key and no row is all -inf.
        causal = torch.ones(L, L, dtype=torch.bool, device=seq.device).triu(1)
        blocked = causal.unsqueeze(0) | (seq == 0).unsqueeze(1)
        blocked = blocked & ~torch.eye(L, dtype=torch.bool, device=seq.device).unsqueeze(0)
        mask = blocked.repeat_interleave(self.cfg.heads, dim=0)
        for an, attn, fn, ffn in zip(self.attn_norms, self.attns, self.ffn_norms, self.ffns):
            q = an(x)
            a, _ = attn(q, q, q, attn_mask=mask, need_weights=False)
            x = x + self.drop(a)
            x = (x + self.drop(ffn(fn(x)))) * keep
        return self.out_norm(x)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """:returns: ``hidden @ E[1:].T``, one score per catalogue item (0-based item index)."""
        return hidden @ self.item.weight[1:].T


@contextmanager
def _torch_threads(threads: int):
    before = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _windows(seqs: list[np.ndarray], users: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    """Items ``[end - length, end)`` of each user's sequence, shifted to 1-based ids, right-aligned
    in a ``(len(users), length)`` int64 array, 0 on the left where the sequence is shorter."""
    out = np.zeros((len(users), length), dtype=np.int64)
    for row, (u, e) in enumerate(zip(users.tolist(), ends.tolist())):
        part = seqs[u][max(0, e - length) : e]
        if len(part):
            out[row, length - len(part) :] = part + 1
    return out


class SASRecScorer:
    """SASRec as a :class:`~export.evaluate.report.Scorer` (see the module docstring)."""

    def __init__(
        self,
        steps: int = 12_000,
        seed: int = 0,
        threads: int = 1,
        history_len: int = 50,
        batch_size: int = 32,
        lr: float = 1e-3,
        dim: int = 64,
        blocks: int = 2,
        heads: int = 1,
        dropout: float = 0.2,
        device: str = "cpu",
        progress: bool = False,
    ) -> None:
        """:param steps: optimiser steps (12,000: about 9 minutes on one core for ML-100K).
        :param seed: numpy and torch seed. :param threads: torch intra-op threads (0: leave
        torch's setting). One by default: on a busy two-core host, two torch threads made a
        training step 25 times slower (1.2 s against 0.046 s on ML-100K).
        :param history_len: window length in items. :param batch_size: users per step.
        :param lr: Adam learning rate. :param dim: embedding width. :param blocks: transformer
        blocks. :param heads: attention heads (must divide ``dim``). :param dropout: dropout on
        embeddings, attention and feed-forward. :param device: torch device.
        :param progress: show a tqdm bar while training (stderr)."""
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        if history_len < 1 or batch_size < 1:
            raise ValueError(f"history_len and batch_size must be >= 1, got {history_len}, {batch_size}")
        if dim % heads:
            raise ValueError(f"heads ({heads}) must divide dim ({dim})")
        self.steps, self.seed, self.threads, self.history_len, self.batch_size = steps, seed, threads, history_len, batch_size
        self.lr, self.dim, self.blocks, self.heads, self.dropout = float(lr), dim, blocks, heads, float(dropout)
        self.device, self.progress = str(device), progress
        self.name = "sasrec"
        self.model: SASRec | None = None
        self.losses: list[float] = []
        self._seqs: list[np.ndarray] = []

    @property
    def cfg(self) -> SASRecConfig:
        """The settings as one :class:`SASRecConfig`."""
        return SASRecConfig(self.history_len, self.dim, self.blocks, self.heads, self.dropout, self.batch_size,
                            self.steps, self.lr)

    def fit(self, split: LeaveLastOut) -> None:
        """Train on ``split.train_sequences``; a split where no user has two events trains nothing."""
        from tqdm import tqdm

        cfg = self.cfg
        self._seqs = [np.asarray(s, dtype=np.int64) for s in split.train_sequences]
        lengths = np.array([len(s) for s in self._seqs], dtype=np.int64)
        trainable = np.flatnonzero(lengths >= 2)
        rng = np.random.default_rng(self.seed)
        device = torch.device(self.device)
        devices = [device] if device.type == "cuda" else []
        with _torch_threads(self.threads), torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            model = SASRec(split.n_items, cfg).to(device)
            opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98))
            loss_fn = nn.CrossEntropyLoss(ignore_index=-1)
            model.train()
            self.losses = []
            steps = cfg.steps if len(trainable) else 0
            bar = tqdm(range(steps), desc="sasrec", disable=not self.progress, mininterval=2.0)
            for _ in bar:
                users = trainable[rng.integers(0, len(trainable), cfg.batch_size)]
                n = lengths[users]
                lo = np.minimum(n, cfg.history_len + 1)  # shortest end that gives a full window
                ends = lo + np.floor(rng.random(len(users)) * (n - lo + 1)).astype(np.int64)
                win = torch.from_numpy(_windows(self._seqs, users, ends, cfg.history_len + 1)).to(device)
                inputs, targets = win[:, :-1], win[:, 1:] - 1  # targets: 0-based items, -1 = padding
                targets = targets.masked_fill(inputs == 0, -1)
                logits = model.logits(model(inputs))
                loss = loss_fn(logits.reshape(-1, split.n_items), targets.reshape(-1))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                self.losses.append(loss.item())
                if self.progress and len(self.losses) % 100 == 0:
                    bar.set_postfix(loss=f"{np.mean(self.losses[-100:]):.3f}")
            bar.close()
        model.eval()
        self.model = model

    @torch.no_grad()
    def score(self, users: np.ndarray) -> np.ndarray:
        """:returns: ``(len(users), n_items)`` float32 scores after each user's last
        ``history_len`` training items."""
        if self.model is None:
            raise RuntimeError("SASRecScorer.score called before fit")
        users = np.asarray(users, dtype=np.int64)
        ends = np.array([len(self._seqs[u]) for u in users.tolist()], dtype=np.int64)
        cfg, device = self.model.cfg, torch.device(self.device)
        out = []
        with _torch_threads(self.threads):
            for start in range(0, len(users), cfg.score_batch):
                sl = slice(start, start + cfg.score_batch)
                win = torch.from_numpy(_windows(self._seqs, users[sl], ends[sl], cfg.history_len)).to(device)
                out.append(self.model.logits(self.model(win)[:, -1]).float().cpu().numpy())
        n_items = self.model.item.num_embeddings - 1
        return np.concatenate(out) if out else np.zeros((0, n_items), np.float32)
