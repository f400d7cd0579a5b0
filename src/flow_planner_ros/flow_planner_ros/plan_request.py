"""Validation of a plan request (ROS-free): sizes, joint names, finiteness, goal within limits, start state.

The planner node turns a PlanTrajectory request into plain lists and calls `validate_plan_request`; every
problem becomes a `PlanRequestError` whose message is the service's `message` (with success=false).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flow_planner_common.robot import JOINT_NAMES, NUM_JOINTS


class PlanRequestError(ValueError):
    """A request the planner refuses; the message says why."""


@dataclass(frozen=True)
class JointStateSample:
    """The latest measured joint state in the planner's joint order, with its receive time (monotonic s)."""

    positions: np.ndarray
    velocities: np.ndarray
    stamp: float


@dataclass(frozen=True)
class PlanRequest:
    """A validated request: start and goal in the planner's joint order (JOINT_NAMES)."""

    start_positions: np.ndarray
    start_velocities: np.ndarray
    goal_positions: np.ndarray
    num_samples: int
    integration_steps: int
    seed: int | None
    execute: bool


def joint_order(joint_names: Sequence[str], planner_joint_names: Sequence[str] = JOINT_NAMES) -> np.ndarray:
    """Indices that map the request's order to the planner's order; empty names = the planner's order."""
    if len(joint_names) == 0:
        return np.arange(NUM_JOINTS)
    names = list(joint_names)
    unknown = [n for n in names if n not in planner_joint_names]
    if unknown:
        expected = ", ".join(planner_joint_names)
        raise PlanRequestError(f"unknown joint name(s): {', '.join(unknown)}; expected {expected}")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise PlanRequestError(f"duplicated joint name(s): {', '.join(duplicated)}")
    if len(names) != NUM_JOINTS:
        missing = [n for n in planner_joint_names if n not in names]
        raise PlanRequestError(f"joint_names must name all {NUM_JOINTS} joints; missing {', '.join(missing)}")
    return np.array([names.index(n) for n in planner_joint_names])


def _vector(name: str, values: Sequence[float], order: np.ndarray, joint_names: Sequence[str]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (NUM_JOINTS,):
        raise PlanRequestError(f"{name} has {array.size} values, expected {NUM_JOINTS}")
    if not np.all(np.isfinite(array)):
        bad = [joint_names[i] for i in np.flatnonzero(~np.isfinite(array[order]))]
        raise PlanRequestError(f"{name} is not finite (NaN/Inf) for {', '.join(bad)}")
    return array[order]


def _within(
    name: str, values: np.ndarray, lower: np.ndarray, upper: np.ndarray, unit: str, joint_names: Sequence[str]
) -> None:
    outside = np.flatnonzero((values < lower) | (values > upper))
    if outside.size:
        details = ", ".join(
            f"{joint_names[i]}={values[i]:.4f} not in [{lower[i]:.4f}, {upper[i]:.4f}] {unit}" for i in outside
        )
        raise PlanRequestError(f"{name} beyond limits: {details}")


def validate_plan_request(
    *,
    start_positions: Sequence[float],
    start_velocities: Sequence[float],
    joint_names: Sequence[str],
    goal_positions: Sequence[float],
    num_samples: int,
    integration_steps: int,
    seed: int,
    execute: bool,
    position_limits: np.ndarray,
    velocity_limits: np.ndarray,
    latest_state: JointStateSample | None,
    now: float,
    max_state_age: float,
    default_num_samples: int,
    default_integration_steps: int,
    max_num_samples: int,
    max_integration_steps: int,
    planner_joint_names: Sequence[str] = JOINT_NAMES,
) -> PlanRequest:
    """Check a request and return it in the planner's joint order, or raise PlanRequestError."""
    names = planner_joint_names
    order = joint_order(joint_names, names)
    goal = _vector("goal_positions", goal_positions, order, names)
    _within("goal_positions", goal, position_limits[:, 0], position_limits[:, 1], "rad", names)

    if len(start_positions) == 0 and len(start_velocities) == 0:
        if latest_state is None:
            raise PlanRequestError("no start state given and no /joint_states received yet")
        age = now - latest_state.stamp
        if age > max_state_age:
            raise PlanRequestError(f"latest /joint_states is {age:.2f} s old (> {max_state_age:.2f} s): stale")
        start, start_vel = latest_state.positions.copy(), latest_state.velocities.copy()
    else:
        start = _vector("start_positions", start_positions, order, names)
        start_vel = (
            np.zeros(NUM_JOINTS)
            if len(start_velocities) == 0
            else _vector("start_velocities", start_velocities, order, names)
        )
    _within("start_positions", start, position_limits[:, 0], position_limits[:, 1], "rad", names)
    _within("start_velocities", start_vel, -velocity_limits, velocity_limits, "rad/s", names)

    samples = int(num_samples) or default_num_samples
    steps = int(integration_steps) or default_integration_steps
    if not 1 <= samples <= max_num_samples:
        raise PlanRequestError(f"num_samples {samples} not in [1, {max_num_samples}]")
    if not 1 <= steps <= max_integration_steps:
        raise PlanRequestError(f"integration_steps {steps} not in [1, {max_integration_steps}]")
    return PlanRequest(
        start_positions=start,
        start_velocities=start_vel,
        goal_positions=goal,
        num_samples=samples,
        integration_steps=steps,
        seed=None if seed < 0 else int(seed),
        execute=bool(execute),
    )

