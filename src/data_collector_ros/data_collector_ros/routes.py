"""Alternative routes for the CEM expert to start from when the straight line is blocked (ROS-free).

A route is a set of knot offsets (num_knots, 12) of the expert's basis (flow_planner_common.motion.TrajectoryBasis)
that bends the straight joint-space line through via configurations: IK solutions of Cartesian via poses that go
over, beside or under the straight path. Carry: the tray is lifted early, lifted mid-way, moved sideways either way
or dipped; reach: both tools come from higher, from either side or from behind. The knots are the least-squares
(minimum-norm) bends through the vias, so a route is smooth and starts and ends exactly where the line does.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from data_collector_ros.ik import IKSolver
from data_collector_ros.task import handle_targets
from flow_planner_common.motion import TrajectoryBasis, reference_trajectory
from flow_planner_common.robot import PHASE_CARRY

#: A via: (fraction of the time s in (0, 1), Cartesian offset (3,) from the straight path there (m), and for the
#: carry the fractions of the tray's horizontal and vertical way done by then (None = s: the straight path)).
Via = tuple[float, tuple[float, float, float]] | tuple[float, tuple[float, float, float], float, float]


@dataclass(frozen=True)
class RouteConfig:
    """The routes tried, as via offsets from the straight path (world frame; y is across the table)."""

    carry: tuple[tuple[Via, ...], ...] = (
        ((0.35, (0.0, 0.0, 0.04), 0.05, 1.0), (0.7, (0.0, 0.0, 0.03), 0.8, 1.0)),  # lift first, then move
        ((0.4, (0.0, 0.0, 0.02), 0.8, 0.0), (0.75, (0.0, 0.0, 0.0), 1.0, 0.8)),  # slide first, then rise
        ((0.3, (0.0, 0.0, 0.14)), (0.7, (0.0, 0.0, 0.10))),  # lift early, stay high
        ((0.5, (0.0, 0.0, 0.18)),),  # over, mid-way
        ((0.35, (0.0, 0.0, 0.24)), (0.7, (0.0, 0.0, 0.16))),  # high over
        ((0.5, (0.0, 0.12, 0.04)),),  # beside (left)
        ((0.5, (0.0, -0.12, 0.04)),),  # beside (right)
        ((0.5, (0.0, 0.0, -0.07)),),  # under
    )
    reach: tuple[tuple[Via, ...], ...] = (
        ((0.5, (0.0, 0.0, 0.12)),),  # from higher
        ((0.5, (0.0, 0.10, 0.05)),),  # from the left
        ((0.5, (0.0, -0.10, 0.05)),),  # from the right
        ((0.5, (-0.12, 0.0, 0.06)),),  # from behind
        ((0.6, (0.10, 0.0, 0.08)),),  # from the front
    )


class RouteBuilder:
    """Route knots for one phase: IK of the via poses, least squares onto the basis. Thread-confined."""

    def __init__(self, ik: IKSolver, basis: TrajectoryBasis, config: RouteConfig | None = None) -> None:
        self.ik, self.basis, self.config = ik, basis, config or RouteConfig()
        self.model, self.index = ik.model, ik.index
        self.data = ik.data  # the IK solver's scratch data: used between its solves, never during one

    def routes(
        self,
        phase: int,
        start_positions: np.ndarray,
        start_velocities: np.ndarray,
        goal_positions: np.ndarray,
        tray_start: np.ndarray,
        tray_goal: np.ndarray,
        seed: int = 0,
    ) -> list[np.ndarray]:
        """Knot offsets (num_knots, 12) of every route whose vias IK reaches."""
        basis = self.basis
        straight, _ = reference_trajectory(start_positions, start_velocities, goal_positions, basis.dt, basis.horizon)
        vias = self.config.carry if phase == PHASE_CARRY else self.config.reach
        found = []
        for route in vias:
            rows, deltas = [], []
            for via in route:
                s, offset = via[0], np.asarray(via[1])
                fractions = (via[2], via[3]) if len(via) == 4 else (s, s)
                k = min(basis.horizon - 1, max(0, round(s * basis.horizon) - 1))
                targets, quats = self._via_targets(phase, straight[k], s, fractions, offset, tray_start, tray_goal)
                solution = self.ik.solve(targets, quats, seed_positions=straight[k], seed=seed)
                if not solution.success:
                    break
                rows.append(basis.phi[k])
                deltas.append(solution.positions - straight[k])
            else:
                knots, *_ = np.linalg.lstsq(np.array(rows), np.array(deltas), rcond=None)
                found.append(knots)
        return found

    def _via_targets(
        self, phase: int, config: np.ndarray, s: float, fractions: tuple[float, float], offset: np.ndarray,
        tray_start: np.ndarray, tray_goal: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Tool targets (2, 3) and orientations (2, 4) at a via: carry = handles of the tray's via pose; reach =
        the straight path's tool positions, offset, with the tools' orientations there."""
        if phase == PHASE_CARRY:
            pose = np.array(tray_goal, dtype=float)
            along, up = fractions
            start, goal = np.asarray(tray_start[:3], dtype=float), np.asarray(tray_goal[:3], dtype=float)
            pose[:2] = (1 - along) * start[:2] + along * goal[:2]
            pose[2] = (1 - up) * start[2] + up * goal[2]
            pose[:3] += offset
            yaw0, yaw1 = (2 * np.arctan2(p[6], p[3]) for p in (tray_start, tray_goal))
            yaw = yaw0 + s * np.angle(np.exp(1j * (yaw1 - yaw0)))
            pose[3:] = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
            return handle_targets(self.model, self.index, pose)
        d, idx = self.data, self.index
        d.qpos[idx.qpos_adr] = config
        mujoco.mj_kinematics(self.model, d)
        quats = np.zeros((2, 4))
        for arm, site in enumerate(idx.ee_sites):
            mujoco.mju_mat2Quat(quats[arm], d.site_xmat[site])
        return d.site_xpos[idx.ee_sites] + offset, quats
