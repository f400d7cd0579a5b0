"""Projection of sampled trajectories onto smooth motions through the request's start state and goal (ROS-free)."""

from __future__ import annotations

import numpy as np

from flow_planner_common.motion import TrajectoryBasis


class SmoothProjection:
    """Project samples onto smooth trajectories that satisfy the request's boundary conditions exactly.

    A sample's residual to the request's reference motion (flow_planner_common.motion.reference_trajectory: from
    the start state, with its velocity, to the goal at rest) is fitted by least squares onto `num_knots` windowed
    Gaussian bumps per joint (flow_planner_common.motion.TrajectoryBasis, the CEM expert's own basis), which vanish
    with zero slope at both ends. The result starts at the start state, ends at the goal at rest, has velocities
    that are the exact derivative of its positions, and keeps the sample's shape up to the basis resolution while
    dropping the high-frequency sampling noise that would otherwise dominate the jerk. Returns positions,
    velocities and, per sample, the largest position change the projection made (rad), which the caller bounds.
    """

    def __init__(self, num_knots: int, dt: float, horizon: int) -> None:
        self.basis = TrajectoryBasis(num_knots, dt, horizon)
        self._fit = np.linalg.pinv(self.basis.phi)  # (K, H)

    def __call__(
        self, positions: np.ndarray, reference: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """positions (N, H, J) and the request's reference motion (positions, velocities (H, J))."""
        knots = np.einsum("kh,nhj->nkj", self._fit, positions - reference[0][None])
        smooth_pos, smooth_vel = self.basis.around(reference, knots)
        change = np.abs(smooth_pos - positions).max(axis=(1, 2))
        return smooth_pos, smooth_vel, change
