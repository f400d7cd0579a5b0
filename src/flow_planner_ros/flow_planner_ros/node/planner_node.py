"""The `planner` node: a thin rclpy shell over the ROS-free planner. It loads a checkpoint once (learning.
flow_sampler), serves /flow_planner/plan (planning.request validation, planning.pipeline), executes plans on the two
arm controllers' JointTrajectory topics and replans in a receding horizon (planning.execution) when
execution_steps < 60; an execution whose /joint_states stop ends within `joint_states_timeout`. The
/flow_planner/execute action (ExecutePlan) plans and executes through the same queue, validation, pipeline and state
machine, with feedback until the goal is reached (node.goal_runs); canceling it publishes a smooth stop from where the
running plan is (planning.stop_trajectory). Plans' end-effector paths go to `marker_topic` (node.plan_markers).

Parameters: declared from node.planner_settings (descriptions, ranges; `ros2 param describe` shows them); read-only
ones are set at start, the others may change while the node runs and are validated as a whole before they apply.

Requests: the service callback only queues a request (node.request_queue); a guard condition plans the queued
requests one at a time, in arrival order, against the freshest /joint_states, after taking every request waiting in
the service's DDS queue (beyond `max_pending_requests`: "busy" at once). One SingleThreadedExecutor runs everything:
a multi-threaded one was measured to make planning 3-10x slower beside a 100 Hz /joint_states stream (GIL).

Scene (flow_planner_common.plan_scene): the union of the request's `obstacles` and the latest ObstacleArray on
`scene_obstacles_topic`, and with `carrying_tray` the tray carried by both tools from `tray_pose` at the start state; an
execution keeps its scene for its replans. A `target_tray_pose` goal becomes a joint goal by IK (planning.pose_goal).
Safety: every trajectory passes the pipeline's checks (limits, continuity, clearance: flow_planner_common.scene_safety;
refinement when no sample passes) before it is returned or published; an executed request must start at the measured
state (`start_state_tolerance`). Every
published trajectory is stamped with the instant it starts (header.stamp); a plan that replaces a running one (replan,
preemption) is sampled from the running plan's commanded state and joins it at that instant (planning.continuation).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from ament_index_python.packages import get_package_share_directory
from rcl_interfaces.msg import SetParametersResult
from rclpy.action import ActionServer, CancelResponse
from rclpy.action.server import ServerGoalHandle
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.task import Future
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from flow_planner_common.log_throttle import Throttle
from flow_planner_common.node_main import spin_node_main
from flow_planner_common.parameters import declare_parameters
from flow_planner_common.plan_scene import PlanScene, SceneError
from flow_planner_common.ros_messages import (
    arm_trajectories,
    joint_state_in_order,
    joint_trajectory,
    time_msg,
)
from flow_planner_msgs.action import ExecutePlan
from flow_planner_msgs.msg import ObstacleArray, PlannerStatus
from flow_planner_msgs.srv import PlanTrajectory
from flow_planner_ros.learning.flow_sampler import FlowSampler
from flow_planner_ros.node.goal_runs import GoalRun, GoalRuns, execution_status, goal_request
from flow_planner_ros.node.plan_markers import plan_markers
from flow_planner_ros.node.planner_settings import PLANNER_PARAMETERS, PlannerSettings, SettingsError
from flow_planner_ros.node.request_queue import Queued, RequestQueue, request_fields
from flow_planner_ros.node.scene_input import SceneInput
from flow_planner_ros.node.sim_clock import FRESH_PLAN_LEAD, FreshClock
from flow_planner_ros.planning.continuation import Join
from flow_planner_ros.planning.execution import Decision, Execution, ExecutionLimits, JointStateWatchdog
from flow_planner_ros.planning.pipeline import PlanningPipeline, PlanResult
from flow_planner_ros.planning.pose_goal import PoseGoals
from flow_planner_ros.planning.request import (
    JointStateSample,
    PlanRequest,
    PlanRequestError,
    RequestPolicy,
    fresh_state,
)
from flow_planner_ros.planning.stop_trajectory import stop_trajectory
from flow_planner_ros.planning.trajectory_safety import SafetyLimits

#: The action's name, beside the /flow_planner/plan service.
EXECUTE_ACTION = "/flow_planner/execute"
#: s; warnings about repeated bad input (scene messages, requests) come at most once per this, per kind.
WARNING_PERIOD = 1.0


def default_checkpoint_path() -> Path:
    """The checkpoint installed with flow_planner_ros (share/flow_planner_ros/checkpoints/default.safetensors)."""
    share = Path(get_package_share_directory("flow_planner_ros"))
    return share / "checkpoints" / "default.safetensors"


class PlannerNode(Node):
    """Thin rclpy layer over PlanningPipeline and Execution (see the module docstring)."""

    def __init__(self, **node_kwargs: object) -> None:
        super().__init__("flow_planner", **node_kwargs)
        self.settings = PlannerSettings.from_values(declare_parameters(self, PLANNER_PARAMETERS))
        self._clock_now = FreshClock(self)  # with sim time, current while planning (node.sim_clock)
        s = self.settings

        checkpoint = s.checkpoint or str(default_checkpoint_path())
        backend = s.backend if s.device == "cpu" else "torch"  # ONNX Runtime here is the CPU build
        self.sampler = FlowSampler.from_checkpoint(checkpoint, device=s.device, backend=backend,
                                                   num_threads=s.num_threads)  # fmt: skip
        self.pipeline = PlanningPipeline(
            self.sampler, SafetyLimits.from_arrays(s.position_limits, s.velocity_limits),
            smoothing_knots=s.smoothing_knots, max_projection_change=s.max_projection_change,
            clearance_margin=s.clearance_margin, max_grip_change=s.max_grip_change, max_tray_tilt=s.max_tray_tilt,
            refine_iterations=s.refine_iterations, refine_samples=s.refine_samples,
            fallback_planner=s.fallback_planner, fallback_time_limit=s.fallback_time_limit, hold_grip=s.hold_grip,
        )  # fmt: skip
        self.policy = RequestPolicy.from_settings(s, self.sampler.default_steps)
        self._pose_goals = PoseGoals(self.pipeline.safety)  # target_tray_pose goals: IK + the pipeline's goal check
        self.get_logger().info(
            f"loaded {checkpoint} (horizon {self.sampler.horizon}, dt {self.sampler.dt}, {backend} on {s.device});"
            f" execution_steps={s.execution_steps}; {self.sampler.checkpoint.summary()}; plans are checked against"
            " the scene's boxes"
        )

        self._latest_state: JointStateSample | None = None
        self._execution: Execution | None = None
        self._request_counter = 0
        self._pending = RequestQueue(lambda: self.settings.max_pending_requests)
        self._goals = GoalRuns(stop=self._stop)  # ExecutePlan goals by the request_id of their execution
        self._scene_input = SceneInput(s.scene_obstacles_topic, s.frame_id)
        self._throttle = Throttle(WARNING_PERIOD)
        self.create_subscription(JointState, s.joint_states_topic, self._on_joint_states, 10)
        self._left_pub = self.create_publisher(JointTrajectory, s.left_controller_topic, 10)
        self._right_pub = self.create_publisher(JointTrajectory, s.right_controller_topic, 10)
        self._status_pub = self.create_publisher(PlannerStatus, s.status_topic, 10)
        latched = QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
        )
        self._marker_pub = self.create_publisher(MarkerArray, s.marker_topic, latched)
        if s.scene_obstacles_topic:
            self.create_subscription(ObstacleArray, s.scene_obstacles_topic, self._on_scene_obstacles, latched)
        service_qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
        # Reentrant: a queued request's callback stays pending until it is planned, and must not block the others.
        self._service = self.create_service(
            PlanTrajectory, "/flow_planner/plan", self._on_plan, qos_profile=service_qos,
            callback_group=ReentrantCallbackGroup(),
        )
        self._action = ActionServer(
            self, ExecutePlan, EXECUTE_ACTION, execute_callback=self._on_execute,
            cancel_callback=lambda _: CancelResponse.ACCEPT, callback_group=ReentrantCallbackGroup(),
        )  # fmt: skip
        self._work = self.create_guard_condition(self._plan_next)
        self.create_timer(self.sampler.dt / 2, self._on_execution_tick)
        self._watchdog = JointStateWatchdog(self.sampler.dt / 2)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # -- parameters -------------------------------------------------------------------------------------------
    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        try:
            settings = self.settings.updated({p.name: p.value for p in parameters})
        except SettingsError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.settings, self.policy = settings, RequestPolicy.from_settings(settings, self.sampler.default_steps)
        self.pipeline.configure(
            max_projection_change=settings.max_projection_change, clearance_margin=settings.clearance_margin,
            max_grip_change=settings.max_grip_change, max_tray_tilt=settings.max_tray_tilt,
            refine_iterations=settings.refine_iterations,
            refine_samples=settings.refine_samples, fallback_planner=settings.fallback_planner,
            fallback_time_limit=settings.fallback_time_limit, hold_grip=settings.hold_grip,
        )  # fmt: skip
        return SetParametersResult(successful=True)

    def _now(self) -> float:
        return self._clock_now.now()

    def stop(self) -> None:  # spin_node_main, before destroy_node
        self._clock_now.close()

    # -- joint states -----------------------------------------------------------------------------------------
    def _on_joint_states(self, msg: JointState) -> None:
        state = joint_state_in_order(msg, self.settings.joint_names)
        if state is not None:
            self._latest_state = JointStateSample(*state, self._now())

    # -- scene ------------------------------------------------------------------------------------------------
    def _on_scene_obstacles(self, msg: ObstacleArray) -> None:
        warning = self._scene_input.on_message(msg)
        if warning is not None:
            self._warn("scene", warning)

    def _warn(self, kind: str, message: str) -> None:
        """A warning about bad input: at most one per kind and WARNING_PERIOD (a flood must not drown the log)."""
        line = self._throttle(kind, message)
        if line is not None:
            self.get_logger().warning(line)

    def _measured_positions(self) -> np.ndarray | None:
        state = self._latest_state
        return None if state is None else state.positions

    # -- service ----------------------------------------------------------------------------------------------
    async def _on_plan(
        self, request: PlanTrajectory.Request, response: PlanTrajectory.Response
    ) -> PlanTrajectory.Response:
        """Queue the request (or refuse it as busy at once); the response comes when it has been planned."""
        done = Future()
        if self._pending.put(request, done.set_result):
            self._work.trigger()
        return await done

    def _plan_next(self) -> None:
        """Plan the oldest queued request, together with the plain service calls right behind it (one model call,
        up to `max_batch_requests`); one batch per callback, so other callbacks interleave."""
        self._pending.take_waiting(self._service)
        if not self._pending:
            return
        batch = [(q, PlanTrajectory.Response()) for q in self._pending.pop_batch(self.settings.max_batch_requests)]
        try:
            prepared = [(queued, response, self._prepare(queued, response)) for queued, response in batch]
            ready = [(queued, response, plan) for queued, response, plan in prepared if plan is not None]
            items = [(plan[0], plan[1], None if plan[2] is None else plan[2].prefix) for _, _, plan in ready]
            for (queued, response, plan), result in zip(ready, self.pipeline.plan_many(items), strict=True):
                self._respond(*plan, queued[2], response, result)
        except Exception as exc:  # a model failure must not take the node down
            for _, response in batch:
                response.success, response.message = False, f"planning failed: {type(exc).__name__}: {exc}"
            self.get_logger().error(batch[0][1].message)
        for (_, reply, _), response in batch:
            reply(response)
        if self._pending:
            self._work.trigger()

    def _prepare(
        self, queued: Queued, response: PlanTrajectory.Response
    ) -> tuple[PlanRequest, PlanScene, Join | None] | None:
        """The validated request, its scene and its join to a running plan; None (the response says why) if it
        cannot be planned."""
        request, _, run = queued
        if run is not None and run.handle.is_cancel_requested:
            response.message = "canceled before it was planned"
            return None
        scene_at = lambda start: self._scene_input.scene(request, start, self.pipeline.safety.checker.grasp_from_start)  # noqa: E731
        try:  # a target_tray_pose becomes a joint goal here (planning.pose_goal), against the request's scene
            plan_request, scene = self._pose_goals.plan_request(request_fields(request), self.policy,
                                                                self._latest_state, self._now(), scene_at)  # fmt: skip
        except (PlanRequestError, SceneError) as exc:
            response.success, response.message = False, f"invalid request: {exc}"
            self._warn("request", response.message)
            return None
        running = self._execution if plan_request.execute else None
        join = None
        if running is not None:  # preemption: join the running plan where the controllers are at the switch
            join = running.join(self._now, self.settings.blend_steps)
            plan_request = join.request(plan_request)
        return plan_request, scene, join

    def _respond(
        self, plan_request: PlanRequest, scene: PlanScene, join: Join | None, run: GoalRun | None,
        response: PlanTrajectory.Response, result: PlanResult,
    ) -> None:  # fmt: skip
        response.success = result.success
        response.message = f"{result.message()}; scene: {scene.describe()}"
        response.planning_time = result.planning_time
        response.num_valid_candidates = result.selection.num_valid
        if not result.success:
            self.get_logger().warning(response.message)
            return
        response.trajectory = joint_trajectory(
            result.positions, result.velocities, self.settings.joint_names, self.sampler.dt
        )
        if plan_request.execute:
            self._start_execution(plan_request, result, scene, run, join)
            if run is not None:
                run.last_trajectory = response.trajectory
        self._publish_markers(result.positions, plan_request.goal_positions)

    def _publish_markers(self, positions: np.ndarray, goal: np.ndarray) -> None:
        stamp = self.get_clock().now().to_msg()
        self._marker_pub.publish(plan_markers(positions, goal, self.settings.frame_id, stamp))

    # -- action -----------------------------------------------------------------------------------------------
    async def _on_execute(self, handle: ServerGoalHandle) -> ExecutePlan.Result:
        """Plan and execute the goal through the request queue; resolve when it ends (see GoalRun)."""
        request = goal_request(handle.request)
        run = GoalRun(handle, Future())
        handle.publish_feedback(ExecutePlan.Feedback(phase="planning", goal_error=math.nan))
        planned = Future()
        if self._pending.put(request, planned.set_result, run):
            self._work.trigger()
        response: PlanTrajectory.Response = await planned
        if not response.success:
            if handle.is_cancel_requested:
                handle.canceled()
                return ExecutePlan.Result(outcome="canceled", message=response.message, goal_error=math.nan)
            handle.abort()
            return ExecutePlan.Result(outcome="refused", message=response.message, goal_error=math.nan)
        result: ExecutePlan.Result = await run.done
        if result.outcome == "reached":
            handle.succeed()
        elif result.outcome == "canceled":
            handle.canceled()
        else:
            handle.abort()
        return result

    def _stop(self, run: GoalRun, now: float) -> None:
        """Cancel: a smooth stop from where the running plan is now, replacing it on the controllers."""
        execution, dt = run.execution, self.sampler.dt
        position, velocity, _ = execution.state_at(now)
        positions, velocities = self._publish_stop(position, velocity, now)
        run.last_trajectory = joint_trajectory(positions, velocities, self.settings.joint_names, dt)
        run.stop_until = now + len(positions) * dt
        if self._execution is execution:
            self._execution = None
        self._report(execution, "canceled", f"canceled: stopping within {len(positions) * dt:.2f} s")

    # -- execution --------------------------------------------------------------------------------------------
    def _publish_stop(self, position: np.ndarray, velocity: np.ndarray, start: float) -> tuple[np.ndarray, np.ndarray]:
        """A smooth stop from (position, velocity) to both arms, stamped `start`; its waypoints."""
        positions, velocities = stop_trajectory(
            position, velocity, self.sampler.dt, self.settings.stop_deceleration, self.settings.position_limits
        )
        self._publish(positions, velocities, start)
        return positions, velocities

    def _publish(self, positions: np.ndarray, velocities: np.ndarray, start: float) -> None:
        """Both arms' trajectories, stamped `start` (node clock, s): when the controllers start them."""
        stamp = time_msg(start)
        left, right = arm_trajectories(positions, velocities, self.sampler.dt, self.settings.joint_names, stamp)
        self._left_pub.publish(left)
        self._right_pub.publish(right)

    def _start_execution(
        self, request: PlanRequest, result: PlanResult, scene: PlanScene, run: GoalRun | None, join: Join | None
    ) -> None:
        if self._execution is not None:
            self._report(self._execution, "preempted", "preempted by a new request")
        self._request_counter += 1
        fresh = (self._now() + FRESH_PLAN_LEAD, (None, None))
        start, (start_p, start_v) = fresh if join is None else (join.switch_at, join.state)
        self._publish(result.positions, result.velocities, start)
        self._execution = Execution(
            self._request_counter, request, result.positions, result.velocities, start, self.sampler.dt,
            planning_times=[result.planning_time], scene=scene, start_positions=start_p, start_velocities=start_v,
        )  # fmt: skip
        if run is not None:
            self._goals.start(run, self._execution)
        self._report(self._execution, "executing", "plan published")

    def _on_execution_tick(self) -> None:
        if self._goals:
            self._goals.tick(self._now(), self._measured_positions(), self.settings.feedback_rate)
        execution = self._execution
        if execution is None:
            return
        received = None if self._latest_state is None else self._latest_state.stamp
        lost = self._watchdog.check(self._now(), received, self.settings.joint_states_timeout)
        if lost is not None:  # a robot we no longer hear: end the execution, publish nothing more
            self._finish(execution, "failed", lost)
            return
        limits = ExecutionLimits.from_settings(self.settings)
        decision, message = execution.decide(self._now(), self._measured_positions(), limits, received)
        if decision is Decision.ABORT:
            self._halt(execution, message)
        elif decision in (Decision.REACHED, Decision.FAILED):
            self._finish(execution, decision.value, message)
        elif decision is Decision.FINAL_APPROACH:
            self._report(execution, "executing", message)
        elif decision is Decision.REPLAN:
            self._replan(execution)

    def _halt(self, execution: Execution, message: str) -> None:
        """An arm does not follow the plan: both arms stop smoothly from where they are measured, and it failed."""
        state = self._latest_state  # finite (joint_state_in_order), velocities zero where the message had none
        self._publish_stop(state.positions, state.velocities, self._now() + FRESH_PLAN_LEAD)
        self._finish(execution, "failed", message)

    def _replan(self, execution: Execution) -> None:
        try:
            fresh_state(self._latest_state, self._now(), self.settings.joint_states_timeout, "replan")
        except PlanRequestError as exc:
            self._finish(execution, "failed", str(exc))
            return
        join = execution.join(self._now, self.settings.blend_steps)  # from the commanded state
        request = execution.replan_request(join.start_positions, join.start_velocities)
        result = self.pipeline.plan(request, prefix=join.prefix, scene=execution.scene)
        if not result.success:
            execution.refuse_replan(result.planning_time)
            self._report(execution, "executing", f"replan refused ({result.message()}); finishing the running plan")
            return
        self._publish(result.positions, result.velocities, join.switch_at)
        execution.adopt(result.positions, result.velocities, join, result.planning_time)
        self._report(execution, "executing", f"replan {execution.replans}")
        self._publish_markers(result.positions, request.goal_positions)
        run = self._goals.get(execution.request_id)
        if run is not None:
            run.last_trajectory = joint_trajectory(
                result.positions, result.velocities, self.settings.joint_names, self.sampler.dt
            )

    def _finish(self, execution: Execution, state: str, message: str) -> None:
        self._report(execution, state, message)
        if self._execution is execution:
            self._execution = None

    def _report(self, execution: Execution, state: str, message: str) -> None:
        stamp = self.get_clock().now().to_msg()
        self._status_pub.publish(execution_status(execution, state, message, stamp, self._measured_positions()))
        if state != "executing":
            self.get_logger().info(f"request {execution.request_id}: {state}: {message}")
        self._goals.ended(execution.request_id, state, message, self._now(), self._measured_positions())


def main(args: list[str] | None = None) -> int:
    return spin_node_main("planner", PlannerNode, args=args)


if __name__ == "__main__":
    sys.exit(main())
