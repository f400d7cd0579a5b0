"""Joining a new plan to the running one (ROS-free): where the running plan is at the switch, and a cross-fade of
the new plan's first waypoints from it, so that neither position nor velocity jumps when a replan or a preempting
plan replaces the trajectory being executed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ContinuationPrefix:
    """The part of the running plan that a replan must join smoothly: where it is at the switch, and its next
    waypoints in time."""

    positions: np.ndarray  # (B, J), at the new plan's first B waypoint times
    velocities: np.ndarray  # (B, J)
    anchor: np.ndarray  # (J,) the running plan's position at the switch (the new plan's t = 0)


def blend_with_prefix(
    positions: np.ndarray, velocities: np.ndarray, prefix: ContinuationPrefix
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fade the first B waypoints of a new plan from the running plan into the new one.

    Weight of the running plan at new waypoint i (0-based): 1 - (i + 1) / (B + 1), so the motion leaves the
    old plan gradually: no position or velocity jump at the switch, whatever the sample's first waypoints do.
    """
    blend = min(len(prefix.positions), len(positions))
    if blend == 0:
        return positions, velocities
    weights = 1.0 - np.arange(1, blend + 1)[:, None] / (blend + 1)
    positions = positions.copy()
    velocities = velocities.copy()
    positions[:blend] = weights * prefix.positions[:blend] + (1 - weights) * positions[:blend]
    velocities[:blend] = weights * prefix.velocities[:blend] + (1 - weights) * velocities[:blend]
    return positions, velocities


def running_plan_prefix(
    positions: np.ndarray, velocities: np.ndarray, dt: float, elapsed: float, count: int
) -> ContinuationPrefix:
    """Where a running plan (started `elapsed` s ago) is now, and its waypoints at elapsed + (i + 1) * dt, i < count,
    linearly interpolated; past its end the plan holds its last position at zero velocity."""
    horizon = len(positions)
    times = (np.arange(horizon) + 1) * dt
    query = elapsed + np.arange(count + 1) * dt
    pos = np.stack([np.interp(query, times, positions[:, j]) for j in range(positions.shape[1])], axis=1)
    vel = np.stack([np.interp(query, times, velocities[:, j]) for j in range(velocities.shape[1])], axis=1)
    vel[query > times[-1]] = 0.0
    return ContinuationPrefix(pos[1:], vel[1:], pos[0])
