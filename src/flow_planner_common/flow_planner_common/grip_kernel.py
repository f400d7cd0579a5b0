"""GripFollower's steps compiled for the CPU (numba): the same damped least squares, LANES waypoints at a time,
vectorised over them (sphere_kernel's layout).

`follow_rows` runs the follower's iterations per row of joint positions, in place: the right arm's end effector
pulled onto the pose the grip gives it in the left end effector's frame (6 x 6 damped least squares on its
Jacobian), and with leveling the left arm turned so that the start's up direction stays up (3 x 3, its angular
rows). A row stops as soon as it is within the tolerances, as in the torch code (`GripFollower.follow`): a block
iterates while any of its rows has not, the others masked out, and the Jacobians, the left end effector and the
grip's target stay those of each row's final joints. `right_velocities` then
gives the right arm the velocities that carry the left end effector's twist to the right's point. Forward
kinematics is the sphere checker's compiled chain (`sphere_kernel._chain_lanes`); float64; both release the GIL.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from flow_planner_common.sphere_kernel import _BODIES, _JIT, _TOOL, LANES, KernelGeometry, _chain_lanes, _trig_lanes


@numba.njit(**_JIT)
def follow_rows(
    geo: KernelGeometry,
    ee_pos: np.ndarray,
    ee_rot: np.ndarray,
    joint_axis: np.ndarray,
    q: np.ndarray,
    levelable: np.ndarray,
    rel_p: np.ndarray,
    rel_r: np.ndarray,
    up: np.ndarray,
    level: bool,
    max_iterations: int,
    damping: float,
    tolerance: float,
    weights: np.ndarray,
    limits: np.ndarray,
    moved: np.ndarray,
    leveled: np.ndarray,
    jac: np.ndarray,
    ee_left: np.ndarray,
    target: np.ndarray,
) -> None:
    """Step each row of q (M, 12) in place (see the module docstring), LANES rows at a time. ee_pos (2, 3), ee_rot
    (2, 3, 3): the end effector sites in the tool frames; joint_axis (2, 6, 3); levelable (M,): rows that may be
    leveled; rel_p (3,), rel_r (3, 3): the right end effector in the left one's frame at the start; up (3,): the
    start's up direction in the left end effector's frame; weights (6,): of the position and rotation errors; limits
    (12, 2). Out: moved, leveled (M,) (rows whose right / left arm took a step), jac (M, 2, 6, 6), ee_left (M, 3),
    target (M, 3)."""
    total, joints = q.shape
    lanes = max(1, min(LANES, total))  # a run-time count (sphere_kernel.clearances)
    trig = np.empty((2, joints, lanes))
    rot, pos = np.empty((2, _BODIES, 3, 3, lanes)), np.empty((2, _BODIES, 3, lanes))
    ee_p, ee_r = np.empty((2, 3, lanes)), np.empty((2, 3, 3, lanes))
    jacobian = np.empty((2, 6, 6, lanes))  # per arm: rows linear, angular; columns the joints
    err, rhs, normal, damp = np.empty((6, lanes)), np.empty((6, lanes)), np.empty((6, 6, lanes)), np.empty(lanes)
    turn, aim = np.empty((3, 3, lanes)), np.empty((3, lanes))
    active, tilted, off = np.empty(lanes, np.bool_), np.empty(lanes, np.bool_), np.empty(lanes, np.bool_)
    ones = np.ones(6)
    for c in range(0, total, lanes):
        count = min(lanes, total - c)
        for lane in range(lanes):
            active[lane] = lane < count
        for iteration in range(max_iterations + 1):
            for lane in range(lanes):
                row = c + min(lane, count - 1)
                for j in range(joints):
                    trig[0, j, lane] = q[row, j]
            _trig_lanes(trig)
            for arm in range(2):
                _chain_lanes(geo, trig, arm, rot, pos)
                _end_effector(ee_pos, ee_rot, joint_axis, arm, rot, pos, ee_p, ee_r, jacobian)
            tilted[:] = False
            off[:] = False
            if level:  # the rotation that turns the start's up direction back up: (v1, -v0, 0), v = R_left up
                for lane in range(count):
                    v0 = ee_r[0, 0, 0, lane] * up[0] + ee_r[0, 0, 1, lane] * up[1] + ee_r[0, 0, 2, lane] * up[2]
                    v1 = ee_r[0, 1, 0, lane] * up[0] + ee_r[0, 1, 1, lane] * up[1] + ee_r[0, 1, 2, lane] * up[2]
                    tilted[lane] = active[lane] and levelable[c + lane] and max(abs(v0), abs(v1)) > tolerance
                    rhs[0, lane], rhs[1, lane], rhs[2, lane] = v1, -v0, 0.0
                    damp[lane] = damping
                if iteration < max_iterations and _any(tilted):
                    _damped_step(jacobian, 0, 3, 3, ones, damp, normal, rhs, q, c, count, 0, limits, tilted)
                    for lane in range(count):
                        leveled[c + lane] |= tilted[lane]
            for i in range(3):  # the grip's target for the right end effector, from the left one
                for lane in range(lanes):
                    value = ee_p[0, i, lane]
                    for k in range(3):
                        value += ee_r[0, i, k, lane] * rel_p[k]
                    aim[i, lane] = value
                    err[i, lane] = (value - ee_p[1, i, lane]) * weights[i]
            for lane in range(count):
                if active[lane]:
                    for i in range(3):
                        target[c + lane, i] = aim[i, lane]
            _rotation_error(ee_r, rel_r, weights, turn, err)
            still = False
            for lane in range(count):
                for i in range(6):
                    off[lane] = off[lane] or abs(err[i, lane]) > tolerance
                if active[lane] and (iteration == max_iterations or not (off[lane] or tilted[lane])):
                    active[lane] = False  # stops here: its Jacobians and left end effector are these
                    for arm in range(2):
                        for i in range(6):
                            for j in range(6):
                                jac[c + lane, arm, i, j] = jacobian[arm, i, j, lane]
                    for i in range(3):
                        ee_left[c + lane, i] = ee_p[0, i, lane]
                off[lane] = off[lane] and active[lane]
                still = still or active[lane]
            if not still:
                break
            if _any(off):
                for lane in range(lanes):
                    squared = 0.0
                    for i in range(6):
                        squared += err[i, lane] * err[i, lane]
                        rhs[i, lane] = err[i, lane]
                    damp[lane] = damping + 0.1 * squared
                _damped_step(jacobian, 1, 0, 6, weights, damp, normal, rhs, q, c, count, 6, limits, off)
                for lane in range(count):
                    moved[c + lane] |= off[lane]


@numba.njit(**_JIT)
def right_velocities(
    jac: np.ndarray, dq: np.ndarray, ee_left: np.ndarray, target: np.ndarray, damping: float
) -> None:  # fmt: skip
    """dq (M, 12) in place: the right arm's velocities that move its end effector with the left one's twist (left
    Jacobian times the left velocities), carried to the target point; damped least squares on the right Jacobian;
    LANES rows at a time."""
    total = dq.shape[0]
    lanes = max(1, min(LANES, total))
    block, normal = np.empty((2, 6, 6, lanes)), np.empty((6, 6, lanes))
    rhs, damp, ones, twist = np.empty((6, lanes)), np.full(lanes, damping), np.ones(6), np.empty(6)
    for c in range(0, total, lanes):
        count = min(lanes, total - c)
        for lane in range(lanes):
            row = c + min(lane, count - 1)
            for arm in range(2):
                for i in range(6):
                    for j in range(6):
                        block[arm, i, j, lane] = jac[row, arm, i, j]
            for i in range(6):
                twist[i] = 0.0
                for j in range(6):
                    twist[i] += jac[row, 0, i, j] * dq[row, j]
            lx, ly = target[row, 0] - ee_left[row, 0], target[row, 1] - ee_left[row, 1]
            lz = target[row, 2] - ee_left[row, 2]
            rhs[0, lane] = twist[0] + twist[4] * lz - twist[5] * ly  # v + w x lever
            rhs[1, lane] = twist[1] + twist[5] * lx - twist[3] * lz
            rhs[2, lane] = twist[2] + twist[3] * ly - twist[4] * lx
            rhs[3, lane], rhs[4, lane], rhs[5, lane] = twist[3], twist[4], twist[5]
        _normal_solve(block, 1, 0, 6, ones, damp, normal, rhs)
        for lane in range(count):
            for j in range(6):
                value = 0.0
                for i in range(6):
                    value += block[1, i, j, lane] * rhs[i, lane]
                dq[c + lane, 6 + j] = value


@numba.njit(**_JIT)
def _any(flags: np.ndarray) -> bool:
    count = 0
    for lane in range(flags.shape[0]):
        count += flags[lane]
    return count > 0


@numba.njit(**_JIT)
def _end_effector(
    ee_pos: np.ndarray, ee_rot: np.ndarray, joint_axis: np.ndarray, arm: int, rot: np.ndarray, pos: np.ndarray,
    ee_p: np.ndarray, ee_r: np.ndarray, jac: np.ndarray,
) -> None:  # fmt: skip
    """The arm's end-effector site (ee_p[arm] (3, lanes), ee_r[arm] (3, 3, lanes)) and its Jacobian jac[arm] (6 rows:
    linear, angular; 6 joints; lanes)."""
    lanes = ee_p.shape[2]
    for i in range(3):
        for lane in range(lanes):
            value = pos[arm, _TOOL, i, lane]
            for k in range(3):
                value += rot[arm, _TOOL, i, k, lane] * ee_pos[arm, k]
            ee_p[arm, i, lane] = value
        for j in range(3):
            e0, e1, e2 = ee_rot[arm, 0, j], ee_rot[arm, 1, j], ee_rot[arm, 2, j]
            for lane in range(lanes):
                ee_r[arm, i, j, lane] = (rot[arm, _TOOL, i, 0, lane] * e0 + rot[arm, _TOOL, i, 1, lane] * e1
                                         + rot[arm, _TOOL, i, 2, lane] * e2)  # fmt: skip
    for j in range(6):
        a0, a1, a2 = joint_axis[arm, j, 0], joint_axis[arm, j, 1], joint_axis[arm, j, 2]
        for lane in range(lanes):
            ax = rot[arm, j, 0, 0, lane] * a0 + rot[arm, j, 0, 1, lane] * a1 + rot[arm, j, 0, 2, lane] * a2
            ay = rot[arm, j, 1, 0, lane] * a0 + rot[arm, j, 1, 1, lane] * a1 + rot[arm, j, 1, 2, lane] * a2
            az = rot[arm, j, 2, 0, lane] * a0 + rot[arm, j, 2, 1, lane] * a1 + rot[arm, j, 2, 2, lane] * a2
            lx = ee_p[arm, 0, lane] - pos[arm, j, 0, lane]
            ly = ee_p[arm, 1, lane] - pos[arm, j, 1, lane]
            lz = ee_p[arm, 2, lane] - pos[arm, j, 2, lane]
            jac[arm, 0, j, lane] = ay * lz - az * ly
            jac[arm, 1, j, lane] = az * lx - ax * lz
            jac[arm, 2, j, lane] = ax * ly - ay * lx
            jac[arm, 3, j, lane], jac[arm, 4, j, lane], jac[arm, 5, j, lane] = ax, ay, az


@numba.njit(**_JIT)
def _rotation_error(
    ee_r: np.ndarray, rel_r: np.ndarray, weights: np.ndarray, turn: np.ndarray, err: np.ndarray
) -> None:  # fmt: skip
    """err[3:6] (lanes): the rotation vector (small: the antisymmetric part) of target_r R_right^T, target_r =
    R_left rel_r, weighted (turn: (3, 3, lanes) scratch)."""
    lanes = err.shape[1]
    for i in range(3):
        for j in range(3):
            for lane in range(lanes):
                value = 0.0
                for k in range(3):
                    aim = (ee_r[0, i, 0, lane] * rel_r[0, k] + ee_r[0, i, 1, lane] * rel_r[1, k]
                           + ee_r[0, i, 2, lane] * rel_r[2, k])  # fmt: skip
                    value += aim * ee_r[1, j, k, lane]
                turn[i, j, lane] = value
    for lane in range(lanes):
        err[3, lane] = 0.5 * (turn[2, 1, lane] - turn[1, 2, lane]) * weights[3]
        err[4, lane] = 0.5 * (turn[0, 2, lane] - turn[2, 0, lane]) * weights[4]
        err[5, lane] = 0.5 * (turn[1, 0, lane] - turn[0, 1, lane]) * weights[5]


@numba.njit(**_JIT)
def _damped_step(
    jac: np.ndarray, arm: int, first_row: int, rows: int, weights: np.ndarray, damping: np.ndarray,
    normal: np.ndarray, rhs: np.ndarray, q: np.ndarray, c: int, count: int, first_joint: int, limits: np.ndarray,
    stepping: np.ndarray,
) -> None:  # fmt: skip
    """q[c + lane, first_joint:first_joint + 6] += J^T (J J^T + damping I)^-1 rhs per lane where `stepping`,
    J = jac[arm, first_row:first_row + rows] with row i scaled by weights[i], clamped to the limits (rhs
    overwritten)."""
    _normal_solve(jac, arm, first_row, rows, weights, damping, normal, rhs)
    for j in range(6):
        joint = first_joint + j
        lo, hi = limits[joint, 0], limits[joint, 1]
        for lane in range(count):
            step = 0.0
            for i in range(rows):
                step += jac[arm, first_row + i, j, lane] * weights[i] * rhs[i, lane]
            if stepping[lane]:
                q[c + lane, joint] = min(max(q[c + lane, joint] + step, lo), hi)


@numba.njit(**_JIT)
def _normal_solve(
    jac: np.ndarray, arm: int, first_row: int, rows: int, weights: np.ndarray, damping: np.ndarray,
    normal: np.ndarray, rhs: np.ndarray,
) -> None:  # fmt: skip
    """rhs[:rows] <- (J J^T + damping I)^-1 rhs[:rows] per lane, J = jac[arm, first_row:first_row + rows] with row i
    scaled by weights[i] (by Cholesky: the matrix is symmetric positive definite)."""
    lanes = rhs.shape[1]
    for i in range(rows):
        for j in range(i + 1):
            scale = weights[i] * weights[j]
            for lane in range(lanes):
                value = 0.0
                for k in range(jac.shape[2]):
                    value += jac[arm, first_row + i, k, lane] * jac[arm, first_row + j, k, lane]
                normal[i, j, lane] = value * scale + (damping[lane] if i == j else 0.0)
    for j in range(rows):  # L in the lower triangle
        for lane in range(lanes):
            value = normal[j, j, lane]
            for k in range(j):
                value -= normal[j, k, lane] * normal[j, k, lane]
            normal[j, j, lane] = math.sqrt(value)
        for i in range(j + 1, rows):
            for lane in range(lanes):
                value = normal[i, j, lane]
                for k in range(j):
                    value -= normal[i, k, lane] * normal[j, k, lane]
                normal[i, j, lane] = value / normal[j, j, lane]
    for i in range(rows):  # L y = rhs
        for lane in range(lanes):
            value = rhs[i, lane]
            for k in range(i):
                value -= normal[i, k, lane] * rhs[k, lane]
            rhs[i, lane] = value / normal[i, i, lane]
    for i in range(rows - 1, -1, -1):  # L^T x = y
        for lane in range(lanes):
            value = rhs[i, lane]
            for k in range(i + 1, rows):
                value -= normal[k, i, lane] * rhs[k, lane]
            rhs[i, lane] = value / normal[i, i, lane]
