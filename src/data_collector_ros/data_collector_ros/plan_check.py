"""The planner's own check (flow_planner_common.scene_safety) on the expert's executed plans: one definition of a safe
plan for the expert's data and the planner. A phase enters the data set as a success only when the physics judges it
successful AND this check passes (data_collector_ros.episode); what the planner would refuse is recorded as a failure
with the check's reasons ("planner check: ...").

The check runs exactly as the planner's final check does at its defaults (DEFAULT_CLEARANCE_MARGIN 10 mm raised by
the sweep between waypoints, thresholds lowered to the start's and goal's own clearance, DEFAULT_MAX_GRIP_CHANGE
50 mm while carrying), from the phase's start state to the plan's end (its joint goal), in the phase's scene: its
boxes and, for the carry, the tray carried from its start pose with the grasp at the start state (the checker's
grasp_from_start).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_collector_ros.episode_sequence import PhaseTask
from flow_planner_common.clearance_rules import CLEARANCE_FLOOR
from flow_planner_common.plan_scene import PlanScene
from flow_planner_common.robot import PHASE_CARRY
from flow_planner_common.scene_safety import GRIP, SLACKS, SceneSafety

#: Prefix of a refused phase's reasons.
PLANNER_CHECK = "planner check"


@dataclass(frozen=True)
class PlanCheck:
    """The check's verdict and figures for one plan."""

    passed: bool
    min_margin: float  # m: smallest clearance minus its required value (grip slack included); < 0: refused
    max_grip: float  # m: the right tool's largest motion from its grasp (left tool's frame); NaN for a reach
    reasons: tuple[str, ...]  # the check's own reasons (empty when passed)
    clearance_refused: bool = False  # some clearance category (or the start/goal) fell short
    grip_refused: bool = False  # the grip limit was exceeded

    @property
    def record_fields(self) -> dict[str, object]:
        """The schema-3 fields of a TrajectoryRecord."""
        return {"check_passed": self.passed, "check_min_margin": self.min_margin, "check_max_grip": self.max_grip}

    @property
    def labelled_reasons(self) -> tuple[str, ...]:
        return tuple(f"{PLANNER_CHECK}: {r}" for r in self.reasons)


def phase_scene(safety: SceneSafety, task: PhaseTask) -> PlanScene:
    """The phase's scene as the planner sees it: its boxes and, for the carry, the tray carried from its start."""
    grasp = None
    if task.phase == PHASE_CARRY:
        grasp = safety.checker.grasp_from_start(task.start.positions, task.tray_start)
    return PlanScene.from_boxes(task.obstacles, grasp)


def check_plan(safety: SceneSafety, task: PhaseTask, positions: np.ndarray) -> PlanCheck:
    """The planner's check of `positions` (H, 12) from the task's start state to where they end (the task's joint
    goal; for a grip-consistent carry the goal with the right arm keeping its grasp: cem.CEMPlan.goal)."""
    scene = phase_scene(safety, task)
    start, goal = np.asarray(task.start.positions, dtype=float), np.asarray(positions, dtype=float)[-1]
    bound = safety.bind(start, goal, scene)
    result = bound.check(np.asarray(positions, dtype=float)[None])
    gap = result.clearance[0] - result.required[0]  # (H, C)
    min_margin = float(gap.min())
    reasons = list(result.reasons(0))
    is_grip = np.array([c == GRIP for c in result.categories])
    is_clearance = np.array([c not in SLACKS for c in result.categories])
    grip_refused = bool(np.any(gap[:, is_grip] < 0))
    clearance_refused = bool(np.any(gap[:, is_clearance] < 0))
    if bound.problem is not None:  # the planner refuses such a request outright (the start or goal collides)
        endpoint = safety.clearances(np.stack([start, goal]), scene)
        min_margin = min(min_margin, float(endpoint.min()) - CLEARANCE_FLOOR)
        reasons.insert(0, bound.problem)
        clearance_refused = True
    max_grip = float("nan")
    if scene.grasp is not None:
        max_grip = float(safety.grip_change(np.asarray(positions, dtype=float)[None], start).max())
    passed = bool(result.passed[0]) and bound.problem is None
    return PlanCheck(passed, min_margin, max_grip, tuple(reasons), clearance_refused, grip_refused)
