"""Batched kinematic collision checking without MuJoCo: forward kinematics of both arms and signed clearances.

`RobotGeometry` is the robot as plain numpy arrays (kinematic chains, link capsules, tool boxes, tray boxes, table),
generated from the MJCF by `data_collector_ros.robot_geometry` and committed as `robot_geometry.json` next to this
module. `CollisionChecker.clearance` takes (..., 12) joint positions (e.g. N candidates x H waypoints), a scene's
boxes and the tray (resting at a pose, or carried: rigidly following the left tool) and returns a `ClearanceReport`:
per configuration the smallest signed distance (m, < 0 = penetration) of each category.

Shapes contain the MJCF collision geoms (cylinders become capsules of the same radius and axis, capsules and boxes
stay exact) and are inflated by `padding`; every reported number is a lower bound on the true signed distance of the
MJCF geoms, so "distance > 0" never hides a contact MuJoCo would report. Capsule-capsule distances are exact,
capsule-box distances exact to a certified bound (golden-section search on the convex box SDF along the segment),
box-box distances are the separating-axis lower bound (exact sign). Pairs whose cheap bound (bounding spheres) is
at least `max_distance` keep that cheap bound: distances above `max_distance` are only lower bounds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from flow_planner_common.obstacles import BOX_DIM, Box
from flow_planner_common.robot import NUM_ARM_JOINTS, NUM_JOINTS

#: The committed geometry of the MJCF (regenerate: python -m data_collector_ros.robot_geometry > this file).
GEOMETRY_JSON: Path = Path(__file__).resolve().parent / "robot_geometry.json"
#: Clearance categories of a ClearanceReport, in order; OVERALL_CATEGORIES make up `overall`.
CATEGORIES: tuple[str, ...] = ("arm_arm", "arm_table", "arm_obstacle", "tray_obstacle", "arm_tray", "tray_table")
#: tray_table is left out of `overall`: the tray rests on the table at the start of a carry.
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
    """The carried tray's pose in the left tool frame (both tools hold it rigidly)."""

    position: np.ndarray  # (3,)
    rotation: np.ndarray  # (3, 3)


@dataclass(frozen=True)
class ClearanceReport:
    """Smallest signed distance (m) per category and configuration; +inf where a category has no pair."""

    arm_arm: np.ndarray
    arm_table: np.ndarray  # table box and floor plane
    arm_obstacle: np.ndarray
    tray_obstacle: np.ndarray
    arm_tray: np.ndarray  # tool-handle pairs excluded (the grasp)
    tray_table: np.ndarray  # not in `overall`

    @property
    def overall(self) -> np.ndarray:
        return np.min(np.stack([getattr(self, c) for c in OVERALL_CATEGORIES]), axis=0)

    def as_array(self) -> np.ndarray:
        """(..., len(CATEGORIES)) in CATEGORIES order."""
        return np.stack([getattr(self, c) for c in CATEGORIES], axis=-1)

    def violation(self, margin: float) -> np.ndarray:
        """max(0, margin - overall) per configuration (m)."""
        return np.maximum(0.0, margin - self.overall)


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


def _skew(axis: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 3, 3) cross-product matrices."""
    x, y, z = np.moveaxis(np.asarray(axis, dtype=float), -1, 0)
    zero = np.zeros_like(x)
    return np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)


def _apply(rot: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """rot (..., 3, 3) @ vec (..., 3) -> (..., 3)."""
    return (rot @ vec[..., None])[..., 0]


_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


class CollisionChecker:
    """Forward kinematics and clearances for batches of 12-joint configurations (numpy only, thread-safe).

    padding (m) inflates every robot and tray shape; max_distance (m): pairs whose bounding-sphere bound is at
    least this far keep that bound (set it above the largest margin you penalize); search_iterations: golden-section
    steps of the capsule-box search (its certified slack is |segment| * 0.618**iterations)."""

    def __init__(
        self,
        geometry: RobotGeometry | None = None,
        padding: float = 0.002,
        max_distance: float = 0.1,
        search_iterations: int = 16,
    ) -> None:
        self.geometry = g = geometry or RobotGeometry.load()
        self.padding, self.max_distance, self.search_iterations = float(padding), float(max_distance), search_iterations
        # hinge i: link_rot @ Rot(axis, q) = A + sin(q) B + (1 - cos(q)) C, with K the axis' cross-product matrix
        k = _skew(g.joint_axis)  # (2, 6, 3, 3)
        self._fk_a, self._fk_b, self._fk_c = g.link_rot, g.link_rot @ k, g.link_rot @ k @ k
        self._cap_radius = (g.capsule_radius + padding).reshape(-1)  # (2K,)
        self._cap_half_len = 0.5 * _norm(g.capsule_p1 - g.capsule_p0).reshape(-1)
        self._cap_tool = (g.capsule_body == RobotGeometry.TOOL_BODY).reshape(-1)
        self._box_half = (g.box_half + padding).reshape(-1, 3)  # (2B, 3)
        self._box_tool = (g.box_body == RobotGeometry.TOOL_BODY).reshape(-1)
        self._tray_half = g.tray_half + padding
        self._table_half = g.table_half[None]
        n_cap, n_box = g.capsule_body.shape[1], g.box_body.shape[1]
        self._cap_left = np.repeat([True, False], n_cap)
        self._box_left = np.repeat([True, False], n_box)

    # ------------------------------------------------------------------ kinematics
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
            p = p + _apply(r, np.broadcast_to(g.link_pos[:, j], p.shape))
            r = r @ local
            pos[..., j, :], rot[..., j, :, :] = p, r
        pos[..., -1, :] = p + _apply(r, np.broadcast_to(g.tool_pos, p.shape))
        rot[..., -1, :, :] = r @ g.tool_rot
        return pos, rot

    def ee_poses(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-effector sites: (..., 2, 3) positions and (..., 2, 3, 3) rotations."""
        pos, rot = self.forward_kinematics(positions)
        g = self.geometry
        tool_p, tool_r = pos[..., -1, :], rot[..., -1, :, :]
        return tool_p + _apply(tool_r, np.broadcast_to(g.ee_pos, tool_p.shape)), tool_r @ g.ee_rot

    def grasp_from_start(self, start_positions: np.ndarray, tray_pose: np.ndarray) -> TrayGrasp:
        """The carry's grasp: the tray pose (x y z qw qx qy qz) relative to the left tool at the start state."""
        pos, rot = self.forward_kinematics(np.asarray(start_positions, dtype=float))
        tool_p, tool_r = pos[0, -1], rot[0, -1]
        tray_pose = np.asarray(tray_pose, dtype=float)
        return TrayGrasp(tool_r.T @ (tray_pose[:3] - tool_p), tool_r.T @ quat_to_matrix(tray_pose[3:7]))

    def tray_poses(self, positions: np.ndarray, grasp: TrayGrasp) -> tuple[np.ndarray, np.ndarray]:
        """Carried tray body poses: (..., 3) positions and (..., 3, 3) rotations."""
        pos, rot = self.forward_kinematics(positions)
        return self.carried_tray(pos, rot, grasp)

    @staticmethod
    def carried_tray(pos: np.ndarray, rot: np.ndarray, grasp: TrayGrasp) -> tuple[np.ndarray, np.ndarray]:
        """tray_poses from body poses already computed by forward_kinematics."""
        tool_p, tool_r = pos[..., 0, -1, :], rot[..., 0, -1, :, :]
        return tool_p + _apply(tool_r, np.broadcast_to(grasp.position, tool_p.shape)), tool_r @ grasp.rotation

    # ------------------------------------------------------------------ clearance
    def clearance(
        self,
        positions: np.ndarray,
        obstacles: np.ndarray | Sequence[Box] = (),
        obstacle_mask: np.ndarray | None = None,
        tray_pose: np.ndarray | None = None,
        grasp: TrayGrasp | None = None,
    ) -> ClearanceReport:
        """Clearances of (..., 12) configurations (batch shape kept, e.g. (N, H)).

        obstacles: boxes, or an (M, 7) array (centre, full size, yaw) with an optional (M,) mask (the schema's
        fixed-size form). The tray: resting at `tray_pose` (x y z qw qx qy qz; reach phase), carried with `grasp`
        (carry phase), or absent when both are None.
        """
        if tray_pose is not None and grasp is not None:
            raise ValueError("give tray_pose (resting tray) or grasp (carried tray), not both")
        q = np.asarray(positions, dtype=float)
        batch = q.shape[:-1]
        q = q.reshape(-1, q.shape[-1])
        g, c = self.geometry, q.shape[0]
        pos, rot = self.forward_kinematics(q)  # (C, 2, 7, 3), (C, 2, 7, 3, 3)

        # Arm shapes in the world, arms flattened: capsules (C, 2K, 3), boxes (C, 2B, 3) and (C, 2B, 3, 3).
        arm = np.arange(2)[:, None]
        cp, cr = pos[:, arm, g.capsule_body], rot[:, arm, g.capsule_body]
        cap0 = (cp + _apply(cr, np.broadcast_to(g.capsule_p0, cp.shape))).reshape(c, -1, 3)
        cap1 = (cp + _apply(cr, np.broadcast_to(g.capsule_p1, cp.shape))).reshape(c, -1, 3)
        caps = _Capsules(cap0, cap1, self._cap_radius, self._cap_half_len)
        bp, br = pos[:, arm, g.box_body], rot[:, arm, g.box_body]
        boxes = _Boxes(
            (bp + _apply(br, np.broadcast_to(g.box_center, bp.shape))).reshape(c, -1, 3),
            (br @ g.box_rot).reshape(c, -1, 3, 3),
            self._box_half,
        )
        obs = _obstacle_boxes(obstacles, obstacle_mask)
        table = _Boxes(g.table_center[None, None], g.table_rot[None, None], self._table_half)
        left_c, right_c, left_b, right_b = self._cap_left, ~self._cap_left, self._box_left, ~self._box_left

        arm_arm = np.minimum.reduce(
            [
                self._cap_cap(caps.take(left_c), caps.take(right_c)),
                self._cap_box(caps.take(left_c), boxes.take(right_b)),
                self._cap_box(caps.take(right_c), boxes.take(left_b)),
                self._box_box(boxes.take(left_b), boxes.take(right_b)),
            ]
        )
        floor_cap = np.minimum(cap0[..., 2], cap1[..., 2]) - self._cap_radius - g.floor_z
        floor_box = boxes.center[..., 2] - np.sum(np.abs(boxes.rot[..., 2, :]) * boxes.half, axis=-1) - g.floor_z
        arm_table = np.minimum.reduce(
            [
                self._cap_box(caps, table),
                self._box_box(boxes, table),
                _min1(floor_cap, c),
                _min1(floor_box, c),
            ]
        )
        arm_obstacle = np.minimum(self._cap_box(caps, obs), self._box_box(boxes, obs))

        inf = np.full(c, np.inf)
        tray_obstacle, arm_tray, tray_table = inf, inf, inf
        if tray_pose is not None or grasp is not None:
            if grasp is not None:
                tray_p, tray_r = self.carried_tray(pos, rot, grasp)  # (C, 3), (C, 3, 3)
            else:
                pose = np.asarray(tray_pose, dtype=float)
                tray_p, tray_r = pose[None, :3], quat_to_matrix(pose[3:7])[None]
            tray = _Boxes(
                tray_p[:, None]
                + _apply(tray_r[:, None], np.broadcast_to(g.tray_center, (len(tray_p), *g.tray_center.shape))),
                tray_r[:, None] @ g.tray_rot,
                self._tray_half,
            )
            tray_obstacle = np.broadcast_to(self._box_box(tray, obs), (c,))
            tray_table = np.broadcast_to(self._box_box(tray, table), (c,))
            # tool shapes may touch the handles (the grasp); everything else may not touch the tray
            plain = tray.take(~g.tray_handle)
            tool_c, tool_b = self._cap_tool, self._box_tool
            arm_tray = np.minimum.reduce(
                [
                    self._cap_box(caps.take(~tool_c), tray),
                    self._cap_box(caps.take(tool_c), plain),
                    self._box_box(boxes.take(~tool_b), tray),
                    self._box_box(boxes.take(tool_b), plain),
                ]
            )
        values = [arm_arm, arm_table, arm_obstacle, tray_obstacle, arm_tray, tray_table]
        return ClearanceReport(*(np.broadcast_to(v, (c,)).reshape(batch).copy() for v in values))

    # ------------------------------------------------------------------ pairs: (C,) minimum over all pairs
    def _min_pairs(
        self, cheap: np.ndarray, refine: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    ) -> np.ndarray:
        """Minimum over pairs of lower bounds: `cheap` (P, Q, C) bounds everywhere, `refine(ci, pi, qi)` (tighter
        lower bounds) for the pairs that can still be a configuration's minimum below max_distance."""
        p, q, c = cheap.shape
        if cheap.size == 0:
            return np.full(c, np.inf)
        flat = cheap.reshape(p * q, c)
        cols = np.arange(c)
        first = flat.argmin(axis=0)
        best = flat[first, cols].astype(np.float64)
        refined = np.zeros(flat.shape, dtype=bool)
        # round 1: each configuration's most promising pair; round 2: every pair whose bound is below that result
        todo = best < self.max_distance
        ci, pj = cols[todo], first[todo]
        if len(ci):
            best[ci] = refine(ci, pj // q, pj % q)
            refined[pj, ci] = True
        mask = (flat < np.minimum(best, self.max_distance)[None, :]) & ~refined
        pj, ci = np.nonzero(mask)
        if len(ci):
            np.minimum.at(best, ci, refine(ci, pj // q, pj % q))
            refined |= mask
        return np.minimum(best, np.where(refined, np.inf, flat).min(axis=0).astype(np.float64))

    def _cap_cap(self, a: _Capsules, b: _Capsules) -> np.ndarray:
        reach = (a.radius + a.half_len)[:, None] + (b.radius + b.half_len)[None, :] + _F32_SLACK
        ma, mb = _f32(a.mid), _f32(b.mid)
        dx, dy, dz = (ma[:, :, k].T[:, None, :] - mb[:, :, k].T[None, :, :] for k in range(3))
        cheap = np.sqrt(dx * dx + dy * dy + dz * dz) - reach.astype(np.float32)[:, :, None]  # bounding spheres

        def refine(ci: np.ndarray, pi: np.ndarray, qi: np.ndarray) -> np.ndarray:
            ca, cb = _rows(a.p0, ci), _rows(b.p0, ci)
            dist = _segment_segment(a.p0[ca, pi], a.p1[ca, pi], b.p0[cb, qi], b.p1[cb, qi])
            return dist - a.radius[pi] - b.radius[qi]

        return self._min_pairs(cheap, refine)

    def _cap_box(self, a: _Capsules, b: _Boxes) -> np.ndarray:
        # the box SDF at the capsule's midpoint minus half its length and its radius
        reach = a.half_len + a.radius + _F32_SLACK
        cheap = _sdf_in_frames(a.mid, b) - reach.astype(np.float32)[:, None, None]

        def refine(ci: np.ndarray, pi: np.ndarray, qi: np.ndarray) -> np.ndarray:
            ca, cb = _rows(a.p0, ci), _rows(b.center, ci)
            center, rot = b.center[cb, qi][:, None, :], b.rot[cb, qi]
            local0 = ((a.p0[ca, pi][:, None, :] - center) @ rot)[:, 0]
            local1 = ((a.p1[ca, pi][:, None, :] - center) @ rot)[:, 0]
            return _segment_box(local0, local1, b.half[qi], self.search_iterations) - a.radius[pi]

        return self._min_pairs(cheap, refine)

    def _box_box(self, a: _Boxes, b: _Boxes) -> np.ndarray:
        # the SDF of box b at box a's centre minus a's circumradius
        reach = _norm(a.half) + _F32_SLACK
        cheap = _sdf_in_frames(a.center, b) - reach.astype(np.float32)[:, None, None]

        def refine(ci: np.ndarray, pi: np.ndarray, qi: np.ndarray) -> np.ndarray:
            ca, cb = _rows(a.center, ci), _rows(b.center, ci)
            return _box_box_sat(
                a.center[ca, pi], a.rot[ca, pi], a.half[pi], b.center[cb, qi], b.rot[cb, qi], b.half[qi]
            )

        return self._min_pairs(cheap, refine)


#: Cheap bounds are computed in float32 (less memory traffic); this much (m) is subtracted to keep them bounds.
_F32_SLACK = 1e-5


def _f32(array: np.ndarray) -> np.ndarray:
    return array.astype(np.float32)


def _sdf_in_frames(points: np.ndarray, boxes: _Boxes) -> np.ndarray:
    """Box SDF (float32) of points (C|1, P, 3) against boxes (C|1, Q): (P, Q, C), configurations last for speed."""
    pts = _f32(points).transpose(1, 2, 0)[:, None]  # (P, 1, 3, C)
    center = _f32(boxes.center).transpose(1, 2, 0)[None]  # (1, Q, 3, C)
    rot = _f32(boxes.rot).transpose(1, 2, 3, 0)[None]  # (1, Q, 3, 3, C)
    rel = [pts[:, :, i] - center[:, :, i] for i in range(3)]
    half = boxes.half.astype(np.float32)[None, :, :, None]  # (1, Q, 3, 1)
    q = [
        np.abs(rel[0] * rot[:, :, 0, j] + rel[1] * rot[:, :, 1, j] + rel[2] * rot[:, :, 2, j]) - half[:, :, j]
        for j in range(3)
    ]
    inside = np.minimum(np.maximum(np.maximum(q[0], q[1]), q[2]), 0.0)
    out = [np.maximum(v, 0.0) for v in q]
    return np.sqrt(out[0] * out[0] + out[1] * out[1] + out[2] * out[2]) + inside


@dataclass(frozen=True)
class _Capsules:
    p0: np.ndarray  # (C|1, P, 3) world
    p1: np.ndarray
    radius: np.ndarray  # (P,)
    half_len: np.ndarray  # (P,)

    @property
    def mid(self) -> np.ndarray:
        return 0.5 * (self.p0 + self.p1)

    @property
    def count(self) -> int:
        return self.p0.shape[1]

    def take(self, mask: np.ndarray) -> _Capsules:
        return _Capsules(self.p0[:, mask], self.p1[:, mask], self.radius[mask], self.half_len[mask])


@dataclass(frozen=True)
class _Boxes:
    center: np.ndarray  # (C|1, Q, 3) world
    rot: np.ndarray  # (C|1, Q, 3, 3) columns = box axes
    half: np.ndarray  # (Q, 3)

    @property
    def count(self) -> int:
        return self.center.shape[1]

    def take(self, mask: np.ndarray) -> _Boxes:
        return _Boxes(self.center[:, mask], self.rot[:, mask], self.half[mask])


def _rows(array: np.ndarray, ci: np.ndarray) -> np.ndarray:
    """Row index into an array whose leading axis is C or 1 (broadcast)."""
    return ci if array.shape[0] > 1 else np.zeros_like(ci)


# ---------------------------------------------------------------------- helpers on flat arrays
def _min1(values: np.ndarray, count: int) -> np.ndarray:
    """(C, P) -> (C,) minimum over P (+inf when P is 0)."""
    return values.min(axis=1) if values.shape[1] else np.full(count, np.inf)


def _obstacle_boxes(obstacles: np.ndarray | Sequence[Box], mask: np.ndarray | None) -> _Boxes:
    """The used boxes of a scene, world frame."""
    if len(obstacles) and isinstance(obstacles[0], Box):
        array = np.array([b.as_array() for b in obstacles])
    else:
        array = np.asarray(obstacles, dtype=float).reshape(-1, BOX_DIM)
    if mask is not None:
        array = array[np.asarray(mask, dtype=bool)]
    if not np.all(np.isfinite(array)) or np.any(array[:, 3:6] <= 0):
        raise ValueError("obstacles need finite centres and yaws and positive sizes")
    yaw = array[:, 6]
    cos, sin, zero, one = np.cos(yaw), np.sin(yaw), np.zeros_like(yaw), np.ones_like(yaw)
    rot = np.stack(
        [np.stack([cos, -sin, zero], -1), np.stack([sin, cos, zero], -1), np.stack([zero, zero, one], -1)], -2
    )
    return _Boxes(array[None, :, 0:3], rot[None], array[:, 3:6] / 2)


def _norm(v: np.ndarray) -> np.ndarray:
    """Euclidean norm over the last axis (size 3); much faster than np.linalg.norm for small vectors."""
    return np.sqrt(v[..., 0] * v[..., 0] + v[..., 1] * v[..., 1] + v[..., 2] * v[..., 2])


def _box_sdf(p: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Signed distance of points (..., 3) in an axis-aligned box's frame."""
    q = np.abs(p) - half
    inside = np.minimum(np.maximum(np.maximum(q[..., 0], q[..., 1]), q[..., 2]), 0.0)
    np.maximum(q, 0.0, out=q)
    return _norm(q) + inside


def _segment_box(p0: np.ndarray, p1: np.ndarray, half: np.ndarray, iterations: int) -> np.ndarray:
    """Certified lower bound of min over the segment p0-p1 (M, 3) of the box SDF (box frame, half sizes (M, 3)).

    The SDF of a convex set is convex and 1-Lipschitz, so golden-section search brackets a minimiser and the best
    value found minus |p1 - p0| * bracket width bounds the minimum from below."""
    d = p1 - p0
    length = _norm(d)

    def f(t: np.ndarray) -> np.ndarray:
        return _box_sdf(p0 + t[:, None] * d, half)

    a, b = np.zeros(len(p0)), np.ones(len(p0))
    x1, x2 = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    f1, f2 = f(x1), f(x2)
    best = np.minimum(np.minimum(f(a), f(b)), np.minimum(f1, f2))
    for _ in range(iterations):
        left = f1 < f2  # a minimiser lies in [a, x2]
        b = np.where(left, x2, b)
        a = np.where(left, a, x1)
        x_new = np.where(left, b - _GOLDEN * (b - a), a + _GOLDEN * (b - a))
        f_new = f(x_new)
        best = np.minimum(best, f_new)
        x1, x2, f1, f2 = (
            np.where(left, x_new, x2),
            np.where(left, x1, x_new),
            np.where(left, f_new, f2),
            np.where(left, f1, f_new),
        )
    return best - length * (b - a)


def _segment_segment(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Distance between segments p0-p1 and q0-q1, each (M, 3) (Ericson, Real-Time Collision Detection 5.1.9)."""
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a, e = np.einsum("ij,ij->i", d1, d1), np.einsum("ij,ij->i", d2, d2)
    f, c, b = np.einsum("ij,ij->i", d2, r), np.einsum("ij,ij->i", d1, r), np.einsum("ij,ij->i", d1, d2)
    eps = 1e-12
    denom = a * e - b * b
    s = np.where(denom > eps, np.clip((b * f - c * e) / np.where(denom > eps, denom, 1.0), 0.0, 1.0), 0.0)
    e_safe = np.where(e > eps, e, 1.0)
    t = np.where(e > eps, (b * s + f) / e_safe, 0.0)
    a_safe = np.where(a > eps, a, 1.0)
    s = np.where(t < 0.0, np.clip(-c / a_safe, 0.0, 1.0), np.where(t > 1.0, np.clip((b - c) / a_safe, 0.0, 1.0), s))
    s = np.where(a > eps, s, 0.0)
    t = np.clip(t, 0.0, 1.0)
    return _norm(p0 + s[:, None] * d1 - (q0 + t[:, None] * d2))


def _box_box_sat(ca, ra, ha, cb, rb, hb) -> np.ndarray:
    """Largest separating-axis gap of oriented boxes (M, ...): <= 0 iff they overlap, <= their distance otherwise."""
    axes_a, axes_b = np.swapaxes(ra, -1, -2), np.swapaxes(rb, -1, -2)  # rows = box axes (M, 3, 3)
    cross = np.cross(axes_a[:, :, None, :], axes_b[:, None, :, :]).reshape(-1, 9, 3)
    norm = _norm(cross)[..., None]
    valid = np.concatenate([np.ones((len(ca), 6), dtype=bool), norm[..., 0] > 1e-9], axis=1)
    axes = np.concatenate([axes_a, axes_b, cross / np.maximum(norm, 1e-9)], axis=1)  # (M, 15, 3)
    proj_a = np.abs(axes @ ra) @ ha[..., None]
    proj_b = np.abs(axes @ rb) @ hb[..., None]
    dist = np.abs(np.einsum("mki,mi->mk", axes, cb - ca))
    gap = dist - proj_a[..., 0] - proj_b[..., 0]
    return np.where(valid, gap, -np.inf).max(axis=1)
