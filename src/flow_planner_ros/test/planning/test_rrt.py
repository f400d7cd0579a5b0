"""OMPL RRTConnect as a baseline planner (planning.rrt) with the real OMPL, the real sphere checker and the real tray
IK, on held-out scenes of the family (scenes_for_tests): its plans pass exactly the pipeline's checks where the
straight motion does not, it says why when it has none, and its time law (planning.time_law) keeps the joint speed
limits and the positions' own derivatives."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from flow_planner_common.kinematics import ArmKinematics
from flow_planner_common.motion import reference_trajectory
from flow_planner_common.obstacles import Box
from flow_planner_common.plan_scene import EMPTY_SCENE, PlanScene
from flow_planner_common.robot import (
    DEFAULT_DT,
    HORIZON,
    JOINT_POSITION_LIMITS,
    JOINT_VELOCITY_LIMITS,
    NUM_JOINTS,
)
from flow_planner_common.scene_safety import SceneSafety
from flow_planner_ros.planning.rrt import RRTPlanner, RRTResult
from flow_planner_ros.planning.time_law import time_path
from flow_planner_ros.planning.trajectory_safety import SafetyLimits, check_candidate

_spec = importlib.util.spec_from_file_location("scenes_for_tests", Path(__file__).parents[1] / "scenes_for_tests.py")
scenes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scenes)

ZERO = np.zeros(NUM_JOINTS)
LIMITS = SafetyLimits.from_arrays(JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS)
HANDLE_BOX_SCENE = PlanScene.from_boxes([scenes.HANDLE_BOX])


@pytest.fixture(scope="module")
def planner() -> RRTPlanner:
    return RRTPlanner(SceneSafety(), LIMITS)


@pytest.fixture(scope="module")
def barrier_carry() -> PlanScene:
    grasp = ArmKinematics().grasp_from_start(scenes.BARRIER_REACH, scenes.BARRIER_TRAY)
    return PlanScene.from_boxes([scenes.BARRIER], grasp)


def assert_passes_the_pipelines_checks(
    planner: RRTPlanner, result: RRTResult, start: np.ndarray, goal: np.ndarray, scene: PlanScene
) -> None:
    assert result.success, result.message
    assert result.message.startswith("ok: ")
    assert result.positions.shape == result.velocities.shape == (HORIZON, NUM_JOINTS)
    assert check_candidate(result.positions, result.velocities, start, DEFAULT_DT, LIMITS) == []
    check = planner.safety.check(result.positions[None], start, goal, scene)
    assert check.passed[0], check.reasons(0)
    np.testing.assert_allclose(result.positions[-1], goal, atol=1e-9)
    np.testing.assert_allclose(result.velocities[-1], 0.0, atol=1e-9)


def straight_collides(planner: RRTPlanner, start: np.ndarray, goal: np.ndarray, scene: PlanScene) -> list[str]:
    positions, _ = reference_trajectory(start, ZERO, goal, DEFAULT_DT)
    check = planner.safety.check(positions[None], start, goal, scene)
    return [] if check.passed[0] else check.reasons(0)


def test_a_reach_in_an_empty_scene_is_the_straight_motion(planner: RRTPlanner) -> None:
    result = planner.plan(scenes.HOME, ZERO, scenes.HANDLE_BOX_REACH, EMPTY_SCENE, time_limit=2.0, seed=0)
    assert_passes_the_pipelines_checks(planner, result, scenes.HOME, scenes.HANDLE_BOX_REACH, EMPTY_SCENE)
    assert result.direct and result.states == 0 and result.phase == "reach"
    # rest to rest on the straight line: exactly the minimum-jerk reference motion
    straight, _ = reference_trajectory(scenes.HOME, ZERO, scenes.HANDLE_BOX_REACH, DEFAULT_DT)
    np.testing.assert_allclose(result.positions, straight, atol=1e-9)


def test_a_moving_start_is_continued(planner: RRTPlanner) -> None:
    moving = 0.4 * np.sign(scenes.HANDLE_BOX_REACH - scenes.HOME)
    result = planner.plan(scenes.HOME, moving, scenes.HANDLE_BOX_REACH, EMPTY_SCENE, time_limit=2.0, seed=0)
    assert_passes_the_pipelines_checks(planner, result, scenes.HOME, scenes.HANDLE_BOX_REACH, EMPTY_SCENE)
    assert "start velocity" in result.message
    first_step = (result.positions[0] - scenes.HOME) / DEFAULT_DT
    np.testing.assert_allclose(first_step, moving, atol=0.05)  # leaves the start at its velocity


def test_a_reach_around_the_box_the_straight_motion_hits(planner: RRTPlanner) -> None:
    start, goal = scenes.HOME, scenes.HANDLE_BOX_REACH
    assert any(r.startswith("arm_obstacle") for r in straight_collides(planner, start, goal, HANDLE_BOX_SCENE))
    result = planner.plan(start, ZERO, goal, HANDLE_BOX_SCENE, time_limit=2.0, seed=1)
    assert_passes_the_pipelines_checks(planner, result, start, goal, HANDLE_BOX_SCENE)
    assert not result.direct and result.states > 2 and result.configurations > 0
    assert result.planning_time < 2.0
    # the same seed plans the same motion
    again = planner.plan(start, ZERO, goal, HANDLE_BOX_SCENE, time_limit=2.0, seed=1)
    np.testing.assert_array_equal(again.positions, result.positions)


def test_a_carry_over_the_barrier_keeps_the_tray_level_and_the_grasps(planner: RRTPlanner, barrier_carry) -> None:
    start, goal = scenes.BARRIER_REACH, scenes.BARRIER_CARRY
    assert any(r.startswith("tray_obstacle") for r in straight_collides(planner, start, goal, barrier_carry))
    result = planner.plan(start, ZERO, goal, barrier_carry, time_limit=5.0, seed=0)
    assert_passes_the_pipelines_checks(planner, result, start, goal, barrier_carry)
    assert result.phase == "carry" and not result.direct
    _, rotation = ArmKinematics().tray_poses(result.positions, barrier_carry.grasp)
    assert np.degrees(np.arccos(np.clip(rotation[:, 2, 2], -1, 1))).max() < 1.0  # level within a degree
    grip = planner.safety.grip_change(result.positions[None], start)
    assert float(grip.max()) < 0.005  # both tools keep their grasp (the check allows 50 mm)


def test_a_goal_inside_a_box_is_refused_with_the_reason(planner: RRTPlanner) -> None:
    ee, _ = ArmKinematics().ee_poses(scenes.HANDLE_BOX_REACH)
    box = Box(tuple(ee[0]), (0.08, 0.08, 0.08))  # around the left end effector at the goal
    result = planner.plan(scenes.HOME, ZERO, scenes.HANDLE_BOX_REACH, PlanScene.from_boxes([box]), 2.0, seed=0)
    assert not result.success and result.positions is None and result.velocities is None
    assert result.message.startswith("refused: the goal state is in collision (arm_obstacle"), result.message


def test_too_little_time_fails_with_the_reason(planner: RRTPlanner) -> None:
    result = planner.plan(scenes.HOME, ZERO, scenes.HANDLE_BOX_REACH, HANDLE_BOX_SCENE, time_limit=1e-4, seed=0)
    assert not result.success and result.positions is None
    assert result.message == "no reach plan: time limit 0.00 s reached", result.message


def test_the_time_law_keeps_the_speed_limits_and_refuses_a_path_too_long() -> None:
    start = np.zeros(NUM_JOINTS)
    corner = start.copy()
    corner[0] = 3.0
    for end_value, profile in ((1.0, "quintic"), (3.0, "trapezoid")):
        end = corner.copy()
        end[1] = end_value
        timed = time_path(np.stack([start, corner, end]), DEFAULT_DT, HORIZON, JOINT_VELOCITY_LIMITS)
        assert timed.profile.startswith(profile), timed.profile
        assert check_candidate(timed.positions, timed.velocities, start, DEFAULT_DT, LIMITS) == []
        np.testing.assert_allclose(timed.positions[-1], end)
        # the velocities are the positions' derivatives: each step is the mean of its ends' velocities
        steps = np.diff(np.vstack([start, timed.positions]), axis=0) / DEFAULT_DT
        means = (np.vstack([np.zeros(NUM_JOINTS), timed.velocities[:-1]]) + timed.velocities) / 2
        near_corner = np.abs(np.linalg.norm(timed.positions - corner, axis=1)) < 0.5  # the path turns there
        np.testing.assert_allclose(steps[~near_corner], means[~near_corner], atol=0.02)
    # flat: the lowest peak speed (1.25 L / T instead of the quintic's 1.875 L / T), for less sweep mid-way
    line = np.stack([start, corner])
    quintic, flat = (time_path(line, DEFAULT_DT, HORIZON, JOINT_VELOCITY_LIMITS, flat=f) for f in (False, True))
    assert quintic.profile == "quintic" and flat.profile == "trapezoid (ramps 0.60 s)"
    np.testing.assert_allclose([np.abs(t.velocities).max() for t in (quintic, flat)], [1.875, 1.25], rtol=0.01)
    too_long = time_path(np.stack([start, corner * 3]), DEFAULT_DT, HORIZON, JOINT_VELOCITY_LIMITS)
    assert too_long.positions is None
    assert too_long.reason.startswith("the path (9.00 rad) does not fit 3.0 s at the joint speed limits"), too_long
