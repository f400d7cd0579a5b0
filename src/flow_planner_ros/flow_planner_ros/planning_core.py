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
    """What the planner needs from a trained model (see flow_planner_ros.inference)."""

    dt: float
    horizon: int

    def generate(
        self,
        start_positions: np.ndarray,
        start_velocities: np.ndarray,
        goal_positions: np.ndarray,
        num_samples: int,
        integration_steps: int,
        seed: int | None,
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
    """Sample, check, select; never returns an unsafe trajectory."""

    def __init__(self, generator: TrajectoryGenerator, limits: SafetyLimits) -> None:
        self.generator = generator
        self.limits = limits

    @property
    def dt(self) -> float:
        return self.generator.dt

    def plan(self, request: PlanRequest, prefix: ContinuationPrefix | None = None) -> PlanResult:
        """Best safe candidate for a validated request (blended into `prefix` when replanning)."""
        started = time.perf_counter()
        positions, velocities = self.generator.generate(
            request.start_positions,
            request.start_velocities,
            request.goal_positions,
            request.num_samples,
            request.integration_steps,
            request.seed,
        )
        if prefix is not None:
            blended = [blend_with_prefix(p, v, prefix) for p, v in zip(positions, velocities, strict=True)]
            positions = np.stack([b[0] for b in blended])
            velocities = np.stack([b[1] for b in blended])
        selection = select_best(
            positions, velocities, request.start_positions, request.goal_positions, self.dt, self.limits
        )
        elapsed = time.perf_counter() - started
        if selection.index is None:
            return PlanResult(None, None, selection, elapsed)
        return PlanResult(positions[selection.index], velocities[selection.index], selection, elapsed)
