"""Training on several processes with PyTorch's own engine: ``torch.distributed`` process
groups (gloo on CPU, NCCL on GPUs), :class:`~torch.nn.parallel.DistributedDataParallel` for the
gradients, and torchelastic (``torchrun``, or :func:`launch` for ``--nproc`` on one machine)
to start the workers.

Each rank draws its training batches from its own shard of users (or examples), at
``batch / world`` rows each, so one step of N processes sees a batch of the single-process
size; DDP averages the gradients, so the optimiser takes the same kind of step. Rank 0 writes
checkpoints, the report and the bundle; the others wait at a barrier.

Several machines: start the same command on each under ``torchrun`` (``--nnodes``,
``--nproc-per-node``, ``--rdzv-backend c10d --rdzv-endpoint HOST:PORT``); the worker sees
``WORLD_SIZE``/``RANK`` and joins the group (:func:`init_from_env`).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Group:
    """This process's place in the training group (``world == 1``: no group)."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints, reports and the bundle."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether several processes train together."""
        return self.world > 1

    def shard(self, rows: np.ndarray) -> np.ndarray:
        """This rank's share of ``rows`` (every ``world``-th, from ``rank``)."""
        return rows[self.rank :: self.world] if self.active else rows

    def per_rank(self, batch: int) -> int:
        """Rows per rank of a global batch of ``batch`` (at least 1)."""
        return max(1, batch // self.world)

    def barrier(self) -> None:
        """Wait until every rank is here."""
        if self.active:
            dist.barrier()

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` under DistributedDataParallel in a group, else itself.

        ``find_unused_parameters``: a step may leave a parameter without gradient (a text
        layer no sampled item reached), which plain DDP would wait for forever. Buffers are not
        broadcast each step: every rank fills them from the same data, and the teacher's text
        cache is a per-rank approximation refreshed from the (synchronised) weights.
        """
        if not self.active:
            return module
        import warnings

        from torch.nn.parallel import DistributedDataParallel

        with warnings.catch_warnings():
            # torch 2.13 deprecates broadcast_buffers, but its replacement still syncs buffers
            # at init, which the per-rank text cache must not be; torch itself says to keep
            # broadcast_buffers=False until init_sync_buffers exists.
            warnings.filterwarnings("ignore", message=".*broadcast_buffers.*", category=FutureWarning)
            return DistributedDataParallel(module, find_unused_parameters=True, broadcast_buffers=False)


SOLO = Group()
_alone = False


def current() -> Group:
    """The group this process trains with (after :func:`init_from_env`), or :data:`SOLO`
    (also inside :func:`alone`)."""
    if not _alone and dist.is_available() and dist.is_initialized():
        return Group(dist.get_rank(), dist.get_world_size())
    return SOLO


@contextmanager
def alone() -> Iterator[None]:
    """Train as a single process inside the block: rank 0's own stages (the cold-item probe's
    second teacher, the peers) must not wait for ranks that are not there."""
    global _alone
    before, _alone = _alone, True
    try:
        yield
    finally:
        _alone = before


def init_from_env() -> Group:
    """Join the process group torchrun (or :func:`launch`) describes in the environment:
    NCCL when this process has a GPU, gloo otherwise. Without ``WORLD_SIZE`` > 1, nothing."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return SOLO
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return current()


def from_main(value: Any) -> Any:
    """Rank 0's ``value`` on every rank of the group (``value`` itself alone). For what must be
    identical everywhere but is not reproducible, e.g. a tokenizer trained by a library whose
    trainer breaks ties in hash order: a vocabulary one entry longer on one rank gives
    parameters of another shape, which DistributedDataParallel refuses."""
    group = current()
    if not group.active:
        return value
    payload = [value if group.is_main else None]
    dist.broadcast_object_list(payload, src=0)
    return payload[0]


def threads_per_rank(total: int) -> int:
    """This rank's share of ``total`` threads: the machine's threads are split among the ranks
    that run on it (torchrun's ``LOCAL_WORLD_SIZE``; the whole group when it is not set)."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", current().world))
    return max(1, total // max(local, 1))


def shutdown(clean: bool = True) -> None:
    """Leave the process group at the end of the run.

    :param clean: every rank got here (wait for the others first). After an exception pass
        False: a barrier would wait forever for ranks still inside a collective with this one,
        so the group is left at once; the process then exits with the error, and the launcher
        (torchelastic or torchrun) stops the other ranks.
    """
    if dist.is_available() and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


@contextmanager
def membership(group: Group) -> Iterator[None]:
    """Run a rank's work inside the group and leave it afterwards: cleanly (after a barrier)
    when the work returns; at once when it raises, with the error written to stderr first.

    The launcher reports the first rank it sees fail, which may be a peer that lost its
    connection to this one, so the rank that raised says so itself.
    """
    try:
        yield
    except BaseException as exc:
        if group.active:
            sys.stderr.write(f"edgerec: rank {group.rank} of {group.world} failed: {type(exc).__name__}: {exc}\n")
            sys.stderr.flush()
        shutdown(clean=False)
        raise
    shutdown()


def launch(nproc: int, entrypoint: Callable[..., Any], *args: Any) -> dict[int, Any]:
    """Run ``entrypoint(*args)`` in ``nproc`` processes on this machine under torchelastic,
    with a c10d rendezvous on loopback (no other host is contacted).

    :returns: each rank's return value.
    :raises torch.distributed.elastic.multiprocessing.errors.ChildFailedError: a rank failed
        (its traceback is in the message).
    """
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # The ranks are fresh processes: c10's log level is read when torch loads there. Its
    # warnings (e.g. "find_unused_parameters=True ... did not find any unused parameters" on
    # a step where every text layer was reached) are per-run noise, not errors.
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    cfg = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, rdzv_backend="c10d",
                       rdzv_endpoint="127.0.0.1:0", run_id=f"edgerec-{os.getpid()}", max_restarts=0,
                       monitor_interval=0.5, start_method="spawn")
    return elastic_launch(cfg, entrypoint)(*args)
