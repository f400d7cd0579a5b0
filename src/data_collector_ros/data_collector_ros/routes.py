"""Alternative routes for the CEM expert to start from when the straight line is blocked (ROS-free).

A route is a set of knot offsets (num_knots, 12) of the expert's basis (flow_planner_common.motion.TrajectoryBasis)
that bends the straight joint-space line through via configurations: IK solutions of Cartesian via poses that go
over, beside or under the straight path. Carry: the tray is lifted early, lifted mid-way, moved sideways either way
or dipped, and under a box above the tray (the `bar` template) a tray path that slides out until clear and
rises only then, both arms following by IK (tray_paths: a reference motion, not knots: the 4-knot basis cannot
hold the tray down early enough); reach: both tools come from higher, from either side or from behind. The knots
are the least-squares (minimum-norm) bends through the vias, so a route is smooth and starts and ends exactly where
the line does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from data_collector_ros.ik import IKSolver
from data_collector_ros.task import handle_targets
from flow_planner_common.kinematics import ArmKinematics, RobotGeometry
from flow_planner_common.motion import TrajectoryBasis, min_jerk_blend, reference_trajectory
from flow_planner_common.obstacles import Box
from flow_planner_common.robot import PHASE_CARRY
from flow_planner_common.tray_ik import TrayIK, nearest_turns

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


#: A route: knot offsets (num_knots, 12) around the straight line, or a reference motion of its own (positions,
#: velocities (H, 12)) for the search to bend.
Route = np.ndarray | tuple[np.ndarray, np.ndarray]
#: Horizontal room (m) kept between the tray and a box above it before the tray rises past the box.
OVERHEAD_CLEARANCE = 0.04
#: m: how far a turn of the tray moves its ends and the tools per radian (slide_timings)
TURN_LEVER = 0.3
#: Weights of the slide, the rise and the move to the goal in slide_timings.
SLIDE_WEIGHT = np.array([2.0, 1.0, 1.0])


def overhead_slides(
    tray_start: np.ndarray, tray_goal: np.ndarray, obstacles: Sequence[Box], geometry: RobotGeometry
) -> list[tuple[np.ndarray, float]]:
    """For each box above the resting tray (the `bar` template): where the tray can slide to, along the straight
    path's horizontal direction and against it, for its footprint to leave the box's by OVERHEAD_CLEARANCE ((2,) xy
    of its centre), and how much it rises while sliding (m: half the gap between the tray and the box, at most
    2 cm); the shorter whole tray path (slide, then on to the goal) first. A box that does not overlap the tray's
    footprint from above, or a carry without horizontal motion, gives nothing."""
    start, goal = np.asarray(tray_start, dtype=float), np.asarray(tray_goal, dtype=float)
    way = goal[:2] - start[:2]
    length = float(np.linalg.norm(way))
    if length < 1e-3:
        return []
    u = way / length
    across = np.array([-u[1], u[0]])
    tray = _footprint(geometry.tray_center, geometry.tray_half, start[:2], 2 * np.arctan2(start[6], start[3]))
    tray_top = start[2] + float(np.max(geometry.tray_center[:, 2] + geometry.tray_half[:, 2]))
    slides = []
    for box in obstacles:
        bottom = box.center[2] - box.size[2] / 2
        corners = _footprint(np.zeros((1, 3)), np.asarray(box.size)[None] / 2, np.asarray(box.center[:2]), box.yaw)
        if bottom < tray_top or not _overlap(tray, corners, u) or not _overlap(tray, corners, across):
            continue
        lift = min(0.02, max(0.0, (bottom - tray_top) / 2))
        for d in (u, -u):  # towards the goal, or away from it and back past the box after rising
            slide = float(np.max(corners @ d) - np.min(tray @ d)) + OVERHEAD_CLEARANCE  # m along d until clear
            clear_xy = start[:2] + slide * d
            slides.append((slide + float(np.linalg.norm(goal[:2] - clear_xy)), clear_xy, lift))
    return [(clear_xy, lift) for _, clear_xy, lift in sorted(slides, key=lambda item: item[0])]


def slide_timings(
    tray_start: np.ndarray, tray_goal: np.ndarray, clear_xy: np.ndarray, lift: float
) -> tuple[tuple[float, float], ...]:
    """`switches` for slide_then_rise: each of the three motions gets time in proportion to its length (the same
    peak speed in each; a 30 cm slide in a fixed share of the horizon drove joints past their speed limits), or to
    its length's square root (the same peak acceleration), the slide's length counted twice (SLIDE_WEIGHT: it
    threads the slot between table and box, where the sweep of a fast motion raises the required clearance);
    every motion at least 15 % of the horizon. The last
    motion's length counts the turn to the goal's yaw at TURN_LEVER (the wrists turn with the tray). Then the
    fixed timing that suits short slides."""
    start, goal = np.asarray(tray_start, dtype=float), np.asarray(tray_goal, dtype=float)
    turn = abs(np.angle(np.exp(2j * (np.arctan2(goal[6], goal[3]) - np.arctan2(start[6], start[3])))))
    lengths = np.array([
        np.hypot(np.linalg.norm(np.asarray(clear_xy) - start[:2]), lift),
        abs(goal[2] - start[2] - lift),
        np.linalg.norm(goal[:2] - np.asarray(clear_xy)) + TURN_LEVER * turn,
    ])  # fmt: skip
    timings = [(0.35, 0.7)]
    for weight in (lengths * SLIDE_WEIGHT, np.sqrt(lengths) * SLIDE_WEIGHT):
        share = np.maximum(weight / max(float(weight.sum()), 1e-9), 0.15)
        share /= share.sum()
        timings.insert(-1, (float(share[0]), float(share[0] + share[1])))
    return tuple(timings)


def slide_then_rise(
    tray_start: np.ndarray, tray_goal: np.ndarray, clear_xy: np.ndarray, lift: float, switches: tuple[float, float],
    horizon: int,
) -> np.ndarray:
    """Level tray poses (horizon, 7) at s = (k + 1) / horizon in three minimum-jerk motions from rest to rest: slide
    to `clear_xy` rising by `lift` until s = switches[0] (the tray first rises off the table: the rise takes the
    first half of that time and the slide starts a quarter in, so a tray that moves is already clear of the table),
    rise to the goal's height until s = switches[1], then move across to the goal (back, where the tray had to pass
    it to clear the box) while turning to the goal's yaw (a long tray turning under the box would swing its ends
    into it)."""
    start, goal = np.asarray(tray_start, dtype=float), np.asarray(tray_goal, dtype=float)
    s = np.arange(1, horizon + 1) / horizon
    knots = [start[:3], np.array([*clear_xy, start[2] + lift]), np.array([*clear_xy, goal[2]]), goal[:3]]
    bounds = (0.0, *switches, 1.0)
    poses = np.empty((horizon, 7))
    poses[:, :3] = start[:3]
    for i in range(3):
        blend, _ = min_jerk_blend(np.clip((s - bounds[i]) / (bounds[i + 1] - bounds[i]), 0.0, 1.0))
        step = knots[i + 1] - knots[i]
        if i == 0:  # lift off in [0, switches[0] / 2], slide in [switches[0] / 4, switches[0]]
            lifting, _ = min_jerk_blend(np.clip(s / (bounds[1] / 2), 0.0, 1.0))
            sliding, _ = min_jerk_blend(np.clip((s - bounds[1] / 4) / (0.75 * bounds[1]), 0.0, 1.0))
            poses[:, :2] += sliding[:, None] * step[:2]
            poses[:, 2] += lifting * step[2]
        else:
            poses[:, :3] += blend[:, None] * step
    yaw0, yaw1 = (2 * np.arctan2(p[6], p[3]) for p in (start, goal))
    yaw = yaw0 + blend * np.angle(np.exp(1j * (yaw1 - yaw0)))  # turns in the last part, above the box
    poses[:, 3:] = np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], axis=-1)
    return poses


def _footprint(center: np.ndarray, half: np.ndarray, origin: np.ndarray, yaw: float) -> np.ndarray:
    """World xy corners (4T, 2) of boxes (T, 3 centre and half extents in a frame at `origin` turned by `yaw`)."""
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, -s], [s, c]])
    signs = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=float)
    local = center[:, None, :2] + signs[None] * half[:, None, :2]  # (T, 4, 2)
    return origin + local.reshape(-1, 2) @ rot.T


def _overlap(a: np.ndarray, b: np.ndarray, axis: np.ndarray) -> bool:
    """Whether two point sets' projections onto `axis` overlap."""
    pa, pb = a @ axis, b @ axis
    return bool(pa.max() > pb.min() and pb.max() > pa.min())


class RouteBuilder:
    """Route knots for one phase: IK of the via poses, least squares onto the basis. Thread-confined."""

    def __init__(self, ik: IKSolver, basis: TrajectoryBasis, config: RouteConfig | None = None) -> None:
        self.ik, self.basis, self.config = ik, basis, config or RouteConfig()
        self.model, self.index = ik.model, ik.index
        self.data = ik.data  # the IK solver's scratch data: used between its solves, never during one
        self.geometry = RobotGeometry.load()  # the tray's shapes (overhead_slides)
        self.tray_ik = TrayIK(ArmKinematics(self.geometry))  # the collision checker's chain (tray_paths)

    def routes(
        self,
        phase: int,
        start_positions: np.ndarray,
        start_velocities: np.ndarray,
        goal_positions: np.ndarray,
        tray_start: np.ndarray,
        tray_goal: np.ndarray,
        seed: int = 0,
        obstacles: Sequence[Box] = (),
    ) -> list[np.ndarray]:
        """Routes: knot offsets (num_knots, 12) of every via route whose vias IK reaches; for a carry under a box
        (`obstacles`) first the tray paths that slide out from under it (tray_paths: reference motions)."""
        basis = self.basis
        straight, _ = reference_trajectory(start_positions, start_velocities, goal_positions, basis.dt, basis.horizon)
        vias = self.config.carry if phase == PHASE_CARRY else self.config.reach
        found: list[Route] = []
        if phase == PHASE_CARRY:
            found += self.tray_paths(start_positions, straight, tray_start, tray_goal, obstacles)
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

    def tray_paths(
        self, start_positions: np.ndarray, straight: np.ndarray, tray_start: np.ndarray, tray_goal: np.ndarray,
        obstacles: Sequence[Box],
    ) -> list[Route]:
        """Reference motions (positions, velocities (H, 12)) that carry the tray out from under each box above it
        and only then up (overhead_slides, slide_then_rise, two slide_timings each): both arms by the
        numpy tray IK at every waypoint (each tool keeps its start pose in the tray's frame: no grip change),
        seeded by the straight joint-space line; velocities by central differences (zero at the end). A path whose
        IK does not converge at every waypoint is left out."""
        basis, paths = self.basis, []
        for clear_xy, lift in overhead_slides(tray_start, tray_goal, obstacles, self.geometry):
            for switches in slide_timings(tray_start, tray_goal, clear_xy, lift):
                poses = slide_then_rise(tray_start, tray_goal, clear_xy, lift, switches, basis.horizon)
                targets = self.tray_ik.carry_targets(start_positions, tray_start, poses)
                positions, converged = self.tray_ik.solve_batch(*targets, straight)
                if not np.all(converged):
                    continue
                positions = nearest_turns(positions, straight)
                full = np.vstack([start_positions, positions])
                velocities = np.gradient(full, basis.dt, axis=0)[1:]
                velocities[-1] = 0.0
                paths.append((positions, velocities))
        return paths

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
