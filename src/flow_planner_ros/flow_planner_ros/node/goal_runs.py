"""The ExecutePlan goals in flight and the executions' status messages (rclpy types, no node): per goal its
handle, the future of its result and what the result summarizes (path length, last trajectory, timing). The planner
node hands a goal's execution over when its first plan is published (`start`), calls `tick` on its execution timer
and `ended` when the execution reports a state; `tick` asks the node to stop a canceled goal through the `stop`
callback it was built with."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rclpy.action.server import ServerGoalHandle
from rclpy.task import Future
from trajectory_msgs.msg import JointTrajectory

from flow_planner_msgs.action import ExecutePlan
from flow_planner_msgs.msg import PlannerStatus
from flow_planner_msgs.srv import PlanTrajectory
from flow_planner_ros.planning.execution import Execution


def execution_status(
    execution: Execution, state: str, message: str, stamp: object, measured: np.ndarray | None
) -> PlannerStatus:
    """The PlannerStatus of an execution in `state` (stamp: builtin_interfaces Time)."""
    times = execution.planning_times
    error = execution.goal_error(measured)
    return PlannerStatus(
        stamp=stamp, state=state, request_id=execution.request_id, replans=execution.replans,
        last_planning_time=times[-1] if times else 0.0, mean_planning_time=float(np.mean(times)) if times else 0.0,
        goal_error=math.nan if error is None else error, message=message,
    )  # fmt: skip


def goal_request(goal: ExecutePlan.Goal) -> PlanTrajectory.Request:
    """The PlanTrajectory request of an ExecutePlan goal (the same fields; always executed)."""
    return PlanTrajectory.Request(
        start_positions=goal.start_positions, start_velocities=goal.start_velocities,
        joint_names=goal.joint_names, goal_positions=goal.goal_positions, num_samples=goal.num_samples,
        integration_steps=goal.integration_steps, seed=goal.seed, execute=True, obstacles=goal.obstacles,
        carrying_tray=goal.carrying_tray, tray_pose=goal.tray_pose, target_tray_pose=goal.target_tray_pose,
    )  # fmt: skip


#: Execution states that end an ExecutePlan goal (besides a cancel's smooth stop).
FINAL_STATES = ("reached", "failed", "preempted")


@dataclass
class GoalRun:
    """An ExecutePlan goal: its handle, the future of its result, and what the result summarizes."""

    handle: ServerGoalHandle
    done: Future
    execution: Execution | None = None
    started: float = math.nan  # node clock when its first plan was published
    stop_until: float | None = None  # canceled: when the stop trajectory ends
    last_trajectory: JointTrajectory | None = None
    path_length: float = 0.0
    last_measured: np.ndarray | None = None
    last_feedback: float = -math.inf


class GoalRuns:
    """The running ExecutePlan goals by the request id of their execution.

    stop(run, now): publish a smooth stop for a canceled goal and set `run.stop_until` (the node owns the
    controllers)."""

    def __init__(self, stop: Callable[[GoalRun, float], None]) -> None:
        self._stop = stop
        self._runs: dict[int, GoalRun] = {}

    def __bool__(self) -> bool:
        return bool(self._runs)

    def get(self, request_id: int) -> GoalRun | None:
        return self._runs.get(request_id)

    def start(self, run: GoalRun, execution: Execution) -> None:
        """The goal's first plan was published: it now follows `execution`."""
        run.execution, run.started = execution, execution.published_at
        self._runs[execution.request_id] = run

    def tick(self, now: float, measured: np.ndarray | None, feedback_rate: float) -> None:
        """Stop canceled goals, finish stopped ones, measure path length, publish feedback."""
        for run in list(self._runs.values()):
            if measured is not None:
                if run.last_measured is not None:
                    run.path_length += float(np.sum(np.abs(measured - run.last_measured)))
                run.last_measured = measured
            if run.stop_until is None and run.handle.is_cancel_requested:
                self._stop(run, now)
            if run.stop_until is not None and now >= run.stop_until:
                self.complete(run, "canceled", "canceled: the arm was stopped smoothly", now, measured)
                continue
            if now - run.last_feedback >= 1.0 / feedback_rate:
                run.last_feedback = now
                run.handle.publish_feedback(self._feedback(run, now, measured))

    def ended(self, request_id: int, state: str, message: str, now: float, measured: np.ndarray | None) -> None:
        """An execution reported `state`: complete its goal when that state ends it."""
        run = self._runs.get(request_id)
        if run is not None and state in FINAL_STATES:
            self.complete(run, state, message, now, measured)

    def complete(self, run: GoalRun, outcome: str, message: str, now: float, measured: np.ndarray | None) -> None:
        """Resolve the goal's result (once)."""
        execution = run.execution
        self._runs.pop(execution.request_id, None)
        if run.done.done():
            return
        times = execution.planning_times
        error = execution.goal_error(measured)
        run.done.set_result(
            ExecutePlan.Result(
                success=outcome == "reached", outcome=outcome, message=message, replans=execution.replans,
                duration=now - run.started, goal_error=math.nan if error is None else error,
                path_length=run.path_length, mean_planning_time=float(np.mean(times)) if times else 0.0,
                last_trajectory=run.last_trajectory or JointTrajectory(),
            )
        )  # fmt: skip

    @staticmethod
    def _feedback(run: GoalRun, now: float, measured: np.ndarray | None) -> ExecutePlan.Feedback:
        execution = run.execution
        error = execution.goal_error(measured)
        if run.stop_until is not None:
            phase, left = "stopping", run.stop_until - now
        else:
            phase = "final_approach" if execution.final_approach else "executing"
            left = execution.published_at + len(execution.positions) * execution.dt - now
        return ExecutePlan.Feedback(
            phase=phase, replans=execution.replans, goal_error=math.nan if error is None else error,
            time_left=max(0.0, left), elapsed=now - run.started,
        )  # fmt: skip
