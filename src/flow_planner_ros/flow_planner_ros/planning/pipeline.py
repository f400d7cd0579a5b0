"""The planning pipeline (ROS-free): sample a batch of candidates from the model sampler, project them onto smooth
motions through the request's start and goal, join them to a running plan when replanning, check each (limits,
continuity, and clearance to the scene, the other arm, the table and a carried tray: scene_safety), keep the best.
When no sample passes, a few CEM iterations (refinement) bend the samples away from what they hit, and the refined
candidates go through the same checks; when none of those passes either, an optional fallback planner (OMPL
RRTConnect, planning.rrt) gets `fallback_time_limit` s and its plan the same checks again. It never returns an
unsafe trajectory. The planner node is a thin rclpy
layer over this.

An obstacle-conditioned model (checkpoint `model.obstacles`) gets the scene's boxes; a scene-blind model plans
without them (the safety check and the refinement still keep its plans clear of them)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Protocol

import numpy as np

from flow_planner_common.grip_follower import GripFollower
from flow_planner_common.motion import reference_trajectory
from flow_planner_common.plan_scene import EMPTY_SCENE, PlanScene
from flow_planner_common.robot import HORIZON, PHASE_CARRY, PHASE_REACH
from flow_planner_common.scene_safety import (
    DEFAULT_CLEARANCE_MARGIN,
    DEFAULT_MAX_GRIP_CHANGE,
    DEFAULT_MAX_TRAY_TILT,
    ClearanceCheck,
    SceneCheck,
    SceneSafety,
)
from flow_planner_ros.learning.flow_sampler import SampleRequest
from flow_planner_ros.planning import refinement
from flow_planner_ros.planning.continuation import ContinuationPrefix, join_candidates
from flow_planner_ros.planning.projection import SmoothProjection
from flow_planner_ros.planning.refinement import Refiner
from flow_planner_ros.planning.request import PlanRequest
from flow_planner_ros.planning.trajectory_safety import SafetyLimits, Selection, select_best

if TYPE_CHECKING:
    from flow_planner_ros.planning.rrt import RRTPlanner

#: What `fallback_planner` may name.
FALLBACK_PLANNERS: tuple[str, ...] = ("none", "rrt")


class TrajectoryGenerator(Protocol):
    """What the pipeline needs from a trained model: flow_planner_ros.learning.flow_sampler.FlowSampler."""

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
        obstacles: tuple[np.ndarray, np.ndarray] | None = None,
        phase: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(num_samples, horizon, 12) positions and velocities in physical units; `obstacles` (boxes (4, 7),
        mask (4,)) is only passed to a model that reads the scene, `phase` (0 reach, 1 carry) only to a model
        conditioned on it."""
        ...


@dataclass(frozen=True)
class PlanResult:
    """Outcome of one planning call; positions/velocities are None when no candidate was safe.

    `selection` is the final check: of the samples, or of the refined candidates when `refinement` is not None
    (then `sampled` is the samples' check). `problem`: why the request could not be planned at all."""

    positions: np.ndarray | None
    velocities: np.ndarray | None
    selection: Selection
    planning_time: float
    sampled: Selection | None = None
    problem: str = ""
    fallback: str = ""  # what the fallback planner did ("" = it did not run)
    learned: str = ""  # when the fallback ran: why the samples (and refined candidates) were not used

    @property
    def success(self) -> bool:
        return self.positions is not None

    @property
    def refined(self) -> bool:
        return self.sampled is not None

    def message(self) -> str:
        if self.problem:
            return f"refused: {self.problem}"
        if self.fallback:
            return self._fallback_message()
        n = self.selection.num_valid + len(self.selection.rejections)
        checked = f"{self.selection.num_valid}/{n}"
        if self.sampled is None:
            if self.success:
                return f"ok: {checked} candidates checked safe, cost {self.selection.cost:.4f}"
            return f"no safe candidate among {n}: {self.selection.summary()}"
        samples = len(self.sampled.rejections)
        before = f"no safe sample among {samples} ({self.sampled.summary()})"
        if self.success:
            return (
                f"ok after refinement: {before}; {checked} refined candidates checked safe, "
                f"cost {self.selection.cost:.4f}"
            )
        return f"{before}, nor among {n} refined candidates ({self.selection.summary()})"

    def _fallback_message(self) -> str:
        """The fallback ran: the learned planner's account (samples, refined candidates), then the fallback's."""
        if self.success:
            return f"ok by the fallback: {self.learned}; {self.fallback}"
        return f"{self.learned}; fallback: {self.fallback}"


class PlanningPipeline:
    """Sample, project onto smooth trajectories through start and goal, check, select (refine when none passes).

    smoothing_knots: bumps per joint of the projection (0 = no projection: raw samples are checked as they are).
    max_projection_change (rad): samples the projection had to move further than this are refused, since the
    model was then far from the request.
    clearance_margin (m), max_grip_change (m), max_tray_tilt (rad): scene_safety's margin, grip and tilt limits.
    refine_iterations (0 = off), refine_samples: the refinement's CEM iterations (at most) and candidates per
    iteration (refinement.Refiner; its basis has smoothing_knots bumps, 4 if 0). fallback_planner ("none" | "rrt"),
    fallback_time_limit (s): the planner that gets a request none of the samples and refined candidates could serve.
    hold_grip: in a carry, the right arm of every sample and refined candidate follows the left from the start's grip
    before the check (flow_planner_common.grip_follower, as the expert's carries do; the refinement then searches
    the left arm only and scores the held candidates): the model learns the grip only approximately, and over a long
    carry its samples drift by centimetres. `configure` changes any of these but smoothing_knots
    between plans.
    """

    def __init__(
        self,
        generator: TrajectoryGenerator,
        limits: SafetyLimits,
        smoothing_knots: int = 4,
        max_projection_change: float = 0.2,
        clearance_margin: float = DEFAULT_CLEARANCE_MARGIN,
        refine_iterations: int = refinement.DEFAULT_ITERATIONS,
        refine_samples: int = refinement.DEFAULT_SAMPLES,
        max_grip_change: float = DEFAULT_MAX_GRIP_CHANGE,
        fallback_planner: str = "none",
        fallback_time_limit: float = 1.0,
        hold_grip: bool = True,
        max_tray_tilt: float = DEFAULT_MAX_TRAY_TILT,
    ) -> None:
        self.generator = generator
        self.limits = limits
        self.max_projection_change = max_projection_change
        self.horizon = int(getattr(generator, "horizon", HORIZON))
        self.projection = SmoothProjection(smoothing_knots, generator.dt, self.horizon) if smoothing_knots > 0 else None
        checkpoint = getattr(generator, "checkpoint", None)
        self.sees_obstacles = bool(getattr(checkpoint, "obstacles", False))
        # A phase-conditioned model learns reach and carry apart: the request says which (carrying_tray = carry).
        self.sees_phase = bool(getattr(checkpoint, "use_phase", False))
        # the check runs on the model's device: candidates stay there until the (N, H, C) clearances come back
        device = getattr(generator, "device", "cpu")
        self.safety = SceneSafety(clearance_margin, max_grip_change=max_grip_change, device=device,
                                  max_tray_tilt=max_tray_tilt)  # fmt: skip
        self.refiner = Refiner(
            self.safety, limits, generator.dt, self.horizon, num_knots=smoothing_knots or 4,
            iterations=refine_iterations, samples=refine_samples,
        )  # fmt: skip
        self.grip = GripFollower(self.safety.checker)
        self.hold_grip = bool(hold_grip)
        self.fallback: RRTPlanner | None = None
        self.fallback_time_limit = float(fallback_time_limit)
        self.configure(fallback_planner=fallback_planner)

    @property
    def dt(self) -> float:
        return self.generator.dt

    def configure(
        self,
        *,
        max_projection_change: float | None = None,
        clearance_margin: float | None = None,
        max_grip_change: float | None = None,
        refine_iterations: int | None = None,
        refine_samples: int | None = None,
        fallback_planner: str | None = None,
        fallback_time_limit: float | None = None,
        hold_grip: bool | None = None,
        max_tray_tilt: float | None = None,
    ) -> None:
        """Change the settings that may change between plans (None keeps a value)."""
        if hold_grip is not None:
            self.hold_grip = bool(hold_grip)
        if max_projection_change is not None:
            self.max_projection_change = float(max_projection_change)
        if clearance_margin is not None:
            self.safety.margin = float(clearance_margin)
        if max_grip_change is not None:
            self.safety.max_grip_change = float(max_grip_change)
        if max_tray_tilt is not None:
            self.safety.max_tray_tilt = float(max_tray_tilt)
        if refine_iterations is not None:
            self.refiner.iterations = int(refine_iterations)
        if refine_samples is not None:
            self.refiner.samples = int(refine_samples)
        if fallback_planner is not None:
            if fallback_planner not in FALLBACK_PLANNERS:
                raise ValueError(f"fallback_planner must be one of {', '.join(FALLBACK_PLANNERS)}")
            if fallback_planner == "none":
                self.fallback = None
            elif self.fallback is None:
                from flow_planner_ros.planning.rrt import RRTPlanner  # OMPL is loaded only when it is used

                self.fallback = RRTPlanner(self.safety, self.limits, self.dt, self.horizon)
        if fallback_time_limit is not None:
            self.fallback_time_limit = float(fallback_time_limit)

    def plan(
        self,
        request: PlanRequest,
        prefix: Callable[[], ContinuationPrefix] | None = None,
        scene: PlanScene = EMPTY_SCENE,
    ) -> PlanResult:
        """Best safe candidate for a validated request in `scene` (boxes and a carried tray).

        When joining a running plan, `prefix()` is called after sampling (and again after a refinement), so the
        running plan is read at the moment the new plan replaces it (planning takes time while the arm keeps
        moving); the candidates, sampled from the request's start `prefix().advance` s earlier, are resampled from
        the switch on, cross-faded into it and must start where the running plan is then (planning.continuation).
        """
        return self.plan_many([(request, scene, prefix)])[0]

    def plan_many(
        self, items: Sequence[tuple[PlanRequest, PlanScene, Callable[[], ContinuationPrefix] | None]]
    ) -> list[PlanResult]:
        """`plan` for several requests (request, scene, prefix) at once: their samples come from one model call per
        step count (dynamic batching, the sampler's `plan_many` where it has one), are projected, and those of the
        requests without a prefix get their scene check in one checker call per phase (SceneSafety.check_many);
        each request then selects, refines if none is clear, and falls back on its own (a request joining a running
        plan is checked after its join). Each result's planning time counts from the batch's start."""
        started = time.perf_counter()
        results: list[PlanResult | None] = [None] * len(items)
        prepared: list[tuple[int, SceneCheck, tuple[np.ndarray, np.ndarray], SampleRequest]] = []
        for i, (request, scene, _) in enumerate(items):
            start, goal = request.start_positions, request.goal_positions
            check = self.safety.bind(start, goal, scene)  # the start's and goal's clearances, once per plan
            if check.problem is not None:
                results[i] = PlanResult(None, None, Selection(None, float("inf"), 0, {}),
                                        time.perf_counter() - started, problem=check.problem)  # fmt: skip
                continue
            reference = reference_trajectory(
                start, request.start_velocities, goal, self.dt, self.horizon
            )  # once per plan: the sampler adds it to the model's residuals, the projection fits around it
            phase = (PHASE_CARRY if scene.grasp is not None else PHASE_REACH) if self.sees_phase else None
            obstacles = (scene.boxes, scene.mask) if self.sees_obstacles else None
            sample = SampleRequest(start, request.start_velocities, goal, request.num_samples,
                                   request.integration_steps, request.seed, phase, reference, obstacles)  # fmt: skip
            prepared.append((i, check, reference, sample))
        samples = self._sample([p[3] for p in prepared])
        projected = []
        for (_, check, reference, _), sample in zip(prepared, samples, strict=True):
            positions, velocities, far = self._project(*sample, reference)
            projected.append((*self._held(positions, velocities, check), far))
        first = self._first_checks([p[1] for p in prepared], projected, [items[p[0]][2] is None for p in prepared])
        for (i, check, reference, _), candidates, checked in zip(prepared, projected, first, strict=True):
            request, _, prefix = items[i]
            results[i] = self._finish(request, prefix, check, reference, candidates, started, checked)
        return results

    def _held(self, positions: np.ndarray, velocities: np.ndarray, check: SceneCheck) -> tuple[np.ndarray, np.ndarray]:
        """Carry candidates with the right arm following the left from the start's grip (hold_grip); others as
        they are."""
        if not self.hold_grip or check.scene.grasp is None:
            return positions, velocities
        return self.grip.follow(positions, velocities, check.start)

    def _project(
        self, positions: np.ndarray, velocities: np.ndarray, reference: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, dict[int, list[str]]]:
        """A request's samples projected onto smooth motions through its start and goal, and the reasons of those
        the projection had to move too far."""
        if self.projection is None:
            return positions, velocities, {}
        positions, velocities, change = self.projection(positions, reference)
        too_far = np.flatnonzero(change > self.max_projection_change)
        return positions, velocities, {int(i): ["sample too far from a smooth motion through start and goal"]
                                       for i in too_far}  # fmt: skip

    def _first_checks(
        self,
        checks: Sequence[SceneCheck],
        candidates: Sequence[tuple[np.ndarray, np.ndarray, dict[int, list[str]]]],
        shared: Sequence[bool],
    ) -> list[ClearanceCheck | None]:
        """The scene check of every projected candidate of the requests marked `shared` (no prefix), in one
        checker call per phase; None for the others."""
        chosen = [k for k, share in enumerate(shared) if share]
        result: list[ClearanceCheck | None] = [None] * len(checks)
        if chosen:
            checked = self.safety.check_many([checks[k] for k in chosen], [candidates[k][0] for k in chosen])
            for k, check in zip(chosen, checked, strict=True):
                result[k] = check
        return result

    def _sample(self, requests: list[SampleRequest]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every request's samples: one batched call where the generator has `plan_many`."""
        if not requests:
            return []
        if hasattr(self.generator, "plan_many"):
            return self.generator.plan_many(requests)
        results = []
        for r in requests:
            extra: dict = {} if r.obstacles is None else {"obstacles": r.obstacles}
            if r.phase is not None:
                extra["phase"] = r.phase
            results.append(self.generator.plan(r.start_pos, r.start_vel, r.goal, num_samples=r.num_samples,
                                               steps=r.steps, seed=r.seed, reference=r.reference, **extra))  # fmt: skip
        return results

    def _finish(
        self,
        request: PlanRequest,
        prefix: Callable[[], ContinuationPrefix] | None,
        check: SceneCheck,
        reference: tuple[np.ndarray, np.ndarray],
        candidates: tuple[np.ndarray, np.ndarray, dict[int, list[str]]],
        started: float,
        checked: ClearanceCheck | None = None,
    ) -> PlanResult:
        """Select the best of a request's projected samples (positions, velocities, those too far), their scene
        check `checked` when it was done already; refine when none is clear."""
        positions, velocities, far = candidates
        sampled = self._select(positions, velocities, request, prefix, check, far, checked)
        if sampled[2].index is not None:
            return self._result(*sampled, started)
        if self.refiner.iterations > 0:
            start, goal = request.start_positions, request.goal_positions
            held = self.hold_grip and check.scene.grasp is not None  # the refinement levels the tray too
            follow = partial(self.grip.follow, level_dt=self.dt) if held else None
            refined = self.refiner.refine(positions, reference, start, goal, check.scene, seed=request.seed,
                                          check=check, follow=follow)  # fmt: skip
            candidates = (refined.positions, refined.velocities)
            result = self._result(*self._select(*candidates, request, prefix, check, {}), started, sampled=sampled[2])
        else:
            result = self._result(*sampled, started)
        if result.success or self.fallback is None:
            return result
        return self._fall_back(request, prefix, check, result, started)

    def _fall_back(
        self,
        request: PlanRequest,
        prefix: Callable[[], ContinuationPrefix] | None,
        check: SceneCheck,
        learned: PlanResult,
        started: float,
    ) -> PlanResult:
        """The fallback planner's plan for a request the learned planner could not serve, through the same
        selection (joined to a running plan, limits, clearance) as every candidate."""
        plan = self.fallback.plan(request.start_positions, request.start_velocities, request.goal_positions,
                                  check.scene, self.fallback_time_limit, seed=request.seed, check=check)  # fmt: skip
        account = {"learned": learned.message(), "sampled": learned.sampled or learned.selection}
        if plan.success:
            positions, velocities, selection = self._select(
                plan.positions[None], plan.velocities[None], request, prefix, check, {}
            )
            if selection.index is not None:
                return PlanResult(positions[0], velocities[0], selection, time.perf_counter() - started,
                                  fallback=plan.message, **account)  # fmt: skip
            why = f"its plan failed the final check: {selection.summary()}"
        else:
            why = plan.message
        return PlanResult(None, None, learned.selection, time.perf_counter() - started, fallback=why, **account)

    def _select(
        self,
        positions: np.ndarray,
        velocities: np.ndarray,
        request: PlanRequest,
        prefix: Callable[[], ContinuationPrefix] | None,
        check: SceneCheck,
        refused: dict[int, list[str]],
        checked: ClearanceCheck | None = None,
    ) -> tuple[np.ndarray, np.ndarray, Selection]:
        """Join the candidates to a running plan (if any), check them all and select the best. `checked`: the scene
        check of all these candidates from the request's start, done already (it does not apply after a join)."""
        start, goal = request.start_positions, request.goal_positions
        if prefix is not None:
            join = prefix()
            positions, velocities = join_candidates(positions, velocities, request, join, self.dt)
            start = join.anchor
            check = self.safety.bind(start, goal, check.scene)  # the candidates now start where the running plan is
            checked = None
        scene_check = _checked_reader(checked) if checked is not None else partial(check.rejections, positions)
        selection = select_best(positions, velocities, start, goal, self.dt, self.limits, refused, scene_check)
        return positions, velocities, selection

    @staticmethod
    def _result(
        positions: np.ndarray, velocities: np.ndarray, selection: Selection, started: float,
        sampled: Selection | None = None,
    ) -> PlanResult:  # fmt: skip
        elapsed = time.perf_counter() - started
        if selection.index is None:
            return PlanResult(None, None, selection, elapsed, sampled)
        return PlanResult(positions[selection.index], velocities[selection.index], selection, elapsed, sampled)


def _checked_reader(checked: ClearanceCheck) -> Callable[[np.ndarray], dict[int, list[str]]]:
    """select_best's scene_check from a check of all candidates: the reasons of those among `indices` that fail."""
    passed = checked.passed

    def scene_check(indices: np.ndarray) -> dict[int, list[str]]:
        return {int(i): checked.reasons(int(i)) for i in indices if not passed[i]}

    return scene_check
