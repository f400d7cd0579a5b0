"""What the planner node's DDS tests share (not a test module): the node executables, a process runner, a test
client node spun in its own context, the minimum-jerk data set the tests' checkpoint is trained on, and trajectory
checks. The fixtures built on them (checkpoint, start_process, client) are in this folder's conftest.py, so the
session's checkpoint is trained once for every module."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from flow_planner_common.motion import min_jerk_waypoints
from flow_planner_common.obstacles import Box
from flow_planner_common.robot import DEFAULT_DT, HOME_POSITIONS, HORIZON, JOINT_NAMES, NUM_JOINTS, PHASE_REACH
from flow_planner_common.service_calls import call_until_answered
from flow_planner_common.trajectory_schema import TrajectoryRecord, stack_records, write_dataset
from flow_planner_msgs.msg import PlannerStatus
from flow_planner_msgs.srv import PlanTrajectory

WORKSPACE = Path(__file__).resolve().parents[4]
PLANNER = WORKSPACE / "install" / "flow_planner_ros" / "lib" / "flow_planner_ros" / "planner"
BRIDGE = WORKSPACE / "install" / "data_collector_ros" / "lib" / "data_collector_ros" / "sim_bridge"
GOAL_OFFSET = np.array([0.3, -0.2, 0.25, 0.2, -0.15, 0.1, -0.3, 0.2, -0.25, -0.2, 0.15, -0.1])
#: Receding-horizon execution must end within this max joint error of the goal (rad).
REACH_TOLERANCE = 0.05


def write_min_jerk_dataset(path: Path, episodes: int, seed: int) -> Path:
    """Rest-to-rest minimum-jerk motions around the home pose, in the trajectory schema."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(episodes):
        start = HOME_POSITIONS + rng.uniform(-0.3, 0.3, NUM_JOINTS)
        goal = start + rng.uniform(-0.4, 0.4, NUM_JOINTS)
        positions, velocities = min_jerk_waypoints(start, goal, DEFAULT_DT)
        pose = np.array([0.5, 0.0, 0.76, 1.0, 0.0, 0.0, 0.0])
        records.append(
            TrajectoryRecord(
                positions=positions, velocities=velocities, arms_start=start, arms_start_vel=np.zeros(NUM_JOINTS),
                arms_goal=goal, phase=PHASE_REACH, tray_start_pose=pose, tray_goal_pose=pose, grid_index=i,
                seed=seed, success=True, cost=0.0, dt=DEFAULT_DT,
            )
        )  # fmt: skip
    return write_dataset(path, stack_records(records))


class Process:
    """A node executable run as a child process, its output in a log file."""

    def __init__(self, executable: Path, args: list[str], log_path: Path) -> None:
        assert executable.exists(), f"{executable} missing: colcon build the workspace first"
        self.log_path = log_path
        self._log = open(log_path, "w+")  # noqa: SIM115 - closed in stop()
        command = [str(executable), *args]
        self.popen = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=os.environ)

    def output(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        self._log.close()


class Client:
    """A test node in its own context, spun in a background thread: calls the plan service, records what the
    controllers receive, /joint_states and the planner status."""

    def __init__(self, domain_id: int, name: str = "planner_test_client") -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node(name, context=self.context)
        self.lock = threading.Lock()
        self.states: list[tuple[float, np.ndarray]] = []
        self.speeds: list[float] = []  # max |joint velocity| the simulation measured, per /joint_states
        self.commands: list[tuple[str, float, JointTrajectory]] = []
        self.statuses: list[PlannerStatus] = []
        self.node.create_subscription(JointState, "/joint_states", self._on_state, 100)
        self.node.create_subscription(PlannerStatus, "/flow_planner/status", self._on_status, 100)
        for arm in ("left", "right"):
            self.node.create_subscription(
                JointTrajectory,
                f"/{arm}_arm_controller/joint_trajectory",
                lambda msg, arm=arm: self._on_command(arm, msg),
                10,
            )
        # Deep enough for every response of a burst (a shallow response queue would drop answers client-side).
        self.plan_client = self.node.create_client(
            PlanTrajectory, "/flow_planner/plan", qos_profile=QoSProfile(depth=500)
        )
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        self.process: Process | None = None  # the planner, once wait_for_service has been called

    def _on_state(self, msg: JointState) -> None:
        if list(msg.name) == list(JOINT_NAMES):
            with self.lock:
                self.states.append((time.monotonic(), np.array(msg.position)))
                self.speeds.append(float(np.max(np.abs(msg.velocity))) if len(msg.velocity) else 0.0)

    def _on_status(self, msg: PlannerStatus) -> None:
        with self.lock:
            self.statuses.append(msg)

    def _on_command(self, arm: str, msg: JointTrajectory) -> None:
        with self.lock:
            self.commands.append((arm, time.monotonic(), msg))

    def wait_for_service(self, process: Process, timeout: float = 60.0) -> None:
        """Wait until the planner answers this client (a refused empty request: see service_calls)."""
        self.process = process
        exited = lambda: "it exited" if process.popen.poll() is not None else None  # noqa: E731
        try:
            answer = call_until_answered(self.plan_client, PlanTrajectory.Request(), timeout, why_not=exited)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}:\n{process.output()}") from None
        assert not answer.success, answer.message

    def wait_for_states(self, timeout: float = 30.0) -> np.ndarray:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if self.states:
                    return self.states[-1][1]
            time.sleep(0.05)
        raise AssertionError("no /joint_states")

    def wait_until_planner_has_states(self, goal: np.ndarray, timeout: float = 30.0) -> None:
        """Dry-run requests (execute=false) until the planner itself has a fresh /joint_states."""
        end = time.monotonic() + timeout
        while "no /joint_states" in (response := self.plan(goal_positions=list(goal))).message:
            assert time.monotonic() < end, response.message
            time.sleep(0.2)

    def plan(self, timeout: float = 60.0, **fields) -> PlanTrajectory.Response:
        future = self.plan_client.call_async(PlanTrajectory.Request(**fields))
        end = time.monotonic() + timeout
        while not future.done():
            assert time.monotonic() < end, f"no response from the plan service:\n{self._planner_output()}"
            time.sleep(0.01)
        return future.result()

    def _planner_output(self) -> str:
        return self.process.output() if self.process is not None else "(planner output unknown)"

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
        self.thread.join(timeout=5)


def planner_args(checkpoint: Path, *extra: str) -> list[str]:
    return ["-p", f"checkpoint:={checkpoint}", "-p", "backend:=onnx", *extra]


def assert_valid_trajectory(msg: JointTrajectory, dt: float = DEFAULT_DT) -> None:
    assert list(msg.joint_names) == list(JOINT_NAMES)
    assert len(msg.points) == HORIZON
    times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
    np.testing.assert_allclose(times, dt * np.arange(1, HORIZON + 1), atol=1e-9)
    for point in msg.points:
        assert len(point.positions) == NUM_JOINTS and len(point.velocities) == NUM_JOINTS
        assert np.all(np.isfinite(point.positions)) and np.all(np.isfinite(point.velocities))


@contextmanager
def bridge_in_process(domain_id: int, tray_pose: np.ndarray, box: Box) -> Iterator[Any]:
    """The MuJoCo bridge (data_collector_ros.sim_bridge.SimBridge) spun in this process, in its own context, with
    the tray at `tray_pose` and `box` in its scene: a test can read its simulation (sites, contact monitor)."""
    import data_collector_ros  # noqa: F401  (sets MUJOCO_GL before mujoco is imported)
    from data_collector_ros.sim_bridge import SimBridge

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = SimBridge(
        context=context,
        parameter_overrides=[
            Parameter("tray_pose", value=[float(v) for v in tray_pose]),
            Parameter("obstacles", Parameter.Type.DOUBLE_ARRAY, [float(v) for v in box.as_array()]),
        ],
    )
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield node
    finally:
        node.stop()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        thread.join(timeout=5)

