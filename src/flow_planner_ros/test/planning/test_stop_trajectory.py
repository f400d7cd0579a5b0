"""The smooth stop of a canceled execution (ROS-free): continuous with the running plan, at rest at its end,
within the velocity and deceleration limits, never past a position limit."""

from __future__ import annotations

import numpy as np
import pytest

from flow_planner_common.hermite import HermiteTrajectory
from flow_planner_common.motion import min_jerk_waypoints
from flow_planner_common.robot import DEFAULT_DT, HOME_POSITIONS, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS
from flow_planner_ros.planning.continuation import commanded_trajectory
from flow_planner_ros.planning.stop_trajectory import stop_duration, stop_trajectory


@pytest.mark.parametrize("deceleration", [0.5, 2.0, 10.0])
def test_a_stop_from_the_middle_of_a_plan_is_smooth_and_ends_at_rest(deceleration: float) -> None:
    goal = HOME_POSITIONS + np.linspace(-0.8, 0.8, len(HOME_POSITIONS))
    positions, velocities = min_jerk_waypoints(HOME_POSITIONS, goal, DEFAULT_DT)
    elapsed = 1.43  # between waypoints, near peak speed
    running = commanded_trajectory(HOME_POSITIONS, np.zeros_like(HOME_POSITIONS), positions, velocities, DEFAULT_DT)
    p0, v0 = running.sample(elapsed)
    assert np.max(np.abs(v0)) > 0.2
    stop_p, stop_v = stop_trajectory(p0, v0, DEFAULT_DT, deceleration, JOINT_POSITION_LIMITS)
    # Continuous: the first waypoint (dt after the switch) is where the old velocity would take it, roughly.
    np.testing.assert_allclose(stop_p[0], p0 + v0 * DEFAULT_DT, atol=deceleration * DEFAULT_DT**2)
    assert np.all(np.abs(stop_v) <= np.abs(v0) + 1e-12) and np.all(np.abs(stop_v) <= JOINT_VELOCITY_LIMITS)
    np.testing.assert_array_equal(stop_v[-1], 0.0)
    speeds = np.max(np.abs(stop_v), axis=1)
    assert np.all(np.diff(speeds) <= 1e-12), "the speed only decreases"
    accelerations = np.diff(np.vstack([v0, stop_v]), axis=0) / DEFAULT_DT
    assert np.max(np.abs(accelerations)) <= deceleration * 1.01
    # It stops along the direction of motion, half the distance the old speed would cover in the stop time (stretched
    # by at most 20 % so that the interpolated motion keeps within the deceleration).
    duration = 2 * (stop_p[-1] - p0) / v0
    np.testing.assert_allclose(duration, duration[0], rtol=1e-9)
    assert stop_duration(v0, deceleration) <= duration[0] <= 1.2 * stop_duration(v0, deceleration)


@pytest.mark.parametrize("speed", [0.01, 0.05, 0.1, 0.133, 0.19, 0.214, 0.5, 1.0, 2.5])
def test_the_commanded_stop_stays_within_the_deceleration(speed: float) -> None:
    """What the controllers command (Hermite through the waypoints from the state where the stop starts) never
    decelerates harder than `deceleration`: short stops overshot it between waypoints (2.33 for 2 rad/s^2)."""
    v0 = np.zeros_like(HOME_POSITIONS)
    v0[[0, 4]] = speed, -0.6 * speed
    stop_p, stop_v = stop_trajectory(HOME_POSITIONS, v0, DEFAULT_DT, 2.0, JOINT_POSITION_LIMITS)
    times = (np.arange(len(stop_p)) + 1) * DEFAULT_DT
    commanded = HermiteTrajectory.from_waypoints(HOME_POSITIONS, v0, times, stop_p, stop_v)
    assert commanded.peak_acceleration().max() <= 2.0 * (1 + 1e-5)
    assert len(stop_p) * DEFAULT_DT <= 1.2 * stop_duration(v0, 2.0) + 2 * DEFAULT_DT  # not much longer
    np.testing.assert_array_equal(stop_v[-1], 0.0)


def test_a_stop_never_passes_a_position_limit_and_a_resting_arm_stays() -> None:
    limits = JOINT_POSITION_LIMITS.copy()
    p0 = HOME_POSITIONS.copy()
    v0 = np.zeros_like(p0)
    v0[2] = 1.0
    limits[2, 1] = p0[2] + 0.05  # 5 cm of room: a 2 rad/s^2 stop would need 0.375 rad
    stop_p, stop_v = stop_trajectory(p0, v0, DEFAULT_DT, 2.0, limits)
    assert stop_p[:, 2].max() <= limits[2, 1] + 1e-12 and stop_v[-1, 2] == 0.0
    rest_p, rest_v = stop_trajectory(p0, np.zeros_like(p0), DEFAULT_DT, 2.0, JOINT_POSITION_LIMITS)
    np.testing.assert_array_equal(rest_p, np.repeat(p0[None], len(rest_p), axis=0))
    assert len(rest_p) >= 2 and not rest_v.any()
