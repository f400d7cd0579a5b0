"""limit_threads sets torch and every native thread pool the process has loaded (threadpoolctl) to one count."""

from __future__ import annotations

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from flow_planner_common.threads import limit_threads


def test_every_pool_runs_on_the_given_threads() -> None:
    before = torch.get_num_threads()
    with threadpool_limits():  # restores the process's pools afterwards
        try:
            np.linalg.solve(np.eye(3), np.ones(3))  # numpy's BLAS and torch's OpenMP are loaded now
            torch.linalg.solve(torch.eye(3), torch.ones(3))
            limit_threads(1)
            assert torch.get_num_threads() == 1
            pools = threadpool_info()
            assert pools and all(pool["num_threads"] == 1 for pool in pools), pools
        finally:
            torch.set_num_threads(before)
