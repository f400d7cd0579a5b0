"""The smooth projection pins samples to start and goal and removes sampling noise; receding-horizon continuity:
the running plan's prefix is read at the right times as the controllers interpolate it, the cross-fade turns a jump
between the running plan and a new sample into steps no larger than 1.875 · jump / (B + 1) with velocities that are
the positions' derivative, and a preempting plan continues the commanded motion (velocity and acceleration)."""

from __future__ import annotations

import numpy as np
import pytest

from flow_planner_common.motion import min_jerk_waypoints, reference_trajectory
from flow_planner_common.robot import DEFAULT_DT, HOME_POSITIONS, HORIZON, NUM_JOINTS
from flow_planner_ros.planning.continuation import (
    ContinuationPrefix,
    Join,
    blend_with_prefix,
    commanded_trajectory,
    join_candidates,
    running_plan_prefix,
)
from flow_planner_ros.planning.projection import SmoothProjection
from flow_planner_ros.planning.request import PlanRequest


def ramp(offset: float, slope: float) -> tuple[np.ndarray, np.ndarray]:
    t = (np.arange(HORIZON) + 1)[:, None] * DEFAULT_DT
    positions = np.broadcast_to(offset + slope * t, (HORIZON, NUM_JOINTS)).copy()
    return positions, np.full((HORIZON, NUM_JOINTS), slope)


def test_prefix_reads_the_running_plan_as_the_controllers_interpolate_it() -> None:
    positions, velocities = ramp(0.0, 1.0)  # at 1 rad/s from 0: position = time
    running = commanded_trajectory(np.zeros(NUM_JOINTS), np.ones(NUM_JOINTS), positions, velocities, DEFAULT_DT)
    prefix = running_plan_prefix(running, DEFAULT_DT, elapsed=15.5 * DEFAULT_DT, count=5, advance=0.02)
    np.testing.assert_allclose(prefix.positions[:, 0], (np.arange(5) + 16.5) * DEFAULT_DT)
    np.testing.assert_allclose(prefix.anchor, 15.5 * DEFAULT_DT)
    np.testing.assert_allclose(prefix.velocities, 1.0)
    np.testing.assert_allclose(prefix.anchor_velocity, 1.0)
    assert prefix.advance == 0.02
    beyond = running_plan_prefix(running, DEFAULT_DT, elapsed=HORIZON * DEFAULT_DT, count=3)
    np.testing.assert_allclose(beyond.positions, positions[-1:].repeat(3, axis=0))
    np.testing.assert_allclose(beyond.velocities, 0.0)


def test_blend_spreads_a_jump_over_the_blend_window_with_consistent_velocities() -> None:
    old_positions, old_velocities = ramp(0.0, 1.0)
    new_positions, new_velocities = ramp(0.3, 1.0)  # same motion, 0.3 rad away: a jump if switched directly
    blend = 5
    prefix = ContinuationPrefix(old_positions[:blend], old_velocities[:blend], old_positions[0] - DEFAULT_DT)
    positions, velocities = blend_with_prefix(new_positions, new_velocities, prefix, DEFAULT_DT)
    steps = np.abs(np.diff(np.vstack([old_positions[:1] - DEFAULT_DT, positions]), axis=0))
    nominal = DEFAULT_DT * 1.0
    assert steps.max() <= nominal + 1.875 * 0.3 / (blend + 1) + 1e-9  # the quintic fade's slope is at most 1.875
    np.testing.assert_allclose(positions[blend:], new_positions[blend:])
    s = 1 / (blend + 1)
    weight = 1 - 10 * s**3 + 15 * s**4 - 6 * s**5
    np.testing.assert_allclose(positions[0], old_positions[0] * weight + new_positions[0] * (1 - weight))
    np.testing.assert_allclose(velocities[blend:], 1.0)
    # The velocities are the blended positions' derivative: central differences agree to second order.
    central = (positions[2:blend] - positions[: blend - 2]) / (2 * DEFAULT_DT)
    np.testing.assert_allclose(velocities[1 : blend - 1], central, atol=0.15)
    assert velocities[:blend].max() > 2.0  # the fade carries the motion 0.3 rad ahead: faster than either plan


def commanded_motion(plans: list[tuple[float, np.ndarray, np.ndarray]], times: np.ndarray) -> np.ndarray:
    """What a controller commands (positions and velocities at `times`) when it gets plans stamped t_k: each one
    spliced in at its stamp from the commanded state, Hermite through waypoint i at t_k + (i + 1)·dt."""
    trajectories, state = [], (HOME_POSITIONS, np.zeros(NUM_JOINTS))
    for stamp, positions, velocities in plans:
        if trajectories:
            previous_stamp, previous = trajectories[-1]
            state = previous.sample(stamp - previous_stamp)
        trajectories.append((stamp, commanded_trajectory(*state, positions, velocities, DEFAULT_DT)))
    out = np.zeros((len(times), NUM_JOINTS, 3))
    for k, t in enumerate(times):
        stamp, trajectory = next((s, tr) for s, tr in reversed(trajectories) if s <= t)
        out[k] = np.stack(trajectory.sample_state(t - stamp), axis=-1)
    return out


@pytest.mark.parametrize("switch", [1.0, 1.137, 1.29, 1.5])
def test_a_preempting_plan_continues_the_commanded_motion(switch: float) -> None:
    """The new plan is sampled from the commanded state when planning starts, 40 ms before the switch, to a
    nearby goal; the controller splices it in at its stamp. Velocity stays continuous, and the peak acceleration
    stays that of the motions themselves."""
    goal, new_goal = HOME_POSITIONS + 0.6, HOME_POSITIONS + 0.7
    old_p, old_v = min_jerk_waypoints(HOME_POSITIONS, goal, DEFAULT_DT)
    running = commanded_trajectory(HOME_POSITIONS, np.zeros(NUM_JOINTS), old_p, old_v, DEFAULT_DT)
    join = Join(running, 0.0, DEFAULT_DT, 5, iter([switch - 0.04, switch]).__next__)
    request = join.request(PlanRequest(HOME_POSITIONS, np.zeros(NUM_JOINTS), new_goal, 1, 1, 0, True))
    new_p, new_v = reference_trajectory(request.start_positions, request.start_velocities, new_goal, DEFAULT_DT)
    joined_p, joined_v = join_candidates(new_p[None], new_v[None], request, join.prefix(), DEFAULT_DT)
    times = np.arange(0.0, 5.0, 0.001)
    motion = commanded_motion([(0.0, old_p, old_v), (join.switch_at, joined_p[0], joined_v[0])], times)
    alone = commanded_motion([(0.0, old_p, old_v)], times)
    velocity_steps = np.abs(np.diff(motion[..., 1], axis=0)).max()  # per ms: the acceleration, no step
    assert velocity_steps <= 2.0 * np.abs(np.diff(alone[..., 1], axis=0)).max()
    new_alone = commanded_trajectory(request.start_positions, request.start_velocities, new_p, new_v, DEFAULT_DT)
    own = max(np.abs(alone[..., 2]).max(), np.abs(new_alone.sample_state(times)[2]).max())
    assert np.abs(motion[..., 2]).max() <= 2.0 * own, (np.abs(motion[..., 2]).max(), own)
    at_switch = np.searchsorted(times, join.switch_at)
    np.testing.assert_allclose(motion[at_switch, :, 2], alone[at_switch, :, 2], atol=0.1 * own)


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
