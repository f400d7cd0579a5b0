"""The `planner` node: loads a flow-matching checkpoint once, serves /flow_planner/plan, executes plans through
the two arm controllers' JointTrajectory topics, and replans in a receding horizon when execution_steps < 60.

Executor: one SingleThreadedExecutor runs everything (service, /joint_states, the execution timer). Plans are
computed one at a time anyway (torch/ONNX Runtime use the cores for each), concurrent service calls queue in the
service's DDS queue (depth `service_queue_depth`, not the default 10 that would drop the oldest requests of a burst)
and are answered in arrival order. A multi-threaded executor was measured to make planning 3-10x slower beside a
100 Hz /joint_states stream: its threads contend for Python's GIL with the planning thread, which releases and
re-acquires it around every torch/ONNX call. Planning blocks the other callbacks only for its tens of milliseconds;
the state used to plan is read when planning starts, and a replan joins the running plan when it is published.

Safety: every trajectory passes `trajectory_safety.check_candidate` (finite, within position and velocity limits,
continuous with the measured start) before it is returned or published; if no candidate passes, the service answers
success=false with the reasons, and nothing is published.

Receding horizon: with execution_steps = k < 60, the node replans every k waypoints from the latest /joint_states
(the model is conditioned on the measured position and velocity), cross-fades the first `blend_steps` waypoints of
the new plan from the running plan (so neither position nor velocity jumps at the switch), checks it again, and
publishes it; the controllers replace the running trajectory from their current state. Once every joint is within
`final_approach_distance` of the goal, the running plan (whose last waypoint is the goal) is executed to its end
instead of replanning again, since near the goal a new sample mostly adds noise. Execution ends when every joint is
within `goal_tolerance` ("reached"), or the plan ends or `max_replans` is reached first ("failed").
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ament_index_python.packages import get_package_share_directory
from builtin_interfaces.msg import Duration
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from flow_planner_common.node_main import spin_node_main
from flow_planner_common.robot import (
    JOINT_NAMES,
    JOINT_POSITION_LIMITS,
    JOINT_VELOCITY_LIMITS,
    NUM_ARM_JOINTS,
    NUM_JOINTS,
)
from flow_planner_msgs.msg import PlannerStatus
from flow_planner_msgs.srv import PlanTrajectory
from flow_planner_ros.continuation import ContinuationPrefix, running_plan_prefix
from flow_planner_ros.flow_sampler import BACKENDS, FlowSampler
from flow_planner_ros.plan_request import JointStateSample, PlanRequest, PlanRequestError, validate_plan_request
from flow_planner_ros.planning_pipeline import PlanningPipeline, PlanResult
from flow_planner_ros.trajectory_safety import SafetyLimits

PARAMETERS: dict[str, object] = {
    "checkpoint": "",
    "device": "cpu",
    "backend": "onnx",  # onnx (ONNX Runtime, fastest at batch 1 on CPU) | torch
    "num_threads": 1,  # CPU threads for inference; 1 is fastest when the simulator or others share the cores
    "num_samples": 8,
    "integration_steps": 10,
    "max_num_samples": 64,
    "max_integration_steps": 100,
    "execution_steps": 60,
    "blend_steps": 5,
    "goal_tolerance": 0.02,
    "smoothing_knots": 4,  # bumps per joint of the smooth projection through start and goal; 0 = raw samples
    "max_projection_change": 0.2,  # rad; samples the projection moves further are refused
    "max_replans": 30,
    "final_approach_distance": 0.1,  # rad; closer than this, the running plan is executed to its end
    "joint_states_timeout": 0.5,
    "service_queue_depth": 100,
    "joint_names": list(JOINT_NAMES),
    "joint_states_topic": "/joint_states",
    "left_controller_topic": "/left_arm_controller/joint_trajectory",
    "right_controller_topic": "/right_arm_controller/joint_trajectory",
    "status_topic": "/flow_planner/status",
    "position_limits_lower": [float("nan")],  # [nan] = from the robot description
    "position_limits_upper": [float("nan")],
    "velocity_limits": [float("nan")],
}


def default_checkpoint_path() -> Path:
    """The checkpoint installed with flow_planner_ros (share/flow_planner_ros/checkpoints/default.safetensors)."""
    share = Path(get_package_share_directory("flow_planner_ros"))
    return share / "checkpoints" / "default.safetensors"


@dataclass
class Execution:
    """A request being executed: its goal, the running plan and when it was published (node clock, s)."""

    request_id: int
    request: PlanRequest
    positions: np.ndarray
    velocities: np.ndarray
    published_at: float
    replans: int = 0
    planning_times: list[float] = field(default_factory=list)
    final_approach: bool = False  # no more replans: the running plan is executed to its end


class PlannerNode(Node):
    """Thin rclpy layer over PlanningCore (see the module docstring)."""

    def __init__(self, **node_kwargs: object) -> None:
        super().__init__("flow_planner", **node_kwargs)
        for name, default in PARAMETERS.items():
            self.declare_parameter(name, default)
        p = self._param
        self.joint_names = [str(n) for n in p("joint_names")]
        if len(self.joint_names) != NUM_JOINTS or len(set(self.joint_names)) != NUM_JOINTS:
            raise ValueError(f"parameter joint_names must list {NUM_JOINTS} distinct joints (left arm, then right)")
        self.execution_steps = int(p("execution_steps"))
        if not 1 <= self.execution_steps <= 60:
            raise ValueError(f"parameter execution_steps must be in 1..60, got {self.execution_steps}")
        self.position_limits = np.column_stack(
            [
                self._limit_param("position_limits_lower", JOINT_POSITION_LIMITS[:, 0]),
                self._limit_param("position_limits_upper", JOINT_POSITION_LIMITS[:, 1]),
            ]
        )
        self.velocity_limits = self._limit_param("velocity_limits", JOINT_VELOCITY_LIMITS)

        checkpoint = str(p("checkpoint")) or str(default_checkpoint_path())
        backend, device = str(p("backend")), str(p("device"))
        if backend not in BACKENDS:
            raise ValueError(f"parameter backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "onnx" and device != "cpu":
            backend = "torch"  # ONNX Runtime here is the CPU build; on CUDA use torch
        threads = int(p("num_threads"))
        if threads < 1:
            raise ValueError(f"parameter num_threads must be >= 1, got {threads}")
        self.generator = FlowSampler.from_checkpoint(checkpoint, device=device, backend=backend, num_threads=threads)
        if self.generator.checkpoint.use_phase:
            raise ValueError(f"{checkpoint} is conditioned on the episode phase; the planner serves phase-free models")
        self.core = PlanningPipeline(
            self.generator,
            SafetyLimits.from_arrays(self.position_limits, self.velocity_limits),
            smoothing_knots=int(p("smoothing_knots")),
            max_projection_change=float(p("max_projection_change")),
        )
        self.get_logger().info(
            f"loaded {checkpoint} (horizon {self.generator.horizon}, dt {self.generator.dt}, {backend} on {device});"
            f" execution_steps={self.execution_steps}"
        )

        self._latest_state: JointStateSample | None = None
        self._execution: Execution | None = None
        self._request_counter = 0
        self.create_subscription(
            JointState, str(p("joint_states_topic")), self._on_joint_states, 10
        )
        self._left_pub = self.create_publisher(JointTrajectory, str(p("left_controller_topic")), 10)
        self._right_pub = self.create_publisher(JointTrajectory, str(p("right_controller_topic")), 10)
        self._status_pub = self.create_publisher(PlannerStatus, str(p("status_topic")), 10)
        # Requests wait in the service's DDS queue while one is being planned: a KEEP_LAST(10) default would
        # silently drop the oldest of a burst, so the depth is a parameter (default 100).
        service_qos = QoSProfile(
            depth=int(p("service_queue_depth")), history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE
        )
        self.create_service(
            PlanTrajectory, "/flow_planner/plan", self._on_plan, qos_profile=service_qos
        )
        self.create_timer(self.generator.dt / 2, self._on_execution_tick)

    # -- parameters -------------------------------------------------------------------------------------------
    def _param(self, name: str) -> object:
        return self.get_parameter(name).value

    def _limit_param(self, name: str, default: np.ndarray) -> np.ndarray:
        values = np.asarray(self._param(name), dtype=np.float64)
        if values.size == 1 and np.isnan(values[0]):
            return np.array(default, dtype=np.float64)
        if values.shape != (NUM_JOINTS,) or not np.all(np.isfinite(values)):
            raise ValueError(f"parameter {name} must hold {NUM_JOINTS} finite values")
        return values

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # -- joint states -----------------------------------------------------------------------------------------
    def _on_joint_states(self, msg: JointState) -> None:
        index = {name: i for i, name in enumerate(msg.name)}
        if any(name not in index for name in self.joint_names):
            return
        order = [index[name] for name in self.joint_names]
        positions = np.asarray(msg.position, dtype=np.float64)
        velocities = np.asarray(msg.velocity, dtype=np.float64)
        if len(positions) != len(msg.name) or not np.all(np.isfinite(positions)):
            return
        velocities = velocities[order] if len(velocities) == len(msg.name) else np.zeros(NUM_JOINTS)
        self._latest_state = JointStateSample(positions[order], velocities, self._now())

    def _state(self) -> JointStateSample | None:
        return self._latest_state

    # -- service ----------------------------------------------------------------------------------------------
    def _on_plan(self, request: PlanTrajectory.Request, response: PlanTrajectory.Response) -> PlanTrajectory.Response:
        try:
            plan_request = validate_plan_request(
                start_positions=list(request.start_positions),
                start_velocities=list(request.start_velocities),
                joint_names=list(request.joint_names),
                goal_positions=list(request.goal_positions),
                num_samples=request.num_samples,
                integration_steps=request.integration_steps,
                seed=request.seed,
                execute=request.execute,
                position_limits=self.position_limits,
                velocity_limits=self.velocity_limits,
                latest_state=self._state(),
                now=self._now(),
                max_state_age=float(self._param("joint_states_timeout")),
                default_num_samples=int(self._param("num_samples")),
                default_integration_steps=int(self._param("integration_steps")),
                max_num_samples=int(self._param("max_num_samples")),
                max_integration_steps=int(self._param("max_integration_steps")),
                planner_joint_names=self.joint_names,
            )
        except PlanRequestError as exc:
            response.success = False
            response.message = f"invalid request: {exc}"
            self.get_logger().warning(response.message)
            return response
        try:
            result = self.core.plan(plan_request)
        except Exception as exc:  # a model failure must not take the node down
            response.success = False
            response.message = f"planning failed: {type(exc).__name__}: {exc}"
            self.get_logger().error(response.message)
            return response
        response.success = result.success
        response.message = result.message()
        response.planning_time = result.planning_time
        response.num_valid_candidates = result.selection.num_valid
        if result.success:
            response.trajectory = self._trajectory_msg(result.positions, result.velocities, self.joint_names)
            if plan_request.execute:
                self._start_execution(plan_request, result)
        else:
            self.get_logger().warning(response.message)
        return response

    # -- execution --------------------------------------------------------------------------------------------
    def _trajectory_msg(self, positions: np.ndarray, velocities: np.ndarray, names: list[str]) -> JointTrajectory:
        msg = JointTrajectory(joint_names=list(names))
        dt = self.generator.dt
        for k in range(len(positions)):
            sec, nanosec = divmod(round((k + 1) * dt * 1e9), 1_000_000_000)
            msg.points.append(
                JointTrajectoryPoint(
                    positions=positions[k].tolist(),
                    velocities=velocities[k].tolist(),
                    time_from_start=Duration(sec=sec, nanosec=nanosec),
                )
            )
        return msg

    def _publish(self, positions: np.ndarray, velocities: np.ndarray) -> None:
        half = NUM_ARM_JOINTS
        self._left_pub.publish(self._trajectory_msg(positions[:, :half], velocities[:, :half], self.joint_names[:half]))
        self._right_pub.publish(
            self._trajectory_msg(positions[:, half:], velocities[:, half:], self.joint_names[half:])
        )

    def _start_execution(self, request: PlanRequest, result: PlanResult) -> None:
        if self._execution is not None:
            self._report(self._execution, "preempted", "preempted by a new request")
        self._request_counter += 1
        self._publish(result.positions, result.velocities)
        self._execution = Execution(
            self._request_counter, request, result.positions, result.velocities, self._now(),
            planning_times=[result.planning_time],
        )  # fmt: skip
        self._report(self._execution, "executing", "plan published")

    def _goal_error(self, execution: Execution) -> float:
        state = self._state()
        if state is None:
            return float("inf")
        return float(np.max(np.abs(state.positions - execution.request.goal_positions)))

    def _on_execution_tick(self) -> None:
        execution = self._execution
        if execution is None:
            return
        dt = self.generator.dt
        elapsed = self._now() - execution.published_at
        goal_error = self._goal_error(execution)
        tolerance = float(self._param("goal_tolerance"))
        if goal_error <= tolerance and elapsed >= dt:
            self._finish(execution, "reached", f"goal reached (max joint error {goal_error:.4f} rad)")
        elif self.execution_steps >= len(execution.positions) or execution.final_approach:
            if elapsed > (len(execution.positions) + 10) * dt:
                self._finish(execution, "failed", f"plan ended {goal_error:.4f} rad from the goal")
        elif elapsed >= self.execution_steps * dt:
            if goal_error <= float(self._param("final_approach_distance")):
                # Close to the goal a replan only adds sampling noise; the running plan ends exactly at the goal.
                execution.final_approach = True
                self._report(execution, "executing", f"final approach from {goal_error:.4f} rad")
            elif execution.replans >= int(self._param("max_replans")):
                self._finish(execution, "failed", f"max_replans reached {goal_error:.4f} rad from the goal")
            else:
                self._replan(execution)

    def _replan(self, execution: Execution) -> None:
        state = self._state()
        if state is None or self._now() - state.stamp > float(self._param("joint_states_timeout")):
            self._finish(execution, "failed", "no fresh /joint_states to replan from")
            return
        request = PlanRequest(
            start_positions=state.positions,
            start_velocities=state.velocities,
            goal_positions=execution.request.goal_positions,
            num_samples=execution.request.num_samples,
            integration_steps=execution.request.integration_steps,
            seed=None if execution.request.seed is None else execution.request.seed + execution.replans + 1,
            execute=True,
        )
        # Read the running plan when the new one is ready to replace it, not when planning started.
        running, published_at = (execution.positions, execution.velocities), execution.published_at
        blend_steps = int(self._param("blend_steps"))

        def prefix() -> ContinuationPrefix:
            return running_plan_prefix(*running, self.generator.dt, self._now() - published_at, blend_steps)

        result = self.core.plan(request, prefix=prefix)
        execution.planning_times.append(result.planning_time)
        if not result.success:
            # The running plan was checked when it was published and ends at the goal: keep executing it.
            execution.final_approach = True
            self._report(execution, "executing", f"replan refused ({result.message()}); finishing the running plan")
            return
        self._publish(result.positions, result.velocities)
        execution.positions, execution.velocities = result.positions, result.velocities
        execution.published_at = self._now()
        execution.replans += 1
        self._report(execution, "executing", f"replan {execution.replans}")

    def _finish(self, execution: Execution, state: str, message: str) -> None:
        self._report(execution, state, message)
        if self._execution is execution:
            self._execution = None

    def _report(self, execution: Execution, state: str, message: str) -> None:
        times = execution.planning_times
        self._status_pub.publish(
            PlannerStatus(
                stamp=self.get_clock().now().to_msg(),
                state=state,
                request_id=execution.request_id,
                replans=execution.replans,
                last_planning_time=times[-1] if times else 0.0,
                mean_planning_time=float(np.mean(times)) if times else 0.0,
                goal_error=self._goal_error(execution),
                message=message,
            )
        )
        if state != "executing":
            self.get_logger().info(f"request {execution.request_id}: {state}: {message}")


def main(args: list[str] | None = None) -> int:
    return spin_node_main("planner", PlannerNode, args=args)


if __name__ == "__main__":
    sys.exit(main())

