"""The planner's ROS-free core: sample a batch of candidates from the flow model, check each, keep the best,
and keep receding-horizon chunks continuous. The planner node is a thin rclpy layer over this."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from flow_planner_ros.plan_request import PlanRequest
from flow_planner_ros.trajectory_safety import SafetyLimits, Selection, select_best


class TrajectoryGenerator(Protocol):
    """What the planner needs from a trained model: flow_planner_ros.planner_core.FlowPlanner."""

    @property
    def dt(self) -> float: ...

    def plan(
        self,
        start_pos: np.ndarray,
        start_vel: np.ndarray,
        goal: np.ndarray,
        num_samples: int = 1,
        steps: int | None = None,
        seed: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(num_samples, horizon, 12) positions and velocities in physical units."""
        ...


@dataclass(frozen=True)
class PlanResult:
    """Outcome of one planning call; positions/velocities are None when no candidate was safe."""

    positions: np.ndarray | None
    velocities: np.ndarray | None
    selection: Selection
    planning_time: float

    @property
    def success(self) -> bool:
        return self.positions is not None

    def message(self) -> str:
        n = self.selection.num_valid + len(self.selection.rejections)
        if self.success:
            return f"ok: {self.selection.num_valid}/{n} candidates safe, cost {self.selection.cost:.4f}"
        return f"no safe candidate among {n}: {self.selection.summary()}"


def boundary_correction(
    positions: np.ndarray,
    velocities: np.ndarray,
    start_positions: np.ndarray,
    start_velocities: np.ndarray,
    goal_positions: np.ndarray,
    dt: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pin a batch of samples (N, H, J) to the request's boundary conditions (inpainting of start and goal).

    The first waypoint is moved to where the start state leads in one dt (start + start_vel * dt), the last
    one onto the goal; the offsets are spread along the trajectory with a minimum-jerk weight w (0 at the first
    waypoint, 1 at the last, zero slope at both ends), and the velocities get the exact derivative of that
    correction, so positions and velocities stay consistent. Returns corrected positions, velocities and the
    largest correction per sample (rad), which the caller bounds: the model must already be close.
    """
    horizon = positions.shape[1]
    s = (np.arange(horizon) / (horizon - 1))[:, None]
    weight = 10 * s**3 - 15 * s**4 + 6 * s**5
    dweight = (30 * s**2 - 60 * s**3 + 30 * s**4) / ((horizon - 1) * dt)
    start_offset = (start_positions + start_velocities * dt)[None] - positions[:, 0]  # (N, J)
    goal_offset = goal_positions[None] - positions[:, -1]
    correction = (1 - weight)[None] * start_offset[:, None] + weight[None] * goal_offset[:, None]
    velocity_correction = dweight[None] * (goal_offset - start_offset)[:, None]
    size = np.maximum(np.abs(start_offset).max(axis=1), np.abs(goal_offset).max(axis=1))
    return positions + correction, velocities + velocity_correction, size


@dataclass(frozen=True)
class ContinuationPrefix:
    """The part of the running plan that a replan must join smoothly: its next waypoints in time."""

    positions: np.ndarray  # (B, J), at the new plan's first B waypoint times
    velocities: np.ndarray  # (B, J)


def blend_with_prefix(
    positions: np.ndarray, velocities: np.ndarray, prefix: ContinuationPrefix
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fade the first B waypoints of a new plan from the running plan into the new one.

    Weight of the running plan at new waypoint i (0-based): 1 - (i + 1) / (B + 1), so the motion leaves the
    old plan gradually: no position or velocity jump at the switch, whatever the sample's first waypoints do.
    """
    blend = min(len(prefix.positions), len(positions))
    if blend == 0:
        return positions, velocities
    weights = 1.0 - np.arange(1, blend + 1)[:, None] / (blend + 1)
    positions = positions.copy()
    velocities = velocities.copy()
    positions[:blend] = weights * prefix.positions[:blend] + (1 - weights) * positions[:blend]
    velocities[:blend] = weights * prefix.velocities[:blend] + (1 - weights) * velocities[:blend]
    return positions, velocities


def running_plan_prefix(
    positions: np.ndarray, velocities: np.ndarray, dt: float, elapsed: float, count: int
) -> ContinuationPrefix:
    """Waypoints of a running plan (started `elapsed` s ago) at times elapsed + (i + 1) * dt, i < count,
    linearly interpolated; past its end the plan holds its last position at zero velocity."""
    horizon = len(positions)
    times = (np.arange(horizon) + 1) * dt
    query = elapsed + (np.arange(count) + 1) * dt
    pos = np.stack([np.interp(query, times, positions[:, j]) for j in range(positions.shape[1])], axis=1)
    vel = np.stack([np.interp(query, times, velocities[:, j]) for j in range(velocities.shape[1])], axis=1)
    vel[query > times[-1]] = 0.0
    return ContinuationPrefix(pos, vel)


class PlanningCore:
    """Sample, pin to the boundary conditions, check, select; never returns an unsafe trajectory.

    max_correction (rad): samples whose start or goal had to move further than this are refused ("model far
    from the request"); 0 disables the boundary correction altogether (raw samples are checked as they are).
    """

    def __init__(self, generator: TrajectoryGenerator, limits: SafetyLimits, max_correction: float = 0.2) -> None:
        self.generator = generator
        self.limits = limits
        self.max_correction = max_correction

    @property
    def dt(self) -> float:
        return self.generator.dt

    def plan(self, request: PlanRequest, prefix: ContinuationPrefix | None = None) -> PlanResult:
        """Best safe candidate for a validated request (blended into `prefix` when replanning)."""
        started = time.perf_counter()
        positions, velocities = self.generator.plan(
            request.start_positions,
            request.start_velocities,
            request.goal_positions,
            num_samples=request.num_samples,
            steps=request.integration_steps,
            seed=request.seed,
        )
        far: dict[int, list[str]] = {}
        if self.max_correction > 0:
            positions, velocities, size = boundary_correction(
                positions, velocities, request.start_positions, request.start_velocities,
                request.goal_positions, self.dt,
            )  # fmt: skip
            too_far = np.flatnonzero(size > self.max_correction)
            far = {int(i): ["sample too far from the start/goal to correct"] for i in too_far}
        if prefix is not None:
            blended = [blend_with_prefix(p, v, prefix) for p, v in zip(positions, velocities, strict=True)]
            positions = np.stack([b[0] for b in blended])
            velocities = np.stack([b[1] for b in blended])
        selection = select_best(
            positions, velocities, request.start_positions, request.goal_positions, self.dt, self.limits, far
        )
        elapsed = time.perf_counter() - started
        if selection.index is None:
            return PlanResult(None, None, selection, elapsed)
        return PlanResult(positions[selection.index], velocities[selection.index], selection, elapsed)
