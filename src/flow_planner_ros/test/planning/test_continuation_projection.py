"""The smooth projection pins samples to start and goal and removes sampling noise; receding-horizon continuity:
the running plan's prefix is read at the right times, and the cross-fade turns a jump between the running plan and
a new sample into steps no larger than jump / (B + 1)."""

from __future__ import annotations

import numpy as np

from flow_planner_common.motion import reference_trajectory
from flow_planner_common.robot import DEFAULT_DT, HORIZON, NUM_JOINTS
from flow_planner_ros.planning.continuation import ContinuationPrefix, blend_with_prefix, running_plan_prefix
from flow_planner_ros.planning.projection import SmoothProjection


def ramp(offset: float, slope: float) -> tuple[np.ndarray, np.ndarray]:
    t = (np.arange(HORIZON) + 1)[:, None] * DEFAULT_DT
    positions = np.broadcast_to(offset + slope * t, (HORIZON, NUM_JOINTS)).copy()
    return positions, np.full((HORIZON, NUM_JOINTS), slope)


def test_prefix_reads_the_running_plan_at_future_waypoint_times() -> None:
    positions, velocities = ramp(0.0, 1.0)
    prefix = running_plan_prefix(positions, velocities, DEFAULT_DT, elapsed=15 * DEFAULT_DT, count=5)
    np.testing.assert_allclose(prefix.positions[:, 0], positions[15:20, 0])
    np.testing.assert_allclose(prefix.anchor, positions[14])
    np.testing.assert_allclose(prefix.velocities, 1.0)
    beyond = running_plan_prefix(positions, velocities, DEFAULT_DT, elapsed=HORIZON * DEFAULT_DT, count=3)
    np.testing.assert_allclose(beyond.positions, positions[-1:].repeat(3, axis=0))
    np.testing.assert_allclose(beyond.velocities, 0.0)


def test_blend_spreads_a_jump_over_the_blend_window() -> None:
    old_positions, old_velocities = ramp(0.0, 1.0)
    new_positions, new_velocities = ramp(0.3, 1.0)  # same motion, 0.3 rad away: a jump if switched directly
    blend = 5
    prefix = ContinuationPrefix(old_positions[:blend], old_velocities[:blend], old_positions[0] - DEFAULT_DT)
    positions, velocities = blend_with_prefix(new_positions, new_velocities, prefix)
    steps = np.abs(np.diff(np.vstack([old_positions[:1] - DEFAULT_DT, positions]), axis=0))
    nominal = DEFAULT_DT * 1.0
    assert steps.max() <= nominal + 0.3 / (blend + 1) + 1e-9
    np.testing.assert_allclose(positions[blend:], new_positions[blend:])
    np.testing.assert_allclose(positions[0], old_positions[0] * 5 / 6 + new_positions[0] / 6)
    np.testing.assert_allclose(velocities, 1.0)


def test_projection_is_smooth_through_start_and_goal_and_keeps_the_shape() -> None:
    rng = np.random.default_rng(0)
    start, start_vel, goal = rng.normal(size=NUM_JOINTS), rng.normal(size=NUM_JOINTS) * 0.1, rng.normal(size=NUM_JOINTS)
    projection = SmoothProjection(8, DEFAULT_DT, HORIZON)
    # An expert-like motion (the reference bent by smooth bumps) plus sampling noise, its last waypoint 2 cm off.
    bumps = rng.normal(size=(2, 8, NUM_JOINTS)) * 0.05
    clean_p, _ = projection.basis.trajectories(start, start_vel, goal, bumps)
    noisy = clean_p + rng.normal(size=clean_p.shape) * 0.003
    noisy[:, -1] += 0.02
    reference, reference_vel = reference_trajectory(start, start_vel, goal, DEFAULT_DT)
    positions, velocities, change = projection(noisy, (reference, reference_vel))
    np.testing.assert_allclose(positions[:, -1], np.broadcast_to(goal, (2, NUM_JOINTS)), atol=1e-9)
    # The bumps vanish with zero slope at t = 0: the first waypoint (t = dt) is where the start state leads.
    np.testing.assert_allclose(positions[:, 0], np.broadcast_to(reference[0], (2, NUM_JOINTS)), atol=1e-3)
    assert np.abs(positions - clean_p).max() < 0.01  # the shape survives, the noise and the end offset do not
    numeric = (positions[:, 2:] - positions[:, :-2]) / (2 * DEFAULT_DT)  # velocities = derivative of positions
    np.testing.assert_allclose(velocities[:, 1:-1], numeric, atol=0.02)
    jerk = lambda p: np.abs(np.diff(p, n=3, axis=1)).mean() / DEFAULT_DT**3  # noqa: E731
    assert jerk(positions) < 0.1 * jerk(noisy)
    assert np.all(change >= 0.02) and np.all(change < 0.05)
