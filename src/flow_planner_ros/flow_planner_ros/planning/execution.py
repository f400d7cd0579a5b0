"""The execution state machine of one executed request (ROS-free): when to replan, when the final approach starts,
when the goal is reached or the execution failed. The planner node calls `decide` on every timer tick with the
measured joint positions and acts on the decision; all times are the node clock's seconds.

    executing ──(elapsed ≥ execution_steps·dt, far from goal)──► replan ──(published)──► executing
        │  └─(within final_approach_distance, or a replan refused)──► final approach (run the plan to its end)
        ├──(every joint within goal_tolerance)──► reached
        ├──(a joint farther than path_tolerance from where the plan commands it)──► abort (the node stops the arms)
        └──(plan ended + 10 waypoints, or max_replans)──► failed

The path tolerance guards what a check cannot: each arm's controller accepts or rejects its trajectory on its own,
so when one refuses (a late delivery whose first waypoints have passed) the other still runs, and in a carry the
moving arm drags the tray held by both. The measured state, compared with the commanded one at the time it was
measured, shows any arm that does not follow its plan.

A replan joins the running plan where the controllers command it (planning.continuation.Join). Independently of
the plan's progress, `JointStateWatchdog` fails an execution whose /joint_states stopped (older than
joint_states_timeout): the node then publishes nothing more for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from flow_planner_common.hermite import HermiteTrajectory
from flow_planner_common.plan_scene import EMPTY_SCENE, PlanScene
from flow_planner_ros.planning.continuation import Join, commanded_trajectory
from flow_planner_ros.planning.request import PlanRequest

#: Waypoints past a plan's end after which an execution that has not reached its goal has failed.
OVERRUN_STEPS = 10
#: rad; the planner's default path_tolerance. Executed plans track their commanded state within a few hundredths of
#: a radian (a carry's welded tray pulls the wrists most); an arm whose controller refused its trajectory falls
#: behind by the plan's own speed.
DEFAULT_PATH_TOLERANCE = 0.25


class Decision(Enum):
    WAIT = "wait"
    REPLAN = "replan"
    FINAL_APPROACH = "final_approach"
    REACHED = "reached"
    FAILED = "failed"
    ABORT = "abort"  # an arm does not follow the plan: stop both and fail


@dataclass(frozen=True)
class ExecutionLimits:
    """The settings the state machine reads (see planner_settings for their meaning)."""

    execution_steps: int
    goal_tolerance: float
    final_approach_distance: float
    max_replans: int
    path_tolerance: float = 0.0  # rad; 0 = not checked

    @classmethod
    def from_settings(cls, settings: object) -> ExecutionLimits:
        """From a PlannerSettings (duck-typed, like RequestPolicy.from_settings)."""
        return cls(
            settings.execution_steps, settings.goal_tolerance, settings.final_approach_distance, settings.max_replans,
            settings.path_tolerance,
        )  # fmt: skip


@dataclass
class Execution:
    """A request being executed: its goal, the running plan, when it starts (node clock, s: its header.stamp; waypoint
    k at published_at + (k + 1)·dt), the commanded state it starts from (default: the request's start) and the scene
    it was planned in (replans use the same scene, carried tray included)."""

    request_id: int
    request: PlanRequest
    positions: np.ndarray
    velocities: np.ndarray
    published_at: float
    dt: float
    replans: int = 0
    planning_times: list[float] = field(default_factory=list)
    final_approach: bool = False  # no more replans: the running plan is executed to its end
    scene: PlanScene = EMPTY_SCENE  # the request's scene: every replan is checked against it
    start_positions: np.ndarray | None = None  # the commanded state at published_at (None: the request's start)
    start_velocities: np.ndarray | None = None
    _commanded: HermiteTrajectory | None = field(default=None, init=False, repr=False)

    def commanded(self) -> HermiteTrajectory:
        """The running plan as the controllers command it (t = 0 at published_at)."""
        if self._commanded is None:
            start_p = self.request.start_positions if self.start_positions is None else self.start_positions
            start_v = self.request.start_velocities if self.start_velocities is None else self.start_velocities
            self._commanded = commanded_trajectory(start_p, start_v, self.positions, self.velocities, self.dt)
        return self._commanded

    def state_at(self, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Commanded position, velocity and acceleration at `now` (at rest past the plan's end)."""
        return self.commanded().sample_state(now - self.published_at)

    def goal_error(self, measured: np.ndarray | None) -> float | None:
        """Max joint distance of the measured positions from the goal (rad); None without a measurement."""
        if measured is None:
            return None
        return float(np.max(np.abs(np.asarray(measured) - self.request.goal_positions)))

    def tracking_error(self, measured: np.ndarray, measured_at: float) -> tuple[float, int]:
        """Largest distance (rad) of the measured positions from the commanded ones at the time they were measured,
        and its joint's index."""
        error = np.abs(np.asarray(measured, dtype=float) - self.state_at(measured_at)[0])
        joint = int(np.argmax(error))
        return float(error[joint]), joint

    def decide(
        self, now: float, measured: np.ndarray | None, limits: ExecutionLimits, measured_at: float | None = None
    ) -> tuple[Decision, str]:
        """What to do at time `now` given the measured positions (measured at `measured_at`, default now), with a
        message for the status topic."""
        elapsed = now - self.published_at
        at = now if measured_at is None else measured_at
        if measured is not None and limits.path_tolerance > 0.0 and at >= self.published_at:
            error, joint = self.tracking_error(measured, at)
            if error > limits.path_tolerance:
                return Decision.ABORT, (
                    f"joint {joint} is {error:.3f} rad from where the plan commands it (path_tolerance "
                    f"{limits.path_tolerance:g} rad): an arm does not follow its trajectory (a controller refused or "
                    "lost it, or the arm is blocked); both arms stopped"
                )
        error = self.goal_error(measured)
        described = "no /joint_states" if error is None else f"{error:.4f} rad from the goal"
        horizon = len(self.positions)
        if error is not None and error <= limits.goal_tolerance and elapsed >= self.dt:
            return Decision.REACHED, f"goal reached (max joint error {error:.4f} rad)"
        if limits.execution_steps >= horizon or self.final_approach:
            if elapsed > (horizon + OVERRUN_STEPS) * self.dt:
                return Decision.FAILED, f"plan ended {described}"
            return Decision.WAIT, ""
        if elapsed < limits.execution_steps * self.dt:
            return Decision.WAIT, ""
        if error is not None and error <= limits.final_approach_distance:
            self.final_approach = True  # near the goal a new sample adds noise; the running plan ends at the goal
            return Decision.FINAL_APPROACH, f"final approach from {error:.4f} rad"
        if self.replans >= limits.max_replans:
            return Decision.FAILED, f"max_replans reached {described}"
        return Decision.REPLAN, ""

    def replan_request(self, start_positions: np.ndarray, start_velocities: np.ndarray) -> PlanRequest:
        """The request of the next replan: from the given start state (the running plan's commanded state where the
        replan starts: Join) to the same goal, with the next seed."""
        request = self.request
        return PlanRequest(
            start_positions=start_positions,
            start_velocities=start_velocities,
            goal_positions=request.goal_positions,
            num_samples=request.num_samples,
            integration_steps=request.integration_steps,
            seed=None if request.seed is None else request.seed + self.replans + 1,
            execute=True,
        )

    def join(self, clock: Callable[[], float], blend_steps: int) -> Join:
        """A new plan, planned from now on, joining this one (see continuation.Join)."""
        return Join(self.commanded(), self.published_at, self.dt, blend_steps, clock)

    def adopt(self, positions: np.ndarray, velocities: np.ndarray, join: Join, planning_time: float) -> None:
        """A replan was published, stamped join.switch_at: the running plan now, from the commanded state there."""
        self.positions, self.velocities, self.published_at = positions, velocities, join.switch_at
        self.start_positions, self.start_velocities = join.state
        self._commanded = None
        self.replans += 1
        self.planning_times.append(planning_time)

    def refuse_replan(self, planning_time: float) -> None:
        """A replan found no safe candidate: the running plan, checked when published, ends at the goal; finish it."""
        self.planning_times.append(planning_time)
        self.final_approach = True


class JointStateWatchdog:
    """Lost /joint_states while a plan runs: the planner must stop following a robot it no longer hears.

    `check` runs on the node's execution timer (every `period` s) and says why the states are stale once the latest
    one arrived more than `timeout` ago. A tick that comes late (the executor was busy planning meanwhile, and the
    states that came in are still waiting in the subscription's queue) does not judge; the next one does."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._last_tick: float | None = None
        self._held: tuple[float, float | None] | None = None  # after a late tick: (judge again at, received then)

    def check(self, now: float, received: float | None, timeout: float) -> str | None:
        """None while /joint_states are fresh (`received`: when the latest arrived; None: none yet).

        After a late tick the judgement waits until a newer state has been taken or `timeout` has passed: the timer
        can fire again before the executor takes the states queued during the stall (seen under sim time)."""
        late = self._last_tick is not None and now - self._last_tick > 2 * self.period
        self._last_tick = now
        if late:
            self._held = (now + timeout, received)
        if self._held is not None and now < self._held[0] and received == self._held[1]:
            return None
        self._held = None
        if received is None or now - received <= timeout:
            return None
        return (
            f"lost /joint_states: the latest is {now - received:.2f} s old (joint_states_timeout {timeout:.2f} s); "
            "stopped following the plan, nothing more is published"
        )
