"""How many threads a planning process computes with, set in one place for every native thread pool it loads."""

from __future__ import annotations

import torch
from threadpoolctl import threadpool_limits


def limit_threads(count: int) -> None:
    """torch's intra-op threads and every OpenMP / BLAS pool of the process (threadpoolctl: torch's OpenMP, numpy's
    OpenBLAS) to `count`. torch.set_num_threads alone left a pool at the core count: once the grip follower's batched
    torch.linalg.solve had run, the planner's carries took 21.5 instead of 15.5 ms on this 2-core CPU (threads of the
    other pool spin-waiting)."""
    torch.set_num_threads(count)
    threadpool_limits(limits=count)
