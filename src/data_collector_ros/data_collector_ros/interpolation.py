"""Cubic Hermite joint trajectories, sampled like ros2_control's joint_trajectory_controller.

A trajectory starts from a state (positions, velocities) at t = 0 and passes through waypoints at strictly
increasing times > 0 with the given positions and velocities; between two knots it is the cubic Hermite
polynomial matching both ends (C1 continuous). Before t = 0 it holds the start; after the last waypoint it holds
the last position with zero velocity (what JTC does when a trajectory ends).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_collector_ros.robot import HORIZON


@dataclass(frozen=True)
class HermiteTrajectory:
    """Knot times (K,), positions (K, J) and velocities (K, J); knot 0 is the start state at t = 0."""

    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray

    @classmethod
    def from_waypoints(
        cls,
        start_positions: np.ndarray,
        start_velocities: np.ndarray,
        times: np.ndarray,
        positions: np.ndarray,
        velocities: np.ndarray,
    ) -> HermiteTrajectory:
        """Prepend the start state at t = 0 to waypoints (times (N,) > 0 strictly increasing, (N, J) arrays)."""
        times = np.asarray(times, dtype=float)
        positions = np.atleast_2d(np.asarray(positions, dtype=float))
        velocities = np.atleast_2d(np.asarray(velocities, dtype=float))
        if times.ndim != 1 or len(times) == 0 or positions.shape != (len(times), len(start_positions)):
            raise ValueError(
                f"waypoints: times {times.shape}, positions {positions.shape}, {len(start_positions)} joints"
            )
        if velocities.shape != positions.shape:
            raise ValueError(f"velocities {velocities.shape} != positions {positions.shape}")
        if times[0] <= 0 or np.any(np.diff(times) <= 0):
            raise ValueError("waypoint times must be > 0 and strictly increasing")
        return cls(
            times=np.concatenate([[0.0], times]),
            positions=np.vstack([np.asarray(start_positions, dtype=float), positions]),
            velocities=np.vstack([np.asarray(start_velocities, dtype=float), velocities]),
        )

    @classmethod
    def from_planner_arrays(
        cls,
        start_positions: np.ndarray,
        start_velocities: np.ndarray,
        positions: np.ndarray,
        velocities: np.ndarray,
        dt: float,
    ) -> HermiteTrajectory:
        """The project's format: waypoint k of (HORIZON, J) arrays at time (k + 1) * dt."""
        if len(positions) != HORIZON:
            raise ValueError(f"expected {HORIZON} waypoints, got {len(positions)}")
        times = dt * np.arange(1, len(positions) + 1)
        return cls.from_waypoints(start_positions, start_velocities, times, positions, velocities)

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    def sample(self, t: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities at time(s) t: shapes (J,) for a scalar t, (T, J) for an array."""
        scalar = np.ndim(t) == 0
        t = np.atleast_1d(np.asarray(t, dtype=float))
        seg = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self.times) - 2)
        t0, t1 = self.times[seg], self.times[seg + 1]
        h = (t1 - t0)[:, None]
        s = np.clip((t - t0) / (t1 - t0), 0.0, 1.0)[:, None]
        p0, p1 = self.positions[seg], self.positions[seg + 1]
        v0, v1 = self.velocities[seg] * h, self.velocities[seg + 1] * h
        s2, s3 = s * s, s * s * s
        pos = (2 * s3 - 3 * s2 + 1) * p0 + (s3 - 2 * s2 + s) * v0 + (-2 * s3 + 3 * s2) * p1 + (s3 - s2) * v1
        vel = ((6 * s2 - 6 * s) * p0 + (3 * s2 - 4 * s + 1) * v0 + (-6 * s2 + 6 * s) * p1 + (3 * s2 - 2 * s) * v1) / h
        before, after = t < 0, t >= self.times[-1]
        pos[before], vel[before] = self.positions[0], self.velocities[0]
        pos[after], vel[after] = self.positions[-1], 0.0
        return (pos[0], vel[0]) if scalar else (pos, vel)


def min_jerk_waypoints(
    start: np.ndarray, goal: np.ndarray, dt: float, horizon: int = HORIZON
) -> tuple[np.ndarray, np.ndarray]:
    """A rest-to-rest minimum-jerk joint motion as (horizon, J) positions and velocities at (k + 1) * dt.

    A simple, smooth reference motion (tests, demos, a CEM mean); not a planner.
    """
    start = np.asarray(start, dtype=float)
    return reference_trajectory(start, np.zeros_like(start), goal, dt, horizon)


def reference_trajectory(
    start: np.ndarray, start_vel: np.ndarray, goal: np.ndarray, dt: float, horizon: int = HORIZON
) -> tuple[np.ndarray, np.ndarray]:
    """The nominal motion from a (possibly moving) start state to a goal at rest, at waypoints (k + 1) * dt.

    q(s) = q0 + (qg - q0) m(s) + T v0 p(s), s = t / T, T = horizon * dt: m is the minimum-jerk blend and p the
    quintic with p(0) = 0, p'(0) = 1 and zero value, slope and curvature at s = 1. It starts at q0 with velocity
    v0 and ends at the goal at rest. Inputs (J,) or batched (N, J); returns positions and velocities
    (horizon, J) or (N, horizon, J). The CEM expert bends it; the flow model learns the bends (residuals).
    """
    start, start_vel, goal = (np.asarray(a, dtype=float) for a in (start, start_vel, goal))
    total = horizon * dt
    s = np.arange(1, horizon + 1) / horizon
    blend = 10 * s**3 - 15 * s**4 + 6 * s**5
    dblend = (30 * s**2 - 60 * s**3 + 30 * s**4) / total
    carry = total * (s - 6 * s**3 + 8 * s**4 - 3 * s**5)
    dcarry = 1 - 18 * s**2 + 32 * s**3 - 15 * s**4
    shape = (-1,) + (1,) * start.ndim  # (H, 1) or (H, 1, 1): broadcast over joints (and batch)
    positions = start + blend.reshape(shape) * (goal - start) + carry.reshape(shape) * start_vel
    velocities = dblend.reshape(shape) * (goal - start) + dcarry.reshape(shape) * start_vel
    if start.ndim == 2:
        positions, velocities = positions.transpose(1, 0, 2), velocities.transpose(1, 0, 2)
    return positions, velocities
