"""Cubic Hermite joint trajectories, sampled like ros2_control's joint_trajectory_controller (ROS-free): the
simulation's controllers execute them (data_collector_ros.simulation) and the planner models what the controllers
execute with them (flow_planner_ros.planning.continuation), so both sides interpolate alike.

A trajectory starts from a state (positions, velocities) at t = 0 and passes through waypoints at strictly
increasing times > 0 with the given positions and velocities; between two knots it is the cubic Hermite
polynomial matching both ends (C1 continuous). Before t = 0 it holds the start; after the last waypoint it holds
the last position with zero velocity (what JTC does when a trajectory ends).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    def peak_acceleration(self) -> np.ndarray:
        """Largest |acceleration| of each joint over the whole trajectory (J,): exact, since a cubic segment's
        acceleration is linear in time and so peaks at one of its ends."""
        h = np.diff(self.times)[:, None]
        slope = np.diff(self.positions, axis=0) / h
        v0, v1 = self.velocities[:-1], self.velocities[1:]
        start, end = (6 * slope - 4 * v0 - 2 * v1) / h, (-6 * slope + 2 * v0 + 4 * v1) / h
        return np.maximum(np.abs(start), np.abs(end)).max(axis=0)

    def sample(self, t: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities at time(s) t: shapes (J,) for a scalar t, (T, J) for an array."""
        pos, vel, _ = self.sample_state(t)
        return pos, vel

    def sample_state(self, t: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions, velocities and accelerations at time(s) t (at a knot, the acceleration of the segment that
        starts there; zero before the start and after the end)."""
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
        acc = ((12 * s - 6) * (p0 - p1) + (6 * s - 4) * v0 + (6 * s - 2) * v1) / (h * h)
        before, after = t < 0, t >= self.times[-1]
        pos[before], vel[before], acc[before] = self.positions[0], self.velocities[0], 0.0
        pos[after], vel[after], acc[after] = self.positions[-1], 0.0, 0.0
        return (pos[0], vel[0], acc[0]) if scalar else (pos, vel, acc)
