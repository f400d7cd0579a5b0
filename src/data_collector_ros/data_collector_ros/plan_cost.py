"""Kinematic cost of candidate trajectories for the CEM expert (no dynamics: forward kinematics + clearance).

`PlanCost.evaluate` scores a batch of (N, 60, 12) candidates in one call with the planner's own collision checker
(flow_planner_common.sphere_checker: the conservative sphere cover, one definition of "clear" for the expert and the
planner; MuJoCo stays the judge of executed episodes): per waypoint the clearance of the categories the planner
checks in that phase (reach: arm-arm, arm-table, arm-obstacle; carry: also tray-obstacle and arm-tray, the tray
held by both tools from its pose at the start (the mean of the two grasps' poses: kinematics.TrayGrasp), the tools'
contacts with the handles being the grasp).

Cost terms (each a number per candidate, weighted by `CostWeights`):
- goal: squared end-effector error (m^2) at the last waypoint, summed over both arms;
- collision: sum over waypoints and categories of max(0, clearance - distance) (m); the scene's boxes per context;
- limits: joint position excess (rad, summed) + joint speed above `speed_fraction` of the limit (rad/s, summed);
- jerk: mean squared third time derivative of the waypoint positions (rad^2/s^6), start state included;
- tilt (carry): mean squared tray tilt from level (rad^2);
- grip (carry): mean squared change of the right tool's position in the left tool's frame (m^2): the two grasps
  are welded to one rigid tray, so their relative pose must not change.

Clearance bars follow the planner's rule (flow_planner_common.clearance_rules): `clearance` per category, lowered
to just below the start's and the goal's own clearance. `feasible` is the hard version: every clearance at or above
0 lowered the same way, limits respected, tilt and grip change under their limits. Whether an executed plan counts
as a success is decided by the physics and the planner's own check (data_collector_ros.plan_check), not by this cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
import torch

from flow_planner_common.clearance_rules import endpoint_thresholds
from flow_planner_common.kinematics import CATEGORIES
from flow_planner_common.obstacles import Box
from flow_planner_common.robot import JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, NUM_JOINTS, PHASE_CARRY
from flow_planner_common.sphere_checker import SphereChecker
from flow_planner_common.tool_frames import ee_poses_from, grip_change

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
    max_tilt: float = float(np.radians(3.0))  # rad, carry
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
    min_distance: np.ndarray  # (N,) m, smallest clearance above what the phase allows (clearance_rules); < 0: contact


#: Intra-op threads of torch in a process that runs the expert (see PlanCost).
EXPERT_TORCH_THREADS = 1
#: The clearance categories the expert scores per phase: what the planner checks (scene_safety).
REACH_CATEGORIES: tuple[str, ...] = ("arm_arm", "arm_table", "arm_obstacle")
CARRY_CATEGORIES: tuple[str, ...] = (*REACH_CATEGORIES, "tray_obstacle", "arm_tray")


class PlanCost:
    """Batch kinematic scoring of candidate trajectories with the sphere checker (torch on the CPU, thread-safe).

    `model` is accepted for the callers' convenience (the planner's checker needs no MuJoCo model). The process's
    torch runs on one intra-op thread (EXPERT_TORCH_THREADS): the expert scales out with shards, and a 24 x 60 batch
    took 7 ms on one thread but 280 ms on two while the other core was busy (threads spin-waiting on each other)."""

    def __init__(
        self,
        model: mujoco.MjModel | None = None,
        weights: CostWeights | None = None,
        limits: CostLimits | None = None,
        checker: SphereChecker | None = None,
    ) -> None:
        self.weights = weights or CostWeights()
        self.limits = limits or CostLimits()
        self.checker = checker or SphereChecker()
        torch.set_num_threads(EXPERT_TORCH_THREADS)

    def evaluate(self, positions: np.ndarray, velocities: np.ndarray, context: PhaseContext) -> CostReport:
        """Score (N, 60, 12) candidates (velocities: their time derivatives at the waypoints)."""
        positions = np.asarray(positions, dtype=float)
        n, _, joints = positions.shape
        if joints != NUM_JOINTS:
            raise ValueError(f"expected (N, H, {NUM_JOINTS}) positions, got {positions.shape}")
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

    @torch.inference_mode()
    def _kinematics(self, positions: np.ndarray, context: PhaseContext) -> dict[str, np.ndarray]:
        checker = self.checker
        n, horizon, _ = positions.shape
        carry = context.phase == PHASE_CARRY
        q = checker._input(np.concatenate([np.broadcast_to(context.start_positions, (n, 1, NUM_JOINTS)), positions], 1))
        pos, rot = checker.forward_kinematics(q)  # (N, H + 1, 2, 7, 3), (..., 3, 3)
        boxes = [b.as_array() for b in context.obstacles]
        grasp = checker.grasp_from_start(context.start_positions, context.tray_pose) if carry else None
        # one call for the start and every waypoint (the start's own clearance lowers the bar: clearance_rules)
        clearance = checker.clearance(q, boxes, grasp=grasp)  # (N, H + 1, 6)
        categories = CARRY_CATEGORIES if carry else REACH_CATEGORIES
        if carry:
            grip = grip_change(pos, rot)
            _, tray_rot = checker.carried_tray(pos[:, 1:], rot[:, 1:], grasp)
            tilt = torch.arccos(tray_rot[..., 2, 2].clamp(-1.0, 1.0))
        else:
            grip = tilt = q.new_zeros((n, horizon))
        columns = [CATEGORIES.index(c) for c in categories]
        values = clearance[:, 1:, columns]  # (N, H, K)
        # the planner's rule (clearance_rules): each category's bar is lowered to just below the start's and the
        # candidate's goal's own clearance (the tools at their grasp read close to the tray)
        endpoint = torch.minimum(clearance[:1, 0, columns], values[:, -1]).double().numpy()  # (N, K)
        bar = values.new_tensor(endpoint_thresholds(self.limits.clearance, endpoint))[:, None]  # (N, 1, K)
        hard = values.new_tensor(endpoint_thresholds(0.0, endpoint))[:, None]
        penetration = (bar - values).clamp_min(0.0).sum(dim=(1, 2))
        ee_pos, _ = ee_poses_from(pos[:, -1], rot[:, -1], checker.geometry)  # (N, 2, 3)
        return {
            "tilt": tilt.double().numpy(),
            "grip": grip.double().numpy(),
            "penetration": penetration.double().numpy(),
            "min_distance": (values - hard).amin(dim=(1, 2)).double().numpy(),
            "ee_final": ee_pos.double().numpy(),
        }
