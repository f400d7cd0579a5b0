"""The expert's carry construction without the physics: the grip follower (the right arm follows the left through
the real sphere checker's kinematics) and the tray paths that slide out from under a bar (real robot geometry, real
tray IK)."""

from __future__ import annotations

import numpy as np
import pytest

from data_collector_ros.routes import (
    OVERHEAD_CLEARANCE,
    TURN_LEVER,
    _footprint,
    overhead_slides,
    slide_then_rise,
    slide_timings,
)
from flow_planner_common.grip_follower import GripFollower
from flow_planner_common.kinematics import RobotGeometry
from flow_planner_common.motion import TrajectoryBasis, reference_trajectory
from flow_planner_common.obstacles import Box
from flow_planner_common.robot import DEFAULT_DT, HOME_POSITIONS, NUM_JOINTS
from flow_planner_common.scene_safety import SceneSafety
from flow_planner_common.sphere_checker import SphereChecker
from flow_planner_common.tray_ik import TrayIK

TRAY_START = np.array([0.5, 0.0, 0.76, 1.0, 0.0, 0.0, 0.0])
TRAY_GOAL = np.array([0.5, -0.26, 0.98, np.cos(0.3), 0.0, 0.0, np.sin(0.3)])  # 26 cm along the tray's short axis
BAR = Box((0.5, 0.02, 0.86), (0.07, 0.25, 0.03), np.pi / 2)  # across the path, 5 cm above the tray's top


@pytest.fixture(scope="module")
def carry() -> tuple[np.ndarray, np.ndarray]:
    """A carry's start (the tools on the handles of the resting tray) and its joint goal (the tray carried up)."""
    ik = TrayIK()
    start = ik.solve(*ik.reach_targets(TRAY_START), HOME_POSITIONS)
    goal = ik.solve(*ik.carry_targets(start.positions, TRAY_START, TRAY_GOAL), start.positions)
    assert start.success and goal.success
    return start.positions, goal.positions


def test_the_right_arm_follows_the_left_without_changing_the_grip(carry) -> None:
    start, goal = carry
    checker = SphereChecker()
    safety = SceneSafety(checker=checker)
    basis = TrajectoryBasis(4, DEFAULT_DT)
    knots = np.random.default_rng(0).normal(0.0, 0.1, (6, 4, NUM_JOINTS))  # bends both arms: the grip moves
    positions, velocities = basis.around(reference_trajectory(start, np.zeros(NUM_JOINTS), goal, DEFAULT_DT), knots)
    assert safety.grip_change(positions, start).max() > 0.05
    followed, followed_vel = GripFollower(checker).follow(positions, velocities, start)
    assert float(safety.grip_change(followed, start).max()) < 5e-4
    np.testing.assert_array_equal(followed[..., :6], positions[..., :6])  # the left arm is the search's
    np.testing.assert_array_equal(followed_vel[..., :6], velocities[..., :6])
    central = (followed[:, 2:] - followed[:, :-2]) / (2 * DEFAULT_DT)  # velocities match the positions
    assert np.abs(central - followed_vel[:, 1:-1]).max() < 0.05
    again, _ = GripFollower(checker).follow(followed, followed_vel, start)  # consistent rows stay exactly
    moved = np.abs(again - followed).max(axis=-1)
    assert np.mean(moved == 0.0) > 0.9 and moved.max() < 1e-3


def test_a_bar_over_the_tray_gives_slides_that_clear_it_and_other_boxes_none() -> None:
    geometry = RobotGeometry.load()
    slides = overhead_slides(TRAY_START, TRAY_GOAL, [BAR], geometry)
    assert len(slides) == 2  # towards the goal (the shorter whole path, first) and away from it
    bar = _footprint(np.zeros((1, 3)), np.array(BAR.size)[None] / 2, np.array(BAR.center[:2]), BAR.yaw)
    lengths = []
    for (clear_xy, lift), direction in zip(slides, (np.array([0.0, -1.0]), np.array([0.0, 1.0])), strict=True):
        tray = _footprint(geometry.tray_center, geometry.tray_half, clear_xy, 0.0)
        # the tray's trailing edge is OVERHEAD_CLEARANCE past the bar's far side
        assert np.min(tray @ direction) - np.max(bar @ direction) == pytest.approx(OVERHEAD_CLEARANCE, abs=1e-9)
        assert 0.0 < lift <= 0.02
        lengths.append(np.linalg.norm(clear_xy - TRAY_START[:2]) + np.linalg.norm(TRAY_GOAL[:2] - clear_xy))
    assert lengths[0] < lengths[1]
    on_table = Box((0.5, -0.2, 0.8), (0.05, 0.3, 0.1), 0.0)  # a barrier: below the tray's top
    beside = Box((0.9, 0.0, 0.86), (0.07, 0.25, 0.03), 0.0)  # above the table, but not over the tray
    assert overhead_slides(TRAY_START, TRAY_GOAL, [on_table, beside], geometry) == []
    assert overhead_slides(TRAY_START, TRAY_START, [BAR], geometry) == []  # no horizontal motion


def test_slide_timings_share_the_horizon_by_length_and_the_tray_lifts_before_it_slides() -> None:
    clear_xy, lift = overhead_slides(TRAY_START, TRAY_GOAL, [BAR], RobotGeometry.load())[0]
    timings = slide_timings(TRAY_START, TRAY_GOAL, clear_xy, lift)
    assert timings[-1] == (0.35, 0.7) and len(timings) == 3
    for first, second in timings:
        assert first >= 0.15 - 1e-9 and second - first >= 0.15 - 1e-9 and 1 - second >= 0.15 - 1e-9
    # in proportion to the lengths: the slide counted twice, the last motion with the 0.6 rad turn at TURN_LEVER
    lengths = np.array([
        2 * np.hypot(np.linalg.norm(clear_xy - TRAY_START[:2]), lift),
        TRAY_GOAL[2] - TRAY_START[2] - lift,
        np.linalg.norm(TRAY_GOAL[:2] - clear_xy) + TURN_LEVER * 0.6,
    ])  # fmt: skip
    if np.all(lengths / lengths.sum() >= 0.15):
        assert timings[0] == pytest.approx(tuple(np.cumsum(lengths / lengths.sum())[:2]))
    poses = slide_then_rise(TRAY_START, TRAY_GOAL, clear_xy, lift, timings[0], 60)
    s = np.arange(1, 61) / 60
    still = s <= timings[0][0] / 4  # the first quarter of the slide's time: straight up, not across
    np.testing.assert_allclose(poses[still, :2], np.broadcast_to(TRAY_START[:2], (np.count_nonzero(still), 2)))
    assert np.all(np.diff(poses[still, 2]) > 0)
    lifted = s >= timings[0][0] / 2  # the lift is done half-way through the slide's time
    assert np.all(poses[lifted & (s <= timings[0][0]), 2] == pytest.approx(TRAY_START[2] + lift))


def test_the_tray_path_slides_low_then_rises_then_turns() -> None:
    clear_xy, lift = overhead_slides(TRAY_START, TRAY_GOAL, [BAR], RobotGeometry.load())[0]
    poses = slide_then_rise(TRAY_START, TRAY_GOAL, clear_xy, lift, (0.35, 0.7), 60)
    s = np.arange(1, 61) / 60
    sliding, rising = s <= 0.35, (s > 0.35) & (s <= 0.7)
    assert np.all(poses[sliding, 2] <= TRAY_START[2] + lift + 1e-12)
    np.testing.assert_allclose(poses[s >= 0.35, :2][: np.count_nonzero(rising)], np.broadcast_to(clear_xy, (21, 2)))
    np.testing.assert_allclose(poses[s <= 0.7, 3:], np.broadcast_to(TRAY_START[3:], (42, 4)), atol=1e-12)  # level
    np.testing.assert_allclose(poses[-1], TRAY_GOAL, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(poses[:, 3:], axis=1), 1.0)
    assert np.all(poses[:, 4:6] == 0.0)  # level throughout: only yaw
