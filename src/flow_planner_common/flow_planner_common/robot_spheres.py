"""The sphere cover of the arms (`RobotSpheres`, committed as robot_spheres.json: generated from the MJCF by
`data_collector_ros.robot_spheres`) and the geometric facts of the robot model the sphere checker precomputes once:
the first bodies' fixed distance to the table and the tray's mirror symmetry (numpy, no torch)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from flow_planner_common.kinematics import RobotGeometry, apply_rotation

#: The committed sphere cover of the MJCF (regenerate: python -m data_collector_ros.robot_spheres > this file).
SPHERES_JSON: Path = Path(__file__).resolve().parent / "robot_spheres.json"


@dataclass(frozen=True)
class RobotSpheres:
    """Spheres covering each arm's collision geoms (leading axis 2: left, right), in the body frames of the chain.

    Sorted by body; both arms have the same number of spheres on each body."""

    body: np.ndarray  # (2, S) int, body index 0..6 (6 = tool)
    center: np.ndarray  # (2, S, 3) m, body frame
    radius: np.ndarray  # (2, S) m, unpadded
    geom: np.ndarray  # (2, S) int, the geom (index of the geom_* rows) the sphere covers
    # The covered geoms exactly, each the Minkowski sum of a box, a disc in its xy plane and a ball in its own frame
    # (a box, a cylinder, a capsule): the checker's separating-axis bound against boxes where spheres protrude.
    geom_body: np.ndarray  # (2, K) int, body index 0..6
    geom_center: np.ndarray  # (2, K, 3) m, body frame
    geom_rot: np.ndarray  # (2, K, 3, 3) its axes (columns) in the body frame
    geom_half: np.ndarray  # (2, K, 3) m, the box's half sizes (cylinder, capsule: (0, 0, half length))
    geom_disc: np.ndarray  # (2, K) m, the disc's radius (cylinder), else 0
    geom_ball: np.ndarray  # (2, K) m, the ball's radius (capsule), else 0

    def to_json(self) -> str:
        """Deterministic JSON text (floats round-trip exactly)."""
        return json.dumps({f.name: np.asarray(getattr(self, f.name)).tolist() for f in fields(self)}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RobotSpheres:
        data = json.loads(text)
        expected = {f.name for f in fields(cls)}
        if set(data) != expected:
            missing, unknown = expected - set(data), set(data) - expected
            raise ValueError(f"robot spheres keys differ: missing {missing}, unknown {unknown}")
        spheres = cls(
            body=np.asarray(data["body"], dtype=np.int64),
            center=np.asarray(data["center"], dtype=np.float64).reshape(2, -1, 3),
            radius=np.asarray(data["radius"], dtype=np.float64),
            geom=np.asarray(data["geom"], dtype=np.int64),
            geom_body=np.asarray(data["geom_body"], dtype=np.int64),
            geom_center=np.asarray(data["geom_center"], dtype=np.float64).reshape(2, -1, 3),
            geom_rot=np.asarray(data["geom_rot"], dtype=np.float64).reshape(2, -1, 3, 3),
            geom_half=np.asarray(data["geom_half"], dtype=np.float64).reshape(2, -1, 3),
            geom_disc=np.asarray(data["geom_disc"], dtype=np.float64),
            geom_ball=np.asarray(data["geom_ball"], dtype=np.float64),
        )
        per_sphere = (spheres.radius, spheres.geom, spheres.center[..., 0])
        if any(v.shape != spheres.body.shape for v in per_sphere):
            raise ValueError("robot spheres: body, center, radius and geom disagree in shape")
        per_geom = (spheres.geom_center[..., 0], spheres.geom_rot[..., 0, 0], spheres.geom_half[..., 0],
                    spheres.geom_disc, spheres.geom_ball)  # fmt: skip
        if any(v.shape != spheres.geom_body.shape for v in per_geom):
            raise ValueError("robot spheres: the geom_* fields disagree in shape")
        if spheres.geom.min(initial=0) < 0 or spheres.geom.max(initial=0) >= spheres.geom_body.shape[1]:
            raise ValueError("robot spheres: a sphere's geom index is out of range")
        if not np.array_equal(np.take_along_axis(spheres.geom_body, spheres.geom, axis=1), spheres.body):
            raise ValueError("robot spheres: a sphere and the geom it covers are on different bodies")
        if not (np.all(np.diff(spheres.body, axis=1) >= 0) and np.array_equal(spheres.body[0], spheres.body[1])):
            raise ValueError("robot spheres must be sorted by body, the same bodies for both arms")
        return spheres

    @classmethod
    def load(cls, path: str | Path | None = None) -> RobotSpheres:
        """The committed cover (default SPHERES_JSON)."""
        return cls.from_json(Path(path or SPHERES_JSON).read_text(encoding="utf-8"))

    def equals(self, other: RobotSpheres) -> bool:
        return all(np.array_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))



def first_body_table(g: RobotGeometry, padding: float) -> float | None:
    """Distance (m) of the first bodies' padded shapes to the table top and the floor, the same at every joint value,
    or None: their hinges must be vertical in the world and their shapes above the table, within its footprint."""
    turn = g.base_rot @ g.link_rot[:, 0]  # (2, 3, 3) body 0's frame at q = 0
    axis = np.einsum("aij,aj->ai", turn, g.joint_axis[:, 0])
    if not np.allclose(np.abs(axis[:, 2]), 1.0):
        return None
    origin = g.base_pos + apply_rotation(g.base_rot, g.link_pos[:, 0])  # (2, 3) on the hinge
    low, reach = [], []
    for a in range(2):
        for k in np.flatnonzero(g.capsule_body[a] == 0):
            ends = apply_rotation(turn[a], np.stack([g.capsule_p0[a, k], g.capsule_p1[a, k]])) + origin[a]
            low.append(ends[:, 2].min() - g.capsule_radius[a, k] - padding)
            reach.append(np.linalg.norm(ends[:, :2] - origin[a, :2], axis=1).max() + g.capsule_radius[a, k] + padding)
        for k in np.flatnonzero(g.box_body[a] == 0):
            rot = turn[a] @ g.box_rot[a, k]
            centre = origin[a] + turn[a] @ g.box_center[a, k]
            half = g.box_half[a, k] + padding
            low.append(centre[2] - np.abs(rot[2]) @ half)
            reach.append(np.linalg.norm(centre[:2] - origin[a, :2]) + np.linalg.norm(half))
        footprint = np.abs(origin[a, :2] - g.table_center[:2]) + max(reach, default=0.0) <= g.table_half[:2]
        if not footprint.all():
            return None
    top = g.table_center[2] + g.table_half[2]
    if not low or min(low) < top:
        return None
    return float(min(low) - max(top, g.floor_z))


def tray_folding(center: np.ndarray, half: np.ndarray, handle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axes (x, y, z) across whose mid-plane the tray's boxes are mirror images, each box either centred on the plane
    or entirely on one side (then |coordinate| in the tray frame gives the same distances to the kept boxes), and the
    boxes kept: those not on the negative side of a folded axis."""
    fold = np.zeros(3, dtype=bool)
    for axis in range(2):  # x and y (z: the tray is not symmetric up-down)
        mirrored = center.copy()
        mirrored[:, axis] *= -1
        matches = [np.flatnonzero(np.all(np.isclose(mirrored[i], center), axis=1)
                                  & np.all(np.isclose(half[i], half), axis=1) & (handle[i] == handle))
                   for i in range(len(center))]  # fmt: skip
        centred = np.isclose(center[:, axis], 0.0)
        one_side = np.abs(center[:, axis]) >= half[:, axis]
        fold[axis] = all(len(m) for m in matches) and bool(np.all(centred | one_side))
    keep = np.all((center >= -1e-12) | ~fold[None, :], axis=1)
    return fold, keep
