"""A conservative sphere cover of both arms' collision geoms, per body of `RobotGeometry`'s kinematic chain.

`python -m data_collector_ros.robot_spheres > src/flow_planner_common/flow_planner_common/robot_spheres.json`
regenerates the committed file that `flow_planner_common.sphere_checker` loads (no MuJoCo at use); a test checks that
it equals what the MJCF gives.

Every collision geom on the bodies 0..6 of an arm (6 = tool) is covered by equal spheres in its body's frame (the
union of the spheres contains the geom; the checker adds its padding to the radii):

- capsule (radius r, segment length L): n spheres of radius R on the segment, the end ones inset by R - r from the
  segment's ends (each covers its cap), neighbours 2 sqrt(R^2 - r^2) apart (their intersection circle has radius r);
- cylinder (radius r, half length h): n spheres on the axis at the centres of n equal slices, R^2 = r^2 + (h / n)^2
  (each circumscribes its slice: tighter than the enclosing capsule);
- box: an nx x ny x nz grid of equal sub-boxes, each in its circumscribed sphere.

Per geom the fewest spheres whose protrusion (how far the cover reaches beyond the geom at most) is within
`TOLERANCE`; where no cover of at most `MAX_PER_GEOM` spheres is, the one that protrudes least (the tool box, a
shape spheres cover badly). Fewer spheres make the checker faster, a smaller protrusion makes it report fewer
contacts MuJoCo does not have. Each sphere also records the geom it covers, and each geom is recorded exactly
(`exact_shape`: its frame in the body, box half sizes, disc and ball radii) for the checker's separating-axis bound
against boxes, where the cover protrudes.
"""

from __future__ import annotations

import itertools
import math

import mujoco
import numpy as np

from data_collector_ros.robot_geometry import _collides, _id, _mat
from data_collector_ros.scene import TOOL_BODIES, load_model
from flow_planner_common.robot import LEFT_ARM_JOINTS, RIGHT_ARM_JOINTS
from flow_planner_common.robot_spheres import RobotSpheres

#: Largest protrusion (m) of a geom's cover that is accepted before trading it for fewer spheres.
TOLERANCE = 0.015
#: At most this many spheres per geom.
MAX_PER_GEOM = 6
#: Decimals (m) of the committed centres and radii.
DIGITS = 9


def cover_capsule(radius: float, half_length: float, count: int) -> tuple[np.ndarray, float]:
    """(count,) sphere positions along the axis and their radius covering a capsule with `count` spheres."""
    length = 2.0 * half_length
    if count == 1:
        return np.zeros(1), radius + half_length

    def span(big: float) -> float:  # length of segment the spheres cover
        return 2.0 * (big - radius) + (count - 1) * 2.0 * math.sqrt(max(big * big - radius * radius, 0.0))

    low, high = radius, radius + half_length
    for _ in range(100):  # bisection on R: span(R) is increasing
        mid = 0.5 * (low + high)
        low, high = (mid, high) if span(mid) < length else (low, mid)
    big = high
    inset = big - radius
    return np.linspace(-half_length + inset, half_length - inset, count), big


def cover_cylinder(radius: float, half_length: float, count: int) -> tuple[np.ndarray, float]:
    """(count,) sphere positions along the axis (slice centres) and their radius."""
    step = 2.0 * half_length / count
    positions = -half_length + step * (np.arange(count) + 0.5)
    return positions, math.sqrt(radius * radius + (half_length / count) ** 2)


def cover_box(half: np.ndarray, counts: tuple[int, int, int]) -> tuple[np.ndarray, float]:
    """(n, 3) sphere centres (box frame) and their radius: the circumscribed spheres of a grid of sub-boxes."""
    sub = np.asarray(half, dtype=float) / np.array(counts)
    axes = [-h + 2.0 * s * (np.arange(n) + 0.5) for h, s, n in zip(half, sub, counts, strict=True)]
    centres = np.array(list(itertools.product(*axes)))
    return centres, float(np.linalg.norm(sub))


def geom_cover(kind: int, size: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The chosen cover of one geom in its own frame: (n, 3) centres, radius, protrusion (m)."""
    options: list[tuple[np.ndarray, float, float]] = []
    if kind in (mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_CYLINDER):
        radius, half_length = float(size[0]), float(size[1])
        for n in range(1, MAX_PER_GEOM + 1):
            if kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
                along, big = cover_capsule(radius, half_length, n)
                protrusion = big - radius  # radially; the end spheres reach exactly the caps' tips
            else:
                along, big = cover_cylinder(radius, half_length, n)
                protrusion = big - min(radius, half_length / n)  # radially or beyond the end faces
            centres = np.zeros((n, 3))
            centres[:, 2] = along
            options.append((centres, big, protrusion))
    elif kind == mujoco.mjtGeom.mjGEOM_BOX:
        for counts in itertools.product(range(1, MAX_PER_GEOM + 1), repeat=3):
            if math.prod(counts) <= MAX_PER_GEOM:
                centres, big = cover_box(size, counts)
                options.append((centres, big, big - float(np.min(size / np.array(counts)))))
    else:
        raise ValueError(f"geom type {kind}: only capsules, cylinders and boxes on the arms")
    within = [o for o in options if o[2] <= TOLERANCE]
    if within:
        return min(within, key=lambda o: (len(o[0]), o[2]))
    return min(options, key=lambda o: (o[2], len(o[0])))


def spheres_from_model(model: mujoco.MjModel) -> RobotSpheres:
    """The sphere cover of both arms (the same chain and body indices as robot_geometry.geometry_from_model)."""
    arms: list[tuple[list[int], list[np.ndarray], list[float]]] = []
    for joints, tool_name in zip((LEFT_ARM_JOINTS, RIGHT_ARM_JOINTS), TOOL_BODIES, strict=True):
        bodies = [int(model.jnt_bodyid[_id(model, mujoco.mjtObj.mjOBJ_JOINT, n)]) for n in joints]
        chain = [*bodies, _id(model, mujoco.mjtObj.mjOBJ_BODY, tool_name)]
        body_of, centres, radii, geom_of = [], [], [], []
        shapes: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, float, float]] = []
        for geom in range(model.ngeom):
            body = int(model.geom_bodyid[geom])
            if body not in chain or not _collides(model, geom):
                continue
            kind, size = int(model.geom_type[geom]), model.geom_size[geom]
            local, big, _ = geom_cover(kind, size)
            rot, pos = _mat(model.geom_quat[geom]), model.geom_pos[geom]
            for centre in local:
                body_of.append(chain.index(body))
                centres.append(pos + rot @ centre)
                radii.append(big)
                geom_of.append(len(shapes))
            shapes.append((chain.index(body), pos, rot, *exact_shape(kind, size)))
        order = sorted(range(len(body_of)), key=lambda i: body_of[i])  # stable: geom order within a body
        arms.append(([body_of[i] for i in order], [centres[i] for i in order], [radii[i] for i in order],
                     [geom_of[i] for i in order], shapes))  # fmt: skip
    if arms[0][0] != arms[1][0] or [s[0] for s in arms[0][4]] != [s[0] for s in arms[1][4]]:
        raise ValueError("both arms must have the same spheres and geoms on the same bodies")
    # rounded to DIGITS decimals (the text stays the same across platforms); sizes up by at least their rounding
    scale = 10.0**DIGITS

    def up(values: list) -> np.ndarray:
        return np.ceil(np.array(values, dtype=np.float64) * scale + 0.5) / scale

    def near(values: list) -> np.ndarray:
        return np.round(np.array(values, dtype=np.float64), DIGITS) + 0.0

    shapes = [a[4] for a in arms]
    return RobotSpheres(
        body=np.array([a[0] for a in arms], dtype=np.int64),
        center=near([a[1] for a in arms]),
        radius=up([a[2] for a in arms]),
        geom=np.array([a[3] for a in arms], dtype=np.int64),
        geom_body=np.array([[s[0] for s in arm] for arm in shapes], dtype=np.int64),
        geom_center=near([[s[1] for s in arm] for arm in shapes]),
        geom_rot=near([[s[2] for s in arm] for arm in shapes]),
        geom_half=up([[s[3] for s in arm] for arm in shapes]),
        geom_disc=up([[s[4] for s in arm] for arm in shapes]),
        geom_ball=up([[s[5] for s in arm] for arm in shapes]),
    )


def exact_shape(kind: int, size: np.ndarray) -> tuple[np.ndarray, float, float]:
    """A geom as the Minkowski sum of a box (half sizes), a disc in its xy plane (radius) and a ball (radius), in its
    own frame: a box is the box, a cylinder a disc swept along z, a capsule a ball swept along z."""
    if kind == mujoco.mjtGeom.mjGEOM_BOX:
        return np.array(size[:3], dtype=float), 0.0, 0.0
    along = np.array([0.0, 0.0, float(size[1])])
    if kind == mujoco.mjtGeom.mjGEOM_CYLINDER:
        return along, float(size[0]), 0.0
    if kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
        return along, 0.0, float(size[0])
    raise ValueError(f"geom type {kind}: only capsules, cylinders and boxes on the arms")


def main() -> None:
    """Print the packaged scene's sphere cover as JSON (the committed robot_spheres.json)."""
    print(spheres_from_model(load_model()).to_json(), end="")


if __name__ == "__main__":
    main()
