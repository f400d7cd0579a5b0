"""Compile (and cache) every numba kernel once: `make setup` and the Docker image run
`python -m flow_planner_common.compiled_kernels`, so that no process pays the compilation (~50 s on this CPU) in its
first plan.

The kernels compile where they are first used: the sphere checker's (sphere_kernel) and SceneSafety's motion terms
(motion_kernel) in their constructors, the grip follower's (grip_kernel) in its own; numba caches them in
__pycache__ next to the sources, where every later process loads them in well under a second.
"""

from __future__ import annotations

import time

import torch

from flow_planner_common.grip_follower import GripFollower
from flow_planner_common.scene_safety import SceneSafety
from flow_planner_common.sphere_checker import SphereChecker


def main() -> None:
    started = time.perf_counter()
    safety = SceneSafety()
    GripFollower(safety.checker)
    SphereChecker(dtype=torch.float64)  # the clearance kernel compiles once per dtype (float32 is the default)
    print(f"sphere checker, motion terms and grip follower kernels ready in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
