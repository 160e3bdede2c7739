"""Worker processes for the server's embarrassingly parallel jobs (media synthesis, features)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers start from a clean forkserver, never by forking this process.

    The server process may already run threads (torch, and JAX through litert-torch); forking
    a threaded process can deadlock the child, so workers must not inherit it.
    """
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"))
