"""Kinematic cost of candidate trajectories for the CEM expert (no dynamics: forward kinematics + collision).

`PlanCost.evaluate` scores a batch of (N, 60, 12) candidates in one call. Per waypoint it runs MuJoCo forward
kinematics and collision detection on a private copy of the model in which
- every arm geom carries a `clearance` margin, so contacts closer than `clearance` are reported with their distance;
- the tray's geoms collide with the arms (the simulation never lets them touch physically, so an arm passing through
  the tray would go unnoticed otherwise; the tray body's collision bits are widened too, since MuJoCo filters body
  pairs by them); contacts of a tool with the tray are the grasp and are ignored;
- in the carry phase the tray moves rigidly with the left tool (its pose follows from the tool's pose at the start).

Cost terms (each a number per candidate, weighted by `CostWeights`):
- goal: squared end-effector error (m^2) at the last waypoint, summed over both arms;
- collision: sum over waypoints and contacts of max(0, clearance - distance) (m); arm-arm, arm-table, arm-tray,
  arm-obstacle and (carry) tray-obstacle; the scene's boxes are placed on the private model per context;
- limits: joint position excess (rad, summed) + joint speed above `speed_fraction` of the limit (rad/s, summed);
- jerk: mean squared third time derivative of the waypoint positions (rad^2/s^6), start state included;
- tilt (carry): mean squared tray tilt from level (rad^2);
- grip (carry): mean squared change of the right tool's position in the left tool's frame (m^2): the two grasps
  are welded to one rigid tray, so their relative pose must not change.

`feasible` is the hard version: no contact closer than 0, limits respected, tilt and grip change under their limits.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import mujoco
import numpy as np

from data_collector_ros.scene import (
    GROUP_ENV,
    GROUP_LEFT,
    GROUP_OBSTACLE,
    GROUP_RIGHT,
    GROUP_TRAY,
    SceneIndex,
    place_obstacles,
)
from flow_planner_common.obstacles import Box
from flow_planner_common.robot import JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, NUM_JOINTS, PHASE_CARRY

TERMS: tuple[str, ...] = ("goal", "collision", "limits", "jerk", "tilt", "grip")


@dataclass(frozen=True)
class CostWeights:
    goal: float = 1.0e3
    collision: float = 1.0e2
    limits: float = 1.0e2
    jerk: float = 1.0e-3
    tilt: float = 3.0e2
    grip: float = 1.0e4

    def as_array(self) -> np.ndarray:
        return np.array([getattr(self, name) for name in TERMS])


@dataclass(frozen=True)
class CostLimits:
    """Hard limits for `feasible`, and the soft thresholds of the cost terms."""

    clearance: float = 0.015  # m, contacts closer than this cost
    speed_fraction: float = 0.9  # joint speed above this fraction of the limit costs
    max_tilt: float = math.radians(3.0)  # rad, carry
    max_grip_change: float = 0.01  # m, carry


@dataclass(frozen=True)
class PhaseContext:
    """What the cost of one phase depends on besides the trajectory."""

    phase: int
    start_positions: np.ndarray  # (12,)
    start_velocities: np.ndarray  # (12,)
    tray_pose: np.ndarray  # (7,) at the start of the phase
    ee_targets: np.ndarray  # (2, 3) end-effector targets at the end
    dt: float
    obstacles: tuple[Box, ...] = ()  # the scene's boxes


@dataclass(frozen=True)
class CostReport:
    total: np.ndarray  # (N,)
    terms: np.ndarray  # (N, len(TERMS)) unweighted
    feasible: np.ndarray  # (N,) bool
    max_tilt: np.ndarray  # (N,) rad
    max_grip_change: np.ndarray  # (N,) m
    min_distance: np.ndarray  # (N,) m, smallest relevant contact distance (inf if none within clearance)


class PlanCost:
    """Batch kinematic scoring of candidate trajectories. Owns a private model copy and MjData (thread-confined)."""

    def __init__(
        self, model: mujoco.MjModel, weights: CostWeights | None = None, limits: CostLimits | None = None
    ) -> None:
        self.weights = weights or CostWeights()
        self.limits = limits or CostLimits()
        self.model = copy.deepcopy(model)
        self.index = SceneIndex.from_model(self.model)
        self.data = mujoco.MjData(self.model)
        m, idx = self.model, self.index
        arm_geoms = np.isin(idx.geom_group, (GROUP_LEFT, GROUP_RIGHT))
        tray_geoms = idx.geom_group == GROUP_TRAY
        m.geom_margin[arm_geoms | tray_geoms] = self.limits.clearance
        m.geom_conaffinity[tray_geoms] |= 2 | 4  # arm contype bits: tray geoms now collide with the arms
        m.body_conaffinity[idx.tray_body] |= 2 | 4  # MuJoCo filters body pairs by the body bits too
        tool_geoms = {"left_tool_geom", "right_tool_geom"}
        names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, g) or "" for g in range(m.ngeom)]
        # _relevant[g1, g2]: the pair counts for the collision cost.
        groups = idx.geom_group
        arm = np.isin(groups, (GROUP_LEFT, GROUP_RIGHT))
        relevant = np.zeros((m.ngeom, m.ngeom), dtype=bool)
        relevant[np.ix_(arm, arm)] = groups[:, None][arm] != groups[None, :][:, arm]
        for other in (GROUP_ENV, GROUP_TRAY, GROUP_OBSTACLE):
            relevant[np.ix_(arm, groups == other)] = True
            relevant[np.ix_(groups == other, arm)] = True
        tray, obstacle = groups == GROUP_TRAY, groups == GROUP_OBSTACLE
        relevant[np.ix_(tray, obstacle)] = relevant[np.ix_(obstacle, tray)] = True
        for tool in tool_geoms:  # the tools hold the tray (and approach its handles): their contacts are the grasp
            a = names.index(tool)
            relevant[a, tray] = relevant[tray, a] = False
        self._relevant = relevant
        self._left_tool = int(idx.tool_bodies[0])
        self._right_tool = int(idx.tool_bodies[1])
        self._tray_q = slice(idx.tray_qpos_adr, idx.tray_qpos_adr + 7)
        self._obstacles: tuple[Box, ...] = ()

    def _place(self, obstacles: tuple[Box, ...]) -> None:
        if obstacles != self._obstacles:
            place_obstacles(self.model, self.index, list(obstacles))
            self._obstacles = tuple(obstacles)

    def evaluate(self, positions: np.ndarray, velocities: np.ndarray, context: PhaseContext) -> CostReport:
        """Score (N, 60, 12) candidates (velocities: their time derivatives at the waypoints)."""
        positions = np.asarray(positions, dtype=float)
        n, _, joints = positions.shape
        if joints != NUM_JOINTS:
            raise ValueError(f"expected (N, H, {NUM_JOINTS}) positions, got {positions.shape}")
        self._place(context.obstacles)
        kin = self._kinematics(positions, context)
        lim = self.limits
        terms = np.zeros((n, len(TERMS)))
        terms[:, 0] = np.sum((kin["ee_final"] - context.ee_targets[None]) ** 2, axis=(1, 2))
        terms[:, 1] = kin["penetration"]
        lower, upper = JOINT_POSITION_LIMITS[:, 0], JOINT_POSITION_LIMITS[:, 1]
        pos_excess = np.maximum(0.0, np.maximum(lower - positions, positions - upper))
        speed_excess = np.maximum(0.0, np.abs(velocities) - lim.speed_fraction * JOINT_VELOCITY_LIMITS)
        terms[:, 2] = pos_excess.sum(axis=(1, 2)) + speed_excess.sum(axis=(1, 2))
        full = np.concatenate([np.broadcast_to(context.start_positions, (n, 1, joints)), positions], axis=1)
        jerk = np.diff(full, n=3, axis=1) / context.dt**3
        terms[:, 3] = np.mean(jerk**2, axis=(1, 2))
        terms[:, 4] = np.mean(kin["tilt"] ** 2, axis=1)
        terms[:, 5] = np.mean(kin["grip"] ** 2, axis=1)
        total = terms @ self.weights.as_array()
        over_speed = np.any(np.abs(velocities) > JOINT_VELOCITY_LIMITS, axis=(1, 2))
        max_tilt, max_grip = kin["tilt"].max(axis=1), kin["grip"].max(axis=1)
        feasible = (
            (kin["min_distance"] >= 0.0)
            & ~np.any(pos_excess > 0.0, axis=(1, 2))
            & ~over_speed
            & (max_tilt <= lim.max_tilt)
            & (max_grip <= lim.max_grip_change)
        )
        return CostReport(total, terms, feasible, max_tilt, max_grip, kin["min_distance"])

    def _kinematics(self, positions: np.ndarray, context: PhaseContext) -> dict[str, np.ndarray]:
        m, d, idx = self.model, self.data, self.index
        n, horizon, _ = positions.shape
        carry = context.phase == PHASE_CARRY
        tilt, grip = np.zeros((n, horizon)), np.zeros((n, horizon))
        penetration, min_distance = np.zeros(n), np.full(n, np.inf)
        ee_final = np.zeros((n, 2, 3))
        clearance = self.limits.clearance
        qadr = idx.qpos_adr
        d.qpos[:] = m.qpos0
        d.qpos[self._tray_q] = context.tray_pose
        rel_pos = rel_mat = grip0 = None
        if carry:  # tray pose and right tool position in the left tool frame at the start state
            d.qpos[qadr] = context.start_positions
            mujoco.mj_kinematics(m, d)
            tool_pos, tool_mat = d.xpos[self._left_tool].copy(), d.xmat[self._left_tool].reshape(3, 3).copy()
            tray_mat = np.zeros(9)
            mujoco.mju_quat2Mat(tray_mat, context.tray_pose[3:7])
            rel_pos = tool_mat.T @ (context.tray_pose[:3] - tool_pos)
            rel_mat = tool_mat.T @ tray_mat.reshape(3, 3)
            grip0 = tool_mat.T @ (d.xpos[self._right_tool] - tool_pos)
        tray_quat = np.zeros(4)
        relevant = self._relevant
        for i in range(n):
            pen, closest = 0.0, np.inf
            for k in range(horizon):
                d.qpos[qadr] = positions[i, k]
                mujoco.mj_kinematics(m, d)
                if carry:
                    tool_pos, tool_mat = d.xpos[self._left_tool], d.xmat[self._left_tool].reshape(3, 3)
                    tray_mat = tool_mat @ rel_mat
                    tilt[i, k] = math.acos(min(1.0, max(-1.0, float(tray_mat[2, 2]))))
                    grip[i, k] = float(np.linalg.norm(tool_mat.T @ (d.xpos[self._right_tool] - tool_pos) - grip0))
                    mujoco.mju_mat2Quat(tray_quat, tray_mat.ravel())
                    d.qpos[self._tray_q.start : self._tray_q.start + 3] = tool_pos + tool_mat @ rel_pos
                    d.qpos[self._tray_q.start + 3 : self._tray_q.stop] = tray_quat
                    mujoco.mj_kinematics(m, d)
                mujoco.mj_collision(m, d)
                if d.ncon:
                    contact = d.contact
                    pairs = contact.geom
                    mask = relevant[pairs[:, 0], pairs[:, 1]]
                    if mask.any():
                        dist = contact.dist[mask]
                        pen += float(np.sum(np.maximum(0.0, clearance - dist)))
                        closest = min(closest, float(dist.min()))
            ee_final[i] = d.site_xpos[idx.ee_sites]
            penetration[i], min_distance[i] = pen, closest
        return {
            "tilt": tilt,
            "grip": grip,
            "penetration": penetration,
            "min_distance": min_distance,
            "ee_final": ee_final,
        }
