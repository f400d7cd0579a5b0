"""The sphere checker's clearances compiled for the CPU (numba): the same bounds as `SphereChecker`'s torch code,
LANES configurations of one scene at a time, vectorised over them, with a body-level broad phase.

Every intermediate of a block is laid out with the configurations last ((..., lanes), structure of arrays) and every
loop over them has a run-time trip count, so LLVM turns it into SIMD code (AVX-512 / AVX2) with a scalar remainder
(a constant count of 8 was fully unrolled into scalar code instead, 4x slower). Per block: both arms' forward
kinematics (the chain of `RobotGeometry`, hinge j turning by link_rot (I + sin q K + (1 - cos q) K^2)), the sphere
centres and one bounding sphere per body. A category's minimum runs over bodies: a body whose bounding sphere is,
in every lane, already at least the category's best so far is skipped (every distance bound used here is
1-Lipschitz in the sphere's centre, so the bounding sphere's value is at most each of its spheres'), and a sphere's
geom bound (the separating-axis gap of its exact geom, `_geom_gap`) is computed only where the sphere's own value
would lower the minimum in some lane. The result is the minimum the torch code takes over all terms, except
arm-arm: here the exact smallest sphere-pair distance, where the torch code takes a bound a few per cent below it
(one batched product). Computed in the dtype of `out` (float32 lanes: twice as many per SIMD instruction as float64,
1.5x faster here), with the same padded radii as the torch checker of that dtype (its rounding slack covers float32's
rounding); every float array in that dtype too (kernel_geometry's dtype), and every literal through `_as`, since one
float64 literal in an expression turns its float32 lanes into float64 ones.

`clearances` fills one row per configuration, in `kinematics.CATEGORIES` order, +inf where a category has no pair;
it releases the GIL, so the caller can split a batch over threads (SphereChecker does). The forward kinematics
(`_chain_lanes`) and the carried tray (`_held_tray`) also serve motion_kernel and grip_kernel.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numba
import numpy as np
from numba import types
from numba.extending import overload

from flow_planner_common.kinematics import CATEGORIES, RobotGeometry, skew
from flow_planner_common.robot_spheres import RobotSpheres, tray_folding

_ARM_ARM, _ARM_TABLE, _ARM_OBSTACLE, _TRAY_OBSTACLE, _ARM_TRAY, _TRAY_TABLE = (
    CATEGORIES.index(name)
    for name in ("arm_arm", "arm_table", "arm_obstacle", "tray_obstacle", "arm_tray", "tray_table")
)
#: Tray modes of `clearances`: no tray, resting at a fixed pose, carried by the tools (grasp parts).
NO_TRAY, RESTING_TRAY, CARRIED_TRAY = 0, 1, 2
_TOOL = RobotGeometry.TOOL_BODY
_BODIES = _TOOL + 1  # per arm: six jointed bodies and the tool


class KernelGeometry(NamedTuple):
    """The robot as the kernel reads it (float64 or float32, int64), built once by SphereChecker from RobotGeometry and
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
    tray_fold: np.ndarray  # (3,) bool: axes of the tray frame across whose mid-plane its boxes are mirror images
    tray_kept_center: np.ndarray  # (Tk, 3) the boxes left after folding (robot_spheres.tray_folding)
    tray_kept_half: np.ndarray  # (Tk, 3) padded
    floor_z: float
    first_body_table: float  # the first bodies' fixed distance to the table and floor (m), or NaN: none
    min_axis_length: float  # sphere_checker.MIN_AXIS_LENGTH


_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}
#: Configurations computed together (the last axis of every intermediate): 16 AVX-512 vectors of float64, 8 of
#: float32; 128 was fastest of 8-128 on bench_collision and the planner's 8 x 60 checks (the broad phase skips less
#: in longer blocks, the loops' fixed costs spread over more lanes).
LANES = 128


#: sin and cos in compiled lanes (`_sin_cos`): libm's are calls that no loop vectorises (24 per configuration were a
#: tenth of the checker's time). x = k pi / 2 + r, |r| <= pi / 4 (Cody-Waite: pi / 2 in two parts), fdlibm's
#: polynomials of __kernel_sin and __kernel_cos on r; within 5e-16 of libm for |x| < 1e5 (test_sphere_checker).
_TWO_OVER_PI = 0.63661977236758134308
_HALF_PI_HIGH, _HALF_PI_LOW = 1.57079632673412561417e00, 6.07710050650619224932e-11
_SIN = (-1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04,
        2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10)  # fmt: skip
_COS = (4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05,
        -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11)  # fmt: skip


def _as(like: object, value: float) -> float:
    """value in the float type of `like` (an array's dtype, or a scalar's type): numba types Python literals as
    float64, and one in an expression turns float32 lanes into float64 ones (half the SIMD width, conversions)."""
    return value


@overload(_as, inline="always")
def _as_overload(like, value):  # no annotations: numba requires the lambdas' signature, annotations included
    kind = like.dtype if isinstance(like, types.Array) else like
    if kind == types.float32:
        return lambda like, value: np.float32(value)
    return lambda like, value: np.float64(value)


@numba.njit(inline="always", **_JIT)
def _sin_cos(x: float) -> tuple[float, float]:
    """(sin x, cos x), branch-free (see _SIN)."""
    k = math.floor(x * _TWO_OVER_PI + 0.5)
    r = (x - k * _HALF_PI_HIGH) - k * _HALF_PI_LOW
    z = r * r
    s = r + r * z * (_SIN[0] + z * (_SIN[1] + z * (_SIN[2] + z * (_SIN[3] + z * (_SIN[4] + z * _SIN[5])))))
    c = 1.0 - 0.5 * z + z * z * (_COS[0] + z * (_COS[1] + z * (_COS[2] + z * (_COS[3] + z * (_COS[4] + z * _COS[5])))))
    quadrant = k - 4.0 * math.floor(0.25 * k)
    sin = c if quadrant == 1.0 else (-s if quadrant == 2.0 else (-c if quadrant == 3.0 else s))
    cos = -s if quadrant == 1.0 else (-c if quadrant == 2.0 else (s if quadrant == 3.0 else c))
    return sin, cos


@numba.njit(**_JIT)
def _trig_lanes(trig: np.ndarray) -> None:
    """trig (2, joints, lanes): the angles in trig[0] turned into their sines, trig[1] = 1 - their cosines (in a
    contiguous loop of its own: gathered from the configurations' rows, the same loop did not vectorise)."""
    for j in range(trig.shape[1]):
        for lane in range(trig.shape[2]):
            sin, cos = _sin_cos(trig[0, j, lane])
            trig[0, j, lane] = sin
            trig[1, j, lane] = 1.0 - cos


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
    poses). A leading size of 1 (boxes or grasps) serves every scene. LANES configurations of one scene at a time
    (a short block repeats its last configuration)."""
    joints, spheres, geoms, boxes = q.shape[1], geo.sphere_center.shape[1], geo.geom_body.shape[1], box_used.shape[1]
    lanes = max(1, min(LANES, hi - lo))  # a run-time count: the compiler vectorises these loops instead of unrolling
    dtype = out.dtype
    trig = np.empty((2, joints, lanes), dtype)  # sin q, 1 - cos q
    rot, pos = np.empty((2, _BODIES, 3, 3, lanes), dtype), np.empty((2, _BODIES, 3, lanes), dtype)
    world, bound = np.empty((2, spheres, 3, lanes), dtype), np.empty((2, _BODIES, 3, lanes), dtype)
    gap_box, gap = np.empty((2, geoms), dtype=np.int64), np.empty((2, geoms, lanes), dtype)
    tray = np.empty((4, 3, lanes), dtype)  # rows 0-2 the tray's rotation, row 3 its position
    best = np.empty((len(CATEGORIES), lanes), dtype)
    pair_bound, value = np.empty((_BODIES * _BODIES, lanes), dtype), np.empty(lanes, dtype)  # scratch
    skip_first = not math.isnan(geo.first_body_table)
    first_sphere = geo.sphere_start[1] if skip_first else 0
    c = lo
    while c < hi:
        scene = c // per_scene
        end = min(hi, (scene + 1) * per_scene, c + lanes)
        g = scene if box_used.shape[0] > 1 else 0
        for lane in range(lanes):
            row = min(c + lane, end - 1)
            for j in range(joints):
                trig[0, j, lane] = q[row, j]
        _trig_lanes(trig)
        for arm in range(2):
            _chain_lanes(geo, trig, arm, rot, pos)
            _place(geo, arm, rot, pos, world, bound)
        best[:] = np.inf
        _arm_arm(geo, world, bound, pair_bound, best[_ARM_ARM])
        gap_box[:] = -1
        for m in range(boxes):
            if box_used[g, m]:
                is_table = m == boxes - 1
                lowered = best[_ARM_TABLE] if is_table else best[_ARM_OBSTACLE]
                _arm_box(geo, rot, pos, world, bound, box_rt, box_center, box_half, g, m, is_table and skip_first,
                         lowered, gap_box, gap, pair_bound, value)  # fmt: skip
        table = best[_ARM_TABLE]
        for arm in range(2):  # the floor
            for s in range(first_sphere, spheres):
                lowest = geo.sphere_radius[arm, s] + geo.floor_z
                for lane in range(lanes):
                    table[lane] = min(table[lane], world[arm, s, 2, lane] - lowest)
        if skip_first:
            for lane in range(lanes):
                table[lane] = min(table[lane], geo.first_body_table)
        if tray_mode != NO_TRAY:
            if tray_mode == RESTING_TRAY:
                for i in range(3):
                    for j in range(3):
                        tray[i, j, :] = tray_rot[i, j]
                    tray[3, i, :] = tray_pos[i]
            else:
                _held_tray(rot, pos, grasp_offset, grasp_turn, scene if grasp_offset.shape[0] > 1 else 0, tray)
            _arm_tray(geo, world, bound, tray, best[_ARM_TRAY], pair_bound)
            for m in range(boxes):
                if box_used[g, m]:
                    is_table = m == boxes - 1
                    _tray_box(geo, tray, box_rt, box_center, box_half, g, m, not is_table,
                              best[_TRAY_TABLE] if is_table else best[_TRAY_OBSTACLE], pair_bound)  # fmt: skip
        for lane in range(end - c):
            for k in range(len(CATEGORIES)):
                out[c + lane, k] = best[k, lane]
        c = end


@numba.njit(**_JIT)
def _chain_lanes(geo: KernelGeometry, trig: np.ndarray, arm: int, rot: np.ndarray, pos: np.ndarray) -> None:
    """rot[arm] (7, 3, 3, lanes), pos[arm] (7, 3, lanes): world poses of the arm's bodies (the tool last) at the
    joints whose sines and 1 - cosines are trig (2, 12, lanes)."""
    lanes = trig.shape[2]
    joint = 6 * arm
    for i in range(3):
        pos[arm, 0, i, :] = geo.first_pos[arm, i]
        for j in range(3):
            e0, e1, e2 = geo.first_rot[arm, 0, i, j], geo.first_rot[arm, 1, i, j], geo.first_rot[arm, 2, i, j]
            for lane in range(lanes):
                rot[arm, 0, i, j, lane] = e0 + trig[0, joint, lane] * e1 + trig[1, joint, lane] * e2
    turn = np.empty((3, lanes), trig.dtype)
    for b in range(1, 6):
        x, y, z = geo.link_pos[arm, b, 0], geo.link_pos[arm, b, 1], geo.link_pos[arm, b, 2]
        for i in range(3):
            for lane in range(lanes):
                pos[arm, b, i, lane] = (pos[arm, b - 1, i, lane] + rot[arm, b - 1, i, 0, lane] * x
                                        + rot[arm, b - 1, i, 1, lane] * y
                                        + rot[arm, b - 1, i, 2, lane] * z)  # fmt: skip
        for j in range(3):  # column j of link_rot (I + s K + c1 K^2), then the product
            for r in range(3):
                terms = geo.link_terms[arm, b]
                e0, e1, e2 = terms[0, r, j], terms[1, r, j], terms[2, r, j]
                for lane in range(lanes):
                    turn[r, lane] = e0 + trig[0, joint + b, lane] * e1 + trig[1, joint + b, lane] * e2
            for i in range(3):
                for lane in range(lanes):
                    rot[arm, b, i, j, lane] = (rot[arm, b - 1, i, 0, lane] * turn[0, lane]
                                               + rot[arm, b - 1, i, 1, lane] * turn[1, lane]
                                               + rot[arm, b - 1, i, 2, lane] * turn[2, lane])  # fmt: skip
    x, y, z = geo.tool_pos[arm, 0], geo.tool_pos[arm, 1], geo.tool_pos[arm, 2]
    for i in range(3):
        for lane in range(lanes):
            pos[arm, _TOOL, i, lane] = (pos[arm, 5, i, lane] + rot[arm, 5, i, 0, lane] * x
                                        + rot[arm, 5, i, 1, lane] * y + rot[arm, 5, i, 2, lane] * z)  # fmt: skip
        for j in range(3):
            e0, e1, e2 = geo.tool_rot[arm, 0, j], geo.tool_rot[arm, 1, j], geo.tool_rot[arm, 2, j]
            for lane in range(lanes):
                rot[arm, _TOOL, i, j, lane] = (rot[arm, 5, i, 0, lane] * e0 + rot[arm, 5, i, 1, lane] * e1
                                               + rot[arm, 5, i, 2, lane] * e2)  # fmt: skip


@numba.njit(**_JIT)
def _place(
    geo: KernelGeometry, arm: int, rot: np.ndarray, pos: np.ndarray, world: np.ndarray, bound: np.ndarray
) -> None:
    """world[arm] (S, 3, lanes), bound[arm] (7, 3, lanes): the world centres of the arm's spheres and of its
    bodies' bounds."""
    lanes = world.shape[3]
    for b in range(_BODIES):
        x, y, z = geo.bound_center[arm, b, 0], geo.bound_center[arm, b, 1], geo.bound_center[arm, b, 2]
        for i in range(3):
            for lane in range(lanes):
                bound[arm, b, i, lane] = (pos[arm, b, i, lane] + rot[arm, b, i, 0, lane] * x
                                          + rot[arm, b, i, 1, lane] * y + rot[arm, b, i, 2, lane] * z)  # fmt: skip
        for s in range(geo.sphere_start[b], geo.sphere_start[b + 1]):
            x, y, z = geo.sphere_center[arm, s, 0], geo.sphere_center[arm, s, 1], geo.sphere_center[arm, s, 2]
            for i in range(3):
                for lane in range(lanes):
                    world[arm, s, i, lane] = (pos[arm, b, i, lane] + rot[arm, b, i, 0, lane] * x
                                              + rot[arm, b, i, 1, lane] * y + rot[arm, b, i, 2, lane] * z)  # fmt: skip


@numba.njit(**_JIT)
def _any_below(values: np.ndarray, best: np.ndarray) -> bool:
    """Whether any lane of values (lanes,) is below best's."""
    below = 0
    for lane in range(values.shape[0]):  # a count, not a loop that stops at the first: this one vectorises
        below += values[lane] < best[lane]
    return below > 0


@numba.njit(**_JIT)
def _box_sdf(box_rt: np.ndarray, box_center: np.ndarray, box_half: np.ndarray, g: int, m: int, x: float, y: float,
             z: float) -> float:  # fmt: skip
    """Signed distance of the point (x, y, z) to box m of scene g."""
    dx, dy, dz = x - box_center[g, m, 0], y - box_center[g, m, 1], z - box_center[g, m, 2]
    e0 = abs(box_rt[g, m, 0, 0] * dx + box_rt[g, m, 0, 1] * dy + box_rt[g, m, 0, 2] * dz) - box_half[g, m, 0]
    e1 = abs(box_rt[g, m, 1, 0] * dx + box_rt[g, m, 1, 1] * dy + box_rt[g, m, 1, 2] * dz) - box_half[g, m, 1]
    e2 = abs(box_rt[g, m, 2, 0] * dx + box_rt[g, m, 2, 1] * dy + box_rt[g, m, 2, 2] * dz) - box_half[g, m, 2]
    zero = _as(box_half, 0.0)
    outside = max(e0, zero) ** 2 + max(e1, zero) ** 2 + max(e2, zero) ** 2
    return math.sqrt(outside) + min(max(e0, e1, e2), zero)


@numba.njit(**_JIT)
def _arm_box(
    geo: KernelGeometry, rot: np.ndarray, pos: np.ndarray, world: np.ndarray, bound: np.ndarray, box_rt: np.ndarray,
    box_center: np.ndarray, box_half: np.ndarray, g: int, m: int, skip_first: bool, best: np.ndarray,
    gap_box: np.ndarray, gap: np.ndarray, body_bound: np.ndarray, value: np.ndarray,
) -> None:  # fmt: skip
    """best (lanes,) lowered to the smallest bound of any arm sphere to box m of scene g: per sphere its box SDF
    minus its radius, or its geom's separating-axis gap where larger (_geom_gap; cached per geom in gap_box / gap);
    the first bodies left out with skip_first. Bodies from the closest bound on, each only while its bound is below
    the best so far in some lane. body_bound: (>= 14, lanes), value: (lanes,) scratch."""
    lanes = best.shape[0]
    first, first_value = 0, np.inf
    for index in range(2 * _BODIES):
        arm, b = index // _BODIES, index % _BODIES
        if skip_first and b == 0:
            body_bound[index, :] = np.inf
            continue
        radius = geo.bound_radius[arm, b]
        for lane in range(lanes):
            body_bound[index, lane] = _box_sdf(box_rt, box_center, box_half, g, m, bound[arm, b, 0, lane],
                                               bound[arm, b, 1, lane], bound[arm, b, 2, lane]) - radius  # fmt: skip
        lowest = body_bound[index].min()
        if lowest < first_value:
            first, first_value = index, lowest
    for step in range(2 * _BODIES + 1):
        index = first if step == 0 else step - 1
        if (step > 0 and index == first) or not _any_below(body_bound[index], best):
            continue
        arm, b = index // _BODIES, index % _BODIES
        for s in range(geo.sphere_start[b], geo.sphere_start[b + 1]):
            radius = geo.sphere_radius[arm, s]
            for lane in range(lanes):
                value[lane] = _box_sdf(box_rt, box_center, box_half, g, m, world[arm, s, 0, lane],
                                       world[arm, s, 1, lane], world[arm, s, 2, lane]) - radius  # fmt: skip
            if not _any_below(value, best):
                continue
            k = geo.sphere_geom[arm, s]
            if gap_box[arm, k] != m:
                _geom_gap(geo, arm, k, rot, pos, box_rt, box_center, box_half, g, m, gap[arm, k])
                gap_box[arm, k] = m
            for lane in range(lanes):
                best[lane] = min(best[lane], max(value[lane], gap[arm, k, lane]))


@numba.njit(**_JIT)
def _geom_gap(
    geo: KernelGeometry, arm: int, k: int, rot: np.ndarray, pos: np.ndarray, box_rt: np.ndarray,
    box_center: np.ndarray, box_half: np.ndarray, g: int, m: int, out: np.ndarray,
) -> None:  # fmt: skip
    """out (lanes,): separating-axis gap of arm geom k to box m of scene g: the largest over the box's three axes and
    the one from the box's point closest to the geom's centre (across a round geom's axis) to that centre
    (SphereChecker._geom_gaps)."""
    lanes = out.shape[0]
    b = geo.geom_body[arm, k]
    size0, size1, size2 = geo.geom_half[arm, k, 0], geo.geom_half[arm, k, 1], geo.geom_half[arm, k, 2]
    disc, ball, round_geom = geo.geom_disc[arm, k], geo.geom_ball[arm, k], geo.geom_round[arm, k]
    gr, gc = geo.geom_rot[arm, k], geo.geom_center[arm, k]
    br, bc, bh = box_rt[g, m], box_center[g, m], box_half[g, m]
    zero, one = _as(out, 0.0), _as(out, 1.0)
    for lane in range(lanes):
        r00, r01, r02 = rot[arm, b, 0, 0, lane], rot[arm, b, 0, 1, lane], rot[arm, b, 0, 2, lane]
        r10, r11, r12 = rot[arm, b, 1, 0, lane], rot[arm, b, 1, 1, lane], rot[arm, b, 1, 2, lane]
        r20, r21, r22 = rot[arm, b, 2, 0, lane], rot[arm, b, 2, 1, lane], rot[arm, b, 2, 2, lane]
        # the geom's centre minus the box's, and its axes, in the world
        w0 = pos[arm, b, 0, lane] - bc[0] + r00 * gc[0] + r01 * gc[1] + r02 * gc[2]
        w1 = pos[arm, b, 1, lane] - bc[1] + r10 * gc[0] + r11 * gc[1] + r12 * gc[2]
        w2 = pos[arm, b, 2, lane] - bc[2] + r20 * gc[0] + r21 * gc[1] + r22 * gc[2]
        a00 = r00 * gr[0, 0] + r01 * gr[1, 0] + r02 * gr[2, 0]
        a01 = r00 * gr[0, 1] + r01 * gr[1, 1] + r02 * gr[2, 1]
        a02 = r00 * gr[0, 2] + r01 * gr[1, 2] + r02 * gr[2, 2]
        a10 = r10 * gr[0, 0] + r11 * gr[1, 0] + r12 * gr[2, 0]
        a11 = r10 * gr[0, 1] + r11 * gr[1, 1] + r12 * gr[2, 1]
        a12 = r10 * gr[0, 2] + r11 * gr[1, 2] + r12 * gr[2, 2]
        a20 = r20 * gr[0, 0] + r21 * gr[1, 0] + r22 * gr[2, 0]
        a21 = r20 * gr[0, 1] + r21 * gr[1, 1] + r22 * gr[2, 1]
        a22 = r20 * gr[0, 2] + r21 * gr[1, 2] + r22 * gr[2, 2]
        # in the box frame: the centre (c0, c1, c2) and box axis j . geom axis n (mjn)
        c0 = br[0, 0] * w0 + br[0, 1] * w1 + br[0, 2] * w2
        c1 = br[1, 0] * w0 + br[1, 1] * w1 + br[1, 2] * w2
        c2 = br[2, 0] * w0 + br[2, 1] * w1 + br[2, 2] * w2
        m00 = br[0, 0] * a00 + br[0, 1] * a10 + br[0, 2] * a20
        m01 = br[0, 0] * a01 + br[0, 1] * a11 + br[0, 2] * a21
        m02 = br[0, 0] * a02 + br[0, 1] * a12 + br[0, 2] * a22
        m10 = br[1, 0] * a00 + br[1, 1] * a10 + br[1, 2] * a20
        m11 = br[1, 0] * a01 + br[1, 1] * a11 + br[1, 2] * a21
        m12 = br[1, 0] * a02 + br[1, 1] * a12 + br[1, 2] * a22
        m20 = br[2, 0] * a00 + br[2, 1] * a10 + br[2, 2] * a20
        m21 = br[2, 0] * a01 + br[2, 1] * a11 + br[2, 2] * a21
        m22 = br[2, 0] * a02 + br[2, 1] * a12 + br[2, 2] * a22
        best = max(
            abs(c0) - (size0 * abs(m00) + size1 * abs(m01) + size2 * abs(m02) + ball + bh[0]
                       + disc * math.sqrt(max(zero, one - m02 * m02))),
            abs(c1) - (size0 * abs(m10) + size1 * abs(m11) + size2 * abs(m12) + ball + bh[1]
                       + disc * math.sqrt(max(zero, one - m12 * m12))),
            abs(c2) - (size0 * abs(m20) + size1 * abs(m21) + size2 * abs(m22) + ball + bh[2]
                       + disc * math.sqrt(max(zero, one - m22 * m22))),
        )  # fmt: skip
        # from the box's closest point to the centre (across a round geom's axis)
        d0 = c0 - min(max(c0, -bh[0]), bh[0])
        d1 = c1 - min(max(c1, -bh[1]), bh[1])
        d2 = c2 - min(max(c2, -bh[2]), bh[2])
        if round_geom:
            along = d0 * m02 + d1 * m12 + d2 * m22
            d0, d1, d2 = d0 - along * m02, d1 - along * m12, d2 - along * m22
        length = math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
        scale = one / max(length, geo.min_axis_length)
        u0, u1, u2 = d0 * scale, d1 * scale, d2 * scale
        turned_z = u0 * m02 + u1 * m12 + u2 * m22
        axis_gap = (
            abs(u0 * c0 + u1 * c1 + u2 * c2) - ball
            - (abs(u0) * bh[0] + abs(u1) * bh[1] + abs(u2) * bh[2])
            - size0 * abs(u0 * m00 + u1 * m10 + u2 * m20)
            - size1 * abs(u0 * m01 + u1 * m11 + u2 * m21)
            - size2 * abs(turned_z)
            - disc * math.sqrt(max(zero, one - turned_z * turned_z))
        )  # fmt: skip
        out[lane] = max(best, axis_gap) if length >= geo.min_axis_length else best


@numba.njit(**_JIT)
def _arm_arm(geo: KernelGeometry, world: np.ndarray, bound: np.ndarray, pair_bound: np.ndarray,
             best: np.ndarray) -> None:  # fmt: skip
    """best (lanes,): the smallest distance between a left and a right sphere. Body pairs from the closest bounds
    on, each only while its bound is below the best so far in some lane; in a pair, left spheres only while their
    distance to the right body's bound is. pair_bound: (49, lanes) scratch."""
    lanes, zero = best.shape[0], _as(best, 0.0)
    first, first_value = 0, np.inf
    for pair in range(_BODIES * _BODIES):
        bl, br = pair // _BODIES, pair % _BODIES
        radii = geo.bound_radius[0, bl] + geo.bound_radius[1, br]
        for lane in range(lanes):
            pair_bound[pair, lane] = math.sqrt(
                (bound[0, bl, 0, lane] - bound[1, br, 0, lane]) ** 2
                + (bound[0, bl, 1, lane] - bound[1, br, 1, lane]) ** 2
                + (bound[0, bl, 2, lane] - bound[1, br, 2, lane]) ** 2
            ) - radii  # fmt: skip
        lowest = pair_bound[pair].min()
        if lowest < first_value:
            first, first_value = pair, lowest
    for step in range(_BODIES * _BODIES + 1):
        pair = first if step == 0 else step - 1
        if (step > 0 and pair == first) or not _any_below(pair_bound[pair], best):
            continue
        bl, br = pair // _BODIES, pair % _BODIES
        for i in range(geo.sphere_start[bl], geo.sphere_start[bl + 1]):
            r = geo.sphere_radius[0, i]
            near = False
            for lane in range(lanes):
                reach = best[lane] + r + geo.bound_radius[1, br]
                squared = ((world[0, i, 0, lane] - bound[1, br, 0, lane]) ** 2
                           + (world[0, i, 1, lane] - bound[1, br, 1, lane]) ** 2
                           + (world[0, i, 2, lane] - bound[1, br, 2, lane]) ** 2)  # fmt: skip
                near |= reach > zero and squared < reach * reach
            if not near:
                continue
            for j in range(geo.sphere_start[br], geo.sphere_start[br + 1]):
                radii = r + geo.sphere_radius[1, j]
                for lane in range(lanes):
                    distance = math.sqrt((world[0, i, 0, lane] - world[1, j, 0, lane]) ** 2
                                         + (world[0, i, 1, lane] - world[1, j, 1, lane]) ** 2
                                         + (world[0, i, 2, lane] - world[1, j, 2, lane]) ** 2)  # fmt: skip
                    best[lane] = min(best[lane], distance - radii)


@numba.njit(**_JIT)
def _held_tray(
    rot: np.ndarray, pos: np.ndarray, grasp_offset: np.ndarray, grasp_turn: np.ndarray, g: int, tray: np.ndarray
) -> None:
    """tray (4, 3, lanes): the carried tray's rotation (rows 0-2) and position (row 3). Per tool part k (the left
    tool, then the right) p_tool + R_tool offset[k] and R_tool turn[k]; with two parts the mean position and the
    rotation nearest the mean (SphereChecker._held_tray): one Newton step of the polar iteration on
    M = (R_left G_left + R_right G_right) / 2, then Gram-Schmidt."""
    lanes = tray.shape[2]
    parts = grasp_offset.shape[1]
    share, half = _as(tray, 1.0 / parts), _as(tray, 0.5)
    tray[:] = 0.0
    for k in range(parts):
        for i in range(3):
            o0, o1, o2 = grasp_offset[g, k, 0] * share, grasp_offset[g, k, 1] * share, grasp_offset[g, k, 2] * share
            for lane in range(lanes):
                tray[3, i, lane] += (pos[k, _TOOL, i, lane] * share + rot[k, _TOOL, i, 0, lane] * o0
                                     + rot[k, _TOOL, i, 1, lane] * o1 + rot[k, _TOOL, i, 2, lane] * o2)  # fmt: skip
            for j in range(3):
                t0, t1 = grasp_turn[g, k, 0, j] * share, grasp_turn[g, k, 1, j] * share
                t2 = grasp_turn[g, k, 2, j] * share
                for lane in range(lanes):
                    tray[i, j, lane] += (rot[k, _TOOL, i, 0, lane] * t0 + rot[k, _TOOL, i, 1, lane] * t1
                                         + rot[k, _TOOL, i, 2, lane] * t2)  # fmt: skip
    if parts == 1:
        return
    for lane in range(lanes):
        m00, m01, m02 = tray[0, 0, lane], tray[0, 1, lane], tray[0, 2, lane]  # the mean M; its columns c0, c1, c2
        m10, m11, m12 = tray[1, 0, lane], tray[1, 1, lane], tray[1, 2, lane]
        m20, m21, m22 = tray[2, 0, lane], tray[2, 1, lane], tray[2, 2, lane]
        cof0x = m11 * m22 - m21 * m12  # c1 x c2
        cof0y = m21 * m02 - m01 * m22
        cof0z = m01 * m12 - m11 * m02
        cof1x = m12 * m20 - m22 * m10  # c2 x c0
        cof1y = m22 * m00 - m02 * m20
        cof1z = m02 * m10 - m12 * m00
        det = m00 * cof0x + m10 * cof0y + m20 * cof0z
        x0, x1, x2 = half * (m00 + cof0x / det), half * (m10 + cof0y / det), half * (m20 + cof0z / det)
        y0, y1, y2 = half * (m01 + cof1x / det), half * (m11 + cof1y / det), half * (m21 + cof1z / det)
        norm = math.sqrt(x0 * x0 + x1 * x1 + x2 * x2)
        x0, x1, x2 = x0 / norm, x1 / norm, x2 / norm
        dot = x0 * y0 + x1 * y1 + x2 * y2
        y0, y1, y2 = y0 - dot * x0, y1 - dot * x1, y2 - dot * x2
        norm = math.sqrt(y0 * y0 + y1 * y1 + y2 * y2)
        y0, y1, y2 = y0 / norm, y1 / norm, y2 / norm
        tray[0, 0, lane], tray[1, 0, lane], tray[2, 0, lane] = x0, x1, x2
        tray[0, 1, lane], tray[1, 1, lane], tray[2, 1, lane] = y0, y1, y2
        tray[0, 2, lane], tray[1, 2, lane], tray[2, 2, lane] = x1 * y2 - x2 * y1, x2 * y0 - x0 * y2, x0 * y1 - x1 * y0


@numba.njit(**_JIT)
def _tray_sdf(geo: KernelGeometry, tray: np.ndarray, point: np.ndarray, scratch: np.ndarray) -> None:
    """scratch[0] (lanes,): the signed distance of point (3, lanes) to the nearest of the tray's boxes (axis-aligned
    in the tray frame), the tray at its pose per lane (tray (4, 3, lanes)): the point folded across the tray's mirror
    planes against the boxes kept there (geo.tray_fold; the same distances, 3 boxes instead of 5). scratch: (6,
    lanes)."""
    lanes, zero, inf = scratch.shape[1], _as(scratch, 0.0), _as(scratch, np.inf)
    fold_x, fold_y, fold_z = geo.tray_fold[0], geo.tray_fold[1], geo.tray_fold[2]
    for lane in range(lanes):  # rows 1-3: the point in the tray frame; 4: least depth inside a box; 5: least squared
        dx, dy, dz = (point[0, lane] - tray[3, 0, lane], point[1, lane] - tray[3, 1, lane],
                      point[2, lane] - tray[3, 2, lane])  # fmt: skip
        lx = tray[0, 0, lane] * dx + tray[1, 0, lane] * dy + tray[2, 0, lane] * dz
        ly = tray[0, 1, lane] * dx + tray[1, 1, lane] * dy + tray[2, 1, lane] * dz
        lz = tray[0, 2, lane] * dx + tray[1, 2, lane] * dy + tray[2, 2, lane] * dz
        scratch[1, lane] = abs(lx) if fold_x else lx
        scratch[2, lane] = abs(ly) if fold_y else ly
        scratch[3, lane] = abs(lz) if fold_z else lz
        scratch[4, lane] = np.inf
        scratch[5, lane] = np.inf  # distance to a box outside it
    for t in range(geo.tray_kept_center.shape[0]):
        cx, cy, cz = geo.tray_kept_center[t, 0], geo.tray_kept_center[t, 1], geo.tray_kept_center[t, 2]
        hx, hy, hz = geo.tray_kept_half[t, 0], geo.tray_kept_half[t, 1], geo.tray_kept_half[t, 2]
        for lane in range(lanes):
            ex = abs(scratch[1, lane] - cx) - hx
            ey = abs(scratch[2, lane] - cy) - hy
            ez = abs(scratch[3, lane] - cz) - hz
            deepest = max(ex, ey, ez)
            squared = max(ex, zero) ** 2 + max(ey, zero) ** 2 + max(ez, zero) ** 2
            scratch[4, lane] = min(scratch[4, lane], deepest if deepest <= zero else inf)
            scratch[5, lane] = min(scratch[5, lane], inf if deepest <= zero else squared)
    for lane in range(lanes):
        scratch[0, lane] = scratch[4, lane] if scratch[4, lane] <= zero else math.sqrt(scratch[5, lane])


@numba.njit(**_JIT)
def _arm_tray(
    geo: KernelGeometry, world: np.ndarray, bound: np.ndarray, tray: np.ndarray, best: np.ndarray, scratch: np.ndarray
) -> None:
    """best (lanes,): the smallest distance of the arms' spheres (the tools' excluded: the grasp) to the tray's
    boxes. A body is skipped where in no lane its bound (first against the tray's bounding sphere, then its boxes)
    is below the best so far. scratch: (>= 9, lanes)."""
    lanes, zero = best.shape[0], _as(best, 0.0)
    centre = scratch[6:9]  # the tray's bounding sphere's centre in the world
    for i in range(3):
        for lane in range(lanes):
            centre[i, lane] = (tray[3, i, lane] + tray[i, 0, lane] * geo.tray_bound[0]
                               + tray[i, 1, lane] * geo.tray_bound[1]
                               + tray[i, 2, lane] * geo.tray_bound[2])  # fmt: skip
    for arm in range(2):
        for b in range(_TOOL - 1, -1, -1):
            r = geo.bound_radius[arm, b]
            near = False
            for lane in range(lanes):
                reach = best[lane] + r + geo.tray_bound[3]
                squared = ((bound[arm, b, 0, lane] - centre[0, lane]) ** 2
                           + (bound[arm, b, 1, lane] - centre[1, lane]) ** 2
                           + (bound[arm, b, 2, lane] - centre[2, lane]) ** 2)  # fmt: skip
                near |= reach > zero and squared < reach * reach
            if not near:
                continue
            _tray_sdf(geo, tray, bound[arm, b], scratch)
            near = False
            for lane in range(lanes):
                near |= scratch[0, lane] - r < best[lane]
            if not near:
                continue
            for s in range(geo.sphere_start[b], geo.sphere_start[b + 1]):
                _tray_sdf(geo, tray, world[arm, s], scratch)
                radius = geo.sphere_radius[arm, s]
                for lane in range(lanes):
                    best[lane] = min(best[lane], scratch[0, lane] - radius)


@numba.njit(**_JIT)
def _tray_box(
    geo: KernelGeometry, tray: np.ndarray, box_rt: np.ndarray, box_center: np.ndarray, box_half: np.ndarray, g: int,
    m: int, bounded: bool, best: np.ndarray, scratch: np.ndarray,
) -> None:  # fmt: skip
    """best (lanes,) lowered to the separating-axis gap (both boxes' face axes) between the tray's boxes and box m
    of scene g: the smallest over the tray's boxes (SphereChecker._tray_boxes). With `bounded`, not computed where
    in no lane the tray's bounding sphere's largest face-axis gap to the box (every tray box's gap is at least it)
    is below the best so far. scratch: (>= 16, lanes)."""
    lanes = best.shape[0]
    br, bc, bh = box_rt[g, m], box_center[g, m], box_half[g, m]
    if bounded:
        near = False
        for lane in range(lanes):
            dx, dy, dz = tray[3, 0, lane] - bc[0], tray[3, 1, lane] - bc[1], tray[3, 2, lane] - bc[2]
            for i in range(3):
                dx += tray[0, i, lane] * geo.tray_bound[i]
                dy += tray[1, i, lane] * geo.tray_bound[i]
                dz += tray[2, i, lane] * geo.tray_bound[i]
            gap = max(abs(br[0, 0] * dx + br[0, 1] * dy + br[0, 2] * dz) - bh[0],
                      abs(br[1, 0] * dx + br[1, 1] * dy + br[1, 2] * dz) - bh[1],
                      abs(br[2, 0] * dx + br[2, 1] * dy + br[2, 2] * dz) - bh[2])  # fmt: skip
            near |= gap - geo.tray_bound[3] < best[lane]
        if not near:
            return
    # scratch rows 0-2: the tray's origin in the box frame; 3-5: the box's centre in the tray frame; 6 + 3 j + i:
    # box axis j . tray axis i; 15: the smallest gap so far
    for lane in range(lanes):
        dx, dy, dz = tray[3, 0, lane] - bc[0], tray[3, 1, lane] - bc[1], tray[3, 2, lane] - bc[2]
        for j in range(3):
            scratch[j, lane] = br[j, 0] * dx + br[j, 1] * dy + br[j, 2] * dz
            scratch[3 + j, lane] = -(tray[0, j, lane] * dx + tray[1, j, lane] * dy + tray[2, j, lane] * dz)
            for i in range(3):
                scratch[6 + 3 * j + i, lane] = (br[j, 0] * tray[0, i, lane] + br[j, 1] * tray[1, i, lane]
                                                + br[j, 2] * tray[2, i, lane])  # fmt: skip
        scratch[15, lane] = np.inf
    for k in range(geo.tray_center.shape[0]):
        tc0, tc1, tc2 = geo.tray_center[k, 0], geo.tray_center[k, 1], geo.tray_center[k, 2]
        th0, th1, th2 = geo.tray_half[k, 0], geo.tray_half[k, 1], geo.tray_half[k, 2]
        for lane in range(lanes):
            a00, a01, a02 = abs(scratch[6, lane]), abs(scratch[7, lane]), abs(scratch[8, lane])
            a10, a11, a12 = abs(scratch[9, lane]), abs(scratch[10, lane]), abs(scratch[11, lane])
            a20, a21, a22 = abs(scratch[12, lane]), abs(scratch[13, lane]), abs(scratch[14, lane])
            gap = max(
                abs(scratch[0, lane] + scratch[6, lane] * tc0 + scratch[7, lane] * tc1 + scratch[8, lane] * tc2)
                - (bh[0] + th0 * a00 + th1 * a01 + th2 * a02),
                abs(scratch[1, lane] + scratch[9, lane] * tc0 + scratch[10, lane] * tc1 + scratch[11, lane] * tc2)
                - (bh[1] + th0 * a10 + th1 * a11 + th2 * a12),
                abs(scratch[2, lane] + scratch[12, lane] * tc0 + scratch[13, lane] * tc1 + scratch[14, lane] * tc2)
                - (bh[2] + th0 * a20 + th1 * a21 + th2 * a22),
                abs(scratch[3, lane] - tc0) - (th0 + bh[0] * a00 + bh[1] * a10 + bh[2] * a20),
                abs(scratch[4, lane] - tc1) - (th1 + bh[0] * a01 + bh[1] * a11 + bh[2] * a21),
                abs(scratch[5, lane] - tc2) - (th2 + bh[0] * a02 + bh[1] * a12 + bh[2] * a22),
            )  # fmt: skip
            scratch[15, lane] = min(scratch[15, lane], gap)
    for lane in range(lanes):
        best[lane] = min(best[lane], scratch[15, lane])


def kernel_geometry(
    geometry: RobotGeometry,
    spheres: RobotSpheres,
    padding: float,
    first_body_table: float | None,
    min_axis_length: float,
    no_size: float,
    dtype: type[np.floating] = np.float64,
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
    fold, keep = tray_folding(g.tray_center, tray_half, g.tray_handle)
    return KernelGeometry(
        first_rot=np.ascontiguousarray(first_rot, dtype=dtype),
        first_pos=np.ascontiguousarray(first_pos, dtype=dtype),
        link_terms=np.ascontiguousarray(link_terms, dtype=dtype),
        link_pos=np.ascontiguousarray(g.link_pos, dtype=dtype),
        tool_rot=np.ascontiguousarray(g.tool_rot, dtype=dtype),
        tool_pos=np.ascontiguousarray(g.tool_pos, dtype=dtype),
        sphere_start=start,
        sphere_center=np.ascontiguousarray(sp.center, dtype=dtype),
        sphere_radius=np.ascontiguousarray(radius, dtype=dtype),
        sphere_geom=np.ascontiguousarray(sp.geom, dtype=np.int64),
        bound_center=bound_center.astype(dtype),
        bound_radius=bound_radius.astype(dtype),
        geom_body=np.ascontiguousarray(sp.geom_body, dtype=np.int64),
        geom_rot=np.ascontiguousarray(sp.geom_rot, dtype=dtype),
        geom_center=np.ascontiguousarray(sp.geom_center, dtype=dtype),
        geom_half=np.ascontiguousarray(sp.geom_half, dtype=dtype),
        geom_disc=np.ascontiguousarray(sp.geom_disc, dtype=dtype),
        geom_ball=np.ascontiguousarray(sp.geom_ball + padding, dtype=dtype),
        geom_round=np.ascontiguousarray(round_geom),
        tray_center=np.ascontiguousarray(g.tray_center, dtype=dtype),
        tray_half=np.ascontiguousarray(tray_half, dtype=dtype),
        tray_bound=np.ascontiguousarray(tray_bound, dtype=dtype),
        tray_fold=np.ascontiguousarray(fold),
        tray_kept_center=np.ascontiguousarray(g.tray_center[keep], dtype=dtype),
        tray_kept_half=np.ascontiguousarray(tray_half[keep], dtype=dtype),
        floor_z=dtype(g.floor_z),
        first_body_table=dtype(math.nan if first_body_table is None else first_body_table),
        min_axis_length=dtype(min_axis_length),
    )
