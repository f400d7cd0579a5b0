"""Safety checks and ranking of candidate trajectories (ROS-free).

Nothing is published unless `check_candidate` finds no problem and the scene check (scene_safety: clearance to
the scene's boxes, the other arm, the table and a carried tray) passes. A candidate (positions and velocities,
(H, J), waypoint k at (k + 1) * dt) must be finite, within position and velocity limits (both the commanded
velocities and the finite-difference velocities of the positions, so cubic interpolation between waypoints
cannot exceed them), and continuous with the start state: the first waypoint must be reachable from the start
position within one dt at the velocity limit.

Cost of a safe candidate (lower is better), documented for the service:
    cost = ||q_H - goal||_2  +  JERK_WEIGHT * mean_k ||jerk_k||_2 * dt^3
i.e. the final joint-space goal error (rad) plus a small smoothness term (finite-difference jerk of the
positions, made unit-free by dt^3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

JERK_WEIGHT = 1.0
#: Slack on the limits for round-off in the finite differences (relative).
LIMIT_SLACK = 1e-6
#: Candidates scene-checked per call (select_best): enough for the checker's vectorization, few enough that a plan
#: whose cheapest candidates are clear checks a handful, not the whole batch.
SCENE_CHUNK = 4


@dataclass(frozen=True)
class SafetyLimits:
    """Joint limits in the planner's joint order."""

    position_lower: np.ndarray
    position_upper: np.ndarray
    velocity: np.ndarray

    @classmethod
    def from_arrays(cls, position_limits: np.ndarray, velocity_limits: np.ndarray) -> SafetyLimits:
        position_limits = np.asarray(position_limits, dtype=np.float64)
        return cls(position_limits[:, 0].copy(), position_limits[:, 1].copy(), np.asarray(velocity_limits, float))


def finite_difference_velocities(positions: np.ndarray, start_positions: np.ndarray, dt: float) -> np.ndarray:
    """(H, J) velocities between consecutive waypoints, the first from the start position."""
    previous = np.vstack([start_positions[None], positions[:-1]])
    return (positions - previous) / dt


def check_candidate(
    positions: np.ndarray,
    velocities: np.ndarray,
    start_positions: np.ndarray,
    dt: float,
    limits: SafetyLimits,
) -> list[str]:
    """Every reason the candidate is unsafe; an empty list means it may be published."""
    reasons = []
    if not (np.all(np.isfinite(positions)) and np.all(np.isfinite(velocities))):
        return ["not finite"]
    lower = limits.position_lower - LIMIT_SLACK
    upper = limits.position_upper + LIMIT_SLACK
    if np.any(positions < lower) or np.any(positions > upper):
        reasons.append("position limit exceeded")
    vmax = limits.velocity * (1 + LIMIT_SLACK)
    if np.any(np.abs(velocities) > vmax):
        reasons.append("velocity limit exceeded")
    steps = finite_difference_velocities(positions, start_positions, dt)
    if np.any(np.abs(steps[1:]) > vmax):
        reasons.append("waypoint step exceeds the velocity limit")
    if np.any(np.abs(steps[0]) > vmax):
        reasons.append("first waypoint not reachable from the start state within one dt")
    return reasons


def smoothness(positions: np.ndarray) -> np.ndarray:
    """Mean jerk magnitude * dt^3 of trajectories (..., H, J): the mean norm of the third finite difference of the
    positions (unit-free; 0 for fewer than 4 waypoints). Shape (...)."""
    positions = np.asarray(positions)
    if positions.shape[-2] < 4:
        return np.zeros(positions.shape[:-2])
    return np.linalg.norm(np.diff(positions, n=3, axis=-2), axis=-1).mean(axis=-1)


def candidate_cost(positions: np.ndarray, goal_positions: np.ndarray, dt: float) -> float:
    """Goal error (rad) + JERK_WEIGHT * mean jerk magnitude * dt^3 (see the module docstring)."""
    goal_error = float(np.linalg.norm(positions[-1] - goal_positions))
    return goal_error + JERK_WEIGHT * float(smoothness(positions))


@dataclass(frozen=True)
class Selection:
    """The chosen candidate (or None) and why the others were refused."""

    index: int | None
    cost: float
    num_valid: int  # candidates that passed every check they were given
    rejections: dict[int, list[str]]
    num_unchecked: int = 0  # candidates left unchecked once a cheaper one was found safe

    def summary(self) -> str:
        """Reasons counted over candidates; detailed reasons ("kind: details") are counted by kind, with the first
        candidate's details as the example."""
        counts: dict[str, int] = {}
        examples: dict[str, str] = {}
        for reasons in self.rejections.values():
            for reason in reasons:
                kind, _, details = reason.partition(": ")
                counts[kind] = counts.get(kind, 0) + 1
                examples.setdefault(kind, details)
        return "; ".join(
            f"{n}x {kind}" + (f" (e.g. {examples[kind]})" if examples[kind] else "")
            for kind, n in sorted(counts.items(), key=lambda kv: -kv[1])
        )


def select_best(
    positions: np.ndarray,
    velocities: np.ndarray,
    start_positions: np.ndarray,
    goal_positions: np.ndarray,
    dt: float,
    limits: SafetyLimits,
    refused: dict[int, list[str]] | None = None,
    scene_check: Callable[[np.ndarray], dict[int, list[str]]] | None = None,
    scene_chunk: int = SCENE_CHUNK,
) -> Selection:
    """Check the candidates of a batch (N, H, J) and pick the safe one with the lowest cost; candidates in
    `refused` (index -> reasons found earlier) are not considered.

    `scene_check(indices)` returns the reasons of those candidates among `indices` that collide (scene_safety). It
    is the expensive check, so it runs last and lazily: on the candidates that passed every other check, in order of
    increasing cost, `scene_chunk` at a time, until a chunk holds a safe one (that one is then the cheapest safe
    candidate of the batch). Costlier candidates are then left unchecked (Selection.num_unchecked)."""
    rejections: dict[int, list[str]] = {}
    for i in range(positions.shape[0]):
        reasons = list((refused or {}).get(i, [])) or check_candidate(
            positions[i], velocities[i], start_positions, dt, limits
        )
        if reasons:
            rejections[i] = reasons
    passing = [i for i in range(positions.shape[0]) if i not in rejections]
    costs = {i: candidate_cost(positions[i], goal_positions, dt) for i in passing}
    ranked = sorted(passing, key=lambda i: costs[i])
    if scene_check is None:
        best = ranked[0] if ranked else None
        return Selection(best, costs[best] if best is not None else float("inf"), len(passing), rejections)
    chunk_size = max(1, scene_chunk)
    for first in range(0, len(ranked), chunk_size):
        chunk = ranked[first : first + chunk_size]
        rejections.update(scene_check(np.array(chunk, dtype=int)))
        safe = [i for i in chunk if i not in rejections]
        if safe:
            unchecked = len(ranked) - first - len(chunk)
            return Selection(safe[0], costs[safe[0]], len(safe), rejections, unchecked)
    return Selection(None, float("inf"), 0, rejections)
