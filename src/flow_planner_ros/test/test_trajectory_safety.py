"""Candidate checks: unsafe trajectories are refused for the right reason; the cheapest safe one wins."""

from __future__ import annotations

import numpy as np

from flow_planner_common.robot import DEFAULT_DT, HORIZON, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, NUM_JOINTS
from flow_planner_ros.trajectory_safety import SafetyLimits, check_candidate, select_best

LIMITS = SafetyLimits.from_arrays(JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS)


def linear(start: np.ndarray, goal: np.ndarray, dt: float = DEFAULT_DT) -> tuple[np.ndarray, np.ndarray]:
    s = np.arange(1, HORIZON + 1)[:, None] / HORIZON
    positions = start + s * (goal - start)
    velocities = np.broadcast_to((goal - start) / (HORIZON * dt), positions.shape).copy()
    return positions, velocities


def test_linear_plan_is_safe() -> None:
    start, goal = np.zeros(NUM_JOINTS), np.full(NUM_JOINTS, 1.0)
    positions, velocities = linear(start, goal)
    assert check_candidate(positions, velocities, start, DEFAULT_DT, LIMITS) == []


def test_each_violation_is_named() -> None:
    start, goal = np.zeros(NUM_JOINTS), np.full(NUM_JOINTS, 1.0)
    positions, velocities = linear(start, goal)
    nan = positions.copy()
    nan[3, 4] = np.nan
    assert check_candidate(nan, velocities, start, DEFAULT_DT, LIMITS) == ["not finite"]
    fast = velocities.copy()
    fast[10, 0] = 4.0
    assert check_candidate(positions, fast, start, DEFAULT_DT, LIMITS) == ["velocity limit exceeded"]
    jump = positions.copy()
    jump[30:, 1] += 0.5
    assert "waypoint step exceeds the velocity limit" in check_candidate(jump, velocities, start, DEFAULT_DT, LIMITS)
    far_start = start + 0.5
    assert check_candidate(positions, velocities, far_start, DEFAULT_DT, LIMITS) == [
        "first waypoint not reachable from the start state within one dt"
    ]
    tight = SafetyLimits(LIMITS.position_lower, np.full(NUM_JOINTS, 0.5), LIMITS.velocity)
    assert check_candidate(positions, velocities, start, DEFAULT_DT, tight) == ["position limit exceeded"]


def test_select_best_prefers_the_safe_candidate_closest_to_the_goal() -> None:
    start, goal = np.zeros(NUM_JOINTS), np.full(NUM_JOINTS, 1.0)
    exact = linear(start, goal)
    short = linear(start, goal * 0.9)
    unsafe = (exact[0].copy(), exact[1].copy())
    unsafe[1][5, 5] = 10.0
    positions = np.stack([short[0], unsafe[0], exact[0]])
    velocities = np.stack([short[1], unsafe[1], exact[1]])
    selection = select_best(positions, velocities, start, goal, DEFAULT_DT, LIMITS)
    assert selection.index == 2 and selection.num_valid == 2
    assert selection.rejections == {1: ["velocity limit exceeded"]}
    none_safe = select_best(positions[1:2], velocities[1:2], start, goal, DEFAULT_DT, LIMITS)
    assert none_safe.index is None and "velocity limit exceeded" in none_safe.summary()
