"""Training the two-tower model on next-item prediction.

Each training example is (a user's recent positive items, the context of the next event, the
next item). The loss is softmax cross-entropy over the whole catalogue when it is small enough,
and over a uniform sample of negatives plus the target otherwise.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from edge.context import CONTEXT_DIM, context_matrix
from edge.ranking import history_window
from export.data.split import LeaveLastOut
from export.models import InterestTower, ItemTower, TwoTowerConfig


@dataclass
class TrainConfig:
    """Training settings; defaults suit a few-thousand-item catalogue on 2 CPU cores."""

    steps: int = 800
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-5
    temperature: float = 0.07
    dim: int = 64
    hidden: int = 256
    history_len: int = 50
    full_softmax_max_items: int = 20000
    sampled_negatives: int = 8192
    seed: int = 0
    threads: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Examples:
    """Flattened next-item examples: history windows, masks, contexts and targets."""

    history: np.ndarray  # (N, L) int64, -1 padded
    mask: np.ndarray  # (N, L) float32
    context: np.ndarray  # (N, CONTEXT_DIM) float32
    target: np.ndarray  # (N,) int64


def make_examples(split: LeaveLastOut, history_len: int) -> Examples:
    """One example per position t >= 1 of every user's training sequence."""
    hist, masks, ctx_ts, targets = [], [], [], []
    for seq, ts in zip(split.train_sequences, split.train_timestamps):
        for t in range(1, len(seq)):
            idx, mask = history_window(seq[:t], history_len)
            hist.append(idx)
            masks.append(mask)
            ctx_ts.append(ts[t])
            targets.append(seq[t])
    if not targets:
        raise ValueError("no training examples: every user needs at least two positive interactions")
    return Examples(
        np.stack(hist), np.stack(masks), context_matrix(np.array(ctx_ts)), np.array(targets, dtype=np.int64)
    )


class TwoTower(torch.nn.Module):
    """Both towers, trained jointly; histories are embedded by the item tower itself."""

    def __init__(self, cfg: TwoTowerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.items = ItemTower(cfg)
        self.interest = InterestTower(cfg)

    def item_table(self, features: torch.Tensor) -> torch.Tensor:
        """Unit vectors of every catalogue item, (n_items, dim)."""
        return self.items(features, torch.arange(features.shape[0]))

    def user(self, table: torch.Tensor, hist: torch.Tensor, mask: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        emb = table[hist.clamp(min=0)] * mask.unsqueeze(-1)
        return self.interest(emb, mask, ctx)


def train_two_tower(split: LeaveLastOut, features: np.ndarray, cfg: TrainConfig, progress: bool = True) -> tuple[TwoTower, dict]:
    """Fit the two towers.

    :param split: training sequences (the held-out targets are never seen).
    :param features: ``(n_items, feature_dim)`` content features in catalogue order.
    :returns: the model (eval mode) and a log with the loss curve and seconds taken.
    """
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    ex = make_examples(split, cfg.history_len)
    model_cfg = TwoTowerConfig(
        feature_dim=features.shape[1], n_items=features.shape[0], context_dim=CONTEXT_DIM, dim=cfg.dim, hidden=cfg.hidden, history_len=cfg.history_len
    )
    model = TwoTower(model_cfg)
    feats = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    model.items.content.set_stats(feats)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    full = model_cfg.n_items <= cfg.full_softmax_max_items
    losses = []
    t0 = time.perf_counter()
    model.train()
    bar = tqdm(range(cfg.steps), desc="train", unit="step", disable=not progress)
    for step in bar:
        b = rng.integers(0, len(ex.target), size=min(cfg.batch_size, len(ex.target)))
        hist = torch.from_numpy(ex.history[b])
        mask = torch.from_numpy(ex.mask[b])
        ctx = torch.from_numpy(ex.context[b])
        target = torch.from_numpy(ex.target[b])
        if full:
            table = model.item_table(feats)
            cand_logits_idx = None
        else:
            # Only the rows this step touches go through the item tower.
            negs = rng.integers(0, model_cfg.n_items, size=cfg.sampled_negatives)
            rows = np.unique(np.concatenate([ex.history[b][ex.history[b] >= 0], ex.target[b], negs]))
            table = torch.zeros(model_cfg.n_items, cfg.dim)
            rows_t = torch.from_numpy(rows)
            table = table.index_put((rows_t,), model.items(feats[rows_t], rows_t))
            cand_logits_idx = rows_t
        user = model.user(table, hist, mask, ctx)
        if cand_logits_idx is None:
            logits = user @ table.T / cfg.temperature
            loss = F.cross_entropy(logits, target)
        else:
            logits = user @ table[cand_logits_idx].T / cfg.temperature
            pos = torch.searchsorted(cand_logits_idx, target)
            loss = F.cross_entropy(logits, pos)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
    model.eval()
    log = {
        "examples": int(len(ex.target)),
        "steps": cfg.steps,
        "loss_first": float(np.mean(losses[:20])),
        "loss_last": float(np.mean(losses[-20:])),
        "train_s": time.perf_counter() - t0,
        "full_softmax": full,
        "model": model_cfg.to_dict(),
    }
    return model, log


@torch.no_grad()
def item_embeddings(model: TwoTower, features: np.ndarray) -> np.ndarray:
    """Catalogue item vectors (float32, unit length) from the trained item tower."""
    return model.item_table(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))).numpy()
