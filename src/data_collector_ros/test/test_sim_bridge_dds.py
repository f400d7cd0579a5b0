"""The sim_bridge node as a separate process, over real DDS: tracking, replacement, rejections, services, scenes
(obstacles set by parameters, placed in the physics on reset, published latched)."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Duration
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from visualization_msgs.msg import Marker, MarkerArray

from data_collector_ros.sim_bridge import obstacles_from_parameter
from flow_planner_common.arm_kinematics import ee_positions
from flow_planner_common.motion import min_jerk_waypoints
from flow_planner_common.obstacles import MAX_OBSTACLES, Box, ObstacleError
from flow_planner_common.robot import (
    DEFAULT_DT,
    HOME_POSITIONS,
    JOINT_NAMES,
    JOINT_VELOCITY_LIMITS,
    LEFT_ARM_JOINTS,
    RIGHT_ARM_JOINTS,
)
from flow_planner_common.ros_messages import boxes_from_obstacle_array, time_msg
from flow_planner_msgs.msg import ObstacleArray

WORKSPACE = Path(__file__).resolve().parents[3]
BRIDGE = WORKSPACE / "install" / "data_collector_ros" / "lib" / "data_collector_ros" / "sim_bridge"
TRACKING_TOLERANCE = 5e-3  # rad, at the end of a trajectory


@contextlib.contextmanager
def running_bridge(log_path: Path, *parameters: str) -> Iterator[subprocess.Popen]:
    """The bridge process (real_time_factor 2, /clock) with extra `name:=value` parameters; SIGINT at the end."""
    if not BRIDGE.exists():
        pytest.fail(f"{BRIDGE} missing: colcon build the workspace first")
    log = open(log_path, "w+")  # noqa: SIM115 - closed below
    args = [str(BRIDGE), "--ros-args", "-p", "real_time_factor:=2.0", "-p", "publish_clock:=true"]
    for parameter in parameters:
        args += ["-p", parameter]
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=os.environ)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def bridge(ros_domain_id: int, tmp_path: Path):
    with running_bridge(tmp_path / "bridge.log") as process:
        yield process, tmp_path / "bridge.log"


class Client:
    """A test node in its own context: records /joint_states (sim-time stamps), sends trajectories, calls services."""

    def __init__(self, domain_id: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("bridge_test_client", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.samples: list[tuple[float, np.ndarray]] = []
        self.node.create_subscription(JointState, "/joint_states", self._on_state, 100)
        self.pubs = {
            arm: self.node.create_publisher(JointTrajectory, f"/{arm}_arm_controller/joint_trajectory", 10)
            for arm in ("left", "right")
        }

    def _on_state(self, msg: JointState) -> None:
        assert list(msg.name) == list(JOINT_NAMES)
        self.samples.append((msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, np.array(msg.position)))

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.02)

    def wait_for_states(self, timeout: float = 20.0) -> np.ndarray:
        end = time.monotonic() + timeout
        while not self.samples and time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.1)
        assert self.samples, "no /joint_states from the bridge"
        for pub in self.pubs.values():  # the bridge's subscriptions must have matched too
            while pub.get_subscription_count() == 0 and time.monotonic() < end:
                self.executor.spin_once(timeout_sec=0.1)
        return self.samples[-1][1]

    def send(self, arm: str, names, positions, velocities, times, stamp: float = 0.0) -> None:
        msg = JointTrajectory(joint_names=list(names))
        msg.header.stamp = time_msg(stamp)
        for p, v, t in zip(positions, velocities, times, strict=True):
            sec = int(t)
            msg.points.append(
                JointTrajectoryPoint(
                    positions=[float(x) for x in p],
                    velocities=[float(x) for x in v],
                    time_from_start=Duration(sec=sec, nanosec=round((t - sec) * 1e9)),
                )
            )
        self.pubs[arm].publish(msg)

    def send_both(self, positions: np.ndarray, velocities: np.ndarray) -> None:
        times = DEFAULT_DT * np.arange(1, len(positions) + 1)
        self.send("left", LEFT_ARM_JOINTS, positions[:, :6], velocities[:, :6], times)
        self.send("right", RIGHT_ARM_JOINTS, positions[:, 6:], velocities[:, 6:], times)

    def call(self, srv_type, name: str, request):
        client = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=20.0), f"{name} not available"
        future = client.call_async(request)
        self.executor.spin_until_future_complete(future, timeout_sec=20.0)
        assert future.done(), f"{name}: no response"
        return future.result()

    def close(self) -> None:
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def client(ros_domain_id: int):
    c = Client(ros_domain_id)
    yield c
    c.close()


def test_rejects_malformed_then_tracks_and_replaces_without_jump(bridge, client: Client) -> None:
    _, log_path = bridge
    home = client.wait_for_states()
    np.testing.assert_allclose(home, HOME_POSITIONS, atol=2e-3)
    zeros = [[0.0] * 6]
    client.send("left", ["left_bogus_joint", *LEFT_ARM_JOINTS[1:]], zeros, zeros, [0.5])  # wrong names
    client.send("left", LEFT_ARM_JOINTS, [[np.nan] * 6], zeros, [0.5])  # NaN
    client.send("left", LEFT_ARM_JOINTS, [[0.3] * 6] * 2, zeros * 2, [0.5, 0.4])  # times not increasing
    client.send("right", RIGHT_ARM_JOINTS, [[0.3] * 5], [[0.0] * 5], [0.5])  # wrong length
    client.spin_for(1.0)
    np.testing.assert_allclose(client.samples[-1][1], home, atol=2e-3)  # nothing moved
    log = log_path.read_text()
    assert log.count("trajectory rejected") == 4, log
    for reason in ("not this controller", "non-finite", "strictly increasing", "5 positions"):
        assert reason in log

    goal_a = np.array(HOME_POSITIONS) + np.array([0.4, -0.3, 0.3, 0.2, 0.3, 0.5] * 2)
    positions, velocities = min_jerk_waypoints(home, goal_a, DEFAULT_DT)
    client.samples.clear()
    client.send_both(positions, velocities)
    client.spin_for(0.7)  # ~1.4 s of sim time at real_time_factor 2: mid-motion
    mid = client.samples[-1][1]
    assert np.abs(mid - home).max() > 0.05, "the trajectory did not start"
    goal_b = np.array(HOME_POSITIONS) - 0.2
    positions, velocities = min_jerk_waypoints(mid, goal_b, DEFAULT_DT)
    client.send_both(positions, velocities)
    client.spin_for(2.0)  # 60 * 0.05 s = 3 s of sim time + margin
    final = client.samples[-1][1]
    assert np.abs(final - goal_b).max() < TRACKING_TOLERANCE, final - goal_b
    stamps = np.array([t for t, _ in client.samples])
    q = np.stack([p for _, p in client.samples])
    dt = np.diff(stamps)
    assert np.all(dt > 0) and np.median(dt) == pytest.approx(0.01, abs=1e-3)  # 100 Hz of sim time
    speed = np.abs(np.diff(q, axis=0)) / dt[:, None]
    assert speed.max() < 4.0, f"position jump: {speed.max():.2f} rad/s between joint states"


def test_a_stamped_trajectory_starts_at_its_stamp_like_jtc(bridge, client: Client) -> None:
    """header.stamp (sim time here: publish_clock) is when time_from_start counts from, not the receive time; a
    trajectory that ended before now is rejected."""
    _, log_path = bridge
    home = client.wait_for_states()
    client.spin_for(0.6)  # past 1 s of sim time: the stamps below are valid times
    now = client.samples[-1][0]
    target = home[:6] + 0.2
    client.send("left", LEFT_ARM_JOINTS, [target], [[0.0] * 6], [0.5], stamp=now + 1.0)  # starts 1 s from now
    client.send("right", RIGHT_ARM_JOINTS, [home[6:] + 0.2], [[0.0] * 6], [0.5], stamp=now - 1.0)  # ended 0.5 s ago
    client.spin_for(2.0)  # 4 s of sim time at real_time_factor 2
    assert "trajectory ends in the past" in log_path.read_text()
    samples = [(t, q) for t, q in client.samples if t > now]
    moved = [t for t, q in samples if np.abs(q[:6] - home[:6]).max() > 0.01]
    # Hermite from rest to the point at now + 1.5 s: 0.01 rad of 0.2 is passed ~12 % into the 1.5 s segment...
    assert moved and moved[0] > now + 0.1, (moved[:1], now)
    arrived = [t for t, q in samples if np.abs(q[:6] - target).max() < TRACKING_TOLERANCE]
    assert arrived and now + 1.3 < arrived[0] < now + 1.8, (arrived[:1], now)  # ...and it ends at now + 1.5 s
    np.testing.assert_allclose(client.samples[-1][1][6:], home[6:], atol=2e-3)  # the right arm never moved


def test_reset_and_grasp_services(bridge, client: Client) -> None:
    client.wait_for_states()
    grasp = client.call(SetBool, "/sim_bridge/set_grasp", SetBool.Request(data=True))
    assert not grasp.success and "not attached" in grasp.message
    pose = [0.45, 0.05, 0.76, 1.0, 0.0, 0.0, 0.0]
    value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE_ARRAY, double_array_value=pose)
    result = client.call(
        SetParameters,
        "/sim_bridge/set_parameters",
        SetParameters.Request(parameters=[ParameterMsg(name="tray_pose", value=value)]),
    )
    assert result.results[0].successful
    reset = client.call(Trigger, "/sim_bridge/reset", Trigger.Request())
    assert reset.success, reset.message
    from geometry_msgs.msg import PoseStamped

    poses: list[PoseStamped] = []
    client.node.create_subscription(PoseStamped, "/tray_pose", poses.append, 10)
    client.spin_for(0.5)
    assert poses, "no tray pose published"
    p = poses[-1].pose.position
    assert (p.x, p.y) == pytest.approx((0.45, 0.05), abs=2e-3)
    released = client.call(SetBool, "/sim_bridge/set_grasp", SetBool.Request(data=False))
    assert released.success


def measured_speed(client: Client) -> np.ndarray:
    """(T - 1, 12) joint speeds between consecutive /joint_states (sim-time stamps)."""
    stamps = np.array([t for t, _ in client.samples])
    q = np.stack([p for _, p in client.samples])
    return np.abs(np.diff(q, axis=0)) / np.diff(stamps)[:, None]


def test_rejects_trajectory_whose_waypoints_imply_excess_speed(bridge, client: Client) -> None:
    """2 rad at t = 0.05 s with zero velocities written: within every per-point limit, 40 rad/s implied."""
    _, log_path = bridge
    home = client.wait_for_states()
    jump = np.array(HOME_POSITIONS, dtype=float)
    jump[[0, 6]] += 2.0  # shoulder pan of both arms
    zeros = [[0.0] * 6]
    client.samples.clear()
    client.send("left", LEFT_ARM_JOINTS, [jump[:6]], zeros, [DEFAULT_DT])
    client.send("right", RIGHT_ARM_JOINTS, [jump[6:]], zeros, [DEFAULT_DT])
    client.spin_for(1.0)  # ~2 s of sim time
    q = np.stack([p for _, p in client.samples])
    assert len(q) > 50, "too few joint states"
    np.testing.assert_allclose(q, np.broadcast_to(home, q.shape), atol=2e-3)  # nothing moved, ever
    assert measured_speed(client).max() < 0.1
    log = log_path.read_text()
    assert log.count("implied speed") == 2, log
    for side in ("left", "right"):
        assert f"{side} arm trajectory rejected: implied speed" in log

    goal = np.array(HOME_POSITIONS) + np.array([0.4, -0.3, 0.3, 0.2, 0.3, 0.5] * 2)
    positions, velocities = min_jerk_waypoints(home, goal, DEFAULT_DT)
    client.samples.clear()
    client.send_both(positions, velocities)
    client.spin_for(2.5)  # 3 s of sim time + margin
    final = client.samples[-1][1]
    assert np.abs(final - goal).max() < TRACKING_TOLERANCE, final - goal
    speed = measured_speed(client)
    assert np.all(speed < JOINT_VELOCITY_LIMITS), f"measured {speed.max():.2f} rad/s"
    assert "implied speed" not in log_path.read_text()[len(log):]


@pytest.mark.parametrize("value", ["5.0", "-0.1"])
def test_out_of_range_speed_margin_is_one_line(ros_domain_id: int, value: str) -> None:
    args = [str(BRIDGE), "--ros-args", "-p", f"implied_speed_margin:={value}"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, env=os.environ)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("sim_bridge: cannot start")]
    assert len(lines) == 1 and "implied_speed_margin out of range" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------------------------------ scenes
#: A box under the left end effector (home: (0.49, 0.48, 1.12)), clear of the arm, the tray and its handles.
BLOCK = Box((0.52, 0.50, 0.90), (0.2, 0.12, 0.24), 0.0)
#: Two boxes of another scene: a yawed post beside the right arm and a wall in front of the tray.
SCENE = (Box((0.75, -0.45, 0.85), (0.06, 0.06, 0.2), 0.3), Box((0.8, 0.0, 0.85), (0.05, 0.6, 0.2), 0.0))
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


def flat(boxes) -> list[float]:
    return [float(v) for box in boxes for v in box.as_array()]


def set_parameters(client: Client, **values: list[float]) -> list:
    """SetParameters on the bridge (double arrays); the per-parameter results."""
    parameters = [
        ParameterMsg(name=name, value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE_ARRAY, double_array_value=v))
        for name, v in values.items()
    ]
    response = client.call(SetParameters, "/sim_bridge/set_parameters", SetParameters.Request(parameters=parameters))
    return list(response.results)


def latched_scene(client: Client, timeout: float = 10.0) -> tuple[ObstacleArray, MarkerArray]:
    """The scene as a subscriber that joins now receives it (transient local): a fresh subscription each call."""
    got: dict[str, object] = {}
    subs = [
        client.node.create_subscription(ObstacleArray, "/scene/obstacles", lambda m: got.update(obstacles=m), LATCHED),
        client.node.create_subscription(MarkerArray, "/scene/markers", lambda m: got.update(markers=m), LATCHED),
    ]
    end = time.monotonic() + timeout
    while len(got) < 2 and time.monotonic() < end:
        client.executor.spin_once(timeout_sec=0.05)
    for sub in subs:
        client.node.destroy_subscription(sub)
    assert len(got) == 2, f"latched scene not received (got {sorted(got)})"
    return got["obstacles"], got["markers"]


def assert_scene(client: Client, boxes) -> None:
    obstacles, markers = latched_scene(client)
    assert obstacles.header.frame_id == "world"
    assert [o.id for o in obstacles.obstacles] == [f"box_{i}" for i in range(len(boxes))]
    got = boxes_from_obstacle_array(obstacles, frame_id="world")
    np.testing.assert_allclose(flat(got), flat(boxes), atol=1e-9)
    assert markers.markers[0].action == Marker.DELETEALL
    cubes = markers.markers[1:]
    assert [m.type for m in cubes] == [Marker.CUBE] * len(boxes) and [m.id for m in cubes] == list(range(len(boxes)))
    for cube, box in zip(cubes, boxes, strict=True):
        assert cube.header.frame_id == "world"
        assert (cube.scale.x, cube.scale.y, cube.scale.z) == pytest.approx(box.size)
        assert (cube.pose.position.x, cube.pose.position.y, cube.pose.position.z) == pytest.approx(box.center)


def reset(client: Client) -> Trigger.Response:
    return client.call(Trigger, "/sim_bridge/reset", Trigger.Request())


def test_resets_into_a_given_scene_and_publishes_it_latched(ros_domain_id: int, tmp_path: Path) -> None:
    from geometry_msgs.msg import PoseStamped

    with running_bridge(tmp_path / "bridge.log", f"obstacles:={flat([BLOCK])}"):
        client = Client(ros_domain_id)
        try:
            client.wait_for_states()
            assert_scene(client, [BLOCK])  # the start-up scene, from the parameter
            pose = [0.45, 0.05, 0.76, math.cos(0.2), 0.0, 0.0, math.sin(0.2)]
            results = set_parameters(client, obstacles=flat(SCENE), tray_pose=pose)
            assert all(r.successful for r in results), results
            response = reset(client)
            assert response.success and "2 obstacles" in response.message, response.message
            assert_scene(client, SCENE)  # subscribers created after the reset still get it
            poses: list[PoseStamped] = []
            client.node.create_subscription(PoseStamped, "/tray_pose", poses.append, 10)
            client.spin_for(0.5)
            p, q = poses[-1].pose.position, poses[-1].pose.orientation
            assert (p.x, p.y) == pytest.approx((0.45, 0.05), abs=2e-3)
            assert 2 * math.atan2(q.z, q.w) == pytest.approx(0.4, abs=0.01)
            assert set_parameters(client, obstacles=[])[0].successful  # empty = no obstacles
            assert reset(client).success
            obstacles, markers = latched_scene(client)
            assert obstacles.obstacles == [] and [m.action for m in markers.markers] == [Marker.DELETEALL]
        finally:
            client.close()


def test_a_box_in_the_scene_stops_the_arm(bridge, client: Client) -> None:
    """The left arm lowers its end effector through BLOCK: with the box placed it stops on top (contact), without
    it the same trajectory arrives."""
    assert set_parameters(client, obstacles=flat([BLOCK]))[0].successful
    assert reset(client).success
    home = client.wait_for_states()
    goal = home.copy()
    goal[1] += 0.4  # left shoulder lift: end effector from z 1.12 down to 0.91, the box top is at 1.02
    positions, velocities = min_jerk_waypoints(home[:6], goal[:6], DEFAULT_DT)
    times = DEFAULT_DT * np.arange(1, len(positions) + 1)
    client.send("left", LEFT_ARM_JOINTS, positions, velocities, times)
    client.spin_for(times[-1] / 2 + 0.8)  # real_time_factor 2
    blocked = client.samples[-1][1]
    assert np.abs(blocked - goal).max() > 0.1, "the arm passed through the box"
    ee_z = ee_positions(blocked[None])[0, 0, 2]
    assert ee_z > BLOCK.center[2] + BLOCK.size[2] / 2 - 0.03, f"end effector at z {ee_z:.3f} went into the box"

    assert set_parameters(client, obstacles=[])[0].successful
    assert reset(client).success
    client.spin_for(0.3)
    client.samples.clear()
    client.send("left", LEFT_ARM_JOINTS, positions, velocities, times)
    client.spin_for(times[-1] / 2 + 0.8)
    assert np.abs(client.samples[-1][1] - goal).max() < TRACKING_TOLERANCE


def test_bad_scenes_are_refused_with_one_reason(bridge, client: Client) -> None:
    _, log_path = bridge
    client.wait_for_states()
    assert set_parameters(client, obstacles=flat([BLOCK]))[0].successful
    assert reset(client).success
    cases = {
        "nan": ([math.nan, *flat([BLOCK])[1:]], "non-finite"),
        "8 values": ([*flat([BLOCK]), 0.1], "7 values per box"),
        "5 boxes": (flat([BLOCK] * (MAX_OBSTACLES + 1)), f"5 boxes, at most {MAX_OBSTACLES}"),
        "negative size": ([*flat([BLOCK])[:3], 0.1, -0.1, 0.1, 0.0], "edge lengths must be in"),
    }
    for name, (value, reason) in cases.items():
        (result,) = set_parameters(client, obstacles=value)
        assert not result.successful and reason in result.reason and "\n" not in result.reason, (name, result)
    (result,) = set_parameters(client, tray_pose=[0.5, 0.0, math.nan, 1.0, 0.0, 0.0, 0.0])
    assert not result.successful and "finite" in result.reason
    # A valid box on the tray: accepted as a value, refused by the reset, which changes nothing.
    assert set_parameters(client, obstacles=[0.5, 0.0, 0.8, 0.1, 0.1, 0.1, 0.0])[0].successful
    response = reset(client)
    assert not response.success and "starts in collision" in response.message and "tray" in response.message
    assert_scene(client, [BLOCK])  # still the last good scene
    assert reset(client).success is False  # the parameter still holds the bad scene
    assert set_parameters(client, obstacles=flat(SCENE))[0].successful
    assert reset(client).success  # alive and working
    assert_scene(client, SCENE)
    log = log_path.read_text()
    assert log.count("parameter obstacles refused") == len(cases) and "Traceback" not in log, log


@pytest.mark.parametrize(
    ("value", "reason"),
    [("[0.5, 0.0, 0.9, 0.1, 0.1, 0.1]", "7 values per box"), ("[0.5, 0.0, 0.76, 0.2, 0.2, 0.2, 0.0]", "collision")],
)
def test_bad_start_up_scene_is_one_line(ros_domain_id: int, value: str, reason: str) -> None:
    args = [str(BRIDGE), "--ros-args", "-p", f"obstacles:={value}"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, env=os.environ)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("sim_bridge: cannot start")]
    assert len(lines) == 1 and reason in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("boxes", "list of numbers"),
        ([True] * 7, "must be numbers"),
        ([0.5, 0.0, 0.9, 0.1, 0.1, 0.1], "7 values per box"),
        ([0.5, 0.0, 0.9, 0.1, 0.1, 0.1, math.inf], "box 0: non-finite"),
        (flat([BLOCK] * 5), "5 boxes"),
        ([*flat([BLOCK]), 0.5, 0.0, 0.9, 0.1, 0.0, 0.1, 0.0], "box 1: box edge lengths"),
    ],
)
def test_obstacles_parameter_parsing(value, reason: str) -> None:
    with pytest.raises(ObstacleError, match=reason):
        obstacles_from_parameter(value)


def test_obstacles_parameter_empty_and_integers() -> None:
    assert obstacles_from_parameter(None) == obstacles_from_parameter([]) == ()
    (box,) = obstacles_from_parameter([1, 0, 1, 1, 1, 1, 0])
    assert box == Box((1.0, 0.0, 1.0), (1.0, 1.0, 1.0), 0.0)
