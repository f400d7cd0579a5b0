"""How many threads a planning process computes with, set in one place for every native thread pool it loads."""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from threadpoolctl import threadpool_limits

#: split_rows runs a call in parts from this many rows on.
SPLIT_ROWS = 1024


def limit_threads(count: int) -> None:
    """torch's intra-op threads and every OpenMP / BLAS pool of the process (threadpoolctl: torch's OpenMP, numpy's
    OpenBLAS) to `count`. torch.set_num_threads alone left a pool at the core count: once the grip follower's batched
    torch.linalg.solve had run, the planner's carries took 21.5 instead of 15.5 ms on this 2-core CPU (threads of the
    other pool spin-waiting)."""
    torch.set_num_threads(count)
    threadpool_limits(limits=count)


def split_rows(run: Callable[[int, int], None], total: int) -> None:
    """run(lo, hi) over the rows [0, total): in as many parts as torch has threads (the process's compute thread
    count, limit_threads), the first on the calling thread and the others on a pool, for calls that release the GIL
    (the numba kernels), when there are SPLIT_ROWS or more; else in one call."""
    threads = min(torch.get_num_threads(), _cpu_count())
    if threads <= 1 or total < SPLIT_ROWS:
        run(0, total)
        return
    bounds = np.linspace(0, total, threads + 1).astype(int)
    parts = list(itertools.pairwise(bounds))
    futures = [_pool(threads).submit(run, int(lo), int(hi)) for lo, hi in parts[1:]]
    try:
        run(int(parts[0][0]), int(parts[0][1]))  # the first part here: one thread fewer to wake
    finally:
        for future in futures:
            future.result()


@functools.cache
def _cpu_count() -> int:
    return os.cpu_count() or 1


@functools.cache
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="split-rows")
