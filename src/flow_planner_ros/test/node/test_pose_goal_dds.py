"""Goals as tray poses (`target_tray_pose`) through the planner node over real DDS, with the shipped checkpoint: a
pose read from the simulation's /tray_pose is planned (service) and executed (ExecutePlan action, receding horizon)
through the real MuJoCo bridge until the end effectors are at the tray's handles in the physics; poses out of reach
and malformed poses are refused with their reason (service: success=false; action: outcome "refused") and the node
keeps serving.

The fixtures (start_process, client) are conftest.py's; its trained `checkpoint` is not used (the shipped
default checkpoint plans these reaches), so nothing is trained here."""

from __future__ import annotations

import importlib.util
import math
import time
from pathlib import Path

import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from geometry_msgs.msg import Pose, PoseStamped
from rclpy.action import ActionClient

from flow_planner_common.ros_messages import pose_values
from flow_planner_common.tray_ik import TrayIK
from flow_planner_msgs.action import ExecutePlan


def _load(name: str, folder: Path = Path(__file__).parent):
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_dds = _load("test_planner_node_dds")
scenes = _load("scenes_for_tests", Path(__file__).parents[1])
PLANNER = _dds.PLANNER
#: End effectors at the handles in the physics after the motion (m): the IK's 0.5 mm plus the controllers' tracking.
HANDLE_TOLERANCE = 0.002


def pose_msg(values) -> Pose:
    """A geometry_msgs/Pose from [x y z qw qx qy qz]."""
    x, y, z, qw, qx, qy, qz = (float(v) for v in values)
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = x, y, z
    pose.orientation.w, pose.orientation.x, pose.orientation.y, pose.orientation.z = qw, qx, qy, qz
    return pose


def wait_for(future, timeout: float):
    end = time.monotonic() + timeout
    while not future.done():
        assert time.monotonic() < end, "no answer in time"
        time.sleep(0.01)
    return future.result()


def execute(client, goal: ExecutePlan.Goal, timeout: float = 60.0):
    """Send an ExecutePlan goal; its final (status, result)."""
    action = ActionClient(client.node, ExecutePlan, "/flow_planner/execute")
    assert action.wait_for_server(timeout_sec=30), "no /flow_planner/execute action server"
    handle = wait_for(action.send_goal_async(goal), 30)
    assert handle.accepted
    answer = wait_for(handle.get_result_async(), timeout)
    return answer.status, answer.result


@pytest.fixture
def bridge(ros_domain_id: int):
    """The MuJoCo bridge in this process (to read the end effector and handle sites), on the barrier scene
    (config/eval_scenes.yaml episode 0: a wall beyond the resting tray)."""
    with _dds.bridge_in_process(ros_domain_id, scenes.BARRIER_TRAY, scenes.BARRIER) as node:
        yield node


def test_a_pose_goal_is_planned_and_executed_to_the_handles_of_the_tray(start_process, client, bridge) -> None:
    # the shipped checkpoint; /scene/obstacles (the wall) from the bridge; receding horizon: replans keep the goal
    planner = start_process(PLANNER, "-p", "execution_steps:=20")
    client.wait_for_service(planner)
    poses: list[PoseStamped] = []
    client.node.create_subscription(PoseStamped, "/tray_pose", poses.append, 10)
    end = time.monotonic() + 10
    while not poses:
        assert time.monotonic() < end, "no /tray_pose from the bridge"
        time.sleep(0.05)
    tray = poses[-1].pose  # where the simulation has the tray (settled on the table): the goal is its handles

    # Dry run (service): the pose becomes the joint goal the collector's MuJoCo IK found for this scene.
    end = time.monotonic() + 20
    while "scene: 1 box" not in (response := client.plan(target_tray_pose=tray, num_samples=8, seed=0)).message:
        assert time.monotonic() < end, response.message  # until the planner has /joint_states and the scene
        time.sleep(0.1)
    assert response.success, response.message
    final = np.array(response.trajectory.points[-1].positions)
    np.testing.assert_allclose(final, scenes.BARRIER_REACH, atol=5e-3)

    with bridge.lock:
        bridge.sim.reset_stats()
    status, result = execute(client, ExecutePlan.Goal(target_tray_pose=tray, num_samples=8, seed=0))
    assert status == GoalStatus.STATUS_SUCCEEDED and result.outcome == "reached", result.message
    assert result.replans >= 1  # every replan planned to the resolved joint goal
    end = time.monotonic() + 5
    while True:  # the plan runs to its end (the goal) after "reached" (within goal_tolerance)
        with bridge.lock:
            if bridge.sim.trajectory_time_left() <= 0.0:
                break
        assert time.monotonic() < end, "the plan did not end"
        time.sleep(0.05)
    time.sleep(0.2)  # settled
    with bridge.lock:
        ee, handles, stats = bridge.sim.ee_poses()[0], bridge.sim.handle_positions(), bridge.sim.stats
    distance = np.linalg.norm(ee - handles, axis=-1)
    assert np.all(distance < HANDLE_TOLERANCE), distance
    assert not stats.arm_obstacle_contact and not stats.arm_arm_contact and not stats.arm_env_contact
    # the handles are where the request's pose puts them (the planner's geometry = the physics')
    targets, _ = TrayIK().reach_targets(pose_values(tray))
    np.testing.assert_allclose(handles, targets, atol=1e-3)
    print(f"end effectors {np.round(distance * 1e3, 2)} mm from the handles; {result.replans} replans")


def test_poses_out_of_reach_or_malformed_are_refused_with_their_reason(start_process, client) -> None:
    planner = start_process(PLANNER)
    client.wait_for_service(planner)
    home = {"start_positions": list(scenes.HOME), "num_samples": 4, "seed": 0}
    tray = np.array([0.5, 0.0, 0.76, 1.0, 0.0, 0.0, 0.0])
    zero = Pose()
    zero.orientation.w = 0.0  # all zeros: not given
    nan, half, tilted, far, beyond = (tray.copy() for _ in range(5))
    nan[1] = math.nan
    half[3] = 0.5
    tilted[3:] = (math.cos(math.radians(2.5)), math.sin(math.radians(2.5)), 0.0, 0.0)  # 5 degrees of roll
    far[0], beyond[0] = 1.3, 2.5
    carrying = {"carrying_tray": True, "tray_pose": pose_msg(tray)}
    refused = {
        "cannot reach the handles of a tray at target_tray_pose: no inverse kinematics solution: the best of 8 "
        "attempts leaves an end effector": {"target_tray_pose": pose_msg(far)},
        "the left end effector's target is 2.50 m from its shoulder, beyond the arm's reach (1.42 m)": {
            "target_tray_pose": pose_msg(beyond)},
        "target_tray_pose must be 7 finite numbers": {"target_tray_pose": pose_msg(nan)},
        "no goal given: set goal_positions (12 values) or target_tray_pose": {"target_tray_pose": zero},
        "target_tray_pose orientation must be a unit quaternion (norm within 0.01 of 1), got norm 0.5": {
            "target_tray_pose": pose_msg(half)},
        "both goal_positions and target_tray_pose are given: give one": {
            "target_tray_pose": pose_msg(tray), "goal_positions": list(scenes.HOME)},
        "target_tray_pose is tilted 5.0 degrees from level; a carried tray is kept level (at most 1 degrees)": {
            "target_tray_pose": pose_msg(tilted), **carrying},
    }  # fmt: skip
    for reason, fields in refused.items():
        response = client.plan(**{**home, **fields})
        assert not response.success and reason in response.message, (reason, response.message)
        assert len(response.trajectory.points) == 0
    # The action refuses the same way (its own pose check comes before the start state's: no /joint_states here).
    status, result = execute(client, ExecutePlan.Goal(target_tray_pose=pose_msg(half)))
    assert status == GoalStatus.STATUS_ABORTED and result.outcome == "refused"
    assert "target_tray_pose orientation must be a unit quaternion" in result.message, result.message
    # Still serving, and the same pose level and in reach is planned.
    response = client.plan(**home, target_tray_pose=pose_msg(tray))
    assert response.success and planner.popen.poll() is None, response.message
