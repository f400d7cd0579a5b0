"""Inverse kinematics: end-effector target poses -> 12 joint angles (damped least squares on MuJoCo Jacobians).

Each arm is solved independently (its site depends only on its own 6 joints) by Levenberg-Marquardt-style damped
least squares with position + orientation error, joint limits clamped each iteration. Deterministic: the first
attempt starts from the seed configuration; restarts perturb it with `numpy.random.default_rng(seed)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from data_collector_ros.scene import SceneIndex, load_model
from flow_planner_common.robot import HOME_POSITIONS, JOINT_POSITION_LIMITS, NUM_JOINTS

ARM_JOINTS = NUM_JOINTS // 2


@dataclass(frozen=True)
class IKResult:
    positions: np.ndarray  # (12,) in JOINT_NAMES order
    success: bool
    position_errors: np.ndarray  # (2,) m, left/right
    rotation_errors: np.ndarray  # (2,) rad
    iterations: int


class IKSolver:
    """Solve both arms' joint angles for end-effector site targets. Owns its own MjData (thread-confined)."""

    def __init__(
        self,
        model: mujoco.MjModel | None = None,
        position_tolerance: float = 5e-4,
        rotation_tolerance: float = 5e-3,
        max_iterations: int = 200,
        restarts: int = 8,
        damping: float = 1e-3,
        rotation_weight: float = 0.3,
    ) -> None:
        self.model = model if model is not None else load_model()
        self.data = mujoco.MjData(self.model)
        self.index = SceneIndex.from_model(self.model)
        self.position_tolerance = position_tolerance
        self.rotation_tolerance = rotation_tolerance
        self.max_iterations = max_iterations
        self.restarts = restarts
        self.damping = damping
        self.rotation_weight = rotation_weight

    def solve(
        self, positions: np.ndarray, quats: np.ndarray, seed_positions: np.ndarray | None = None, seed: int = 0
    ) -> IKResult:
        """Targets: positions (2, 3), quaternions (2, 4) of the left/right EE sites. Returns the best found."""
        q0 = np.array(HOME_POSITIONS if seed_positions is None else seed_positions, dtype=float)
        rng = np.random.default_rng(seed)
        result = np.array(q0)
        pos_err, rot_err, iterations = np.zeros(2), np.zeros(2), 0
        for arm in range(2):
            cols = slice(arm * ARM_JOINTS, (arm + 1) * ARM_JOINTS)
            best = None
            for attempt in range(self.restarts + 1):
                start = q0[cols] if attempt == 0 else q0[cols] + rng.normal(0.0, 0.4 * attempt**0.5, ARM_JOINTS)
                q, pe, re, it = self._solve_arm(arm, positions[arm], quats[arm], start, q0)
                iterations += it
                if best is None or pe + 0.1 * re < best[1] + 0.1 * best[2]:
                    best = (q, pe, re)
                if pe <= self.position_tolerance and re <= self.rotation_tolerance:
                    break
            result[cols], pos_err[arm], rot_err[arm] = best
        ok = bool(np.all(pos_err <= self.position_tolerance) and np.all(rot_err <= self.rotation_tolerance))
        return IKResult(result, ok, pos_err, rot_err, iterations)

    def _solve_arm(
        self, arm: int, target_pos: np.ndarray, target_quat: np.ndarray, start: np.ndarray, full_seed: np.ndarray
    ) -> tuple[np.ndarray, float, float, int]:
        m, d, idx = self.model, self.data, self.index
        site = int(idx.ee_sites[arm])
        dofs = idx.dof_adr[arm * ARM_JOINTS : (arm + 1) * ARM_JOINTS]
        qadr = idx.qpos_adr[arm * ARM_JOINTS : (arm + 1) * ARM_JOINTS]
        lower = JOINT_POSITION_LIMITS[arm * ARM_JOINTS : (arm + 1) * ARM_JOINTS, 0]
        upper = JOINT_POSITION_LIMITS[arm * ARM_JOINTS : (arm + 1) * ARM_JOINTS, 1]
        d.qpos[:] = m.qpos0
        d.qpos[idx.qpos_adr] = full_seed
        q = np.clip(start, lower, upper)
        jacp, jacr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        site_quat, err_rot = np.zeros(4), np.zeros(3)
        weights = np.array([1.0] * 3 + [self.rotation_weight] * 3)
        pe = re = np.inf
        for iteration in range(1, self.max_iterations + 1):
            d.qpos[qadr] = q
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            err_pos = target_pos - d.site_xpos[site]
            mujoco.mju_mat2Quat(site_quat, d.site_xmat[site])
            mujoco.mju_subQuat(err_rot, target_quat, site_quat)  # rotation from site to target, site frame
            err_rot_world = d.site_xmat[site].reshape(3, 3) @ err_rot
            pe, re = float(np.linalg.norm(err_pos)), float(np.linalg.norm(err_rot))
            if pe <= self.position_tolerance * 0.2 and re <= self.rotation_tolerance * 0.2:
                return q, pe, re, iteration
            mujoco.mj_jacSite(m, d, jacp, jacr, site)
            jac = np.vstack([jacp[:, dofs], jacr[:, dofs]]) * weights[:, None]
            err = np.concatenate([err_pos, err_rot_world]) * weights
            lam = self.damping + 0.1 * float(err @ err)
            dq = jac.T @ np.linalg.solve(jac @ jac.T + lam * np.eye(6), err)
            step = float(np.max(np.abs(dq)))
            if step > 0.3:
                dq *= 0.3 / step
            q = np.clip(q + dq, lower, upper)
        return q, pe, re, self.max_iterations
