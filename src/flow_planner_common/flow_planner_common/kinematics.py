"""The robot model and its numpy forward kinematics (no MuJoCo, no torch).

`RobotGeometry` is the robot as plain numpy arrays (kinematic chains, link capsules, tool boxes, tray boxes, table),
generated from the MJCF by `data_collector_ros.robot_geometry` and committed as `robot_geometry.json` next to this
module. `ArmKinematics` gives, for (..., 12) joint positions, the world poses of both arms' bodies, the end-effector
sites and the pose of a carried tray (`TrayGrasp`: held by both tools, its pose the mean of the poses each tool's
grasp gives it; a grasp without the right tool's part: rigidly with the left tool).

This module checks no collisions: the one collision checker, used by the planner (`scene_safety`) and the CEM expert
(`plan_cost`) alike, is the torch sphere checker (`flow_planner_common.sphere_checker`), built on this geometry and
chain; `CATEGORIES` names the clearance categories of its output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from flow_planner_common.robot import NUM_ARM_JOINTS, NUM_JOINTS

#: The committed geometry of the MJCF (regenerate: python -m data_collector_ros.robot_geometry > this file).
GEOMETRY_JSON: Path = Path(__file__).resolve().parent / "robot_geometry.json"
#: Clearance categories of the collision checker (sphere_checker.SphereChecker.clearance), in order.
CATEGORIES: tuple[str, ...] = ("arm_arm", "arm_table", "arm_obstacle", "tray_obstacle", "arm_tray", "tray_table")
#: The categories of "any collision"; tray_table is left out: the tray rests on the table at the start of a carry.
OVERALL_CATEGORIES: tuple[str, ...] = CATEGORIES[:5]


@dataclass(frozen=True)
class RobotGeometry:
    """Both arms' kinematic chains and collision shapes, plus the tray and the table (m, rotation matrices).

    Per arm (leading axis 2: left, right) six jointed bodies follow the base, then the tool body (index 6). Link
    shapes hang on body indices 0..6 (0 = shoulder link, 6 = tool): capsules (segment p0-p1 in the body frame,
    radius) and boxes (centre, rotation, half sizes). Tray boxes are in the tray body frame."""

    base_pos: np.ndarray  # (2, 3) world position of each arm base body
    base_rot: np.ndarray  # (2, 3, 3)
    link_pos: np.ndarray  # (2, 6, 3) jointed body i relative to its parent (base for i = 0)
    link_rot: np.ndarray  # (2, 6, 3, 3)
    joint_axis: np.ndarray  # (2, 6, 3) hinge axis in the body frame, through the body origin
    tool_pos: np.ndarray  # (2, 3) tool body relative to the last jointed body
    tool_rot: np.ndarray  # (2, 3, 3)
    ee_pos: np.ndarray  # (2, 3) end-effector site in the tool frame
    ee_rot: np.ndarray  # (2, 3, 3)
    capsule_body: np.ndarray  # (2, K) int, body index 0..6
    capsule_p0: np.ndarray  # (2, K, 3)
    capsule_p1: np.ndarray  # (2, K, 3)
    capsule_radius: np.ndarray  # (2, K)
    box_body: np.ndarray  # (2, B) int, body index 0..6
    box_center: np.ndarray  # (2, B, 3)
    box_rot: np.ndarray  # (2, B, 3, 3)
    box_half: np.ndarray  # (2, B, 3)
    tray_center: np.ndarray  # (T, 3) tray boxes in the tray body frame
    tray_rot: np.ndarray  # (T, 3, 3)
    tray_half: np.ndarray  # (T, 3)
    tray_handle: np.ndarray  # (T,) bool: a handle (tool shapes may touch it: that is the grasp)
    handle_pos: np.ndarray  # (2, 3) left/right handle grasp sites in the tray body frame (the EE site's target)
    handle_rot: np.ndarray  # (2, 3, 3)
    table_center: np.ndarray  # (3,) world
    table_rot: np.ndarray  # (3, 3)
    table_half: np.ndarray  # (3,)
    floor_z: float

    TOOL_BODY = NUM_ARM_JOINTS  # body index of the tool

    def to_json(self) -> str:
        """Deterministic JSON text (floats round-trip exactly)."""
        data = {f.name: np.asarray(getattr(self, f.name)).tolist() for f in fields(self)}
        data["floor_z"] = float(self.floor_z)
        return json.dumps(data, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RobotGeometry:
        data = json.loads(text)
        expected = {f.name for f in fields(cls)}
        if set(data) != expected:
            raise ValueError(
                f"robot geometry keys differ: missing {expected - set(data)}, unknown {set(data) - expected}"
            )
        values = {}
        for name, value in data.items():
            if name == "floor_z":
                values[name] = float(value)
            elif name in ("capsule_body", "box_body"):
                values[name] = np.asarray(value, dtype=np.int64)
            elif name == "tray_handle":
                values[name] = np.asarray(value, dtype=bool)
            else:
                values[name] = np.asarray(value, dtype=np.float64)
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path | None = None) -> RobotGeometry:
        """The committed geometry (default GEOMETRY_JSON)."""
        return cls.from_json(Path(path or GEOMETRY_JSON).read_text(encoding="utf-8"))

    def equals(self, other: RobotGeometry) -> bool:
        return all(np.array_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))


@dataclass(frozen=True)
class TrayGrasp:
    """The carried tray's pose in the left tool frame and, optionally, in the right tool frame, both taken at the
    carry's start state (`grasp_from_start`).

    In the physics both tools are welded to the tray, so when the right tool drifts from its grasp (the grip change)
    the tray sits between them. With both parts the carried tray's pose (`carried_tray`) is the mean of the two poses
    the grasps give it: positions averaged, rotation the nearest rotation to the mean of the two (`mean_rotation`).
    Without the right part (None) the tray moves rigidly with the left tool (the former model; MuJoCo's judge of the
    checker places the tray that way)."""

    position: np.ndarray  # (3,) tray origin in the left tool frame
    rotation: np.ndarray  # (3, 3) tray rotation in the left tool frame
    right_position: np.ndarray | None = None  # (3,) tray origin in the right tool frame
    right_rotation: np.ndarray | None = None  # (3, 3)

    def __post_init__(self) -> None:
        if (self.right_position is None) != (self.right_rotation is None):
            raise ValueError("TrayGrasp: give both right_position and right_rotation, or neither")

    @property
    def two_tool(self) -> bool:
        """Held by both tools (the tray at the mean of their poses), else rigidly by the left one."""
        return self.right_position is not None

    def tool_parts(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The tray's (position, rotation) in the left tool frame, then, for a two-tool grasp, in the right one."""
        parts = [(self.position, self.rotation)]
        if self.two_tool:
            parts.append((self.right_position, self.right_rotation))
        return parts

    def left_only(self) -> TrayGrasp:
        """The same grasp without the right tool's part (the tray rigid with the left tool)."""
        return TrayGrasp(self.position, self.rotation)


def mean_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3, 3) the rotation nearest to the mean M of rotations a and b (the polar factor of M, their geodesic
    midpoint): one Newton step of the polar iteration, X = (M + M^-T) / 2 (same polar factor; M's singular values 1,
    cos(t/2) for rotations an angle t apart become 1 + O(t^4)), then Gram-Schmidt on X's first two columns and
    their cross product. Off the SVD's polar factor by about t^4 / 200 (2e-6 at t = 0.14 rad, 1e-4 at 0.4 rad;
    Gram-Schmidt alone: t^2 / 10); undefined at t = pi."""
    m = 0.5 * (np.asarray(a) + np.asarray(b))
    c0, c1, c2 = m[..., :, 0], m[..., :, 1], m[..., :, 2]
    cof = [np.cross(c1, c2), np.cross(c2, c0), np.cross(c0, c1)]  # the columns of det(M) M^-T
    det = (c0 * cof[0]).sum(axis=-1, keepdims=True)
    x, y = (0.5 * (c + k / det) for c, k in zip((c0, c1), cof[:2], strict=True))
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    y = y - (x * y).sum(axis=-1, keepdims=True) * x
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def quat_to_matrix(quat: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions (w, x, y, z) to (..., 3, 3) rotation matrices."""
    q = np.asarray(quat, dtype=float)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def skew(axis: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 3, 3) cross-product matrices."""
    x, y, z = np.moveaxis(np.asarray(axis, dtype=float), -1, 0)
    zero = np.zeros_like(x)
    return np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)


def apply_rotation(rot: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """rot (..., 3, 3) @ vec (..., 3) -> (..., 3)."""
    return (rot @ vec[..., None])[..., 0]


class ArmKinematics:
    """Forward kinematics of batches of 12-joint configurations (numpy, float64, thread-safe)."""

    def __init__(self, geometry: RobotGeometry | None = None) -> None:
        self.geometry = g = geometry or RobotGeometry.load()
        # hinge i: link_rot @ Rot(axis, q) = A + sin(q) B + (1 - cos(q)) C, with K the axis' cross-product matrix
        k = skew(g.joint_axis)  # (2, 6, 3, 3)
        self._fk_a, self._fk_b, self._fk_c = g.link_rot, g.link_rot @ k, g.link_rot @ k @ k

    def forward_kinematics(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World poses of the 7 bodies per arm (6 jointed + tool): (..., 2, 7, 3) positions, (..., 2, 7, 3, 3)."""
        g = self.geometry
        q = np.asarray(positions, dtype=float)
        if q.shape[-1] != NUM_JOINTS:
            raise ValueError(f"expected (..., {NUM_JOINTS}) joint positions, got {q.shape}")
        q = q.reshape(*q.shape[:-1], 2, NUM_ARM_JOINTS)
        batch = q.shape[:-1]  # (..., 2)
        sin, one_cos = np.sin(q)[..., None, None], 1.0 - np.cos(q)[..., None, None]
        pos = np.empty((*batch, NUM_ARM_JOINTS + 1, 3))
        rot = np.empty((*batch, NUM_ARM_JOINTS + 1, 3, 3))
        p, r = np.broadcast_to(g.base_pos, (*batch, 3)), np.broadcast_to(g.base_rot, (*batch, 3, 3))
        for j in range(NUM_ARM_JOINTS):
            local = self._fk_a[:, j] + sin[..., j, :, :] * self._fk_b[:, j] + one_cos[..., j, :, :] * self._fk_c[:, j]
            p = p + apply_rotation(r, np.broadcast_to(g.link_pos[:, j], p.shape))
            r = r @ local
            pos[..., j, :], rot[..., j, :, :] = p, r
        pos[..., -1, :] = p + apply_rotation(r, np.broadcast_to(g.tool_pos, p.shape))
        rot[..., -1, :, :] = r @ g.tool_rot
        return pos, rot

    def ee_poses(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-effector sites: (..., 2, 3) positions and (..., 2, 3, 3) rotations."""
        pos, rot = self.forward_kinematics(positions)
        g = self.geometry
        tool_p, tool_r = pos[..., -1, :], rot[..., -1, :, :]
        return tool_p + apply_rotation(tool_r, np.broadcast_to(g.ee_pos, tool_p.shape)), tool_r @ g.ee_rot

    def grasp_from_start(self, start_positions: np.ndarray, tray_pose: np.ndarray) -> TrayGrasp:
        """The carry's grasp: the tray pose (x y z qw qx qy qz) relative to the left and to the right tool at the
        start state (at the start, `carried_tray` puts the tray exactly at `tray_pose`)."""
        pos, rot = self.forward_kinematics(np.asarray(start_positions, dtype=float))
        tray_pose = np.asarray(tray_pose, dtype=float)
        tray_r = quat_to_matrix(tray_pose[3:7])
        left_p, left_r, right_p, right_r = pos[0, -1], rot[0, -1], pos[1, -1], rot[1, -1]
        return TrayGrasp(left_r.T @ (tray_pose[:3] - left_p), left_r.T @ tray_r,
                         right_r.T @ (tray_pose[:3] - right_p), right_r.T @ tray_r)  # fmt: skip

    def tray_poses(self, positions: np.ndarray, grasp: TrayGrasp) -> tuple[np.ndarray, np.ndarray]:
        """Carried tray body poses: (..., 3) positions and (..., 3, 3) rotations."""
        pos, rot = self.forward_kinematics(positions)
        return self.carried_tray(pos, rot, grasp)

    @staticmethod
    def carried_tray(pos: np.ndarray, rot: np.ndarray, grasp: TrayGrasp) -> tuple[np.ndarray, np.ndarray]:
        """tray_poses from body poses already computed by forward_kinematics: with a two-tool grasp the mean of the
        poses each tool's grasp gives the tray, else the left tool's."""
        poses = []
        for arm, (offset, turn) in enumerate(grasp.tool_parts()):
            tool_p, tool_r = pos[..., arm, -1, :], rot[..., arm, -1, :, :]
            poses.append((tool_p + apply_rotation(tool_r, np.broadcast_to(offset, tool_p.shape)), tool_r @ turn))
        if len(poses) == 1:
            return poses[0]
        (left_p, left_r), (right_p, right_r) = poses
        return 0.5 * (left_p + right_p), mean_rotation(left_r, right_r)
