"""Kinematic cost of candidate trajectories for the CEM expert (no dynamics: forward kinematics + clearance).

`PlanCost.evaluate` scores a batch of (N, 60, 12) candidates in one call with the planner's own final check
(flow_planner_common.scene_safety.SceneSafety at the planner's defaults: the sphere checker's clearances of every
category the planner checks in the phase, the required clearance = the 10 mm margin raised by the sweep between
waypoints and lowered to the start's and goal's own clearance, the grip limit while carrying): one definition of a
safe plan for the expert and the planner (issue 21). Reach: arm-arm, arm-table, arm-obstacle; carry: also
tray-obstacle, tray-table and arm-tray, the tray held by both tools from its pose at the start (kinematics.TrayGrasp).
MuJoCo stays the judge of executed episodes.

Cost terms (each a number per candidate, weighted by `CostWeights`):
- goal: squared end-effector error (m^2) at the last waypoint, summed over both arms;
- collision: sum over waypoints and categories of max(0, required + `extra_clearance` - clearance) (m): the check's
  requirement plus a soft buffer, so that the search keeps a little more than the check demands;
- limits: joint position excess (rad, summed) + joint speed above `speed_fraction` of the limit (rad/s, summed);
- jerk: mean squared third time derivative of the waypoint positions (rad^2/s^6), start state included;
- tilt (carry): mean squared tray tilt from level (rad^2);
- grip (carry): mean squared change of the right tool's position in the left tool's frame (m^2): the two grasps
  are welded to one rigid tray, so their relative pose must not change.

`feasible` is the hard version: the planner's check passes (every clearance at or above its requirement, the grip
within the check's limit), limits respected, tilt and grip change under the expert's own (stricter) limits. Whether
an executed plan counts as a success is decided by the physics and the planner's check (data_collector_ros.plan_check).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
import torch

from flow_planner_common.obstacles import Box
from flow_planner_common.plan_scene import PlanScene
from flow_planner_common.robot import JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, NUM_JOINTS, PHASE_CARRY
from flow_planner_common.scene_safety import (
    DEFAULT_CLEARANCE_MARGIN,
    DEFAULT_MAX_GRIP_CHANGE,
    SLACKS,
    SceneCheck,
    SceneSafety,
)
from flow_planner_common.sphere_checker import SphereChecker
from flow_planner_common.threads import limit_threads
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

    extra_clearance: float = 0.005  # m kept above the check's requirement in the cost (not in `feasible`)
    check_margin: float = DEFAULT_CLEARANCE_MARGIN  # m, the planner check's margin (scene_safety)
    check_max_grip_change: float = DEFAULT_MAX_GRIP_CHANGE  # m, the planner check's grip limit
    speed_fraction: float = 0.9  # joint speed above this fraction of the limit costs
    max_tilt: float = float(np.radians(3.0))  # rad, carry
    max_grip_change: float = 0.01  # m, carry: the expert's own limit (below the check's)


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
    min_distance: np.ndarray  # (N,) m, smallest clearance above what the planner's check requires; < 0: refused


#: Intra-op threads of torch in a process that runs the expert (see PlanCost).
EXPERT_TORCH_THREADS = 1
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
        self.safety = SceneSafety(self.limits.check_margin, self.checker, self.limits.check_max_grip_change)
        limit_threads(EXPERT_TORCH_THREADS)

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
            kin["passed"]
            & ~np.any(pos_excess > 0.0, axis=(1, 2))
            & ~over_speed
            & (max_tilt <= lim.max_tilt)
            & (max_grip <= lim.max_grip_change)
        )
        return CostReport(total, terms, feasible, max_tilt, max_grip, kin["min_distance"])

    def _bind(self, context: PhaseContext, goal_positions: np.ndarray) -> SceneCheck:
        grasp = None
        if context.phase == PHASE_CARRY:
            grasp = self.checker.grasp_from_start(context.start_positions, context.tray_pose)
        return self.safety.bind(context.start_positions, goal_positions, PlanScene.from_boxes(context.obstacles, grasp))

    def endpoint_problem(self, context: PhaseContext, goal_positions: np.ndarray) -> str | None:
        """Why the phase's start or goal itself fails the planner's check (no plan can pass), or None."""
        return self._bind(context, goal_positions).problem

    @torch.inference_mode()
    def _kinematics(self, positions: np.ndarray, context: PhaseContext) -> dict[str, np.ndarray]:
        checker, safety = self.checker, self.safety
        n, horizon, _ = positions.shape
        carry = context.phase == PHASE_CARRY
        bound = self._bind(context, positions[0, -1])  # every candidate ends at the phase's goal
        kinematics = safety.kinematics(positions, context.start_positions)  # (N, H + 1, 2, 7, 3), (..., 3, 3)
        check = bound.check(positions, kinematics)
        pos, rot = kinematics
        gap = check.clearance - check.required  # (N, H, C)
        is_clearance = np.array([c not in SLACKS for c in check.categories])
        shortfall = np.maximum(0.0, -gap[..., is_clearance] + self.limits.extra_clearance)
        if carry:
            grip = grip_change(pos, rot)
            tilt = safety.tray_tilt(kinematics, bound.scene)
        else:
            grip = tilt = pos.new_zeros((n, horizon))
        ee_pos, _ = ee_poses_from(pos[:, -1], rot[:, -1], checker.geometry)  # (N, 2, 3)
        return {
            "tilt": tilt.double().numpy(),
            "grip": grip.double().numpy(),
            "penetration": shortfall.sum(axis=(1, 2)),
            "min_distance": gap[..., is_clearance].min(axis=(1, 2)),
            "passed": check.passed & (bound.problem is None),
            "ee_final": ee_pos.double().numpy(),
        }
