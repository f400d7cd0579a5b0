"""The tray task: where trays may start, what each phase's targets are (all parameters in `TaskConfig`).

Poses are (7,) arrays `x y z qw qx qy qz` in the world frame. A tray start pose is given by (x, y, yaw) on the
table (z = the MJCF's resting height). Reach targets are the handle sites' world poses; the carry goal is the
start pose lifted by `lift_height`, shifted by `carry_offset`, yaw unchanged (kept level), and the end-effector
carry targets are the handle sites' poses at that goal.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import mujoco
import numpy as np

from data_collector_ros.scene import SceneIndex


@dataclass(frozen=True)
class TaskConfig:
    """Tray workspace box (start poses) and carry goal parameters."""

    x_range: tuple[float, float] = (0.42, 0.58)  # m, tray centre
    y_range: tuple[float, float] = (-0.08, 0.08)  # m
    yaw_range: tuple[float, float] = (-math.radians(15), math.radians(15))  # rad
    lift_height: float = 0.20  # m
    carry_offset: tuple[float, float] = (0.0, 0.0)  # m, (dx, dy) of the goal relative to the start

    def grid(self, nx: int, ny: int, nyaw: int, rest_z: float) -> np.ndarray:
        """(nx * ny * nyaw, 7) tray start poses on a regular grid over the workspace box (x slowest)."""
        axes = [
            np.linspace(*r, n) if n > 1 else np.array([sum(r) / 2])
            for r, n in ((self.x_range, nx), (self.y_range, ny), (self.yaw_range, nyaw))
        ]
        return np.array([tray_pose(x, y, yaw, rest_z) for x, y, yaw in itertools.product(*axes)])

    def contains(self, pose: np.ndarray) -> bool:
        """Whether a start pose lies in the workspace box."""
        x, y, yaw = pose[0], pose[1], pose_yaw(pose)
        return bool(
            self.x_range[0] <= x <= self.x_range[1]
            and self.y_range[0] <= y <= self.y_range[1]
            and self.yaw_range[0] <= yaw <= self.yaw_range[1]
        )

    def carry_goal_pose(self, start_pose: np.ndarray) -> np.ndarray:
        """Lifted by lift_height, shifted by carry_offset, same yaw, level."""
        x, y, z = start_pose[:3]
        return tray_pose(x + self.carry_offset[0], y + self.carry_offset[1], pose_yaw(start_pose), z + self.lift_height)


def tray_pose(x: float, y: float, yaw: float, z: float) -> np.ndarray:
    """A level tray pose (7,) with the given yaw about world z."""
    return np.array([x, y, z, math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def pose_yaw(pose: np.ndarray) -> float:
    """Yaw (rad) of a pose's quaternion about world z."""
    w, x, y, z = pose[3:7]
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def handle_targets(model: mujoco.MjModel, index: SceneIndex, tray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World positions (2, 3) and quaternions (2, 4) of the handle sites when the tray is at pose `tray`.

    Uses the handle sites' fixed offsets in the tray body frame from the MJCF (they are direct tray children).
    """
    positions, quats = np.zeros((2, 3)), np.zeros((2, 4))
    for i, site in enumerate(index.handle_sites):
        if model.site_bodyid[site] != index.tray_body:
            raise ValueError("handle sites must be direct children of the tray body")
        mujoco.mju_rotVecQuat(positions[i], model.site_pos[site], tray[3:7])
        positions[i] += tray[:3]
        mujoco.mju_mulQuat(quats[i], tray[3:7], model.site_quat[site])
    return positions, quats


def pose_error(pose: np.ndarray, goal: np.ndarray) -> tuple[float, float]:
    """(position error m, rotation angle error rad) between two (7,) poses."""
    dq = np.zeros(3)
    mujoco.mju_subQuat(dq, np.asarray(goal[3:7], dtype=float), np.asarray(pose[3:7], dtype=float))
    return float(np.linalg.norm(np.asarray(pose[:3]) - goal[:3])), float(np.linalg.norm(dq))
