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


def check_candidates(
    positions: np.ndarray,
    velocities: np.ndarray,
    start_positions: np.ndarray,
    dt: float,
    limits: SafetyLimits,
) -> list[list[str]]:
    """Per candidate of a batch (N, H, J) every reason it is unsafe (vectorised over the batch); an empty list
    means it may be published."""
    positions, velocities = np.asarray(positions, dtype=float), np.asarray(velocities, dtype=float)
    finite = np.isfinite(positions).all(axis=(1, 2)) & np.isfinite(velocities).all(axis=(1, 2))
    lower = limits.position_lower - LIMIT_SLACK
    upper = limits.position_upper + LIMIT_SLACK
    vmax = limits.velocity * (1 + LIMIT_SLACK)
    with np.errstate(invalid="ignore"):
        previous = np.concatenate([np.broadcast_to(start_positions, positions[:, :1].shape), positions[:, :-1]], 1)
        steps = np.abs(positions - previous) / dt
        flags = (
            ((positions < lower) | (positions > upper)).any(axis=(1, 2)),
            (np.abs(velocities) > vmax).any(axis=(1, 2)),
            (steps[:, 1:] > vmax).any(axis=(1, 2)),
            (steps[:, 0] > vmax).any(axis=1),
        )
    messages = (
        "position limit exceeded",
        "velocity limit exceeded",
        "waypoint step exceeds the velocity limit",
        "first waypoint not reachable from the start state within one dt",
    )
    return [
        [message for message, flag in zip(messages, flags, strict=True) if flag[i]] if finite[i] else ["not finite"]
        for i in range(len(positions))
    ]


def check_candidate(
    positions: np.ndarray,
    velocities: np.ndarray,
    start_positions: np.ndarray,
    dt: float,
    limits: SafetyLimits,
) -> list[str]:
    """Every reason one candidate (H, J) is unsafe; an empty list means it may be published."""
    return check_candidates(positions[None], velocities[None], start_positions, dt, limits)[0]


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
) -> Selection:
    """Check the candidates of a batch (N, H, J) and pick the safe one with the lowest cost; candidates in
    `refused` (index -> reasons found earlier) are not considered.

    `scene_check(indices)` returns the reasons of those candidates among `indices` that collide (scene_safety); it
    runs once, on every candidate that passed the other checks (the batched checker makes that cheaper than
    checking a few in cost order)."""
    refused = refused or {}
    found = check_candidates(positions, velocities, start_positions, dt, limits)
    rejections = {i: list(refused.get(i, [])) or found[i] for i in range(len(found)) if refused.get(i) or found[i]}
    passing = [i for i in range(positions.shape[0]) if i not in rejections]
    if scene_check is not None and passing:
        rejections.update(scene_check(np.array(passing, dtype=int)))
        passing = [i for i in passing if i not in rejections]
    costs = {i: candidate_cost(positions[i], goal_positions, dt) for i in passing}
    best = min(passing, key=lambda i: costs[i]) if passing else None
    cost = costs[best] if best is not None else float("inf")
    return Selection(best, cost, len(passing), dict(sorted(rejections.items())))
