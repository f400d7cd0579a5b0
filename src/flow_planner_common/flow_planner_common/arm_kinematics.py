"""End-effector positions of the two arms in numpy (no MuJoCo), for drawing plans: a thin view of
`flow_planner_common.kinematics.ArmKinematics`, whose chain comes from the MJCF through the generated
robot_geometry.json, so the kinematics are defined once."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from flow_planner_common.kinematics import ArmKinematics
from flow_planner_common.robot import NUM_JOINTS


@lru_cache(maxsize=1)
def _kinematics() -> ArmKinematics:
    return ArmKinematics()


def ee_positions(positions: np.ndarray) -> np.ndarray:
    """(N, 2, 3) left/right end-effector site positions for (N, 12) joint positions (planner order)."""
    q = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    if q.ndim != 2 or q.shape[1] != NUM_JOINTS:
        raise ValueError(f"need (N, {NUM_JOINTS}) joint positions, got {q.shape}")
    return _kinematics().ee_poses(q)[0]
