"""Boundary correction pins samples to start and goal; receding-horizon continuity: the running plan's prefix is
read at the right times, and the cross-fade turns a jump between the running plan and a new sample into steps no
larger than jump / (B + 1)."""

from __future__ import annotations

import numpy as np

from data_collector_ros.interpolation import min_jerk_waypoints
from data_collector_ros.robot import DEFAULT_DT, HORIZON, NUM_JOINTS
from flow_planner_ros.planning_core import (
    ContinuationPrefix,
    blend_with_prefix,
    boundary_correction,
    running_plan_prefix,
)


def ramp(offset: float, slope: float) -> tuple[np.ndarray, np.ndarray]:
    t = (np.arange(HORIZON) + 1)[:, None] * DEFAULT_DT
    positions = np.broadcast_to(offset + slope * t, (HORIZON, NUM_JOINTS)).copy()
    return positions, np.full((HORIZON, NUM_JOINTS), slope)


def test_prefix_reads_the_running_plan_at_future_waypoint_times() -> None:
    positions, velocities = ramp(0.0, 1.0)
    prefix = running_plan_prefix(positions, velocities, DEFAULT_DT, elapsed=15 * DEFAULT_DT, count=5)
    np.testing.assert_allclose(prefix.positions[:, 0], positions[15:20, 0])
    np.testing.assert_allclose(prefix.velocities, 1.0)
    beyond = running_plan_prefix(positions, velocities, DEFAULT_DT, elapsed=HORIZON * DEFAULT_DT, count=3)
    np.testing.assert_allclose(beyond.positions, positions[-1:].repeat(3, axis=0))
    np.testing.assert_allclose(beyond.velocities, 0.0)


def test_blend_spreads_a_jump_over_the_blend_window() -> None:
    old_positions, old_velocities = ramp(0.0, 1.0)
    new_positions, new_velocities = ramp(0.3, 1.0)  # same motion, 0.3 rad away: a jump if switched directly
    blend = 5
    prefix = ContinuationPrefix(old_positions[:blend], old_velocities[:blend])
    positions, velocities = blend_with_prefix(new_positions, new_velocities, prefix)
    steps = np.abs(np.diff(np.vstack([old_positions[:1] - DEFAULT_DT, positions]), axis=0))
    nominal = DEFAULT_DT * 1.0
    assert steps.max() <= nominal + 0.3 / (blend + 1) + 1e-9
    np.testing.assert_allclose(positions[blend:], new_positions[blend:])
    np.testing.assert_allclose(positions[0], old_positions[0] * 5 / 6 + new_positions[0] / 6)
    np.testing.assert_allclose(velocities, 1.0)


def test_boundary_correction_pins_start_and_goal_consistently() -> None:
    rng = np.random.default_rng(0)
    start, start_vel, goal = rng.normal(size=NUM_JOINTS), rng.normal(size=NUM_JOINTS) * 0.1, rng.normal(size=NUM_JOINTS)
    exact_p, exact_v = min_jerk_waypoints(start, goal, DEFAULT_DT)
    offset = rng.normal(size=(2, 1, NUM_JOINTS)) * 0.05  # a sample shifted off its boundary conditions
    positions, velocities, size = boundary_correction(
        exact_p[None] + offset, np.repeat(exact_v[None], 2, axis=0), start, start_vel, goal, DEFAULT_DT
    )
    np.testing.assert_allclose(positions[:, 0], np.broadcast_to(start + start_vel * DEFAULT_DT, (2, NUM_JOINTS)))
    np.testing.assert_allclose(positions[:, -1], np.broadcast_to(goal, (2, NUM_JOINTS)))
    # The velocity correction is the derivative of the position correction (central differences agree).
    correction = positions - (exact_p[None] + offset)
    numeric = (correction[:, 2:] - correction[:, :-2]) / (2 * DEFAULT_DT)
    np.testing.assert_allclose((velocities - exact_v[None])[:, 1:-1], numeric, atol=2e-3)
    assert np.all(size > 0) and np.all(size < 0.3)
