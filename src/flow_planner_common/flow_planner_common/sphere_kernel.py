"""The sphere checker's clearances compiled for the CPU (numba): the same bounds as `SphereChecker`'s torch code, one
configuration at a time, with a body-level broad phase that skips what cannot lower a minimum.

Per configuration: both arms' forward kinematics (the chain of `RobotGeometry`, hinge j turning by link_rot (I + sin q K
+ (1 - cos q) K^2)), the sphere centres and one bounding sphere per body. A category's minimum runs over bodies: a
body whose bounding sphere is already at least the category's best so far is skipped (every distance bound used
here is 1-Lipschitz in the sphere's centre, so the bounding sphere's value is at most each of its spheres'), and a
sphere's geom bound (the separating-axis gap of its exact geom, `_geom_gap`) is computed only where the sphere's own
value would lower the minimum. The result is the minimum the torch code takes over all terms, except arm-arm: here
the exact smallest sphere-pair distance, where the torch code takes a bound a few per cent below it (one batched
product). Computed in float64, with the same padded radii as the torch checker of the same dtype.

`clearances` fills one row per configuration, in `kinematics.CATEGORIES` order, +inf where a category has no pair;
it releases the GIL, so the caller can split a batch over threads (SphereChecker does).
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numba
import numpy as np

from flow_planner_common.kinematics import CATEGORIES, RobotGeometry, skew
from flow_planner_common.robot_spheres import RobotSpheres

_ARM_ARM, _ARM_TABLE, _ARM_OBSTACLE, _TRAY_OBSTACLE, _ARM_TRAY, _TRAY_TABLE = (
    CATEGORIES.index(name)
    for name in ("arm_arm", "arm_table", "arm_obstacle", "tray_obstacle", "arm_tray", "tray_table")
)
#: Tray modes of `clearances`: no tray, resting at a fixed pose, carried by the tools (grasp parts).
NO_TRAY, RESTING_TRAY, CARRIED_TRAY = 0, 1, 2
_TOOL = RobotGeometry.TOOL_BODY
_BODIES = _TOOL + 1  # per arm: six jointed bodies and the tool


class KernelGeometry(NamedTuple):
    """The robot as the kernel reads it (float64, int64), built once by SphereChecker from RobotGeometry and
    RobotSpheres; radii and half sizes already padded."""

    first_rot: np.ndarray  # (2, 3 terms, 3, 3) base_rot link_rot[0] (I, K, K^2): body 0's rotation terms
    first_pos: np.ndarray  # (2, 3) body 0's origin
    link_terms: np.ndarray  # (2, 6, 3 terms, 3, 3) link_rot[j] (I, K_j, K_j^2) (j = 0 unused)
    link_pos: np.ndarray  # (2, 6, 3)
    tool_rot: np.ndarray  # (2, 3, 3)
    tool_pos: np.ndarray  # (2, 3)
    sphere_start: np.ndarray  # (8,) int: body b's spheres are sphere_start[b]:sphere_start[b + 1]
    sphere_center: np.ndarray  # (2, S, 3) body frame
    sphere_radius: np.ndarray  # (2, S) padded
    sphere_geom: np.ndarray  # (2, S) int: the geom each sphere covers
    bound_center: np.ndarray  # (2, 7, 3) per body a sphere around all its spheres, body frame
    bound_radius: np.ndarray  # (2, 7)
    geom_body: np.ndarray  # (2, K) int
    geom_rot: np.ndarray  # (2, K, 3, 3) axes (columns) in the body frame
    geom_center: np.ndarray  # (2, K, 3)
    geom_half: np.ndarray  # (2, K, 3) box half sizes (round geoms: (0, 0, half length))
    geom_disc: np.ndarray  # (2, K)
    geom_ball: np.ndarray  # (2, K) padded
    geom_round: np.ndarray  # (2, K) bool: a cylinder or capsule (its fourth axis runs across its z axis)
    tray_center: np.ndarray  # (T, 3) the tray's boxes in the tray frame (axis-aligned there)
    tray_half: np.ndarray  # (T, 3) padded
    tray_bound: np.ndarray  # (4,) a sphere around all the tray's boxes: centre (tray frame), radius
    floor_z: float
    first_body_table: float  # the first bodies' fixed distance to the table and floor (m), or NaN: none
    min_axis_length: float  # sphere_checker.MIN_AXIS_LENGTH


_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@numba.njit(**_JIT)
def clearances(
    geo: KernelGeometry,
    q: np.ndarray,
    lo: int,
    hi: int,
    per_scene: int,
    box_rt: np.ndarray,
    box_center: np.ndarray,
    box_half: np.ndarray,
    box_used: np.ndarray,
    tray_mode: int,
    tray_rot: np.ndarray,
    tray_pos: np.ndarray,
    grasp_offset: np.ndarray,
    grasp_turn: np.ndarray,
    out: np.ndarray,
) -> None:
    """Fill out[lo:hi] (C, 6) from q[lo:hi] (C, 12): configuration c in scene c // per_scene, whose boxes are box_rt
    (G, B, 3, 3) (rows: the box's axes in the world), box_center (G, B, 3), box_half (G, B, 3), box_used (G, B) (the
    last box the table); the tray resting at tray_rot (3, 3), tray_pos (3,), or carried: per scene g and tool part k
    the tray's offset grasp_offset[g, k] and rotation grasp_turn[g, k] in that tool's frame (the mean of the parts'
    poses). A leading size of 1 (boxes or grasps) serves every scene."""
    spheres, geoms, boxes = geo.sphere_center.shape[1], geo.geom_body.shape[1], box_used.shape[1]
    rot, pos = np.empty((2, _BODIES, 3, 3)), np.empty((2, _BODIES, 3))
    world, bound = np.empty((2, spheres, 3)), np.empty((2, _BODIES, 3))
    gap_box, gap_value = np.empty((2, geoms), dtype=np.int64), np.empty((2, geoms))
    tray = np.empty((4, 3))  # rows 0-2 the tray's rotation, row 3 its position
    work = np.empty((8, 3))
    pair_bound = np.empty(_BODIES * _BODIES)  # scratch of _arm_arm and _arm_box
    skip_first = not math.isnan(geo.first_body_table)
    first_sphere = geo.sphere_start[1] if skip_first else 0
    for c in range(lo, hi):
        scene = c // per_scene
        g = scene if box_used.shape[0] > 1 else 0
        for arm in range(2):
            _chain(geo, q, c, arm, rot, pos)
            _place(geo, arm, rot, pos, world, bound)
        out[c, _ARM_ARM] = _arm_arm(geo, world, bound, pair_bound)
        gap_box[:] = -1
        obstacle, table = np.inf, np.inf
        for m in range(boxes - 1):
            if box_used[g, m]:
                obstacle = _arm_box(geo, rot, pos, world, bound, box_rt, box_center, box_half, g, m, False, obstacle,
                                    gap_box, gap_value, work, pair_bound)  # fmt: skip
        if box_used[g, boxes - 1]:
            table = _arm_box(geo, rot, pos, world, bound, box_rt, box_center, box_half, g, boxes - 1, skip_first,
                             table, gap_box, gap_value, work, pair_bound)  # fmt: skip
        for arm in range(2):  # the floor
            for s in range(first_sphere, spheres):
                table = min(table, world[arm, s, 2] - geo.sphere_radius[arm, s] - geo.floor_z)
        if skip_first:
            table = min(table, geo.first_body_table)
        out[c, _ARM_TABLE] = table
        out[c, _ARM_OBSTACLE] = obstacle
        out[c, _TRAY_OBSTACLE] = np.inf
        out[c, _ARM_TRAY] = np.inf
        out[c, _TRAY_TABLE] = np.inf
        if tray_mode == NO_TRAY:
            continue
        if tray_mode == RESTING_TRAY:
            tray[:3] = tray_rot
            tray[3] = tray_pos
        else:
            _held_tray(rot, pos, grasp_offset, grasp_turn, scene if grasp_offset.shape[0] > 1 else 0, tray)
        out[c, _ARM_TRAY] = _arm_tray(geo, world, bound, tray)
        obstacle = np.inf
        for m in range(boxes - 1):
            if box_used[g, m] and _tray_box_bound(geo, tray, box_rt, box_center, box_half, g, m) < obstacle:
                obstacle = min(obstacle, _tray_box(geo, tray, box_rt, box_center, box_half, g, m, work))
        out[c, _TRAY_OBSTACLE] = obstacle
        if box_used[g, boxes - 1]:
            out[c, _TRAY_TABLE] = _tray_box(geo, tray, box_rt, box_center, box_half, g, boxes - 1, work)


@numba.njit(**_JIT)
def _chain(geo: KernelGeometry, q: np.ndarray, c: int, arm: int, rot: np.ndarray, pos: np.ndarray) -> None:
    """rot[arm] (7, 3, 3), pos[arm] (7, 3): world poses of the arm's bodies (the tool last) at joints q[c]."""
    s, c1 = math.sin(q[c, 6 * arm]), 1.0 - math.cos(q[c, 6 * arm])
    for i in range(3):
        pos[arm, 0, i] = geo.first_pos[arm, i]
        for j in range(3):
            rot[arm, 0, i, j] = (geo.first_rot[arm, 0, i, j] + s * geo.first_rot[arm, 1, i, j]
                                 + c1 * geo.first_rot[arm, 2, i, j])  # fmt: skip
    for b in range(1, 6):
        for i in range(3):
            pos[arm, b, i] = (pos[arm, b - 1, i] + rot[arm, b - 1, i, 0] * geo.link_pos[arm, b, 0]
                              + rot[arm, b - 1, i, 1] * geo.link_pos[arm, b, 1]
                              + rot[arm, b - 1, i, 2] * geo.link_pos[arm, b, 2])  # fmt: skip
        s, c1 = math.sin(q[c, 6 * arm + b]), 1.0 - math.cos(q[c, 6 * arm + b])
        terms = geo.link_terms
        for j in range(3):  # column j of link_rot (I + s K + c1 K^2), then the product
            u0 = terms[arm, b, 0, 0, j] + s * terms[arm, b, 1, 0, j] + c1 * terms[arm, b, 2, 0, j]
            u1 = terms[arm, b, 0, 1, j] + s * terms[arm, b, 1, 1, j] + c1 * terms[arm, b, 2, 1, j]
            u2 = terms[arm, b, 0, 2, j] + s * terms[arm, b, 1, 2, j] + c1 * terms[arm, b, 2, 2, j]
            for i in range(3):
                rot[arm, b, i, j] = rot[arm, b - 1, i, 0] * u0 + rot[arm, b - 1, i, 1] * u1 + rot[arm, b - 1, i, 2] * u2
    for i in range(3):
        pos[arm, _TOOL, i] = (
            pos[arm, 5, i]
            + rot[arm, 5, i, 0] * geo.tool_pos[arm, 0]
            + rot[arm, 5, i, 1] * geo.tool_pos[arm, 1]
            + rot[arm, 5, i, 2] * geo.tool_pos[arm, 2]
        )
        for j in range(3):
            rot[arm, _TOOL, i, j] = (rot[arm, 5, i, 0] * geo.tool_rot[arm, 0, j]
                                     + rot[arm, 5, i, 1] * geo.tool_rot[arm, 1, j]
                                     + rot[arm, 5, i, 2] * geo.tool_rot[arm, 2, j])  # fmt: skip


@numba.njit(**_JIT)
def _place(
    geo: KernelGeometry, arm: int, rot: np.ndarray, pos: np.ndarray, world: np.ndarray, bound: np.ndarray
) -> None:
    """world[arm] (S, 3), bound[arm] (7, 3): the world centres of the arm's spheres and of its bodies' bounds."""
    for b in range(_BODIES):
        for i in range(3):
            bound[arm, b, i] = (pos[arm, b, i] + rot[arm, b, i, 0] * geo.bound_center[arm, b, 0]
                                + rot[arm, b, i, 1] * geo.bound_center[arm, b, 1]
                                + rot[arm, b, i, 2] * geo.bound_center[arm, b, 2])  # fmt: skip
        for s in range(geo.sphere_start[b], geo.sphere_start[b + 1]):
            for i in range(3):
                world[arm, s, i] = (pos[arm, b, i] + rot[arm, b, i, 0] * geo.sphere_center[arm, s, 0]
                                    + rot[arm, b, i, 1] * geo.sphere_center[arm, s, 1]
                                    + rot[arm, b, i, 2] * geo.sphere_center[arm, s, 2])  # fmt: skip


@numba.njit(**_JIT)
def _box_sdf(
    box_rt: np.ndarray, box_center: np.ndarray, box_half: np.ndarray, g: int, m: int, x: float, y: float, z: float
) -> float:
    """Signed distance of the point (x, y, z) to box m of scene g."""
    dx, dy, dz = x - box_center[g, m, 0], y - box_center[g, m, 1], z - box_center[g, m, 2]
    outside, inside = 0.0, -np.inf
    for j in range(3):
        e = abs(box_rt[g, m, j, 0] * dx + box_rt[g, m, j, 1] * dy + box_rt[g, m, j, 2] * dz) - box_half[g, m, j]
        inside = max(inside, e)
        if e > 0.0:
            outside += e * e
    return math.sqrt(outside) + min(inside, 0.0)


@numba.njit(**_JIT)
def _arm_box(
    geo: KernelGeometry, rot: np.ndarray, pos: np.ndarray, world: np.ndarray, bound: np.ndarray, box_rt: np.ndarray,
    box_center: np.ndarray, box_half: np.ndarray, g: int, m: int, skip_first: bool, best: float,
    gap_box: np.ndarray, gap_value: np.ndarray, work: np.ndarray, body_bound: np.ndarray,
) -> float:  # fmt: skip
    """min(best, the smallest bound of any arm sphere to box m of scene g): per sphere its box SDF minus its radius,
    or its geom's separating-axis gap where larger (_geom_gap; cached per geom in gap_box / gap_value); the first
    bodies left out with skip_first. Bodies from the closest bound on, each only while its bound is below the best
    so far. body_bound: (2 * 7,) scratch."""
    first = -1
    for index in range(2 * _BODIES):
        arm, b = index // _BODIES, index % _BODIES
        if skip_first and b == 0:
            body_bound[index] = np.inf
            continue
        body_bound[index] = _box_sdf(box_rt, box_center, box_half, g, m, bound[arm, b, 0], bound[arm, b, 1],
                                     bound[arm, b, 2]) - geo.bound_radius[arm, b]  # fmt: skip
        if first < 0 or body_bound[index] < body_bound[first]:
            first = index
    for step in range(2 * _BODIES + 1):
        index = first if step == 0 else step - 1
        if (step > 0 and index == first) or body_bound[index] >= best:
            continue
        arm, b = index // _BODIES, index % _BODIES
        for s in range(geo.sphere_start[b], geo.sphere_start[b + 1]):
            value = _box_sdf(box_rt, box_center, box_half, g, m, world[arm, s, 0], world[arm, s, 1],
                             world[arm, s, 2]) - geo.sphere_radius[arm, s]  # fmt: skip
            if value >= best:
                continue
            k = geo.sphere_geom[arm, s]
            if gap_box[arm, k] != m:
                gap_value[arm, k] = _geom_gap(geo, arm, k, rot, pos, box_rt, box_center, box_half, g, m, work)
                gap_box[arm, k] = m
            best = min(best, max(value, gap_value[arm, k]))
    return best


@numba.njit(**_JIT)
def _geom_gap(
    geo: KernelGeometry, arm: int, k: int, rot: np.ndarray, pos: np.ndarray, box_rt: np.ndarray,
    box_center: np.ndarray, box_half: np.ndarray, g: int, m: int, work: np.ndarray,
) -> float:  # fmt: skip
    """Separating-axis gap of arm geom k to box m of scene g: the largest over the box's three axes and the one from
    the box's point closest to the geom's centre (across a round geom's axis) to that centre
    (SphereChecker._geom_gaps). work: (8, 3) scratch."""
    b = geo.geom_body[arm, k]
    size0, size1, size2 = geo.geom_half[arm, k, 0], geo.geom_half[arm, k, 1], geo.geom_half[arm, k, 2]
    disc, ball = geo.geom_disc[arm, k], geo.geom_ball[arm, k]
    for i in range(3):  # work[5 + i, n]: the geom's axis n in the world; work[4, i]: its centre minus the box's
        work[4, i] = (
            pos[arm, b, i]
            - box_center[g, m, i]
            + rot[arm, b, i, 0] * geo.geom_center[arm, k, 0]
            + rot[arm, b, i, 1] * geo.geom_center[arm, k, 1]
            + rot[arm, b, i, 2] * geo.geom_center[arm, k, 2]
        )
        for n in range(3):
            work[5 + i, n] = (rot[arm, b, i, 0] * geo.geom_rot[arm, k, 0, n]
                              + rot[arm, b, i, 1] * geo.geom_rot[arm, k, 1, n]
                              + rot[arm, b, i, 2] * geo.geom_rot[arm, k, 2, n])  # fmt: skip
    best = -np.inf
    for j in range(3):  # work[0, j]: the centre along box axis j; work[1 + j, n]: box axis j . geom axis n
        work[0, j] = box_rt[g, m, j, 0] * work[4, 0] + box_rt[g, m, j, 1] * work[4, 1] + box_rt[g, m, j, 2] * work[4, 2]
        for n in range(3):
            work[1 + j, n] = (box_rt[g, m, j, 0] * work[5, n] + box_rt[g, m, j, 1] * work[6, n]
                              + box_rt[g, m, j, 2] * work[7, n])  # fmt: skip
        reach = (
            size0 * abs(work[1 + j, 0])
            + size1 * abs(work[1 + j, 1])
            + size2 * abs(work[1 + j, 2])
            + ball
            + box_half[g, m, j]
            + disc * math.sqrt(max(0.0, 1.0 - work[1 + j, 2] * work[1 + j, 2]))
        )
        best = max(best, abs(work[0, j]) - reach)
    for j in range(3):  # work[4, j]: from the box's closest point to the centre
        work[4, j] = work[0, j] - min(max(work[0, j], -box_half[g, m, j]), box_half[g, m, j])
    if geo.geom_round[arm, k]:  # across the geom's axis
        along = work[4, 0] * work[1, 2] + work[4, 1] * work[2, 2] + work[4, 2] * work[3, 2]
        for j in range(3):
            work[4, j] -= along * work[1 + j, 2]
    length = math.sqrt(work[4, 0] ** 2 + work[4, 1] ** 2 + work[4, 2] ** 2)
    if length < geo.min_axis_length:
        return best
    u0, u1, u2 = work[4, 0] / length, work[4, 1] / length, work[4, 2] / length
    gap = abs(u0 * work[0, 0] + u1 * work[0, 1] + u2 * work[0, 2]) - ball
    gap -= abs(u0) * box_half[g, m, 0] + abs(u1) * box_half[g, m, 1] + abs(u2) * box_half[g, m, 2]
    turned_z = u0 * work[1, 2] + u1 * work[2, 2] + u2 * work[3, 2]
    gap -= size0 * abs(u0 * work[1, 0] + u1 * work[2, 0] + u2 * work[3, 0])
    gap -= size1 * abs(u0 * work[1, 1] + u1 * work[2, 1] + u2 * work[3, 1])
    gap -= size2 * abs(turned_z) + disc * math.sqrt(max(0.0, 1.0 - turned_z * turned_z))
    return max(best, gap)


@numba.njit(**_JIT)
def _arm_arm(geo: KernelGeometry, world: np.ndarray, bound: np.ndarray, pair_bound: np.ndarray) -> float:
    """The smallest distance between a left and a right sphere: body pairs from the closest bounds on, each only
    while its bound is below the best so far. pair_bound: (7 * 7,) scratch."""
    first = 0
    for pair in range(_BODIES * _BODIES):
        bl, br = pair // _BODIES, pair % _BODIES
        gap = math.sqrt((bound[0, bl, 0] - bound[1, br, 0]) ** 2 + (bound[0, bl, 1] - bound[1, br, 1]) ** 2
                        + (bound[0, bl, 2] - bound[1, br, 2]) ** 2)  # fmt: skip
        pair_bound[pair] = gap - geo.bound_radius[0, bl] - geo.bound_radius[1, br]
        if pair_bound[pair] < pair_bound[first]:
            first = pair
    best = _body_pair(geo, world, bound, first // _BODIES, first % _BODIES, np.inf)
    for pair in range(_BODIES * _BODIES):
        if pair != first and pair_bound[pair] < best:
            best = _body_pair(geo, world, bound, pair // _BODIES, pair % _BODIES, best)
    return best


@numba.njit(**_JIT)
def _body_pair(geo: KernelGeometry, world: np.ndarray, bound: np.ndarray, bl: int, br: int, best: float) -> float:
    """min(best, the smallest distance between a sphere of left body bl and one of right body br): left spheres
    whose distance to the right body's bound is at least best are skipped."""
    for i in range(geo.sphere_start[bl], geo.sphere_start[bl + 1]):
        x, y, z, r = world[0, i, 0], world[0, i, 1], world[0, i, 2], geo.sphere_radius[0, i]
        reach = best + r + geo.bound_radius[1, br]
        squared = (x - bound[1, br, 0]) ** 2 + (y - bound[1, br, 1]) ** 2 + (z - bound[1, br, 2]) ** 2
        if reach <= 0.0 or squared >= reach * reach:
            continue
        for j in range(geo.sphere_start[br], geo.sphere_start[br + 1]):
            reach = best + r + geo.sphere_radius[1, j]
            squared = (x - world[1, j, 0]) ** 2 + (y - world[1, j, 1]) ** 2 + (z - world[1, j, 2]) ** 2
            if reach > 0.0 and squared < reach * reach:  # can lower best (best = inf: always)
                best = math.sqrt(squared) - r - geo.sphere_radius[1, j]
    return best


@numba.njit(**_JIT)
def _held_tray(
    rot: np.ndarray, pos: np.ndarray, grasp_offset: np.ndarray, grasp_turn: np.ndarray, g: int, tray: np.ndarray
) -> None:
    """tray (4, 3): the carried tray's rotation (rows 0-2) and position (row 3). Per tool part k (the left tool, then
    the right) p_tool + R_tool offset[k] and R_tool turn[k]; with two parts the mean position and the rotation
    nearest the mean (SphereChecker._held_tray): one Newton step of the polar iteration on M = (R_left G_left +
    R_right G_right) / 2, then Gram-Schmidt."""
    parts = grasp_offset.shape[1]
    tray[:] = 0.0
    for k in range(parts):
        for i in range(3):
            tray[3, i] += (pos[k, _TOOL, i] + rot[k, _TOOL, i, 0] * grasp_offset[g, k, 0]
                           + rot[k, _TOOL, i, 1] * grasp_offset[g, k, 1]
                           + rot[k, _TOOL, i, 2] * grasp_offset[g, k, 2]) / parts  # fmt: skip
            for j in range(3):
                tray[i, j] += (rot[k, _TOOL, i, 0] * grasp_turn[g, k, 0, j]
                               + rot[k, _TOOL, i, 1] * grasp_turn[g, k, 1, j]
                               + rot[k, _TOOL, i, 2] * grasp_turn[g, k, 2, j]) / parts  # fmt: skip
    if parts == 1:
        return
    m = tray  # the mean M; its columns c0, c1, c2
    cof0x = m[1, 1] * m[2, 2] - m[2, 1] * m[1, 2]  # c1 x c2
    cof0y = m[2, 1] * m[0, 2] - m[0, 1] * m[2, 2]
    cof0z = m[0, 1] * m[1, 2] - m[1, 1] * m[0, 2]
    cof1x = m[1, 2] * m[2, 0] - m[2, 2] * m[1, 0]  # c2 x c0
    cof1y = m[2, 2] * m[0, 0] - m[0, 2] * m[2, 0]
    cof1z = m[0, 2] * m[1, 0] - m[1, 2] * m[0, 0]
    det = m[0, 0] * cof0x + m[1, 0] * cof0y + m[2, 0] * cof0z
    x0, x1, x2 = 0.5 * (m[0, 0] + cof0x / det), 0.5 * (m[1, 0] + cof0y / det), 0.5 * (m[2, 0] + cof0z / det)
    y0, y1, y2 = 0.5 * (m[0, 1] + cof1x / det), 0.5 * (m[1, 1] + cof1y / det), 0.5 * (m[2, 1] + cof1z / det)
    norm = math.sqrt(x0 * x0 + x1 * x1 + x2 * x2)
    x0, x1, x2 = x0 / norm, x1 / norm, x2 / norm
    dot = x0 * y0 + x1 * y1 + x2 * y2
    y0, y1, y2 = y0 - dot * x0, y1 - dot * x1, y2 - dot * x2
    norm = math.sqrt(y0 * y0 + y1 * y1 + y2 * y2)
    y0, y1, y2 = y0 / norm, y1 / norm, y2 / norm
    m[0, 0], m[1, 0], m[2, 0] = x0, x1, x2
    m[0, 1], m[1, 1], m[2, 1] = y0, y1, y2
    m[0, 2], m[1, 2], m[2, 2] = x1 * y2 - x2 * y1, x2 * y0 - x0 * y2, x0 * y1 - x1 * y0


@numba.njit(**_JIT)
def _tray_sdf(tray_center: np.ndarray, tray_half: np.ndarray, tray: np.ndarray, x: float, y: float, z: float) -> float:
    """Signed distance of the point (x, y, z) to the nearest of the tray's boxes (axis-aligned in the tray frame)."""
    dx, dy, dz = x - tray[3, 0], y - tray[3, 1], z - tray[3, 2]
    lx = tray[0, 0] * dx + tray[1, 0] * dy + tray[2, 0] * dz
    ly = tray[0, 1] * dx + tray[1, 1] * dy + tray[2, 1] * dz
    lz = tray[0, 2] * dx + tray[1, 2] * dy + tray[2, 2] * dz
    outside, inside = np.inf, np.inf  # the least squared distance to a box outside it, the least depth inside one
    for t in range(tray_center.shape[0]):
        ex = abs(lx - tray_center[t, 0]) - tray_half[t, 0]
        ey = abs(ly - tray_center[t, 1]) - tray_half[t, 1]
        ez = abs(lz - tray_center[t, 2]) - tray_half[t, 2]
        deepest = max(ex, ey, ez)
        if deepest <= 0.0:
            inside = min(inside, deepest)
        else:
            outside = min(outside, max(ex, 0.0) ** 2 + max(ey, 0.0) ** 2 + max(ez, 0.0) ** 2)
    return inside if inside <= 0.0 else math.sqrt(outside)


@numba.njit(**_JIT)
def _arm_tray(geo: KernelGeometry, world: np.ndarray, bound: np.ndarray, tray: np.ndarray) -> float:
    """The smallest distance of the arms' spheres (the tools' excluded: the grasp) to the tray's boxes: bodies whose
    bound is at least the best so far (first against the tray's bounding sphere, then its boxes) are skipped."""
    cx, cy, cz = tray[3, 0], tray[3, 1], tray[3, 2]  # the tray's bounding sphere's centre in the world
    for i in range(3):
        cx += tray[0, i] * geo.tray_bound[i]
        cy += tray[1, i] * geo.tray_bound[i]
        cz += tray[2, i] * geo.tray_bound[i]
    best = np.inf
    for arm in range(2):
        for b in range(_TOOL - 1, -1, -1):
            x, y, z, r = bound[arm, b, 0], bound[arm, b, 1], bound[arm, b, 2], geo.bound_radius[arm, b]
            reach = best + r + geo.tray_bound[3]
            if reach <= 0.0 or (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 >= reach * reach:
                continue
            if _tray_sdf(geo.tray_center, geo.tray_half, tray, x, y, z) - r >= best:
                continue
            for s in range(geo.sphere_start[b], geo.sphere_start[b + 1]):
                value = _tray_sdf(geo.tray_center, geo.tray_half, tray, world[arm, s, 0], world[arm, s, 1],
                                  world[arm, s, 2])  # fmt: skip
                best = min(best, value - geo.sphere_radius[arm, s])
    return best


@numba.njit(**_JIT)
def _tray_box_bound(
    geo: KernelGeometry, tray: np.ndarray, box_rt: np.ndarray, box_center: np.ndarray, box_half: np.ndarray, g: int,
    m: int,
) -> float:  # fmt: skip
    """A lower bound of _tray_box: the tray's bounding sphere's largest face-axis gap to the box (every face-axis
    gap of a tray box is at least it)."""
    x, y, z = tray[3, 0], tray[3, 1], tray[3, 2]
    for i in range(3):
        x += tray[0, i] * geo.tray_bound[i]
        y += tray[1, i] * geo.tray_bound[i]
        z += tray[2, i] * geo.tray_bound[i]
    dx, dy, dz = x - box_center[g, m, 0], y - box_center[g, m, 1], z - box_center[g, m, 2]
    gap = -np.inf
    for j in range(3):
        along = box_rt[g, m, j, 0] * dx + box_rt[g, m, j, 1] * dy + box_rt[g, m, j, 2] * dz
        gap = max(gap, abs(along) - box_half[g, m, j])
    return gap - geo.tray_bound[3]


@numba.njit(**_JIT)
def _tray_box(
    geo: KernelGeometry, tray: np.ndarray, box_rt: np.ndarray, box_center: np.ndarray, box_half: np.ndarray, g: int,
    m: int, work: np.ndarray,
) -> float:  # fmt: skip
    """Separating-axis gap (both boxes' face axes) between the tray's boxes and box m of scene g: the smallest over
    the tray's boxes (SphereChecker._tray_boxes). work: (8, 3) scratch."""
    for j in range(3):  # work[j, i] = box axis j . tray axis i; work[3]: the tray's origin in the box frame
        work[3, j] = (box_rt[g, m, j, 0] * (tray[3, 0] - box_center[g, m, 0])
                      + box_rt[g, m, j, 1] * (tray[3, 1] - box_center[g, m, 1])
                      + box_rt[g, m, j, 2] * (tray[3, 2] - box_center[g, m, 2]))  # fmt: skip
        for i in range(3):
            work[j, i] = (box_rt[g, m, j, 0] * tray[0, i] + box_rt[g, m, j, 1] * tray[1, i]
                          + box_rt[g, m, j, 2] * tray[2, i])  # fmt: skip
    for i in range(3):  # work[4]: the box's centre in the tray frame
        work[4, i] = (tray[0, i] * (box_center[g, m, 0] - tray[3, 0]) + tray[1, i] * (box_center[g, m, 1] - tray[3, 1])
                      + tray[2, i] * (box_center[g, m, 2] - tray[3, 2]))  # fmt: skip
    best = np.inf
    for t in range(geo.tray_center.shape[0]):
        gap = -np.inf
        for j in range(3):
            along = (work[3, j] + work[j, 0] * geo.tray_center[t, 0] + work[j, 1] * geo.tray_center[t, 1]
                     + work[j, 2] * geo.tray_center[t, 2])  # fmt: skip
            reach = (box_half[g, m, j] + geo.tray_half[t, 0] * abs(work[j, 0]) + geo.tray_half[t, 1] * abs(work[j, 1])
                     + geo.tray_half[t, 2] * abs(work[j, 2]))  # fmt: skip
            gap = max(gap, abs(along) - reach)
        for i in range(3):
            reach = (geo.tray_half[t, i] + box_half[g, m, 0] * abs(work[0, i]) + box_half[g, m, 1] * abs(work[1, i])
                     + box_half[g, m, 2] * abs(work[2, i]))  # fmt: skip
            gap = max(gap, abs(work[4, i] - geo.tray_center[t, i]) - reach)
        best = min(best, gap)
    return best


def kernel_geometry(
    geometry: RobotGeometry,
    spheres: RobotSpheres,
    padding: float,
    first_body_table: float | None,
    min_axis_length: float,
    no_size: float,
) -> KernelGeometry:
    """The kernel's arrays from RobotGeometry and RobotSpheres, radii and half sizes padded by `padding` (the
    checker's padding plus its rounding slack); the checker's MIN_AXIS_LENGTH and NO_SIZE (a geom whose x and y
    sizes are at most this is round)."""
    g, sp = geometry, spheres
    k = skew(g.joint_axis)  # (2, 6, 3, 3)
    terms = np.stack([np.broadcast_to(np.eye(3), k.shape), k, k @ k], axis=2)  # (2, 6, 3, 3, 3)
    link_terms = g.link_rot[:, :, None] @ terms
    first_rot = g.base_rot[:, None] @ link_terms[:, 0]
    first_pos = g.base_pos + np.einsum("aij,aj->ai", g.base_rot, g.link_pos[:, 0])
    counts = np.bincount(sp.body[0], minlength=_BODIES)
    start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    radius = sp.radius + padding
    bound_center = np.zeros((2, _BODIES, 3))
    bound_radius = np.zeros((2, _BODIES))
    for arm in range(2):
        for b in range(_BODIES):
            centres, radii = sp.center[arm, start[b] : start[b + 1]], radius[arm, start[b] : start[b + 1]]
            if len(centres):
                bound_center[arm, b] = 0.5 * (centres.min(axis=0) + centres.max(axis=0))
                bound_radius[arm, b] = (np.linalg.norm(centres - bound_center[arm, b], axis=1) + radii).max()
    tray_half = g.tray_half + padding
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=3)))  # (8, 3): a box's corners
    corners = (g.tray_center[:, None] + tray_half[:, None] * signs).reshape(-1, 3)
    tray_centre = 0.5 * (corners.min(axis=0) + corners.max(axis=0))
    tray_bound = np.append(tray_centre, np.linalg.norm(corners - tray_centre, axis=1).max())
    round_geom = np.all(sp.geom_half[:, :, :2] <= no_size, axis=2)
    return KernelGeometry(
        first_rot=np.ascontiguousarray(first_rot, dtype=np.float64),
        first_pos=np.ascontiguousarray(first_pos, dtype=np.float64),
        link_terms=np.ascontiguousarray(link_terms, dtype=np.float64),
        link_pos=np.ascontiguousarray(g.link_pos, dtype=np.float64),
        tool_rot=np.ascontiguousarray(g.tool_rot, dtype=np.float64),
        tool_pos=np.ascontiguousarray(g.tool_pos, dtype=np.float64),
        sphere_start=start,
        sphere_center=np.ascontiguousarray(sp.center, dtype=np.float64),
        sphere_radius=np.ascontiguousarray(radius, dtype=np.float64),
        sphere_geom=np.ascontiguousarray(sp.geom, dtype=np.int64),
        bound_center=bound_center,
        bound_radius=bound_radius,
        geom_body=np.ascontiguousarray(sp.geom_body, dtype=np.int64),
        geom_rot=np.ascontiguousarray(sp.geom_rot, dtype=np.float64),
        geom_center=np.ascontiguousarray(sp.geom_center, dtype=np.float64),
        geom_half=np.ascontiguousarray(sp.geom_half, dtype=np.float64),
        geom_disc=np.ascontiguousarray(sp.geom_disc, dtype=np.float64),
        geom_ball=np.ascontiguousarray(sp.geom_ball + padding, dtype=np.float64),
        geom_round=np.ascontiguousarray(round_geom),
        tray_center=np.ascontiguousarray(g.tray_center, dtype=np.float64),
        tray_half=np.ascontiguousarray(tray_half, dtype=np.float64),
        tray_bound=np.ascontiguousarray(tray_bound, dtype=np.float64),
        floor_z=float(g.floor_z),
        first_body_table=math.nan if first_body_table is None else float(first_body_table),
        min_axis_length=float(min_axis_length),
    )
