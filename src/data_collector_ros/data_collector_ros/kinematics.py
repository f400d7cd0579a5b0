"""Cheap kinematic checks on batches of waypoints (no dynamics): forward kinematics and arm collisions.

For planners (the CEM expert) that score many candidate trajectories: ~tens of microseconds per waypoint.
The tray is not moved (it only collides with the table, never with the arms).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from data_collector_ros.robot import JOINT_POSITION_LIMITS, NUM_JOINTS
from data_collector_ros.scene import SceneIndex, classify_contacts, load_model


@dataclass(frozen=True)
class KinematicReport:
    ee_positions: np.ndarray  # (N, 2, 3)
    arm_arm: np.ndarray  # (N,) bool
    arm_env: np.ndarray  # (N,) bool
    within_limits: np.ndarray  # (N,) bool (position limits)

    @property
    def collision_free(self) -> bool:
        return not bool(self.arm_arm.any() or self.arm_env.any())


class KinematicChecker:
    """Forward kinematics + collision detection of the arms. Owns its own MjData (thread-confined)."""

    def __init__(self, model: mujoco.MjModel | None = None, margin: float = 0.0) -> None:
        self.model = model if model is not None else load_model()
        self.data = mujoco.MjData(self.model)
        self.index = SceneIndex.from_model(self.model)
        self.margin = margin  # m; contacts closer than this count as collisions

    def check(self, positions: np.ndarray) -> KinematicReport:
        """positions: (N, 12) or (12,) joint configurations in JOINT_NAMES order."""
        q = np.atleast_2d(np.asarray(positions, dtype=float))
        if q.shape[1] != NUM_JOINTS:
            raise ValueError(f"expected (N, {NUM_JOINTS}) positions, got {q.shape}")
        m, d, idx = self.model, self.data, self.index
        n = len(q)
        ee = np.zeros((n, 2, 3))
        arm_arm, arm_env = np.zeros(n, bool), np.zeros(n, bool)
        d.qpos[:] = m.qpos0
        for k in range(n):
            d.qpos[idx.qpos_adr] = q[k]
            mujoco.mj_kinematics(m, d)
            mujoco.mj_collision(m, d)
            ee[k] = d.site_xpos[idx.ee_sites]
            if d.ncon:
                close = d.contact.dist < self.margin
                arm_arm[k], arm_env[k] = classify_contacts(idx, d.contact.geom[close])
        limits = np.all((q >= JOINT_POSITION_LIMITS[:, 0]) & (q <= JOINT_POSITION_LIMITS[:, 1]), axis=1)
        return KinematicReport(ee, arm_arm, arm_env, limits)
