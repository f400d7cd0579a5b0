"""The collector's episode: the shared reach -> attach -> carry sequence (data_collector_ros.episode_sequence) with
each phase planned by the CEM expert, executed directly in the physics simulation and judged by the one success
function, then checked by the planner's own final check (data_collector_ros.plan_check: flow_planner_common.scene_safety
at the planner's defaults); one TrajectoryRecord per phase. A phase is a success only when the physics succeeds AND the
check passes; a refused one is recorded as a failure, its reasons saying "planner check: ..." (the record keeps the
check's figures: check_passed, check_min_margin, check_max_grip).

If the reach ends too far from the handles to attach (or was unstable), the carry still runs from a grasped state:
the scene is reset with the arms at the reach goal and the tray at its start pose, so every grid index yields a
carry sample (its record's start state is the state it really started from). Every random choice comes from the
episode seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from data_collector_ros.cem import CEMPlan, CEMPlanner
from data_collector_ros.episode_sequence import PhaseTask, SimulationScene, judge_phase, phase_verdict, run_episode
from data_collector_ros.ik import IKSolver
from data_collector_ros.plan_check import PlanCheck, check_plan
from data_collector_ros.plan_cost import PhaseContext
from data_collector_ros.routes import RouteBuilder
from data_collector_ros.scene_family import SceneEpisode
from data_collector_ros.simulation import SimState, Simulation, SimulationUnstable
from data_collector_ros.success import SuccessResult
from data_collector_ros.task import TaskConfig
from flow_planner_common.obstacles import boxes_to_array
from flow_planner_common.robot import DEFAULT_DT
from flow_planner_common.scene_safety import DEFAULT_CLEARANCE_MARGIN, DEFAULT_MAX_GRIP_CHANGE, SceneSafety
from flow_planner_common.trajectory_schema import TrajectoryRecord

UNSTABLE = "simulation unstable"


class EpisodeObserver(Protocol):
    """Sees what an episode executes (the collector node publishes it; a bag recorder records it)."""

    def on_trajectory(self, phase: int, positions: np.ndarray, velocities: np.ndarray, dt: float) -> None: ...

    def on_state(self, state: SimState) -> None: ...


@dataclass(frozen=True)
class EpisodeConfig:
    dt: float = DEFAULT_DT
    settle: float = 0.25  # s simulated after the last waypoint before judging
    grasp_tolerance: float = 0.02  # m
    state_every: int = 10  # physics steps between observer.on_state calls (only with an observer)
    # the planner's check of every executed plan (plan_check); the planner's defaults keep one definition of safe
    check_margin: float = DEFAULT_CLEARANCE_MARGIN  # m
    check_max_grip_change: float = DEFAULT_MAX_GRIP_CHANGE  # m (0 = no grip limit)


@dataclass(frozen=True)
class PhaseOutcome:
    record: TrajectoryRecord
    plan: CEMPlan
    result: SuccessResult  # the physics' verdict AND the planner's check
    ik_success: bool
    check: PlanCheck | None = None  # the planner's check of the plan
    physics_success: bool | None = None  # the physics' verdict alone (None: as result.success)

    @property
    def unstable(self) -> bool:
        return any(r.startswith(UNSTABLE) for r in self.result.reasons)


class EpisodeRunner:
    """Runs episodes on one Simulation with one IK solver and one CEM planner (all thread-confined)."""

    def __init__(
        self,
        sim: Simulation,
        planner: CEMPlanner,
        ik: IKSolver,
        task: TaskConfig | None = None,
        config: EpisodeConfig | None = None,
        observer: EpisodeObserver | None = None,
    ) -> None:
        self.sim, self.planner, self.ik = sim, planner, ik
        self.task = task or TaskConfig()
        self.config = config or EpisodeConfig()
        self.observer = observer
        self.scene = SimulationScene(sim, self.config.grasp_tolerance)
        self.routes = RouteBuilder(ik, planner.basis(self.config.dt))
        self.safety = SceneSafety(self.config.check_margin, planner.cost.checker, self.config.check_max_grip_change)

    def run(
        self,
        grid_index: int,
        tray_pose: np.ndarray,
        seed: int,
        tolerate_unstable: bool = False,
        on_record: Callable[[TrajectoryRecord], None] | None = None,
        scene: SceneEpisode | None = None,
    ) -> list[PhaseOutcome]:
        """Both phases of one episode. `on_record(record)` is called as soon as a phase is judged.

        With a `scene`, its obstacles are placed and its start and goal used (`tray_pose` is then ignored); without,
        the scene is empty and the carry goal is the task's. SimulationUnstable propagates unless
        `tolerate_unstable`, in which case the phase is recorded as failed.
        """
        self.sim.set_obstacles(scene.obstacles if scene is not None else ())
        tray_goal = None
        if scene is not None:
            tray_pose, tray_goal = scene.start_pose(float(self.sim.rest_tray_pose[2])), scene.goal_pose()

        def step(task: PhaseTask) -> PhaseOutcome:
            outcome = self.run_phase(task, grid_index, tolerate_unstable, scene)
            if on_record is not None:
                on_record(outcome.record)
            return outcome

        episode = run_episode(
            self.scene, self.ik, self.task, tray_pose, seed, step, lambda r: not r.unstable, tray_goal=tray_goal
        )
        return episode.phases

    def run_phase(
        self, task: PhaseTask, grid_index: int, tolerate_unstable: bool = False, scene: SceneEpisode | None = None
    ) -> PhaseOutcome:
        """Plan from the task's start state to its joint goal, execute in the simulation, judge, check with the
        planner's check (a refusal fails the phase), build the record (with the `scene`'s fields)."""
        dt = self.config.dt
        plan = cem_plan(self.planner, task, task.start, dt, self.routes)
        try:
            self.execute(task.phase, plan.positions, plan.velocities)
            result = judge_phase(self.sim, task)
        except SimulationUnstable as exc:
            if not tolerate_unstable:
                raise
            result = phase_verdict(SuccessResult(False, (f"{UNSTABLE}: {exc}",)), task.ik_success)
        physics_success = result.success
        check = check_plan(self.safety, task, plan.positions)
        if not check.passed:
            result = SuccessResult(False, (*result.reasons, *check.labelled_reasons), result.metrics)
        record = TrajectoryRecord(
            positions=plan.positions,
            velocities=plan.velocities,
            arms_start=task.start.positions,
            arms_start_vel=task.start.velocities,
            arms_goal=plan.goal,
            phase=task.phase,
            tray_start_pose=task.tray_start,
            tray_goal_pose=task.tray_goal,
            grid_index=grid_index,
            seed=task.seed,
            success=result.success,
            cost=plan.cost,
            dt=dt,
            **scene_fields(scene),
            **check.record_fields,
        )
        return PhaseOutcome(record, plan, result, task.ik_success, check, physics_success)

    def execute(self, phase: int, positions: np.ndarray, velocities: np.ndarray) -> None:
        """Run a (60, 12) trajectory to its end plus the settle time (stats cleared first); tell the observer."""
        sim, dt = self.sim, self.config.dt
        sim.reset_stats()
        if self.observer is not None:
            self.observer.on_trajectory(phase, positions, velocities, dt)
        sim.execute(positions, velocities, dt)
        steps = round((sim.trajectory_time_left() + self.config.settle) / sim.timestep)
        if self.observer is None:
            sim.step(steps)
            return
        chunk = max(1, self.config.state_every)
        for done in range(0, steps, chunk):
            sim.step(min(chunk, steps - done))
            self.observer.on_state(sim.state())


def cem_plan(
    planner: CEMPlanner, task: PhaseTask, start: SimState, dt: float, routes: RouteBuilder | None = None
) -> CEMPlan:
    """The CEM expert's plan for a phase from `start` (seeded by the episode seed and the phase), avoiding the
    task's obstacles; with `routes`, restarts from bent routes when the straight-line search finds nothing."""
    context = PhaseContext(
        task.phase, start.positions, start.velocities, task.tray_start, task.ee_targets, dt, task.obstacles
    )

    def alternatives() -> list[np.ndarray]:
        return routes.routes(
            task.phase, start.positions, start.velocities, task.goal, task.tray_start, task.tray_goal, task.seed,
            task.obstacles,
        )

    rng = np.random.default_rng([task.seed, task.phase])
    return planner.plan(context, task.goal, rng, routes=alternatives if routes is not None else ())


def scene_fields(scene: SceneEpisode | None) -> dict[str, object]:
    """A record's scene fields (schema 2): the boxes as a fixed-size array, their mask and the template."""
    obstacles, mask = boxes_to_array(scene.obstacles if scene is not None else ())
    return {"obstacles": obstacles, "obstacle_mask": mask, "template": scene.template if scene else "empty"}
