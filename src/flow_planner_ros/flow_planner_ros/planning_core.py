"""The planner's ROS-free core: sample a batch of candidates from the flow model, project them onto smooth motions
through the request's start and goal, check each, keep the best, and keep receding-horizon chunks continuous.
The planner node is a thin rclpy layer over this."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from data_collector_ros.cem import TrajectoryBasis
from data_collector_ros.interpolation import reference_trajectory
from data_collector_ros.robot import HORIZON
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


class SmoothProjection:
    """Project samples onto smooth trajectories that satisfy the request's boundary conditions exactly.

    A sample's residual to the reference motion (data_collector_ros.interpolation.reference_trajectory: from the
    start state, with its velocity, to the goal at rest) is fitted by least squares onto `num_knots` windowed
    Gaussian bumps per joint (the CEM expert's own basis, data_collector_ros.cem.TrajectoryBasis), which vanish with
    zero slope at both ends. The result starts at the start state, ends at the goal at rest, has velocities that are
    the exact derivative of its positions, and keeps the sample's shape up to the basis resolution while dropping
    the high-frequency sampling noise that would otherwise dominate the jerk. Returns positions, velocities and, per
    sample, the largest position change the projection made (rad), which the caller bounds.
    """

    def __init__(self, num_knots: int, dt: float, horizon: int) -> None:
        self.basis = TrajectoryBasis(num_knots, dt, horizon)
        self._fit = np.linalg.pinv(self.basis.phi)  # (K, H)

    def __call__(
        self,
        positions: np.ndarray,
        start_positions: np.ndarray,
        start_velocities: np.ndarray,
        goal_positions: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        basis = self.basis
        reference, _ = reference_trajectory(start_positions, start_velocities, goal_positions, basis.dt, basis.horizon)
        knots = np.einsum("kh,nhj->nkj", self._fit, positions - reference[None])
        smooth_pos, smooth_vel = basis.trajectories(start_positions, start_velocities, goal_positions, knots)
        change = np.abs(smooth_pos - positions).max(axis=(1, 2))
        return smooth_pos, smooth_vel, change


@dataclass(frozen=True)
class ContinuationPrefix:
    """The part of the running plan that a replan must join smoothly: where it is at the switch, and its next
    waypoints in time."""

    positions: np.ndarray  # (B, J), at the new plan's first B waypoint times
    velocities: np.ndarray  # (B, J)
    anchor: np.ndarray  # (J,) the running plan's position at the switch (the new plan's t = 0)


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
    """Where a running plan (started `elapsed` s ago) is now, and its waypoints at elapsed + (i + 1) * dt, i < count,
    linearly interpolated; past its end the plan holds its last position at zero velocity."""
    horizon = len(positions)
    times = (np.arange(horizon) + 1) * dt
    query = elapsed + np.arange(count + 1) * dt
    pos = np.stack([np.interp(query, times, positions[:, j]) for j in range(positions.shape[1])], axis=1)
    vel = np.stack([np.interp(query, times, velocities[:, j]) for j in range(velocities.shape[1])], axis=1)
    vel[query > times[-1]] = 0.0
    return ContinuationPrefix(pos[1:], vel[1:], pos[0])


class PlanningCore:
    """Sample, project onto smooth trajectories through start and goal, check, select; never returns an unsafe
    trajectory.

    smoothing_knots: bumps per joint of the projection (0 = no projection: raw samples are checked as they are).
    max_projection_change (rad): samples the projection had to move further than this are refused, since the
    model was then far from the request.
    """

    def __init__(
        self,
        generator: TrajectoryGenerator,
        limits: SafetyLimits,
        smoothing_knots: int = 4,
        max_projection_change: float = 0.2,
    ) -> None:
        self.generator = generator
        self.limits = limits
        self.max_projection_change = max_projection_change
        horizon = int(getattr(generator, "horizon", HORIZON))
        self.projection = SmoothProjection(smoothing_knots, generator.dt, horizon) if smoothing_knots > 0 else None

    @property
    def dt(self) -> float:
        return self.generator.dt

    def plan(self, request: PlanRequest, prefix: Callable[[], ContinuationPrefix] | None = None) -> PlanResult:
        """Best safe candidate for a validated request.

        When replanning, `prefix()` is called after sampling, so the running plan is read at the moment the new
        plan replaces it (planning takes time while the arm keeps moving); the candidates are cross-faded into it
        and must start where the running plan is then.
        """
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
        if self.projection is not None:
            positions, velocities, change = self.projection(
                positions, request.start_positions, request.start_velocities, request.goal_positions
            )
            too_far = np.flatnonzero(change > self.max_projection_change)
            far = {int(i): ["sample too far from a smooth motion through start and goal"] for i in too_far}
        start = request.start_positions
        if prefix is not None:
            join = prefix()
            blended = [blend_with_prefix(p, v, join) for p, v in zip(positions, velocities, strict=True)]
            positions = np.stack([b[0] for b in blended])
            velocities = np.stack([b[1] for b in blended])
            start = join.anchor
        selection = select_best(positions, velocities, start, request.goal_positions, self.dt, self.limits, far)
        elapsed = time.perf_counter() - started
        if selection.index is None:
            return PlanResult(None, None, selection, elapsed)
        return PlanResult(positions[selection.index], velocities[selection.index], selection, elapsed)
