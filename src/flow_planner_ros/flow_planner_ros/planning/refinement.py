"""Refinement of flow samples that all collide (ROS-free): a few cross-entropy iterations in the knot space of the
smooth basis around the request's reference motion (flow_planner_common.motion.TrajectoryBasis, the CEM expert's
own parametrization), scored with the planner's kinematic checker instead of MuJoCo.

Every candidate of the basis starts at the start state and ends at the goal at rest, so the search only bends the
motion. The flow samples seed it (their knots fitted by least squares, like projection.SmoothProjection): the mean
starts at the cheapest sample, the spread at the samples' spread (at least `init_std`). Each iteration draws
`samples` knot sets, keeps the `elites` cheapest (the previous elites compete again) and refits mean and spread; it
stops early once an elite is clear (no clearance shortfall, no limit excess), so `iterations` is a budget that only
the hard requests spend.

Cost of a candidate (lower is better):
    COLLISION_WEIGHT * sum over waypoints and categories of the clearance shortfall (m; SceneSafety.check)
    + LIMIT_WEIGHT * (position excess (rad) + velocity excess (rad/s), commanded and finite-difference)
    + JERK_WEIGHT * mean jerk magnitude * dt^3 (trajectory_safety.smoothness, as in candidate_cost)

In a carry with a `follow` (the pipeline's grip follower with leveling, hold_grip), the search draws the left arm's
knots only; the follower then turns the left arm so that the tray keeps its start's tilt and moves the right arm to
keep the grip, before the candidate is scored: the cost is that of the motion the final check sees, and the search
has half the dimensions (the CEM expert's carries do the same). Replayed in-process on the carries of the 40
held-out scenes (3 seeds each) these took 102 to 115 of 120 plans (README, The planner node).

The refined candidates are only proposals: the pipeline runs them through the same checks as any sample, so a
refined plan is published only if it passes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from flow_planner_common.motion import TrajectoryBasis
from flow_planner_common.plan_scene import PlanScene
from flow_planner_common.robot import NUM_ARM_JOINTS
from flow_planner_common.scene_safety import SceneCheck, SceneSafety
from flow_planner_ros.planning.trajectory_safety import (
    JERK_WEIGHT,
    SafetyLimits,
    finite_difference_velocities,
    smoothness,
)

COLLISION_WEIGHT = 100.0
LIMIT_WEIGHT = 10.0
#: Default iterations and candidates per iteration (the planner's refine_iterations / refine_samples).
DEFAULT_ITERATIONS = 6
DEFAULT_SAMPLES = 32
#: Smallest knot spread (rad) of the search, so it never collapses onto one colliding motion.
MIN_STD = 0.02
#: positions, velocities (N, H, 12) and the start (12,) -> the same with the right arm following the left's grip.
Follow = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class _Elites(NamedTuple):
    """Scored candidates (the cheapest so far, cheapest first, in the search): knots (E, K, 12), positions and
    velocities (E, H, 12), costs (E,) and whether each is clear (E,)."""

    knots: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray
    costs: np.ndarray
    clear: np.ndarray

    def cheapest(self, count: int) -> _Elites:
        order = np.argsort(self.costs)[:count]
        return _Elites(*(values[order] for values in self))

    def joined(self, others: _Elites) -> _Elites:
        return _Elites(*(np.concatenate(pair) for pair in zip(self, others, strict=True)))


@dataclass(frozen=True)
class RefinementResult:
    """The final elites (best first) as (E, H, 12) positions and velocities, and their costs."""

    positions: np.ndarray
    velocities: np.ndarray
    costs: np.ndarray
    evaluated: int  # candidates scored


class Refiner:
    """CEM over knot offsets (see the module docstring); iterations = 0 turns it off."""

    def __init__(
        self,
        safety: SceneSafety,
        limits: SafetyLimits,
        dt: float,
        horizon: int,
        num_knots: int = 4,
        iterations: int = DEFAULT_ITERATIONS,
        samples: int = DEFAULT_SAMPLES,
        elites: int = 6,
        init_std: float = 0.15,
    ) -> None:
        self.safety, self.limits, self.dt = safety, limits, dt
        self.basis = TrajectoryBasis(num_knots, dt, horizon)
        self._fit = np.linalg.pinv(self.basis.phi)  # (K, H)
        self.iterations, self.samples, self.elites, self.init_std = iterations, samples, elites, init_std

    def _score(
        self, positions: np.ndarray, velocities: np.ndarray, check: SceneCheck
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N,) costs of candidates (N, H, 12) from the check's start to its goal (see the module docstring), and (N,)
        whether each is clear: no clearance shortfall and no limit excess."""
        start = check.start
        collision = check.check(positions).shortfall.sum(axis=(1, 2))
        lim = self.limits
        position_excess = np.maximum(0.0, positions - lim.position_upper)
        position_excess += np.maximum(0.0, lim.position_lower - positions)
        steps = np.stack([finite_difference_velocities(p, start, self.dt) for p in positions])
        speed = np.maximum(np.abs(velocities), np.abs(steps))
        velocity_excess = np.maximum(0.0, speed - lim.velocity)
        limits = position_excess.sum(axis=(1, 2)) + velocity_excess.sum(axis=(1, 2))
        costs = COLLISION_WEIGHT * collision + LIMIT_WEIGHT * limits + JERK_WEIGHT * smoothness(positions)
        return costs, (collision == 0.0) & (limits == 0.0)

    def refine(
        self,
        seeds: np.ndarray,
        reference: tuple[np.ndarray, np.ndarray],
        start: np.ndarray,
        goal: np.ndarray,
        scene: PlanScene,
        seed: int | None = None,
        check: SceneCheck | None = None,
        follow: Follow | None = None,
    ) -> RefinementResult:
        """CEM from the seed trajectories (S, H, 12) around `reference` (positions, velocities (H, 12) of the
        request's reference motion from the start positions `start` to `goal`). `follow`: a carry's grip follower
        (see the module docstring); the result's candidates are then held already."""
        rng = np.random.default_rng(seed)
        check = check or self.safety.bind(start, goal, scene)  # thresholds once, not per iteration

        def candidates(knots: np.ndarray, guess: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
            """The knots' motions; with `follow`, held, the follower starting from the right arm of `guess`."""
            positions, velocities = self.basis.around(reference, knots)
            if follow is None:
                return positions, velocities
            if guess is not None:
                positions[..., NUM_ARM_JOINTS:] = guess[None, :, NUM_ARM_JOINTS:]
            return follow(positions, velocities, check.start)

        def scored(knots: np.ndarray, guess: np.ndarray | None = None) -> _Elites:
            positions, velocities = candidates(knots, guess)
            return _Elites(knots, positions, velocities, *self._score(positions, velocities, check))

        seeded = scored(np.einsum("kh,nhj->nkj", self._fit, seeds - reference[0][None]))
        elites = seeded.cheapest(self.elites)
        evaluated = len(seeded.knots)
        mean = elites.knots[0]
        std = np.maximum(elites.knots.std(axis=0), self.init_std)
        if follow is not None:  # the right arm's knots stay the cheapest seed's: the follower moves that arm
            std[:, NUM_ARM_JOINTS:] = 0.0
        for _ in range(self.iterations):
            if elites.clear.any():  # a clear candidate: the checks decide among the elites, no need to search on
                break
            drawn = mean[None] + std[None] * rng.standard_normal((self.samples, *mean.shape))
            # held from the best so far: the follower converges sooner
            elites = elites.joined(scored(drawn, guess=elites.positions[0])).cheapest(self.elites)
            evaluated += len(drawn)
            mean = elites.knots.mean(axis=0)
            std = np.maximum(elites.knots.std(axis=0), MIN_STD)
            if follow is not None:
                mean[:, NUM_ARM_JOINTS:], std[:, NUM_ARM_JOINTS:] = elites.knots[0, :, NUM_ARM_JOINTS:], 0.0
        return RefinementResult(elites.positions, elites.velocities, elites.costs, evaluated)

