"""The model's channel and conditioning layouts, defined once (training, checkpoints and inference use these).

Channels: the 12 joint positions, then the 12 joint velocities of each waypoint. Conditioning (physical units,
normalized by the checkpoint's statistics): [arms_start (12), arms_start_vel (12), arms_goal (12)] (+ phase).
"""

from __future__ import annotations

import numpy as np

from flow_planner_common.motion import reference_trajectory
from flow_planner_common.robot import HORIZON, JOINT_NAMES, NUM_JOINTS

#: Conditioning groups, in order; the optional phase is appended as one more channel.
COND_GROUPS = ("arms_start", "arms_start_vel", "arms_goal")


def channel_layout(joint_names: tuple[str, ...] = JOINT_NAMES) -> list[str]:
    """Names of the model's trajectory channels: positions then velocities."""
    return [f"pos/{n}" for n in joint_names] + [f"vel/{n}" for n in joint_names]


def cond_layout(use_phase: bool, joint_names: tuple[str, ...] = JOINT_NAMES) -> list[str]:
    """Names of the conditioning channels: [arms_start, arms_start_vel, arms_goal] (+ phase)."""
    names = [f"{g}/{n}" for g in COND_GROUPS for n in joint_names]
    return [*names, "phase"] if use_phase else names


def build_cond(arrays: dict[str, np.ndarray], use_phase: bool) -> np.ndarray:
    """(N, 36[+1]) physical conditioning."""
    parts = [np.asarray(arrays[g], dtype=np.float64) for g in COND_GROUPS]
    if use_phase:
        parts.append(np.asarray(arrays["phase"], dtype=np.float64)[:, None])
    return np.concatenate(parts, axis=-1)


def make_cond(
    start_pos: np.ndarray, start_vel: np.ndarray, goal: np.ndarray, phase: np.ndarray | int | None
) -> np.ndarray:
    """(N, D) conditioning from per-request arrays (broadcast over a leading batch axis)."""
    start_pos, start_vel, goal = (np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (start_pos, start_vel, goal))
    parts = [start_pos, start_vel, goal]
    if phase is not None:
        parts.append(np.broadcast_to(np.asarray(phase, dtype=np.float64).reshape(-1, 1), (start_pos.shape[0], 1)))
    return np.concatenate(parts, axis=-1)


def reference_from_cond(cond: np.ndarray, dt: float, horizon: int = HORIZON) -> tuple[np.ndarray, np.ndarray]:
    """Reference motions (N, H, J) for physical conditioning rows [start, start_vel, goal(, phase)]."""
    j = NUM_JOINTS
    cond = np.asarray(cond, dtype=np.float64)
    return reference_trajectory(cond[:, :j], cond[:, j : 2 * j], cond[:, 2 * j : 3 * j], dt, horizon)
