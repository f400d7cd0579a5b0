"""The joint_trajectory_controller contract for incoming trajectories, as a pure (ROS-free) check.

A trajectory for one arm must name exactly that arm's joints (any order, no duplicates), have at least one point,
give every point positions and velocities of that length, all finite and within the position/velocity limits,
and strictly increasing time_from_start with the first point after t = 0. Otherwise it is rejected with a reason
and nothing is executed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flow_planner_common.robot import JOINT_NAMES, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS


class TrajectoryRejected(ValueError):
    """The trajectory breaks the controller contract; the message is the reason."""


@dataclass(frozen=True)
class ValidTrajectory:
    """Waypoints reordered to the controller's joint order."""

    times: np.ndarray  # (N,)
    positions: np.ndarray  # (N, J)
    velocities: np.ndarray  # (N, J)


def validate_trajectory(
    controller_joints: Sequence[str],
    joint_names: Sequence[str],
    positions: Sequence[Sequence[float]],
    velocities: Sequence[Sequence[float]],
    times: Sequence[float],
) -> ValidTrajectory:
    """Check one trajectory against the contract; raise TrajectoryRejected with the reason."""
    names = list(joint_names)
    if len(set(names)) != len(names):
        raise TrajectoryRejected(f"duplicate joint names {names}")
    if set(names) != set(controller_joints):
        raise TrajectoryRejected(f"joint names {names} are not this controller's joints {list(controller_joints)}")
    if len(times) == 0:
        raise TrajectoryRejected("empty trajectory (no points)")
    if len(positions) != len(times) or len(velocities) != len(times):
        raise TrajectoryRejected("every point needs positions and velocities")
    for k, (p, v) in enumerate(zip(positions, velocities, strict=True)):
        if len(p) != len(names) or len(v) != len(names):
            raise TrajectoryRejected(f"point {k}: {len(p)} positions / {len(v)} velocities for {len(names)} joints")
    t = np.asarray(times, dtype=float)
    pos, vel = np.asarray(positions, dtype=float), np.asarray(velocities, dtype=float)
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(pos)) and np.all(np.isfinite(vel))):
        raise TrajectoryRejected("non-finite value (NaN or Inf) in the trajectory")
    if t[0] <= 0.0:
        raise TrajectoryRejected(f"first point at time_from_start {t[0]:.4f} s; must be after 0")
    if np.any(np.diff(t) <= 0.0):
        k = int(np.argmax(np.diff(t) <= 0.0)) + 1
        raise TrajectoryRejected(f"time_from_start not strictly increasing at point {k}")
    order = [names.index(j) for j in controller_joints]
    pos, vel = pos[:, order], vel[:, order]
    cols = [JOINT_NAMES.index(j) for j in controller_joints]
    lower, upper = JOINT_POSITION_LIMITS[cols, 0], JOINT_POSITION_LIMITS[cols, 1]
    if np.any(pos < lower) or np.any(pos > upper):
        raise TrajectoryRejected("position outside the joint limits")
    if np.any(np.abs(vel) > JOINT_VELOCITY_LIMITS[cols]):
        raise TrajectoryRejected("velocity above the joint velocity limits")
    return ValidTrajectory(t, pos, vel)
