"""The scene-aware planner node over real DDS with the shipped (scene-blind) checkpoint: bad scenes are refused with
their reason and the node keeps serving; /scene/obstacles (latched) and the request's boxes are planned against
together; a request whose every candidate collides is refused and nothing reaches the controllers; and through the
real MuJoCo bridge, on a held-out scene where the straight reach hits a box, the executed plan touches no box."""

from __future__ import annotations

import importlib.util
import math
import time
from pathlib import Path

import numpy as np
import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from shape_msgs.msg import SolidPrimitive

from flow_planner_common.motion import reference_trajectory
from flow_planner_common.obstacles import Box
from flow_planner_common.robot import DEFAULT_DT, JOINT_NAMES, NUM_JOINTS
from flow_planner_common.ros_messages import arm_trajectories, obstacle_array
from flow_planner_common.service_calls import call_until_answered
from flow_planner_msgs.msg import Obstacle, ObstacleArray
from flow_planner_msgs.srv import PlanTrajectory


def _load(name: str, folder: Path = Path(__file__).parent):
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_dds = _load("test_planner_node_dds")
scenes = _load("scenes_for_tests", Path(__file__).parents[1])
PLANNER = _dds.PLANNER
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
FAR_BOX = Box((-0.6, 0.0, 1.0), (0.1, 0.1, 0.1))  # behind the robot, touched by nothing


def obstacles(*boxes: Box) -> list[Obstacle]:
    return list(obstacle_array(boxes, "world").obstacles)


def scene_message(*boxes: Box, frame_id: str = "world") -> ObstacleArray:
    return obstacle_array(boxes, frame_id)


def reach_request(**fields) -> dict:
    return {"start_positions": list(scenes.HOME), "goal_positions": list(scenes.HANDLE_BOX_REACH), "num_samples": 8,
            "seed": 0, **fields}  # fmt: skip


def plan_until(client, predicate, timeout: float = 20.0, **fields) -> PlanTrajectory.Response:
    """Repeat a request until its response satisfies `predicate` (the planner reads a latched topic in its own time)."""
    end = time.monotonic() + timeout
    while not predicate(response := client.plan(**fields)):
        assert time.monotonic() < end, response.message
        time.sleep(0.1)
    return response


def set_planner_parameter(client, name: str, value: int) -> None:
    service = client.node.create_client(SetParameters, "/flow_planner/set_parameters")
    value_msg = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
    request = SetParameters.Request(parameters=[ParameterMsg(name=name, value=value_msg)])
    result = call_until_answered(service, request, timeout=30.0).results[0]  # setting it twice is harmless
    assert result.successful, result.reason


def test_bad_scenes_are_refused_and_the_topic_and_request_boxes_are_planned_against(start_process, client) -> None:
    planner = start_process(PLANNER, "-p", "refine_iterations:=0")
    client.wait_for_service(planner)
    scene_pub = client.node.create_publisher(ObstacleArray, "/scene/obstacles", LATCHED)

    good = client.plan(**reach_request())
    assert good.success and good.message.endswith("scene: 0 boxes"), good.message

    sphere = obstacles(FAR_BOX)[0]
    sphere.shape = SolidPrimitive(type=SolidPrimitive.SPHERE, dimensions=[0.1])
    nan_pose, zero_size, tilted = (obstacles(FAR_BOX)[0] for _ in range(3))
    nan_pose.pose.position.y = math.nan
    zero_size.shape.dimensions = [0.1, 0.0, 0.1]
    tilted.pose.orientation.w, tilted.pose.orientation.x = math.cos(0.2), math.sin(0.2)
    five = obstacles(*(Box((-0.6, 0.0, 0.9 + 0.1 * i), (0.05,) * 3) for i in range(4))) + obstacles(FAR_BOX)
    five[-1].id = "box_4"
    bad_scenes = {
        "only BOX primitives are supported": {"obstacles": [sphere]},
        "non-finite pose or dimensions": {"obstacles": [nan_pose]},
        "edge lengths must be in": {"obstacles": [zero_size]},
        "a box may only be rotated about world z (yaw)": {"obstacles": [tilted]},
        "5 obstacles, at most 4 are supported": {"obstacles": five},
    }
    for reason, fields in bad_scenes.items():
        response = client.plan(**reach_request(**fields))
        assert not response.success and reason in response.message, (reason, response.message)
    bad_tray = PlanTrajectory.Request().tray_pose
    bad_tray.orientation.w = 0.0
    response = client.plan(**reach_request(carrying_tray=True, tray_pose=bad_tray))
    assert not response.success and "tray_pose orientation must be a unit quaternion" in response.message
    bad_tray.orientation.w, bad_tray.position.z = 1.0, math.inf
    response = client.plan(**reach_request(carrying_tray=True, tray_pose=bad_tray))
    assert not response.success and "tray_pose must be 7 finite numbers" in response.message
    assert planner.popen.poll() is None

    # The box on the topic alone: the straight-like samples of the scene-blind model hit it (no refinement here).
    scene_pub.publish(scene_message(scenes.HANDLE_BOX))
    response = plan_until(client, lambda r: "scene: 1 box" in r.message, **reach_request())
    assert not response.success and "arm_obstacle (e.g. clearance -" in response.message, response.message
    # A harmless box on the topic, the colliding one in the request: the union is planned against.
    scene_pub.publish(scene_message(FAR_BOX))
    plan_until(client, lambda r: r.success and "scene: 1 box" in r.message, **reach_request())
    response = client.plan(**reach_request(obstacles=obstacles(scenes.HANDLE_BOX)))
    assert not response.success and "arm_obstacle" in response.message and "scene: 2 boxes" in response.message
    # The same box in both is one box; too many distinct boxes together are refused.
    response = client.plan(**reach_request(obstacles=obstacles(FAR_BOX)))
    assert response.success and "scene: 1 box" in response.message, response.message
    three = [Box((-0.6, 0.3, 0.9 + 0.1 * i), (0.05,) * 3) for i in range(3)]
    response = client.plan(**reach_request(obstacles=obstacles(*three)))
    assert response.success and "scene: 4 boxes" in response.message, response.message  # 3 + 1 = 4 is fine
    response = client.plan(**reach_request(obstacles=obstacles(*three, Box((-0.6, -0.3, 0.9), (0.05,) * 3))))
    assert not response.success and "make 5 distinct boxes; the planner supports at most 4" in response.message
    # An unusable scene message stops planning (never plan as if its boxes were not there) until a good one comes.
    scene_pub.publish(scene_message(FAR_BOX, frame_id="map"))
    response = plan_until(client, lambda r: "unusable" in r.message, **reach_request())
    assert not response.success and "frame 'map', expected 'world'" in response.message
    scene_pub.publish(scene_message())
    response = plan_until(client, lambda r: r.success, **reach_request())
    assert response.message.endswith("scene: 0 boxes") and planner.popen.poll() is None


class StatePublisher:
    """/joint_states at 50 Hz from the test's node: the robot standing at `positions`."""

    def __init__(self, client, positions: np.ndarray) -> None:
        self.msg = JointState(name=list(JOINT_NAMES), position=list(positions), velocity=[0.0] * NUM_JOINTS)
        self.pub = client.node.create_publisher(JointState, "/joint_states", 10)
        self.timer = client.node.create_timer(0.02, lambda: self.pub.publish(self.msg))


def test_when_every_candidate_collides_the_request_fails_and_nothing_is_published(start_process, client) -> None:
    planner = start_process(PLANNER, "-p", "refine_iterations:=0")
    client.wait_for_service(planner)
    StatePublisher(client, scenes.BARRIER_REACH)  # the arms at the grasp of the barrier scene's tray
    tray = PlanTrajectory.Request().tray_pose
    x, y, z, qw, qx, qy, qz = (float(v) for v in scenes.BARRIER_TRAY)
    tray.position.x, tray.position.y, tray.position.z = x, y, z
    tray.orientation.w, tray.orientation.x, tray.orientation.y, tray.orientation.z = qw, qx, qy, qz
    carry = {"goal_positions": list(scenes.BARRIER_CARRY), "num_samples": 8, "seed": 0, "execute": True,
             "obstacles": obstacles(scenes.BARRIER), "carrying_tray": True, "tray_pose": tray}  # fmt: skip
    response = plan_until(client, lambda r: "no /joint_states" not in r.message, **carry)
    assert not response.success and "tray_obstacle (e.g. clearance -" in response.message, response.message
    assert "scene: 1 box, carried tray" in response.message
    time.sleep(0.5)
    with client.lock:
        assert client.commands == []  # the controllers' topics are listened to (see the end): nothing was sent
    set_planner_parameter(client, "refine_iterations", 3)
    response = client.plan(**carry)
    if not response.success:  # the refinement could not bend the carry over this wall either: still nothing sent
        assert "nor among 6 refined candidates" in response.message, response.message
        time.sleep(0.5)
        with client.lock:
            assert client.commands == []
    else:  # the shipped model's samples seeded a refinement that clears the wall: what was published is clear
        assert response.message.startswith("ok after refinement: no safe sample among 8"), response.message
        from flow_planner_common.plan_scene import PlanScene
        from flow_planner_common.scene_safety import SceneSafety

        safety = SceneSafety()  # the planner's default clearance_margin
        scene = PlanScene.from_boxes([scenes.BARRIER], safety.checker.grasp_from_start(scenes.BARRIER_REACH,
                                                                                         scenes.BARRIER_TRAY))
        published = np.array([p.positions for p in response.trajectory.points])[None]
        assert safety.check(published, scenes.BARRIER_REACH, scenes.BARRIER_CARRY, scene).passed[0]
    # The same motion without the wall and the tray passes and is published (the topics are listened to).
    response = client.plan(goal_positions=list(scenes.BARRIER_CARRY), num_samples=8, execute=True, seed=0)
    assert response.success, response.message
    end = time.monotonic() + 5.0
    while len(client.commands) < 2:
        assert time.monotonic() < end, "the safe plan was not received"
        time.sleep(0.05)


@pytest.fixture
def bridge(ros_domain_id: int):
    """The MuJoCo bridge in this process (to read its contact monitor), on the handle_box scene."""
    with _dds.bridge_in_process(ros_domain_id, scenes.HANDLE_BOX_TRAY, scenes.HANDLE_BOX) as node:
        yield node


def test_the_executed_plan_avoids_the_box_the_straight_reach_hits(start_process, client, bridge) -> None:
    planner = start_process(PLANNER)  # defaults: /scene/obstacles from the bridge, refinement on
    client.wait_for_service(planner)
    goal = scenes.HANDLE_BOX_REACH
    response = plan_until(client, lambda r: "scene: 1 box" in r.message, goal_positions=list(goal), seed=0)
    with bridge.lock:
        bridge.sim.reset_stats()
    response = client.plan(goal_positions=list(goal), num_samples=8, seed=0, execute=True)
    assert response.success and "after refinement" in response.message, response.message
    end = time.monotonic() + 30.0
    while time.monotonic() < end:
        with client.lock:
            if any(s.state in ("reached", "failed") for s in client.statuses):
                break
        time.sleep(0.1)
    with client.lock:
        final = [s for s in client.statuses if s.state in ("reached", "failed")]
    assert final and final[0].state == "reached", final
    with bridge.lock:
        stats = bridge.sim.stats
        assert not stats.arm_obstacle_contact and not stats.tray_obstacle_contact
        assert not stats.arm_arm_contact and not stats.arm_env_contact
        # The straight reach, executed the same way, does hit the box: the scene was worth avoiding.
        bridge.sim.reset(scenes.HANDLE_BOX_TRAY)
        bridge.sim.reset_stats()
    positions, velocities = reference_trajectory(scenes.HOME, np.zeros(NUM_JOINTS), goal, DEFAULT_DT)
    left, right = arm_trajectories(positions, velocities, DEFAULT_DT)
    publishers = [client.node.create_publisher(type(left), f"/{arm}_arm_controller/joint_trajectory", 10)
                  for arm in ("left", "right")]  # fmt: skip
    for publisher, msg in zip(publishers, (left, right), strict=True):
        publisher.publish(msg)
    end = time.monotonic() + 10.0
    while time.monotonic() < end and not bridge.sim.stats.arm_obstacle_contact:
        time.sleep(0.1)
    assert bridge.sim.stats.arm_obstacle_contact


def test_floods_of_bad_scene_messages_and_requests_are_logged_throttled(start_process, client) -> None:
    """10 000 /scene/obstacles messages at 1 kHz, every other one unusable (a quaternion of norm 2, refused like a
    tray pose's), and 300 invalid requests: at most one warning per kind and second (the next one says how many were
    held back), every request still answered with its reason, the last usable scene planned against."""
    planner = start_process(PLANNER)
    client.wait_for_service(planner)
    scene_pub = client.node.create_publisher(ObstacleArray, "/scene/obstacles", LATCHED)
    end = time.monotonic() + 10
    while scene_pub.get_subscription_count() == 0:
        assert time.monotonic() < end, "the planner does not subscribe to /scene/obstacles"
        time.sleep(0.05)
    good, bad = scene_message(FAR_BOX), scene_message(FAR_BOX)
    q = bad.obstacles[0].pose.orientation
    q.w, q.x, q.y, q.z = 2.0 * q.w, 2.0 * q.x, 2.0 * q.y, 2.0 * q.z
    began = time.monotonic()
    for i in range(10_000):
        scene_pub.publish(bad if i % 2 else good)
        time.sleep(max(0.0, began + (i + 1) / 1000 - time.monotonic()))
    futures = [client.plan_client.call_async(PlanTrajectory.Request(goal_positions=[0.0] * 3)) for _ in range(300)]
    end = time.monotonic() + 60
    while not all(f.done() for f in futures):
        assert time.monotonic() < end, f"{sum(f.done() for f in futures)}/300 answered"
        time.sleep(0.05)
    messages = [f.result().message for f in futures]  # beyond max_pending_requests (64): busy
    assert all("goal_positions has 3 values" in m or m.startswith("busy") for m in messages), set(messages)
    duration = time.monotonic() - began
    scene_pub.publish(good)
    plan_until(client, lambda r: r.success and "scene: 1 box" in r.message, **reach_request())
    warnings = [line for line in planner.output().splitlines() if line.startswith("[WARN]")]
    scene = [line for line in warnings if "/scene/obstacles: obstacle 0" in line]
    requests = [line for line in warnings if "invalid request: " in line]
    assert scene and "unit quaternion" in scene[0] and len(scene) <= duration + 2, (len(scene), duration)
    assert any("more like it in the last" in line for line in scene), scene
    assert requests and len(requests) <= duration + 2, (len(requests), duration)
    assert len(warnings) <= 2 * duration + 10, len(warnings)  # was 1 335 for the scene messages alone
    print(f"{len(scene)} scene and {len(requests)} request warnings in {duration:.1f} s")
