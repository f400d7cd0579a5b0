"""Goals as tray poses (planning.pose_goal): the real IK (flow_planner_common.tray_ik) and the planner's real clearance
check (scene_safety) turn a target tray pose into a joint goal the pipeline accepts, or refuse it with the reason.

The tray poses are held-out family scenes' (scenes_for_tests: config/eval_scenes.yaml episodes 0 and 3; the carry
target is episode 0's tray goal), whose goals the collector's MuJoCo IK computed: the numpy IK must find the same."""

from __future__ import annotations

import importlib.util
import math
import time
from pathlib import Path

import numpy as np
import pytest

from flow_planner_common.kinematics import quat_to_matrix
from flow_planner_common.obstacles import Box
from flow_planner_common.plan_scene import EMPTY_SCENE, PlanScene, SceneError
from flow_planner_common.robot import JOINT_NAMES, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, NUM_JOINTS
from flow_planner_common.scene_safety import SceneSafety
from flow_planner_ros.planning.pose_goal import PoseGoalError, PoseGoals, pose_given, tilt_degrees
from flow_planner_ros.planning.request import (
    JointStateSample,
    PlanRequestError,
    RequestFields,
    RequestPolicy,
    validate_plan_request,
)

_spec = importlib.util.spec_from_file_location("scenes_for_tests", Path(__file__).parents[1] / "scenes_for_tests.py")
scenes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scenes)

#: config/eval_scenes.yaml episode 0 (barrier): the tray's goal, level, above the wall.
BARRIER_GOAL_TRAY = np.array([0.625714, 0.125656, 0.914285, math.cos(0.155077), 0.0, 0.0, math.sin(0.155077)])
#: The bridge's default tray pose (resting on the table in front of the robot).
DEFAULT_TRAY = np.array([0.5, 0.0, 0.76, 1.0, 0.0, 0.0, 0.0])
#: End effectors at their targets after the IK: its convergence tolerances (tray_ik: 0.5 mm, 5 mrad).
POSITION_TOLERANCE, ROTATION_TOLERANCE = 5e-4, 5e-3


@pytest.fixture(scope="module")
def goals() -> PoseGoals:
    return PoseGoals(SceneSafety())


def tilted(pose: np.ndarray, degrees: float) -> np.ndarray:
    """`pose` rolled by `degrees` about its x axis."""
    half = math.radians(degrees) / 2
    w, x, y, z = pose[3:]
    roll = (math.cos(half), math.sin(half), 0.0, 0.0)
    a, b, c, d = roll
    quat = [w * a - x * b - y * c - z * d, w * b + x * a + y * d - z * c, w * c - x * d + y * a + z * b,
            w * d + x * c - y * b + z * a]  # fmt: skip
    return np.array([*pose[:3], *quat])


def assert_at_handles(goals: PoseGoals, positions: np.ndarray, tray: np.ndarray) -> None:
    ee_p, ee_r = goals.ik.kinematics.ee_poses(positions)
    target_p, target_r = goals.ik.reach_targets(tray)
    assert np.max(np.linalg.norm(ee_p - target_p, axis=-1)) < POSITION_TOLERANCE
    angle = np.arccos(np.clip((np.trace(np.swapaxes(ee_r, -1, -2) @ target_r, axis1=-2, axis2=-1) - 1) / 2, -1, 1))
    assert np.max(angle) < ROTATION_TOLERANCE


@pytest.mark.parametrize(
    ("tray", "box", "collector_goal"),
    [
        (scenes.BARRIER_TRAY, scenes.BARRIER, scenes.BARRIER_REACH),
        (scenes.HANDLE_BOX_TRAY, scenes.HANDLE_BOX, scenes.HANDLE_BOX_REACH),
    ],
    ids=["barrier", "handle_box"],
)
def test_a_reach_pose_of_a_family_scene_becomes_the_collectors_joint_goal(goals, tray, box, collector_goal) -> None:
    scene = PlanScene.from_boxes([box])
    started = time.perf_counter()
    goal = goals.resolve(tray, scenes.HOME, scene)
    elapsed = time.perf_counter() - started
    assert_at_handles(goals, goal, tray)
    np.testing.assert_allclose(goal, collector_goal, atol=2e-3)  # the collector's MuJoCo IK, same branch
    assert goals.safety.endpoint_problem(scenes.HOME, goal, scene) is None  # a joint goal the pipeline takes
    print(f"IK + goal check: {elapsed * 1e3:.1f} ms")


def test_a_carry_pose_keeps_the_grasp_and_puts_the_tray_at_the_target(goals) -> None:
    start, held = scenes.BARRIER_REACH, scenes.BARRIER_TRAY
    grasp = goals.safety.checker.grasp_from_start(start, held)
    scene = PlanScene.from_boxes([scenes.BARRIER], grasp)
    goal = goals.resolve(BARRIER_GOAL_TRAY, start, scene, carried_tray_pose=held)
    tray_p, tray_r = goals.ik.kinematics.tray_poses(goal, grasp)  # the tray rigidly with the left tool
    np.testing.assert_allclose(tray_p, BARRIER_GOAL_TRAY[:3], atol=1e-3)
    np.testing.assert_allclose(tray_r, quat_to_matrix(BARRIER_GOAL_TRAY[3:]), atol=5e-3)
    grip = goals.safety.grip_change(goal[None, None], start).item()  # the right tool kept its place on the tray
    assert grip < 1e-3, grip
    np.testing.assert_allclose(goal, scenes.BARRIER_CARRY, atol=2e-3)  # the collector's carry goal
    assert goals.safety.endpoint_problem(start, goal, scene) is None


def test_an_unreachable_pose_is_refused_with_the_iks_reason(goals) -> None:
    far = DEFAULT_TRAY.copy()
    far[0] = 1.3  # within the arms' length bound, out of the IK's reach
    with pytest.raises(PoseGoalError, match=r"cannot reach the handles of a tray at target_tray_pose: no inverse "
                       r"kinematics solution: the best of 8 attempts leaves an end effector \d+\.\d mm"):  # fmt: skip
        goals.resolve(far, scenes.HOME, EMPTY_SCENE)
    far[0] = 2.5  # beyond any configuration: refused before the IK runs
    with pytest.raises(PoseGoalError, match=r"the left end effector's target is 2\.\d\d m from its shoulder, beyond "
                       r"the arm's reach \(1\.42 m\)"):  # fmt: skip
        goals.resolve(far, scenes.HOME, EMPTY_SCENE)


def test_a_tilted_carry_target_is_refused_and_a_tilted_reach_is_not(goals) -> None:
    start, held = scenes.BARRIER_REACH, scenes.BARRIER_TRAY
    scene = PlanScene.from_boxes([], goals.safety.checker.grasp_from_start(start, held))
    target = tilted(BARRIER_GOAL_TRAY, 5.0)
    assert tilt_degrees(target[3:]) == pytest.approx(5.0)
    with pytest.raises(PoseGoalError, match=r"target_tray_pose is tilted 5\.0 degrees from level; a carried tray "
                       r"is kept level \(at most 1 degrees\)"):  # fmt: skip
        goals.resolve(target, start, scene, carried_tray_pose=held)
    goals.resolve(tilted(BARRIER_GOAL_TRAY, 0.5), start, scene, carried_tray_pose=held)  # within the tolerance
    lifted = tilted(scenes.BARRIER_TRAY, 5.0) + np.array([0, 0, 0.05, 0, 0, 0, 0])  # a tray resting tilted: reachable
    assert_at_handles(goals, goals.resolve(lifted, scenes.HOME, EMPTY_SCENE), lifted)


def test_a_pose_whose_every_ik_solution_is_in_a_box_is_refused_with_the_collision(goals) -> None:
    handles, _ = goals.ik.reach_targets(DEFAULT_TRAY)
    box = Box(tuple(handles[0] + [0.0, 0.0, 0.05]), (0.2, 0.2, 0.2))  # around the left handle
    with pytest.raises(PoseGoalError, match=r"every inverse kinematics solution found \(\d+\) is refused; the "
                       r"closest: the goal state is in collision \(arm_obstacle clearance -\d+"):  # fmt: skip
        goals.resolve(DEFAULT_TRAY, scenes.HOME, PlanScene.from_boxes([box]))
    # without the box the same pose resolves (the refusal was the box's)
    assert_at_handles(goals, goals.resolve(DEFAULT_TRAY, scenes.HOME, EMPTY_SCENE), DEFAULT_TRAY)


def test_solutions_beyond_the_planners_position_limits_are_refused(goals) -> None:
    goal = goals.resolve(DEFAULT_TRAY, scenes.HOME, EMPTY_SCENE)
    limits = JOINT_POSITION_LIMITS.copy()
    limits[2] = (goal[2] + 0.5, goal[2] + 1.0)  # the elbow may not bend that far
    with pytest.raises(PoseGoalError, match=r"the closest: left_elbow_joint=\S+ rad is beyond the planner's position"):
        goals.resolve(DEFAULT_TRAY, scenes.HOME, EMPTY_SCENE, position_limits=limits)


def test_which_poses_are_given_and_which_are_refused(goals) -> None:
    assert not pose_given([0, 0, 0, 1, 0, 0, 0])  # geometry_msgs/Pose() in ROS 2 (w = 1)
    assert not pose_given([0.0] * 7)  # all zeros: a zero quaternion
    assert pose_given([math.nan] * 7) and pose_given([0, 0, 0, 0, 1, 0, 0]) and pose_given(DEFAULT_TRAY)
    refused = {
        "target_tray_pose must be 7 finite numbers": [0.5, math.nan, 0.76, 1, 0, 0, 0],
        "target_tray_pose orientation must be a unit quaternion (norm within 0.01 of 1), got norm 0.5": [
            0.5, 0, 0.76, 0.5, 0, 0, 0],
        "target_tray_pose orientation must be a unit quaternion (norm within 0.01 of 1), got norm 0": [
            0.5, 0, 0.76, 0, 0, 0, 0],
        "target_tray_pose position [5.0, 0.0, 0.76] is more than 3.0 m from the origin": [5, 0, 0.76, 1, 0, 0, 0],
    }  # fmt: skip
    for reason, pose in refused.items():
        with pytest.raises(PoseGoalError) as info:
            goals.resolve(pose, scenes.HOME, EMPTY_SCENE)
        assert reason in str(info.value), (reason, str(info.value))


def fields(**overrides) -> RequestFields:
    values = dict(start_positions=[], start_velocities=[], joint_names=[], goal_positions=[], num_samples=0,
                  integration_steps=0, seed=-1, execute=False)  # fmt: skip
    return RequestFields(**{**values, **overrides})


POLICY = RequestPolicy(JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, 0.5, 8, 10, 64, 100)
MEASURED = JointStateSample(scenes.HOME.copy(), np.zeros(NUM_JOINTS), 100.0)


def test_a_request_gives_one_goal_and_a_pose_goal_becomes_its_joint_goal(goals) -> None:
    built = []

    def scene_at(start: np.ndarray) -> PlanScene:
        built.append(start.copy())
        return PlanScene.from_boxes([scenes.HANDLE_BOX])

    plan = lambda f: goals.plan_request(f, POLICY, MEASURED, 100.1, scene_at)  # noqa: E731
    with pytest.raises(PlanRequestError, match="no goal given: set goal_positions"):
        plan(fields())
    with pytest.raises(PlanRequestError, match="both goal_positions and target_tray_pose are given: give one"):
        plan(fields(goal_positions=list(scenes.HOME), target_tray_pose=list(scenes.HANDLE_BOX_TRAY)))
    with pytest.raises(PlanRequestError, match="target_tray_pose is not supported here"):  # no resolver given
        validate_plan_request(fields(target_tray_pose=list(scenes.HANDLE_BOX_TRAY)), POLICY, MEASURED, 100.1)
    assert built == []  # nothing resolved for a request refused before

    request, scene = plan(fields(target_tray_pose=list(scenes.HANDLE_BOX_TRAY), seed=3))
    assert len(built) == 1 and scene.num_boxes == 1  # one scene per request, from the validated start
    np.testing.assert_array_equal(built[0], scenes.HOME)
    np.testing.assert_allclose(request.goal_positions, scenes.HANDLE_BOX_REACH, atol=2e-3)
    np.testing.assert_array_equal(request.start_positions, scenes.HOME)
    assert request.seed == 3 and request.num_samples == 8

    # an explicit start in another joint order: the IK is seeded with it in the planner's order
    names = list(reversed(JOINT_NAMES))
    request, _ = plan(fields(joint_names=names, start_positions=list(scenes.HOME[::-1]),
                             target_tray_pose=list(scenes.HANDLE_BOX_TRAY)))  # fmt: skip
    np.testing.assert_allclose(request.goal_positions, scenes.HANDLE_BOX_REACH, atol=2e-3)

    # carrying: the carried tray's pose must be valid (the scene's rule), the target level
    carry = fields(start_positions=list(scenes.BARRIER_REACH), target_tray_pose=list(BARRIER_GOAL_TRAY),
                   carrying_tray=True, tray_pose=list(scenes.BARRIER_TRAY))  # fmt: skip
    carry_scene = lambda start: PlanScene.from_boxes(  # noqa: E731
        [scenes.BARRIER], goals.safety.checker.grasp_from_start(start, scenes.BARRIER_TRAY))
    request, scene = goals.plan_request(carry, POLICY, MEASURED, 100.1, carry_scene)
    np.testing.assert_allclose(request.goal_positions, scenes.BARRIER_CARRY, atol=2e-3)
    bad = fields(**{**carry.__dict__, "tray_pose": [0.4, 0.1, 0.76, 0.0, 0.0, 0.0, 0.0]})
    with pytest.raises(SceneError, match="tray_pose orientation must be a unit quaternion"):
        goals.plan_request(bad, POLICY, MEASURED, 100.1,
                           lambda start: PlanScene.from_request((), (), "t", bad.tray_pose, start,
                                                                goals.safety.checker.grasp_from_start))  # fmt: skip
