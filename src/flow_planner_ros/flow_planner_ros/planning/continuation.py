"""Joining a new plan to the running one (ROS-free), as the controllers execute it.

The controllers (joint_trajectory_controller, and the simulation bridge like it) follow a published plan by cubic
Hermite interpolation from their commanded state through waypoint k at (k + 1)·dt after the trajectory's
header.stamp, and splice a new trajectory in from the commanded state (`commanded_trajectory` models a plan that
way). A plan that replaces a running one (a replan, or a request that preempts an execution) is continuous with what
the controllers command at the switch, in position, velocity and acceleration:

1. it is sampled from the running plan's commanded state (position and velocity) when planning starts
   (`Join.started`), not from /joint_states, which lag the command;
2. the switch is the instant its prefix is read, after sampling (`Join.switch_at`), and the plan is published
   stamped with it, so the controllers splice at that instant whatever the message latency or their control period;
3. by then the new plan's own time has run `switch_at - started` s: it is resampled from there (`advance`);
4. its first B waypoints are cross-faded from the running plan with a quintic weight w (1 → 0, first and second
   derivatives zero at both ends) whose derivative is part of the velocities (v = w·v_old + (1 − w)·v_new +
   w'·(p_old − p_new)), so positions and velocities stay consistent, the Hermite segments between them do not
   wiggle, and the motion has the running plan's velocity and acceleration at the switch and the new plan's where
   the fade ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from flow_planner_common.hermite import HermiteTrajectory
from flow_planner_ros.planning.request import PlanRequest


def commanded_trajectory(
    start_positions: np.ndarray, start_velocities: np.ndarray, positions: np.ndarray, velocities: np.ndarray, dt: float
) -> HermiteTrajectory:
    """What the controllers command for a plan (H, J) started from the commanded state (start_*) at t = 0."""
    times = (np.arange(len(positions)) + 1) * dt
    return HermiteTrajectory.from_waypoints(start_positions, start_velocities, times, positions, velocities)


@dataclass(frozen=True)
class ContinuationPrefix:
    """The part of the running plan that a new plan joins: its commanded state at the switch, its next waypoints in
    time, and how far the new plan's own time has run at the switch."""

    positions: np.ndarray  # (B, J), at the new plan's first B waypoint times
    velocities: np.ndarray  # (B, J)
    anchor: np.ndarray  # (J,) the running plan's commanded position at the switch (the new plan's t = 0)
    anchor_velocity: np.ndarray | None = None  # (J,) and its commanded velocity there
    advance: float = 0.0  # s: the new plan was sampled from the running plan's state this long before the switch


def running_plan_prefix(
    running: HermiteTrajectory, dt: float, elapsed: float, count: int, advance: float = 0.0
) -> ContinuationPrefix:
    """The running plan (`elapsed` s after its start) at the switch and at elapsed + (i + 1)·dt, i < count, sampled
    as the controllers interpolate it; past its end it holds its last position at rest."""
    positions, velocities = running.sample(elapsed + np.arange(count + 1) * dt)
    return ContinuationPrefix(positions[1:], velocities[1:], positions[0], velocities[0], max(0.0, advance))


def advanced(
    positions: np.ndarray,
    velocities: np.ndarray,
    start_positions: np.ndarray,
    start_velocities: np.ndarray,
    dt: float,
    advance: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates (N, H, J) from the start state, resampled `advance` s later: waypoint k at advance + (k + 1)·dt
    of each (Hermite, as executed; past the end: the last position at rest)."""
    if advance <= 0.0:
        return positions, velocities
    n, horizon, joints = positions.shape
    flat = lambda a: np.moveaxis(a, 0, -2).reshape(horizon, n * joints)  # noqa: E731 - (N, H, J) -> (H, N·J)
    trajectory = commanded_trajectory(
        np.tile(start_positions, n), np.tile(start_velocities, n), flat(positions), flat(velocities), dt
    )
    pos, vel = trajectory.sample(advance + (np.arange(horizon) + 1) * dt)
    unflat = lambda a: np.moveaxis(a.reshape(horizon, n, joints), -2, 0)  # noqa: E731
    return unflat(pos), unflat(vel)


def blend_with_prefix(
    positions: np.ndarray, velocities: np.ndarray, prefix: ContinuationPrefix, dt: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fade the first B waypoints of new plans ((H, J) or (N, H, J)) from the running plan into them.

    Weight of the running plan at new waypoint i (0-based), s = (i + 1) / (B + 1): w = 1 − 10s³ + 15s⁴ − 6s⁵ (its
    first and second derivatives vanish at both ends: no velocity or acceleration step where the fade starts or
    ends); velocities get the weight's derivative times the gap, so they are the blended positions' own derivative."""
    blend = min(len(prefix.positions), positions.shape[-2])
    if blend == 0:
        return positions, velocities
    s = (np.arange(1, blend + 1) / (blend + 1))[:, None]
    weight = 1.0 - 10.0 * s**3 + 15.0 * s**4 - 6.0 * s**5
    slope = (-30.0 * s**2 + 60.0 * s**3 - 30.0 * s**4) / ((blend + 1) * dt)
    positions, velocities = positions.copy(), velocities.copy()
    new_p, new_v = positions[..., :blend, :], velocities[..., :blend, :]
    old_p, old_v = prefix.positions[:blend], prefix.velocities[:blend]
    velocities[..., :blend, :] = weight * old_v + (1 - weight) * new_v + slope * (old_p - new_p)
    positions[..., :blend, :] = weight * old_p + (1 - weight) * new_p
    return positions, velocities


def join_candidates(
    positions: np.ndarray, velocities: np.ndarray, request: PlanRequest, prefix: ContinuationPrefix, dt: float
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates (N, H, J) sampled from the request's start, joined to the running plan at the switch."""
    positions, velocities = advanced(
        positions, velocities, request.start_positions, request.start_velocities, dt, prefix.advance
    )
    return blend_with_prefix(positions, velocities, prefix, dt)


class Join:
    """A new plan joining a running one (`running`: its commanded trajectory, started at `started_at` on `clock`).

    Created when planning starts: `request()` is the request from the running plan's commanded state now; the
    pipeline calls `prefix()` after sampling (and again after a refinement), which fixes the switch instant
    `switch_at` (the stamp to publish with) and `state` (the commanded position and velocity there)."""

    def __init__(
        self, running: HermiteTrajectory, started_at: float, dt: float, blend_steps: int, clock: Callable[[], float]
    ) -> None:
        self._running, self._started_at, self._dt = running, started_at, dt
        self._blend, self._clock = blend_steps, clock
        self.started = clock()
        self.start_positions, self.start_velocities = running.sample(self.started - started_at)
        self.switch_at: float | None = None
        self.state: tuple[np.ndarray, np.ndarray] | None = None

    def request(self, request: PlanRequest) -> PlanRequest:
        """`request` planned from the running plan's commanded state (the request itself was checked against the
        measured state)."""
        return replace(request, start_positions=self.start_positions, start_velocities=self.start_velocities)

    def prefix(self) -> ContinuationPrefix:
        self.switch_at = self._clock()
        prefix = running_plan_prefix(
            self._running, self._dt, self.switch_at - self._started_at, self._blend, self.switch_at - self.started
        )
        self.state = (prefix.anchor, prefix.anchor_velocity)
        return prefix
