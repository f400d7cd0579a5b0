"""Synthetic sanity set: linear start→goal trajectories at constant velocity.

Written in the one trajectory schema (flow_planner_common.trajectory_schema). Waypoint k (0-based) is at
time (k+1)·dt, so positions[k] = start + (k+1)/H · (goal − start), positions[-1] = goal, and every velocity
(including arms_start_vel) is (goal − start)/(H·dt): the arm is already moving at the constant speed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flow_planner_common.robot import DEFAULT_DT, HORIZON, JOINT_NAMES, JOINT_VELOCITY_LIMITS, NUM_JOINTS, PHASE_REACH
from flow_planner_common.trajectory_schema import TrajectoryRecord, stack_records, write_dataset

#: Start and goal joint positions are drawn uniformly from ±this (rad); inside every UR5e limit, and the
#: largest move (2·1.5 rad over 3 s) stays at 1 rad/s, below the 180°/s limit.
SYNTHETIC_RANGE = 1.5
#: A fixed, valid tray pose (x, y, z, qw, qx, qy, qz) used for both tray fields.
SYNTHETIC_TRAY_POSE = np.array([0.5, 0.0, 0.8, 1.0, 0.0, 0.0, 0.0])


def linear_trajectory(
    start: np.ndarray, goal: np.ndarray, dt: float = DEFAULT_DT, horizon: int = HORIZON
) -> tuple[np.ndarray, np.ndarray]:
    """(positions, velocities), each (horizon, J): the linear start→goal ground truth."""
    start, goal = np.asarray(start, dtype=np.float64), np.asarray(goal, dtype=np.float64)
    frac = (np.arange(1, horizon + 1, dtype=np.float64) / horizon)[:, None]
    positions = start + frac * (goal - start)
    velocities = np.broadcast_to((goal - start) / (horizon * dt), positions.shape).copy()
    return positions, velocities


def synthetic_records(num: int, seed: int = 0, dt: float = DEFAULT_DT) -> list[TrajectoryRecord]:
    """`num` linear trajectories, reproducible from `seed`."""
    if num < 1:
        raise ValueError("num must be >= 1")
    rng = np.random.default_rng(seed)
    records = []
    for i in range(num):
        start = rng.uniform(-SYNTHETIC_RANGE, SYNTHETIC_RANGE, NUM_JOINTS)
        goal = rng.uniform(-SYNTHETIC_RANGE, SYNTHETIC_RANGE, NUM_JOINTS)
        positions, velocities = linear_trajectory(start, goal, dt)
        assert np.all(np.abs(velocities) <= JOINT_VELOCITY_LIMITS)
        records.append(
            TrajectoryRecord(
                positions=positions,
                velocities=velocities,
                arms_start=start,
                arms_start_vel=velocities[0].copy(),
                arms_goal=goal,
                phase=PHASE_REACH,
                tray_start_pose=SYNTHETIC_TRAY_POSE.copy(),
                tray_goal_pose=SYNTHETIC_TRAY_POSE.copy(),
                grid_index=i,
                seed=seed,
                success=True,
                cost=0.0,
                dt=dt,
                joint_names=JOINT_NAMES,
            )
        )
    return records


def write_synthetic_dataset(path: str | Path, num: int, seed: int = 0, dt: float = DEFAULT_DT) -> Path:
    """Write a merged synthetic dataset file (atomic, schema-validated)."""
    return write_dataset(path, stack_records(synthetic_records(num, seed, dt)))
