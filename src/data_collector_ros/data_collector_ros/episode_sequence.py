"""The one episode sequence, reach -> attach -> carry, shared by the collector and the evaluation.

For one tray pose: reset the scene, solve IK for the handles, run the reach phase, attach, solve IK at the carry
goal, run the carry phase. If the attach fails (or the reach phase says not to try), the scene is reset with the
arms at the reach goal and the tray attached, so the carry phase always runs (from the state it really starts in).

What a phase does is pluggable (`PhaseStep`): the collector plans with the CEM expert and executes directly in the
simulation (data_collector_ros.episode); `evaluate` plans with the flow planner over DDS or the CEM expert and
executes through the bridge's controller topics (flow_planner_eval.runner). How the scene is reset and
grasped is pluggable too (`EpisodeScene`): the simulation itself here, the bridge's services in `evaluate`.
Both judge a phase with `judge_phase` (the one success function).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np

from data_collector_ros.ik import IKSolver
from data_collector_ros.simulation import SimState, Simulation
from data_collector_ros.success import SuccessResult, evaluate_simulation
from data_collector_ros.task import TaskConfig, handle_targets
from flow_planner_common.obstacles import Box
from flow_planner_common.robot import PHASE_CARRY, PHASE_REACH

IK_FAILED = "IK did not converge"
T = TypeVar("T")


@dataclass(frozen=True)
class PhaseTask:
    """One phase to plan, execute and judge: its start state, joint goal (IK) and targets."""

    phase: int
    seed: int  # the episode seed
    start: SimState
    goal: np.ndarray  # (12,) joint positions from IK
    ik_success: bool
    ee_targets: np.ndarray  # (2, 3) end-effector targets
    tray_start: np.ndarray  # (7,)
    tray_goal: np.ndarray  # (7,)
    obstacles: tuple[Box, ...] = ()  # the scene's boxes (placed in the simulation)


#: Plans, executes and judges one phase; its result type is the caller's (a record, a report row).
PhaseStep = Callable[[PhaseTask], T]


class EpisodeScene(Protocol):
    """Resets and grasps in the simulation `sim` (directly, or through the bridge's ROS interfaces)."""

    sim: Simulation

    def reset(self, tray_pose: np.ndarray) -> SimState: ...

    def attach(self) -> bool: ...

    def reset_attached(self, tray_pose: np.ndarray, arm_positions: np.ndarray) -> SimState: ...

    def state(self) -> SimState: ...


class SimulationScene:
    """EpisodeScene acting on a Simulation directly (single-threaded use)."""

    def __init__(self, sim: Simulation, grasp_tolerance: float) -> None:
        self.sim, self.grasp_tolerance = sim, grasp_tolerance

    def reset(self, tray_pose: np.ndarray) -> SimState:
        return self.sim.reset(tray_pose)

    def attach(self) -> bool:
        return bool(self.sim.attach(self.grasp_tolerance).attached)

    def reset_attached(self, tray_pose: np.ndarray, arm_positions: np.ndarray) -> SimState:
        self.sim.reset(tray_pose, positions=arm_positions)
        self.sim.attach(self.grasp_tolerance)
        return self.sim.state()

    def state(self) -> SimState:
        return self.sim.state()


@dataclass(frozen=True)
class EpisodeResult(Generic[T]):
    """The two phases' results; `attached`: the grasp after the reach held (else the carry ran from a reset)."""

    reach: T
    carry: T
    attached: bool

    @property
    def phases(self) -> list[T]:
        return [self.reach, self.carry]


def run_episode(
    scene: EpisodeScene,
    ik: IKSolver,
    task: TaskConfig,
    tray_pose: np.ndarray,
    seed: int,
    step: PhaseStep[T],
    may_attach: Callable[[T], bool] = lambda _: True,
    tray_goal: np.ndarray | None = None,
) -> EpisodeResult[T]:
    """Reach -> attach -> carry for one tray pose; `may_attach(reach)` false skips the attach attempt.

    `tray_goal` (7,): the carry's goal pose (a scene's); None = `task.carry_goal_pose(tray_pose)`. The scene's
    obstacles are whatever is placed in the simulation (Simulation.set_obstacles).
    """
    sim = scene.sim
    start = scene.reset(tray_pose)
    targets, quats = handle_targets(sim.model, sim.index, tray_pose)
    reach_ik = ik.solve(targets, quats, seed_positions=start.positions, seed=seed)
    reach = step(
        PhaseTask(
            PHASE_REACH, seed, start, reach_ik.positions, reach_ik.success, targets, tray_pose, tray_pose,
            sim.obstacles,
        )
    )  # fmt: skip
    attached = bool(may_attach(reach) and scene.attach())
    carry_start = scene.state() if attached else scene.reset_attached(tray_pose, reach_ik.positions)
    tray_goal = task.carry_goal_pose(tray_pose) if tray_goal is None else np.asarray(tray_goal, dtype=float)
    targets, quats = handle_targets(sim.model, sim.index, tray_goal)
    carry_ik = ik.solve(targets, quats, seed_positions=carry_start.positions, seed=seed)
    carry = step(
        PhaseTask(
            PHASE_CARRY, seed, carry_start, carry_ik.positions, carry_ik.success, targets, carry_start.tray_pose,
            tray_goal, sim.obstacles,
        )
    )  # fmt: skip
    return EpisodeResult(reach, carry, attached)


def phase_verdict(result: SuccessResult, ik_success: bool, notes: Sequence[str] = ()) -> SuccessResult:
    """A phase's verdict from the simulation's judgement: a non-converged IK fails it; when it failed, `notes`
    (the planner's own account) precede the simulation's reasons."""
    success = bool(result.success and ik_success)
    reasons = ([] if success else list(notes)) + list(result.reasons)
    if not ik_success:
        reasons.insert(0, IK_FAILED)
    return SuccessResult(success, tuple(reasons), result.metrics)


def judge_phase(sim: Simulation, task: PhaseTask, notes: Sequence[str] = ()) -> SuccessResult:
    """The one success function on the phase just executed in `sim`, as `phase_verdict`."""
    result = evaluate_simulation(sim, task.phase, task.ee_targets, task.tray_start, task.tray_goal)
    return phase_verdict(result, task.ik_success, notes)
