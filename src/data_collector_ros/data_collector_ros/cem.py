"""The CEM expert (ROS-free): a smooth 60 x 12 joint trajectory from a start state to an IK goal for one phase.

Parameterization. With s = t / T (T = HORIZON * dt) and waypoint k at t = (k + 1) dt:

    q(s) = q0 + (qg - q0) m(s) + T v0 p(s) + sum_j c_j phi_j(s)

m is the minimum-jerk blend (10 s^3 - 15 s^4 + 6 s^5), p the quintic with p(0) = 0, p'(0) = 1 and zero value,
slope and curvature at s = 1 (carries a non-zero start velocity v0 away), and phi_j(s) = 16 s^2 (1 - s)^2 g_j(s)
Gaussian bumps centred on `num_knots` knots inside (0, 1), windowed so that every offset starts and ends with
zero value and slope. The knot offsets c (num_knots x 12, rad) are the CEM's variables; c = 0 is the straight
joint-space minimum-jerk line. Velocities are the analytic time derivative, so they match the positions, start
at v0 and end at 0; the trajectory always starts at q0 and ends exactly at the goal.

Search. Each iteration samples `num_candidates` offset sets from N(mean, std^2) (candidate 0 is the mean itself;
in the first iteration candidate 1 is the straight line), scores them in one batch with `PlanCost` (kinematics and
collisions on every waypoint, no physics), refits mean and std on the `num_elites` best with smoothing `alpha`,
and keeps the best plan seen. It stops after `iterations`, or early when the best plan is feasible and improved by
less than `tolerance` (relative) in an iteration. Everything random comes from the generator passed in.

Grip (carries). Both tools hold one tray, so the right arm cannot move freely: with `hold_grip` every carry
candidate's right arm is replaced by the one that keeps its end effector where it was at the start in the left end
effector's frame (flow_planner_common.grip_follower: a few damped-least-squares steps per waypoint from
the candidate's own right arm, velocities through the Jacobians), so every carry is grip-consistent by construction
and the search spends its samples on the left arm's (the tray's) path alone: the right arm's knots get no noise.

Routes. The search above starts from the straight line, which a box across the path blocks. When it ends without a
feasible plan, the search restarts from the `routes` given by the caller in order (knot offsets bending the line
over, beside or under an obstacle, see data_collector_ros.routes), `route_iterations` iterations each, until one
finds a feasible plan; the best plan over all searches wins (feasible first, then cost). When the start or the goal
itself fails the planner's check no route is tried. On empty scenes the first search finds a feasible plan and
no route is tried, so the expert stays as fast as the straight-line search.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import mujoco
import numpy as np

from data_collector_ros.plan_cost import TERMS, CostLimits, CostWeights, PhaseContext, PlanCost
from data_collector_ros.routes import Route
from flow_planner_common.grip_follower import GripFollower
from flow_planner_common.motion import TrajectoryBasis, reference_trajectory
from flow_planner_common.robot import NUM_ARM_JOINTS, NUM_JOINTS, PHASE_CARRY


@dataclass(frozen=True)
class CEMConfig:
    num_candidates: int = 24
    num_elites: int = 5
    iterations: int = 5
    min_iterations: int = 2
    num_knots: int = 4
    init_std: float = 0.10  # rad
    min_std: float = 0.005  # rad
    alpha: float = 0.8  # weight of the elite statistics in the update
    tolerance: float = 1e-3  # relative improvement below which a feasible plan stops the search
    route_iterations: int = 4  # iterations of the search restarted from each route
    route_std: float = 0.15  # rad, initial spread around a route of knots
    # rad, initial spread around a route that is a reference motion (a tray path under a bar): it threads a slot of a
    # few cm, which 0.15 rad moves the tray out of (bench_expert_check --template bar: 65 -> 74 of 80 carries)
    path_std: float = 0.04
    hold_grip: bool = True  # carries: the right arm follows the left (see the module docstring)
    weights: CostWeights = field(default_factory=CostWeights)
    limits: CostLimits = field(default_factory=CostLimits)

    def __post_init__(self) -> None:
        if not (2 <= self.num_elites <= self.num_candidates):
            raise ValueError(f"need 2 <= num_elites <= num_candidates (got {self.num_elites}, {self.num_candidates})")
        if self.iterations < 1 or self.num_knots < 1 or self.min_iterations < 1:
            raise ValueError("iterations, min_iterations and num_knots must be >= 1")
        if not (self.init_std > 0 and self.min_std >= 0 and 0 < self.alpha <= 1 and self.tolerance >= 0):
            raise ValueError("need init_std > 0, min_std >= 0, 0 < alpha <= 1, tolerance >= 0")
        if not (self.route_std > 0 and self.path_std > 0):
            raise ValueError("need route_std > 0 and path_std > 0")


@dataclass(frozen=True)
class CEMPlan:
    """The chosen trajectory and how it was found."""

    positions: np.ndarray  # (60, 12), waypoint k at (k + 1) * dt
    velocities: np.ndarray  # (60, 12)
    cost: float
    feasible: bool  # kinematically (collisions, limits, tilt, grip); the physics decides success
    terms: dict[str, float]  # unweighted cost terms of the chosen plan
    knots: np.ndarray  # (num_knots, 12) offsets: pass as init_mean to warm-start a related plan
    goal: np.ndarray  # (12,) where the plan ends: the goal given, for a carry with the right arm keeping the grip
    iterations: int
    evaluations: int
    seconds: float


class CEMPlanner:
    """Cross-entropy method over spline-knot offsets around the straight joint-space line. Thread-confined."""

    def __init__(self, model: mujoco.MjModel, config: CEMConfig | None = None) -> None:
        self.config = config or CEMConfig()
        self.cost = PlanCost(model, self.config.weights, self.config.limits)
        self.grip = GripFollower(self.cost.checker)
        self._bases: dict[float, TrajectoryBasis] = {}

    def basis(self, dt: float) -> TrajectoryBasis:
        if dt not in self._bases:
            self._bases[dt] = TrajectoryBasis(self.config.num_knots, dt)
        return self._bases[dt]

    def plan(
        self,
        context: PhaseContext,
        goal_positions: np.ndarray,
        rng: np.random.Generator,
        init_mean: np.ndarray | None = None,
        routes: Sequence[Route] | Callable[[], Sequence[Route]] = (),
    ) -> CEMPlan:
        """Plan one phase from context.start_positions/velocities to goal_positions (12,); `routes`: knot offsets
        (num_knots, 12), or reference motions (positions, velocities (60, 12)) to search around, to restart from
        when the search from the straight line finds nothing feasible. A carry's right arm goal is moved to keep the
        start's grip (with `hold_grip`): the plan's `goal` says where it ends."""
        started = time.perf_counter()
        basis = self.basis(context.dt)
        goal = np.asarray(goal_positions, dtype=float)
        if self.config.hold_grip and context.phase == PHASE_CARRY:  # the right arm's goal keeps the start's grip
            goal = self.grip.follow(goal[None], np.zeros((1, NUM_JOINTS)), context.start_positions)[0][0]
        reference = reference_trajectory(
            np.asarray(context.start_positions, dtype=float), np.asarray(context.start_velocities, dtype=float),
            goal, basis.dt, basis.horizon,
        )  # once per plan: every candidate of every search is this motion plus knot bumps
        best = self._search(context, reference, rng, init_mean, self.config.iterations, self.config.init_std)
        total_iterations, total_evaluations = best.iterations, best.evaluations
        if not best.feasible and callable(routes):
            routes = routes()  # built only when needed: each route costs IK solves
        if not best.feasible and self.cost.endpoint_problem(context, goal) is not None:
            routes = ()  # the start or the goal itself fails the planner's check: no route can help
        for route in routes if not best.feasible else ():
            around, mean = (route, None) if isinstance(route, tuple) else (reference, route)  # a motion or knots
            std = self.config.path_std if isinstance(route, tuple) else self.config.route_std
            found = self._search(context, around, rng, mean, self.config.route_iterations, std)
            total_iterations += found.iterations
            total_evaluations += found.evaluations
            if (found.feasible, -found.cost) > (best.feasible, -best.cost):
                best = found
            if best.feasible:
                break  # the first route that works (they are ordered from the least to the most detour)
        seconds = time.perf_counter() - started
        return replace(best, goal=goal, iterations=total_iterations, evaluations=total_evaluations, seconds=seconds)

    def _search(
        self,
        context: PhaseContext,
        reference: tuple[np.ndarray, np.ndarray],
        rng: np.random.Generator,
        init_mean: np.ndarray | None,
        iterations: int,
        init_std: float,
    ) -> CEMPlan:
        cfg, started = self.config, time.perf_counter()
        basis = self.basis(context.dt)
        shape = (cfg.num_knots, NUM_JOINTS)
        mean = np.zeros(shape) if init_mean is None else np.array(init_mean, dtype=float).reshape(shape)
        std = np.full(shape, init_std)
        follow = cfg.hold_grip and context.phase == PHASE_CARRY
        if follow:
            std[:, NUM_ARM_JOINTS:] = 0.0  # the right arm's knots only seed its inverse kinematics
        best: tuple[float, np.ndarray, int] | None = None  # (cost, knots, index into the last report)
        best_report = best_pos = best_vel = None
        evaluations, iteration = 0, 0
        for iteration in range(1, iterations + 1):
            knots = mean[None] + std[None] * rng.standard_normal((cfg.num_candidates, *shape))
            knots[0] = mean
            if iteration == 1 and init_mean is not None:
                knots[1] = 0.0
            positions, velocities = basis.around(reference, knots)
            if follow:
                positions, velocities = self.grip.follow(positions, velocities, context.start_positions)
            report = self.cost.evaluate(positions, velocities, context)
            evaluations += len(knots)
            order = np.argsort(report.total, kind="stable")
            previous = np.inf if best is None else best[0]
            feasible = np.flatnonzero(report.feasible[order])  # the best plan seen: feasible first, then cost
            pick = int(order[feasible[0]]) if feasible.size else int(order[0])
            if best_report is None or (report.feasible[pick], -report.total[pick]) > (best_report[1], -best[0]):
                i = pick
                best = (float(report.total[i]), knots[i].copy(), i)
                best_report = (report.terms[i].copy(), bool(report.feasible[i]))
                best_pos, best_vel = positions[i].copy(), velocities[i].copy()
            elites = knots[order[: cfg.num_elites]]
            mean = cfg.alpha * elites.mean(axis=0) + (1 - cfg.alpha) * mean
            std = np.maximum(cfg.alpha * elites.std(axis=0) + (1 - cfg.alpha) * std, cfg.min_std)
            if follow:
                std[:, NUM_ARM_JOINTS:] = 0.0
            improved = previous - best[0]
            settled = improved <= cfg.tolerance * abs(best[0])
            if iteration >= min(cfg.min_iterations, iterations) and best_report[1] and settled:
                break
        assert best is not None and best_report is not None
        return CEMPlan(
            positions=best_pos,
            velocities=best_vel,
            cost=best[0],
            feasible=best_report[1],
            terms=dict(zip(TERMS, (float(v) for v in best_report[0]), strict=True)),
            knots=best[1],
            goal=best_pos[-1].copy(),
            iterations=iteration,
            evaluations=evaluations,
            seconds=time.perf_counter() - started,
        )
