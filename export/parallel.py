"""Worker processes for the server's embarrassingly parallel jobs (media synthesis, features)."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _one_thread_per_worker() -> None:
    # N workers each running an N-thread BLAS oversubscribe the cores: measured here, two
    # feature workers were slower than one until each BLAS was held to one thread. The
    # variables cover libraries the worker has not loaded yet, threadpoolctl those it has.
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool of single-threaded workers started from a clean forkserver.

    Workers never fork this process: the server may already run threads (torch, and JAX
    through litert-torch), and forking a threaded process can deadlock the child.
    """
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("forkserver"), initializer=_one_thread_per_worker
    )
