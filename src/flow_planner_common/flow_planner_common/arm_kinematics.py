"""Forward kinematics of the two arms in numpy (no MuJoCo): the end-effector site positions of the MJCF scene
(data_collector_ros/assets/dual_arm_tray.xml) for joint configurations, in the scene's world frame. Used by the
planner to draw its plans' end-effector paths; a test checks it against MuJoCo's site positions.

The chain is the MJCF's: per body its position and orientation in the parent frame (`pos`, `quat`, w x y z, as the
MJCF writes them; MuJoCo normalizes), then a hinge joint about `axis` (body frame).
"""

from __future__ import annotations

import numpy as np

from flow_planner_common.robot import NUM_ARM_JOINTS, NUM_JOINTS

_HALF_TURN_Y = (1.0, 0.0, 1.0, 0.0)
_IDENTITY = (1.0, 0.0, 0.0, 0.0)
#: (body position in the parent, body quaternion w x y z, joint axis) from the shoulder link to wrist 3.
ARM_CHAIN: tuple[tuple[tuple[float, float, float], tuple[float, float, float, float], tuple[float, float, float]],
                 ...] = (
    ((0.0, 0.0, 0.1625), _IDENTITY, (0.0, 0.0, 1.0)),  # shoulder_pan
    ((0.0, 0.138, 0.0), _HALF_TURN_Y, (0.0, 1.0, 0.0)),  # shoulder_lift
    ((0.0, -0.131, 0.425), _IDENTITY, (0.0, 1.0, 0.0)),  # elbow
    ((0.0, 0.0, 0.3922), _HALF_TURN_Y, (0.0, 1.0, 0.0)),  # wrist_1
    ((0.0, 0.127, 0.0), _IDENTITY, (0.0, 0.0, 1.0)),  # wrist_2
    ((0.0, 0.0, 0.0997), _IDENTITY, (0.0, 1.0, 0.0)),  # wrist_3
)  # fmt: skip
#: The tool body in wrist 3 (position, quaternion) and the end-effector site in the tool body.
TOOL = ((0.0, 0.0996, 0.0), (-1.0, 1.0, 0.0, 0.0))
EE_SITE = (0.0, 0.0, 0.12)
#: World positions of the left and right arm bases (identity orientation).
ARM_BASES = ((0.0, 0.35, 0.75), (0.0, -0.35, 0.75))


def _quat_matrix(quat: tuple[float, ...]) -> np.ndarray:
    w, x, y, z = np.asarray(quat, dtype=np.float64) / np.linalg.norm(quat)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


def _axis_rotations(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations by `angles` about the unit `axis` (Rodrigues)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    s, c = np.sin(angles)[:, None, None], np.cos(angles)[:, None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


_CHAIN = [(np.array(p), _quat_matrix(q), np.array(a)) for p, q, a in ARM_CHAIN]
_TOOL_POS, _TOOL_ROT = np.array(TOOL[0]), _quat_matrix(TOOL[1])


def arm_ee_positions(joints: np.ndarray, arm: int) -> np.ndarray:
    """(N, 3) world positions of one arm's end-effector site for (N, 6) joint angles (arm 0 = left, 1 = right)."""
    q = np.atleast_2d(np.asarray(joints, dtype=np.float64))
    if q.shape[1] != NUM_ARM_JOINTS:
        raise ValueError(f"need (N, {NUM_ARM_JOINTS}) joint angles, got {q.shape}")
    rotation = np.broadcast_to(np.eye(3), (len(q), 3, 3))
    position = np.broadcast_to(np.array(ARM_BASES[arm], dtype=np.float64), (len(q), 3))
    for i, (offset, body_rotation, axis) in enumerate(_CHAIN):
        position = position + rotation @ offset
        rotation = rotation @ body_rotation @ _axis_rotations(axis, q[:, i])
    position = position + rotation @ _TOOL_POS
    rotation = rotation @ _TOOL_ROT
    return position + rotation @ np.array(EE_SITE)


def ee_positions(positions: np.ndarray) -> np.ndarray:
    """(N, 2, 3) left/right end-effector site positions for (N, 12) joint positions (planner order)."""
    q = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    if q.shape[1] != NUM_JOINTS:
        raise ValueError(f"need (N, {NUM_JOINTS}) joint positions, got {q.shape}")
    return np.stack([arm_ee_positions(q[:, :NUM_ARM_JOINTS], 0), arm_ee_positions(q[:, NUM_ARM_JOINTS:], 1)], axis=1)
