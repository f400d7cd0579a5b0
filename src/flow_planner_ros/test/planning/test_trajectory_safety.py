"""Candidate checks: unsafe trajectories are refused for the right reason; the cheapest safe one wins."""

from __future__ import annotations

import numpy as np

from flow_planner_common.robot import DEFAULT_DT, HORIZON, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, NUM_JOINTS
from flow_planner_ros.planning.trajectory_safety import SafetyLimits, check_candidate, check_candidates, select_best

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


def test_the_scene_check_runs_once_on_every_passing_candidate_and_the_cheapest_safe_one_wins() -> None:
    start, goal = np.zeros(NUM_JOINTS), np.full(NUM_JOINTS, 1.0)
    plans = [linear(start, goal * f) for f in (0.5, 0.99, 0.6, 0.95, 0.9, 0.7, 0.8, 0.97, 0.85, 0.75)]
    positions, velocities = np.stack([p for p, _ in plans]), np.stack([v for _, v in plans])
    velocities[0, 5, 5] = 10.0  # refused by the limit check: never scene-checked
    colliding = {1, 7, 3, 4, 8}  # the five cheapest "collide"
    asked: list[list[int]] = []

    def scene_check(indices: np.ndarray) -> dict[int, list[str]]:
        asked.append([int(i) for i in indices])
        return {int(i): ["arm_obstacle: clearance -1.0 mm"] for i in indices if int(i) in colliding}

    selection = select_best(positions, velocities, start, goal, DEFAULT_DT, LIMITS, scene_check=scene_check)
    assert asked == [list(range(1, 10))]  # one call, every candidate that passed the limit checks
    assert selection.index == 6 and selection.num_valid == 4
    assert set(selection.rejections) == colliding | {0}
    everything = select_best(
        positions, velocities, start, goal, DEFAULT_DT, LIMITS, scene_check=lambda idx: {int(i): ["x"] for i in idx}
    )
    assert everything.index is None and len(everything.rejections) == 10


def test_batched_limit_checks_equal_one_candidate_at_a_time() -> None:
    rng = np.random.default_rng(5)
    start, goal = np.zeros(NUM_JOINTS), np.full(NUM_JOINTS, 1.0)
    positions, velocities = linear(start, goal)
    batch_p = np.repeat(positions[None], 16, axis=0) + rng.normal(0, 0.005, (16, *positions.shape))
    batch_v = np.repeat(velocities[None], 16, axis=0) * rng.uniform(0.5, 3.0, (16, 1, 1))
    batch_p[3, 7, 2] = np.nan
    batch_p[5] += 0.5
    batched = check_candidates(batch_p, batch_v, start, DEFAULT_DT, LIMITS)
    assert batched == [check_candidate(batch_p[i], batch_v[i], start, DEFAULT_DT, LIMITS) for i in range(16)]
    assert batched[3] == ["not finite"] and any(batched) and not all(batched)
