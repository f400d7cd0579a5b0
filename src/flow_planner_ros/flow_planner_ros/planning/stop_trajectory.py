"""A decelerating stop (ROS-free): from where the running plan is when the stop is published, bring every joint's
velocity to zero smoothly, within the planner's velocity limits and a deceleration limit, without a jump.

Velocity profile (all joints together, so the arm stops along its current direction of motion):
v(t) = v0 · (1 − 3s² + 2s³), s = t / T, with T = 1.5 · max|v0| / deceleration: continuous with the running plan
at t = 0 (position and velocity), zero velocity and zero acceleration at t = T, peak deceleration (at s = 1/2)
1.5 · |v0| / T ≤ deceleration. Positions integrate it: p(t) = p0 + v0 · T · (s − s³ + s⁴/2); the stop travels
v0 · T / 2. The controllers follow the waypoints (every dt) by cubic Hermite interpolation, whose acceleration can
overshoot the profile's between waypoints (up to 17 % for a stop two waypoints long), so T is stretched until the
commanded motion, as interpolated from the state where the stop starts, stays within the deceleration: that is what
`deceleration` bounds. If the stop would pass a position limit, T is shortened so it does not (then braking is
harder).
"""

from __future__ import annotations

import math

import numpy as np

from flow_planner_common.hermite import HermiteTrajectory

#: The shortest stop, in waypoints (a stop trajectory has at least this many points, the last one at rest).
MIN_STOP_STEPS = 2
#: Stretches of the stop's duration tried before giving up on the interpolation's overshoot (2-3 always suffice).
MAX_STRETCHES = 10


def stop_duration(velocity: np.ndarray, deceleration: float) -> float:
    """Seconds a stop from `velocity` takes with the smooth profile at peak `deceleration`."""
    return 1.5 * float(np.max(np.abs(velocity))) / deceleration


def stop_trajectory(
    position: np.ndarray,
    velocity: np.ndarray,
    dt: float,
    deceleration: float,
    position_limits: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Waypoints (K, J) positions and velocities at (k + 1) · dt of a smooth stop from (position, velocity)."""
    p0, v0 = np.asarray(position, dtype=np.float64), np.asarray(velocity, dtype=np.float64)
    if not (deceleration > 0 and np.all(np.isfinite(p0)) and np.all(np.isfinite(v0))):
        raise ValueError("a stop needs a finite state and a positive deceleration")
    duration = stop_duration(v0, deceleration)
    travel_room = np.where(v0 > 0, position_limits[:, 1] - p0, p0 - position_limits[:, 0])
    moving = np.abs(v0) > 1e-12
    room = float(np.min(2 * np.maximum(travel_room[moving], 0.0) / np.abs(v0[moving]))) if np.any(moving) else np.inf
    duration = min(duration, room)  # p0 + v0·T/2 must stay within the limits
    for _ in range(MAX_STRETCHES):
        positions, velocities = _profile(p0, v0, dt, duration, position_limits)
        if duration <= 0:
            return positions, velocities
        times = (np.arange(len(positions)) + 1) * dt
        peak = float(np.max(HermiteTrajectory.from_waypoints(p0, v0, times, positions, velocities).peak_acceleration()))
        longer = min(duration * peak / deceleration, room) * (1 + 1e-6)
        if peak <= deceleration * (1 + 1e-6) or longer <= duration:
            break
        duration = longer
    return positions, velocities


def _profile(
    p0: np.ndarray, v0: np.ndarray, dt: float, duration: float, position_limits: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The stop's waypoints at (k + 1)·dt for a stop of `duration` s (at rest from the first waypoint past it)."""
    steps = max(MIN_STOP_STEPS, math.ceil(duration / dt - 1e-9) + 1)
    times = (np.arange(steps) + 1) * dt
    if duration <= 0:
        return np.repeat(p0[None], steps, axis=0), np.zeros((steps, len(p0)))
    s = np.clip(times / duration, 0.0, 1.0)[:, None]
    positions = p0 + v0 * duration * (s - s**3 + s**4 / 2)
    velocities = v0 * (1 - 3 * s**2 + 2 * s**3)
    return np.clip(positions, position_limits[:, 0], position_limits[:, 1]), velocities
