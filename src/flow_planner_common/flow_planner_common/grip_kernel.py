"""GripFollower's steps compiled for the CPU (numba): the same damped least squares, one waypoint at a time.

`follow_rows` runs the follower's iterations per row of joint positions, in place: the right arm's end effector
pulled onto the pose the grip gives it in the left end effector's frame (6 x 6 damped least squares on its
Jacobian), and with leveling the left arm turned so that the start's up direction stays up (3 x 3, its angular
rows). A row stops as soon as it is within the tolerances, as in the torch code (`GripFollower.follow`), and the
Jacobians, the left end effector and the grip's target stay those of its final joints. `right_velocities` then
gives the right arm the velocities that carry the left end effector's twist to the right's point. Forward
kinematics is the sphere checker's compiled chain (`sphere_kernel._chain`); float64; both release the GIL.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from flow_planner_common.sphere_kernel import _JIT, _TOOL, KernelGeometry, _chain


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
    """Step each row of q (M, 12) in place (see the module docstring). ee_pos (2, 3), ee_rot (2, 3, 3): the end
    effector sites in the tool frames; joint_axis (2, 6, 3); levelable (M,): rows that may be leveled; rel_p (3,),
    rel_r (3, 3): the right end effector in the left one's frame at the start; up (3,): the start's up direction in
    the left end effector's frame; weights (6,): of the position and rotation errors; limits (12, 2). Out: moved,
    leveled (M,) (rows whose right / left arm took a step), jac (M, 2, 6, 6), ee_left (M, 3), target (M, 3)."""
    rot, pos = np.empty((2, 7, 3, 3)), np.empty((2, 7, 3))
    ee_p, ee_r = np.empty((2, 3)), np.empty((2, 3, 3))
    normal, rhs, err, turn = np.empty((6, 6)), np.empty(6), np.empty(6), np.empty((3, 3))
    ones = np.ones(6)
    for c in range(q.shape[0]):
        for iteration in range(max_iterations + 1):
            for arm in range(2):
                _chain(geo, q, c, arm, rot, pos)
                _end_effector(ee_pos, ee_rot, joint_axis, arm, rot, pos, ee_p, ee_r, jac[c, arm])
            tilt_off = False
            if level:  # the rotation that turns the start's up direction back up: (v1, -v0, 0), v = R_left up
                v0 = ee_r[0, 0, 0] * up[0] + ee_r[0, 0, 1] * up[1] + ee_r[0, 0, 2] * up[2]
                v1 = ee_r[0, 1, 0] * up[0] + ee_r[0, 1, 1] * up[1] + ee_r[0, 1, 2] * up[2]
                tilt_off = levelable[c] and max(abs(v0), abs(v1)) > tolerance
                if iteration < max_iterations and tilt_off:
                    rhs[0], rhs[1], rhs[2] = v1, -v0, 0.0
                    _damped_step(jac[c, 0], 3, 3, ones, damping, normal, rhs, q, c, 0, limits)
                    leveled[c] = True
            for i in range(3):  # the grip's target for the right end effector, from the left one
                target[c, i] = ee_p[0, i]
                for k in range(3):
                    target[c, i] += ee_r[0, i, k] * rel_p[k]
                err[i] = (target[c, i] - ee_p[1, i]) * weights[i]
            _rotation_error(ee_r, rel_r, weights, turn, err)
            off = False
            for i in range(6):
                off = off or abs(err[i]) > tolerance
            if iteration == max_iterations or not (off or tilt_off):
                break
            if off:
                squared = 0.0
                for i in range(6):
                    squared += err[i] * err[i]
                    rhs[i] = err[i]
                _damped_step(jac[c, 1], 0, 6, weights, damping + 0.1 * squared, normal, rhs, q, c, 6, limits)
                moved[c] = True
        for i in range(3):
            ee_left[c, i] = ee_p[0, i]


@numba.njit(**_JIT)
def right_velocities(
    jac: np.ndarray, dq: np.ndarray, ee_left: np.ndarray, target: np.ndarray, damping: float
) -> None:  # fmt: skip
    """dq (M, 12) in place: the right arm's velocities that move its end effector with the left one's twist (left
    Jacobian times the left velocities), carried to the target point; damped least squares on the right Jacobian."""
    normal, rhs, twist, ones = np.empty((6, 6)), np.empty(6), np.empty(6), np.ones(6)
    for c in range(dq.shape[0]):
        for i in range(6):
            twist[i] = 0.0
            for j in range(6):
                twist[i] += jac[c, 0, i, j] * dq[c, j]
        lx, ly, lz = target[c, 0] - ee_left[c, 0], target[c, 1] - ee_left[c, 1], target[c, 2] - ee_left[c, 2]
        rhs[0] = twist[0] + twist[4] * lz - twist[5] * ly  # v + w x lever
        rhs[1] = twist[1] + twist[5] * lx - twist[3] * lz
        rhs[2] = twist[2] + twist[3] * ly - twist[4] * lx
        rhs[3], rhs[4], rhs[5] = twist[3], twist[4], twist[5]
        _normal_solve(jac[c, 1], 0, 6, ones, damping, normal, rhs)
        for j in range(6):
            value = 0.0
            for i in range(6):
                value += jac[c, 1, i, j] * rhs[i]
            dq[c, 6 + j] = value


@numba.njit(**_JIT)
def _end_effector(
    ee_pos: np.ndarray, ee_rot: np.ndarray, joint_axis: np.ndarray, arm: int, rot: np.ndarray, pos: np.ndarray,
    ee_p: np.ndarray, ee_r: np.ndarray, jac: np.ndarray,
) -> None:  # fmt: skip
    """The arm's end-effector site (ee_p[arm], ee_r[arm]) and its Jacobian (6 rows: linear, angular; 6 joints)."""
    for i in range(3):
        ee_p[arm, i] = pos[arm, _TOOL, i]
        for k in range(3):
            ee_p[arm, i] += rot[arm, _TOOL, i, k] * ee_pos[arm, k]
        for j in range(3):
            ee_r[arm, i, j] = (rot[arm, _TOOL, i, 0] * ee_rot[arm, 0, j] + rot[arm, _TOOL, i, 1] * ee_rot[arm, 1, j]
                               + rot[arm, _TOOL, i, 2] * ee_rot[arm, 2, j])  # fmt: skip
    for j in range(6):
        ax, ay, az = 0.0, 0.0, 0.0
        for k in range(3):
            ax += rot[arm, j, 0, k] * joint_axis[arm, j, k]
            ay += rot[arm, j, 1, k] * joint_axis[arm, j, k]
            az += rot[arm, j, 2, k] * joint_axis[arm, j, k]
        lx, ly, lz = ee_p[arm, 0] - pos[arm, j, 0], ee_p[arm, 1] - pos[arm, j, 1], ee_p[arm, 2] - pos[arm, j, 2]
        jac[0, j], jac[1, j], jac[2, j] = ay * lz - az * ly, az * lx - ax * lz, ax * ly - ay * lx
        jac[3, j], jac[4, j], jac[5, j] = ax, ay, az


@numba.njit(**_JIT)
def _rotation_error(
    ee_r: np.ndarray, rel_r: np.ndarray, weights: np.ndarray, turn: np.ndarray, err: np.ndarray
) -> None:  # fmt: skip
    """err[3:6]: the rotation vector (small: the antisymmetric part) of target_r R_right^T, target_r = R_left rel_r,
    weighted (turn: (3, 3) scratch)."""
    for i in range(3):
        for j in range(3):
            value = 0.0
            for k in range(3):
                target = ee_r[0, i, 0] * rel_r[0, k] + ee_r[0, i, 1] * rel_r[1, k] + ee_r[0, i, 2] * rel_r[2, k]
                value += target * ee_r[1, j, k]
            turn[i, j] = value
    err[3] = 0.5 * (turn[2, 1] - turn[1, 2]) * weights[3]
    err[4] = 0.5 * (turn[0, 2] - turn[2, 0]) * weights[4]
    err[5] = 0.5 * (turn[1, 0] - turn[0, 1]) * weights[5]


@numba.njit(**_JIT)
def _damped_step(
    jac: np.ndarray, first_row: int, rows: int, weights: np.ndarray, damping: float, normal: np.ndarray,
    rhs: np.ndarray, q: np.ndarray, c: int, first_joint: int, limits: np.ndarray,
) -> None:  # fmt: skip
    """q[c, first_joint:first_joint + 6] += J^T (J J^T + damping I)^-1 rhs, J = jac[first_row:first_row + rows] with
    row i scaled by weights[i], clamped to the limits (rhs overwritten)."""
    _normal_solve(jac, first_row, rows, weights, damping, normal, rhs)
    for j in range(6):
        step = 0.0
        for i in range(rows):
            step += jac[first_row + i, j] * weights[i] * rhs[i]
        joint = first_joint + j
        q[c, joint] = min(max(q[c, joint] + step, limits[joint, 0]), limits[joint, 1])


@numba.njit(**_JIT)
def _normal_solve(
    jac: np.ndarray, first_row: int, rows: int, weights: np.ndarray, damping: float, normal: np.ndarray,
    rhs: np.ndarray,
) -> None:  # fmt: skip
    """rhs[:rows] <- (J J^T + damping I)^-1 rhs[:rows], J = jac[first_row:first_row + rows] with row i scaled by
    weights[i] (by Cholesky: the matrix is symmetric positive definite)."""
    for i in range(rows):
        for j in range(i + 1):
            value = 0.0
            for k in range(jac.shape[1]):
                value += jac[first_row + i, k] * jac[first_row + j, k]
            normal[i, j] = value * weights[i] * weights[j] + (damping if i == j else 0.0)
    for j in range(rows):  # L in the lower triangle
        value = normal[j, j]
        for k in range(j):
            value -= normal[j, k] * normal[j, k]
        diagonal = math.sqrt(value)
        normal[j, j] = diagonal
        for i in range(j + 1, rows):
            value = normal[i, j]
            for k in range(j):
                value -= normal[i, k] * normal[j, k]
            normal[i, j] = value / diagonal
    for i in range(rows):  # L y = rhs
        value = rhs[i]
        for k in range(i):
            value -= normal[i, k] * rhs[k]
        rhs[i] = value / normal[i, i]
    for i in range(rows - 1, -1, -1):  # L^T x = y
        value = rhs[i]
        for k in range(i + 1, rows):
            value -= normal[k, i] * rhs[k]
        rhs[i] = value / normal[i, i]
