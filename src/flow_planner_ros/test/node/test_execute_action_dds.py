"""The ExecutePlan action of the planner node as a separate process over real DDS, the real MuJoCo bridge as the
arm controllers: feedback until the goal is reached, the plan's end-effector markers, and a cancel that stops the
moving arm smoothly (a decelerating stop from where it is, never a jump) and is reported canceled."""

from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path

import numpy as np
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from visualization_msgs.msg import Marker, MarkerArray

from flow_planner_common.arm_kinematics import ee_positions
from flow_planner_common.robot import DEFAULT_DT, HORIZON, JOINT_VELOCITY_LIMITS
from flow_planner_msgs.action import ExecutePlan

# The planner DDS tests' helpers (their fixtures checkpoint, start_process, client are in conftest.py).
_spec = importlib.util.spec_from_file_location("planner_node_dds", Path(__file__).with_name("test_planner_node_dds.py"))
_dds = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_dds)
BRIDGE, PLANNER, GOAL_OFFSET, REACH_TOLERANCE = _dds.BRIDGE, _dds.PLANNER, _dds.GOAL_OFFSET, _dds.REACH_TOLERANCE


class ActionUser:
    """An ExecutePlan client on the test client's node, recording feedback and the planner's markers."""

    def __init__(self, client) -> None:
        self.client = client
        self.feedback: list[ExecutePlan.Feedback] = []
        self.markers: list[MarkerArray] = []
        self.lock = threading.Lock()
        self.action = ActionClient(client.node, ExecutePlan, "/flow_planner/execute")
        latched = QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
        )
        client.node.create_subscription(MarkerArray, "/flow_planner/markers", self._on_markers, latched)

    def _on_markers(self, msg: MarkerArray) -> None:
        with self.lock:
            self.markers.append(msg)

    def _on_feedback(self, msg) -> None:
        with self.lock:
            self.feedback.append(msg.feedback)

    @staticmethod
    def wait(future, timeout: float):
        end = time.monotonic() + timeout
        while not future.done():
            assert time.monotonic() < end, "no answer from the action server"
            time.sleep(0.01)
        return future.result()

    def send(self, goal_positions: np.ndarray, seed: int):
        assert self.action.wait_for_server(timeout_sec=30), "no /flow_planner/execute action server"
        goal = ExecutePlan.Goal(goal_positions=list(goal_positions), num_samples=8, seed=seed)
        handle = self.wait(self.action.send_goal_async(goal, feedback_callback=self._on_feedback), 30)
        assert handle.accepted
        return handle


def test_execute_action_reaches_the_goal_with_feedback_and_markers(checkpoint, start_process, client) -> None:
    start_process(BRIDGE, "-p", "real_time_factor:=1.0")
    planner = start_process(PLANNER, *_dds.planner_args(checkpoint, "-p", "execution_steps:=15"))
    client.wait_for_service(planner)
    user = ActionUser(client)
    start = client.wait_for_states()
    goal = start + GOAL_OFFSET
    client.wait_until_planner_has_states(goal)
    handle = user.send(goal, seed=3)
    answer = user.wait(handle.get_result_async(), 60)
    result = answer.result
    assert answer.status == GoalStatus.STATUS_SUCCEEDED, result.message
    assert result.success and result.outcome == "reached", result.message
    assert result.replans >= 2 and result.goal_error < REACH_TOLERANCE
    assert 2.0 < result.duration < 30.0 and result.path_length > 0.5 * np.sum(np.abs(GOAL_OFFSET))
    assert len(result.last_trajectory.points) == HORIZON
    with client.lock:
        final = client.states[-1][1]
    assert np.max(np.abs(final - goal)) < REACH_TOLERANCE
    with user.lock:
        feedback, markers = list(user.feedback), list(user.markers)
    assert feedback[0].phase == "planning"
    running = [f for f in feedback if f.phase in ("executing", "final_approach")]
    assert len(running) >= 10, [f.phase for f in feedback]
    assert max(f.replans for f in running) >= 2 and all(f.time_left >= 0 for f in running)
    errors = [f.goal_error for f in running]
    assert errors[-1] < 0.5 * errors[0], errors
    # Markers: the two end-effector paths of each plan (60 points) ending at the goal's end-effector positions.
    assert markers, "no MarkerArray on /flow_planner/markers"
    paths = [m for m in markers[-1].markers if m.type == Marker.LINE_STRIP]
    assert len(paths) == 2 and all(len(p.points) == HORIZON for p in paths)
    assert {m.header.frame_id for m in markers[-1].markers} == {"world"}
    ends = np.array([[p.points[-1].x, p.points[-1].y, p.points[-1].z] for p in paths])
    assert np.max(np.abs(ends - ee_positions(goal[None])[0])) < 0.05


def test_canceling_stops_the_moving_arm_smoothly(checkpoint, start_process, client) -> None:
    start_process(BRIDGE, "-p", "real_time_factor:=1.0")
    planner = start_process(PLANNER, *_dds.planner_args(checkpoint, "-p", "stop_deceleration:=2.0"))
    client.wait_for_service(planner)
    user = ActionUser(client)
    start = client.wait_for_states()
    goal = start + GOAL_OFFSET
    client.wait_until_planner_has_states(goal)
    handle = user.send(goal, seed=7)
    time.sleep(1.2)  # mid-motion
    with client.lock:
        cancel_at = time.monotonic()
        moving_speed = client.speeds[-1]
    assert moving_speed > 0.05, "the arm should be moving when the goal is canceled"
    cancel = user.wait(handle.cancel_goal_async(), 10)
    assert len(cancel.goals_canceling) == 1
    answer = user.wait(handle.get_result_async(), 30)
    assert answer.status == GoalStatus.STATUS_CANCELED, answer.result.message
    assert answer.result.outcome == "canceled" and not answer.result.success
    time.sleep(0.5)
    with client.lock:
        states = [(t, q) for t, q in client.states]
        speeds = list(client.speeds)
        statuses = [s.state for s in client.statuses]
    assert "canceled" in statuses
    after = [q for t, q in states if t >= cancel_at]
    assert np.max(np.abs(after[-1] - goal)) > 0.05, "the arm went on to the goal instead of stopping"
    assert speeds[-1] < 0.01, f"still moving at {speeds[-1]:.3f} rad/s"
    # No jump: measured joint steps stay within what the motion's own speed allows, before and after the cancel.
    steps = np.max(np.abs(np.diff(np.array([q for _, q in states]), axis=0)), axis=1)
    assert steps.max() < 2.0 * max(speeds) / 100.0 + 1e-4, (steps.max(), max(speeds))
    assert max(speeds) < 1.5 * moving_speed + 0.1
    # The stop trajectory: at rest at its end, within the velocity limits, speed never increasing.
    stop = answer.result.last_trajectory
    velocities = np.array([p.velocities for p in stop.points])
    assert len(stop.points) >= 2 and not velocities[-1].any()
    assert np.all(np.abs(velocities) <= JOINT_VELOCITY_LIMITS)
    assert np.all(np.diff(np.max(np.abs(velocities), axis=1)) <= 1e-9)
    times = [p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in stop.points]
    np.testing.assert_allclose(times, DEFAULT_DT * np.arange(1, len(times) + 1), atol=1e-9)
