"""The reference motion and the smooth trajectory basis around it, shared by the CEM expert (which searches the
basis's knot offsets), the flow model (which learns residuals to the reference) and the planner (which projects
samples onto the basis).

With s = t / T (T = horizon * dt) and waypoint k at t = (k + 1) dt:

    q(s) = q0 + (qg - q0) m(s) + T v0 p(s) + sum_j c_j phi_j(s)

m is the minimum-jerk blend (10 s^3 - 15 s^4 + 6 s^5), p the quintic with p(0) = 0, p'(0) = 1 and zero value,
slope and curvature at s = 1 (carries a non-zero start velocity v0 away), and phi_j(s) = 16 s^2 (1 - s)^2 g_j(s)
Gaussian bumps centred on `num_knots` knots inside (0, 1), windowed so that every offset starts and ends with zero
value and slope. c = 0 is the straight joint-space minimum-jerk line. Velocities are the analytic time derivative.
"""

from __future__ import annotations

import numpy as np

from flow_planner_common.robot import HORIZON


def min_jerk_blend(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """m(s) = 10 s^3 - 15 s^4 + 6 s^5 (0 to 1 with zero slope and curvature at both ends) and dm/ds."""
    return 10 * s**3 - 15 * s**4 + 6 * s**5, 30 * s**2 - 60 * s**3 + 30 * s**4


def velocity_carry(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p(s) = s - 6 s^3 + 8 s^4 - 3 s^5 (p(0) = 0, p'(0) = 1, zero value, slope and curvature at s = 1: carries a
    start velocity away) and dp/ds."""
    return s - 6 * s**3 + 8 * s**4 - 3 * s**5, 1 - 18 * s**2 + 32 * s**3 - 15 * s**4


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
    blend, dblend = min_jerk_blend(s)
    dblend = dblend / total
    carry, dcarry = velocity_carry(s)
    carry = total * carry
    shape = (-1,) + (1,) * start.ndim  # (H, 1) or (H, 1, 1): broadcast over joints (and batch)
    positions = start + blend.reshape(shape) * (goal - start) + carry.reshape(shape) * start_vel
    velocities = dblend.reshape(shape) * (goal - start) + dcarry.reshape(shape) * start_vel
    if start.ndim == 2:
        positions, velocities = positions.transpose(1, 0, 2), velocities.transpose(1, 0, 2)
    return positions, velocities


class TrajectoryBasis:
    """Positions and velocities at the waypoints as affine functions of the knot offsets."""

    def __init__(self, num_knots: int, dt: float, horizon: int = HORIZON) -> None:
        self.dt, self.horizon = dt, horizon
        self.duration = horizon * dt
        s = np.arange(1, horizon + 1) / horizon
        centres = np.linspace(0.2, 0.8, num_knots) if num_knots > 1 else np.array([0.5])
        width = 0.6 / num_knots
        window, dwindow = 16 * s**2 * (1 - s) ** 2, 32 * s * (1 - s) * (1 - 2 * s)
        g = np.exp(-((s[:, None] - centres[None]) ** 2) / (2 * width**2))
        dg = -(s[:, None] - centres[None]) / width**2 * g
        self.phi = window[:, None] * g  # (H, K)
        self.dphi = (dwindow[:, None] * g + window[:, None] * dg) / self.duration

    def trajectories(
        self, start: np.ndarray, start_vel: np.ndarray, goal: np.ndarray, knots: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """knots (N, K, 12) -> positions, velocities (N, H, 12): the reference motion plus the knot bumps."""
        return self.around(reference_trajectory(start, start_vel, goal, self.dt, self.horizon), knots)

    def around(
        self, reference: tuple[np.ndarray, np.ndarray], knots: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """knots (N, K, 12) -> positions, velocities (N, H, 12) around an already computed reference motion
        (positions, velocities (H, 12) from reference_trajectory): for callers that use one reference many times."""
        base, dbase = reference
        positions = base[None] + np.einsum("hk,nkj->nhj", self.phi, knots)
        velocities = dbase[None] + np.einsum("hk,nkj->nhj", self.dphi, knots)
        return positions, velocities
