"""The planning pipeline (ROS-free): sample a batch of candidates from the model sampler, project them onto smooth
motions through the request's start and goal, join them to a running plan when replanning, check each, keep the
best. It never returns an unsafe trajectory. The planner node is a thin rclpy layer over this."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from flow_planner_common.motion import reference_trajectory
from flow_planner_common.robot import HORIZON
from flow_planner_ros.continuation import ContinuationPrefix, blend_with_prefix
from flow_planner_ros.plan_request import PlanRequest
from flow_planner_ros.projection import SmoothProjection
from flow_planner_ros.trajectory_safety import SafetyLimits, Selection, select_best


class TrajectoryGenerator(Protocol):
    """What the pipeline needs from a trained model: flow_planner_ros.flow_sampler.FlowSampler."""

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
        reference: tuple[np.ndarray, np.ndarray] | None = None,
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


class PlanningPipeline:
    """Sample, project onto smooth trajectories through start and goal, check, select.

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
        self.horizon = int(getattr(generator, "horizon", HORIZON))
        self.projection = (
            SmoothProjection(smoothing_knots, generator.dt, self.horizon) if smoothing_knots > 0 else None
        )

    @property
    def dt(self) -> float:
        return self.generator.dt

    def plan(self, request: PlanRequest, prefix: Callable[[], ContinuationPrefix] | None = None) -> PlanResult:
        """Best safe candidate for a validated request.

        When joining a running plan, `prefix()` is called after sampling, so the running plan is read at the moment
        the new plan replaces it (planning takes time while the arm keeps moving); the candidates are cross-faded
        into it and must start where the running plan is then.
        """
        started = time.perf_counter()
        reference = reference_trajectory(
            request.start_positions, request.start_velocities, request.goal_positions, self.dt, self.horizon
        )  # once per plan: the sampler adds it to the model's residuals, the projection fits around it
        positions, velocities = self.generator.plan(
            request.start_positions,
            request.start_velocities,
            request.goal_positions,
            num_samples=request.num_samples,
            steps=request.integration_steps,
            seed=request.seed,
            reference=reference,
        )
        far: dict[int, list[str]] = {}
        if self.projection is not None:
            positions, velocities, change = self.projection(positions, reference)
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
