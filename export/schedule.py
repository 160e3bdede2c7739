"""The learning-rate schedule every trainer here uses."""

from __future__ import annotations

import torch


def one_cycle(opt: torch.optim.Optimizer, lr: float, steps: int, warmup: float = 0.05) -> torch.optim.lr_scheduler.OneCycleLR:
    """One-cycle schedule; the warm-up is at least two steps so very short runs (tests) work."""
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 4), pct_start=max(warmup, 2.0 / max(steps, 4)))
