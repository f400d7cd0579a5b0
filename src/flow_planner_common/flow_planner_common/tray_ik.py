"""Inverse kinematics for tray-pose goals (numpy, no MuJoCo): both end effectors to the tray's handles.

The chain is the collision checker's (`kinematics.ArmKinematics` on the committed `robot_geometry.json`); the
solver is damped least squares on its analytic Jacobian (each hinge's world axis and position), both arms and any
number of seeds in one vectorised run, joint limits clamped every iteration (the same scheme, tolerances and
weights as the collector's MuJoCo IK, `data_collector_ros.ik`, which tests compare it with). `TrayIK.solve` tries
several seeds, the first being the seed configuration itself, and returns the converged solution closest to it that
the caller's `accept` (e.g. a collision check) takes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from flow_planner_common.kinematics import ArmKinematics, apply_rotation, quat_to_matrix
from flow_planner_common.robot import JOINT_POSITION_LIMITS, NUM_ARM_JOINTS, NUM_JOINTS

#: Converged: every end effector within this of its target (m), as the collector's IK.
POSITION_TOLERANCE = 5e-4
#: Converged: every end effector's rotation within this of its target (rad).
ROTATION_TOLERANCE = 5e-3
#: Weight of the rotation error (rad) against the position error (m) in the least-squares step.
ROTATION_WEIGHT = 0.3
#: Largest joint step per iteration (rad).
MAX_STEP = 0.3
#: Seeds after the first are the seed configuration plus N(0, (SEED_NOISE * sqrt(k))^2) noise, k = 1, 2, ...
SEED_NOISE = 0.4

#: A seed whose error has not dropped by 1 % for this many iterations is given up (local minimum, out of reach).
STALL_ITERATIONS = 10

#: accept(candidates (K, 12)) -> one reason per candidate, "" when it is acceptable.
Acceptance = Callable[[np.ndarray], Sequence[str]]


@dataclass(frozen=True)
class IKSolution:
    """The chosen configuration (closest converged and accepted one; else the best attempt) and why it failed."""

    positions: np.ndarray  # (12,)
    success: bool
    position_error: np.ndarray  # (2,) m, left/right end effector
    rotation_error: np.ndarray  # (2,) rad
    reason: str = ""


def pose_matrix(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[x, y, z, qw, qx, qy, qz] -> position (3,), rotation (3, 3)."""
    pose = np.asarray(pose, dtype=float)
    return pose[:3].copy(), quat_to_matrix(pose[3:7])


def rotation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """(..., 3) world-frame rotation vectors taking `current` (..., 3, 3) to `target`."""
    r = target @ np.swapaxes(current, -1, -2)
    v = 0.5 * np.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], -1)
    cos = np.clip(0.5 * (np.trace(r, axis1=-2, axis2=-1) - 1.0), -1.0, 1.0)
    sin = np.linalg.norm(v, axis=-1)
    angle = np.arctan2(sin, cos)
    scale = np.where(sin > 1e-9, angle / np.maximum(sin, 1e-12), 1.0)
    out = v * scale[..., None]
    # near a half turn the antisymmetric part vanishes: take the axis from the symmetric part (R + I) / 2
    flip = (cos < -0.99) & (sin < 1e-6)
    if np.any(flip):
        sym = 0.5 * (r[flip] + np.eye(3))
        column = np.argmax(np.linalg.norm(sym, axis=-2), axis=-1)
        axis = sym[np.arange(len(sym)), :, column]
        axis *= np.where(np.sum(axis * v[flip], axis=-1) < 0.0, -1.0, 1.0)[..., None]  # the side v points to
        out[flip] = axis / np.linalg.norm(axis, axis=-1, keepdims=True) * angle[flip][..., None]
    return out


class TrayIK:
    """Both tools to target poses: reach (the handles of a tray at a pose) and carry (the tray moved to a pose)."""

    def __init__(
        self,
        kinematics: ArmKinematics | None = None,
        max_iterations: int = 100,
        damping: float = 1e-3,
        position_tolerance: float = POSITION_TOLERANCE,
        rotation_tolerance: float = ROTATION_TOLERANCE,
    ) -> None:
        self.kinematics = kinematics or ArmKinematics()
        self.max_iterations = max_iterations
        self.damping = damping
        self.position_tolerance = position_tolerance
        self.rotation_tolerance = rotation_tolerance
        g = self.kinematics.geometry
        self._axes = g.joint_axis  # (2, 6, 3) in each jointed body's frame, through its origin
        self._lower = JOINT_POSITION_LIMITS[:, 0].reshape(2, NUM_ARM_JOINTS)
        self._upper = JOINT_POSITION_LIMITS[:, 1].reshape(2, NUM_ARM_JOINTS)
        self._weights = np.array([1.0, 1.0, 1.0] + [ROTATION_WEIGHT] * 3)

    def reach_targets(self, tray_pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-effector targets (2, 3), (2, 3, 3) on the handles of a tray at `tray_pose` (x y z qw qx qy qz)."""
        g = self.kinematics.geometry
        p, r = pose_matrix(tray_pose)
        return p + apply_rotation(r, g.handle_pos), r @ g.handle_rot

    def carry_targets(
        self, start_positions: np.ndarray, start_tray_pose: np.ndarray, tray_pose: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """End-effector targets that carry the tray from `start_tray_pose` (held at `start_positions`) to
        `tray_pose` (..., 7): both tools keep their start pose in the tray's frame (no grip change)."""
        ee_p, ee_r = self.kinematics.ee_poses(np.asarray(start_positions, dtype=float))  # (2, 3), (2, 3, 3)
        p0, r0 = pose_matrix(start_tray_pose)
        local_p, local_r = apply_rotation(r0.T, ee_p - p0), r0.T @ ee_r  # the tools in the tray frame
        pose = np.asarray(tray_pose, dtype=float)
        p, r = pose[..., :3], quat_to_matrix(pose[..., 3:7])
        return p[..., None, :] + apply_rotation(r[..., None, :, :], local_p), r[..., None, :, :] @ local_r

    def errors(
        self, positions: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(..., 2) position (m) and rotation (rad) errors of both end effectors at `positions` (..., 12)."""
        ee_p, ee_r = self.kinematics.ee_poses(positions)
        return (
            np.linalg.norm(target_pos - ee_p, axis=-1),
            np.linalg.norm(rotation_error(target_rot, ee_r), axis=-1),
        )

    def solve_batch(
        self, target_pos: np.ndarray, target_rot: np.ndarray, seeds: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One damped-least-squares run per row: targets (N, 2, 3) and (N, 2, 3, 3), seeds (N, 12) ->
        positions (N, 12) and converged (N,). Rows stop moving once converged; the run ends when all have."""
        g = self.kinematics.geometry
        q = np.clip(np.asarray(seeds, dtype=float).reshape(-1, 2, NUM_ARM_JOINTS), self._lower, self._upper)
        target_pos = np.broadcast_to(target_pos, (len(q), 2, 3))
        target_rot = np.broadcast_to(target_rot, (len(q), 2, 3, 3))
        eye = np.eye(6)
        best = np.full(len(q), np.inf)  # each row's best error so far, and when it last improved by 1 %
        improved = np.zeros(len(q), dtype=np.int64)
        for iteration in range(self.max_iterations):
            pos, rot = self.kinematics.forward_kinematics(q.reshape(-1, NUM_JOINTS))  # (N, 2, 7, 3), (..., 3, 3)
            tool_p, tool_r = pos[:, :, -1], rot[:, :, -1]
            ee_p = tool_p + apply_rotation(tool_r, np.broadcast_to(g.ee_pos, tool_p.shape))
            err_p = target_pos - ee_p
            err_r = rotation_error(target_rot, tool_r @ g.ee_rot)
            pe, re = np.linalg.norm(err_p, axis=-1), np.linalg.norm(err_r, axis=-1)  # (N, 2)
            # converged a little inside the tolerances, so the reported errors are safely within them
            done = np.all((pe <= 0.2 * self.position_tolerance) & (re <= 0.2 * self.rotation_tolerance), axis=-1)
            error = np.max(pe, axis=-1) + 0.1 * np.max(re, axis=-1)
            better = error < 0.99 * best
            best, improved = np.where(better, error, best), np.where(better, iteration, improved)
            done |= iteration - improved >= STALL_ITERATIONS  # stuck in a local minimum or at a limit: give up
            if np.all(done):
                break
            axes = apply_rotation(rot[:, :, :NUM_ARM_JOINTS], np.broadcast_to(self._axes, (len(q), 2, 6, 3)))
            lever = ee_p[:, :, None, :] - pos[:, :, :NUM_ARM_JOINTS]
            jac = np.concatenate([np.cross(axes, lever), axes], axis=-1)  # (N, 2, 6 joints, 6 rows)
            jac = np.swapaxes(jac, -1, -2) * self._weights[:, None]  # (N, 2, 6 rows, 6 joints)
            err = np.concatenate([err_p, err_r], axis=-1) * self._weights  # (N, 2, 6)
            lam = self.damping + 0.1 * np.sum(err * err, axis=-1)
            normal = jac @ np.swapaxes(jac, -1, -2) + lam[..., None, None] * eye
            dq = (np.swapaxes(jac, -1, -2) @ np.linalg.solve(normal, err[..., None]))[..., 0]
            step = np.max(np.abs(dq), axis=-1, keepdims=True)
            dq = dq * np.minimum(1.0, MAX_STEP / np.maximum(step, 1e-12))
            dq[done] = 0.0
            q = np.clip(q + dq, self._lower, self._upper)
        pe, re = self.errors(q.reshape(-1, NUM_JOINTS), target_pos, target_rot)
        converged = np.all((pe <= self.position_tolerance) & (re <= self.rotation_tolerance), axis=-1)
        return q.reshape(-1, NUM_JOINTS), converged

    def solve(
        self,
        target_pos: np.ndarray,
        target_rot: np.ndarray,
        seed_positions: np.ndarray,
        attempts: int = 8,
        rng_seed: int = 0,
        accept: Acceptance | None = None,
    ) -> IKSolution:
        """The converged, accepted solution closest to `seed_positions` among `attempts` seeds (the first is
        `seed_positions` itself). Each joint is moved by whole turns toward the seed where its limits allow."""
        seed = np.asarray(seed_positions, dtype=float)
        rng = np.random.default_rng(rng_seed)
        noise = rng.normal(0.0, 1.0, (attempts - 1, NUM_JOINTS)) * SEED_NOISE * np.sqrt(np.arange(1, attempts))[:, None]
        first, first_converged = self.solve_batch(target_pos, target_rot, seed[None])
        first = nearest_turns(first, seed)
        if first_converged[0] and (accept is None or not accept(first)[0]):  # the seed's own solution: usually
            pe, re = self.errors(first[0], target_pos, target_rot)
            return IKSolution(first[0], True, pe, re)
        others, others_converged = self.solve_batch(target_pos, target_rot, seed + noise)  # the other seeds at once
        solutions = nearest_turns(np.vstack([first, others]), seed)
        converged = np.concatenate([first_converged, others_converged])
        pe, re = self.errors(solutions, target_pos, target_rot)
        if not np.any(converged):
            best = int(np.argmin(np.max(pe, axis=-1) + 0.1 * np.max(re, axis=-1)))
            reason = (
                f"no inverse kinematics solution: the best of {attempts} attempts leaves an end effector "
                f"{1000 * pe[best].max():.1f} mm and {re[best].max():.3f} rad from its target (out of reach?)"
            )
            return IKSolution(solutions[best], False, pe[best], re[best], reason)
        candidates = unique_rows(np.flatnonzero(converged), solutions)
        order = candidates[np.argsort(np.linalg.norm(solutions[candidates] - seed, axis=-1), kind="stable")]
        reasons = [""] * len(order) if accept is None else list(accept(solutions[order]))
        for i, why in zip(order, reasons, strict=True):
            if not why:
                return IKSolution(solutions[i], True, pe[i], re[i])
        first = int(order[0])
        reason = f"every inverse kinematics solution found ({len(order)}) is refused; the closest: {reasons[0]}"
        return IKSolution(solutions[first], False, pe[first], re[first], reason)


def nearest_turns(positions: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each joint moved by whole turns (2 pi) toward `reference` where the joint limits allow (same poses)."""
    turns = np.round((reference - positions) / (2 * np.pi))
    shifted = positions + 2 * np.pi * turns
    inside = (shifted >= JOINT_POSITION_LIMITS[:, 0]) & (shifted <= JOINT_POSITION_LIMITS[:, 1])
    return np.where(inside, shifted, positions)


def unique_rows(indices: np.ndarray, positions: np.ndarray, tolerance: float = 1e-3) -> np.ndarray:
    """`indices` without the rows whose configuration repeats an earlier one within `tolerance` (rad)."""
    kept: list[int] = []
    for i in indices:
        if all(np.max(np.abs(positions[i] - positions[k])) > tolerance for k in kept):
            kept.append(int(i))
    return np.asarray(kept, dtype=np.int64)
