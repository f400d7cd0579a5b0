"""Validation of a plan request (ROS-free): sizes, joint names, finiteness, goal within limits, start state.

The planner node turns a PlanTrajectory request into plain lists and calls `validate_plan_request`; every
problem becomes a `PlanRequestError` whose message is the service's `message` (with success=false). A request gives
one goal: `goal_positions`, or `target_tray_pose`, which the caller's `goal_from_pose` turns into goal positions from
the validated start (planning.pose_goal: the IK and the planner's own goal check).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


def echo_names(names: Sequence[str], max_names: int = 4, max_chars: int = 40) -> str:
    """Names from a request, safe to echo into a reply or a log: escaped, each and their number bounded."""
    shown = [ascii(n[:max_chars]) + ("..." if len(n) > max_chars else "") for n in names[:max_names]]
    more = len(names) - max_names
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def joint_order(joint_names: Sequence[str], planner_joint_names: Sequence[str] = JOINT_NAMES) -> np.ndarray:
    """Indices that map the request's order to the planner's order; empty names = the planner's order."""
    if len(joint_names) == 0:
        return np.arange(NUM_JOINTS)
    names = list(joint_names)
    if len(names) > 4 * NUM_JOINTS:
        raise PlanRequestError(f"joint_names has {len(names)} entries, expected {NUM_JOINTS}")
    unknown = [n for n in names if n not in planner_joint_names]
    if unknown:
        expected = ", ".join(planner_joint_names)
        raise PlanRequestError(f"unknown joint name(s): {echo_names(unknown)}; expected {expected}")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise PlanRequestError(f"duplicated joint name(s): {echo_names(duplicated)}")
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
        shown = outside[:4]  # a bounded message, whatever the request holds
        details = ", ".join(
            f"{joint_names[i]}={values[i]:.4g} not in [{lower[i]:.4f}, {upper[i]:.4f}] {unit}" for i in shown
        )
        more = f" and {outside.size - shown.size} more" if outside.size > shown.size else ""
        raise PlanRequestError(f"{name} beyond limits: {details}{more}")


@dataclass(frozen=True)
class RequestFields:
    """A PlanTrajectory request's fields as plain values (the node copies them out of the message)."""

    start_positions: Sequence[float]
    start_velocities: Sequence[float]
    joint_names: Sequence[str]
    goal_positions: Sequence[float]
    num_samples: int
    integration_steps: int
    seed: int
    execute: bool
    target_tray_pose: Sequence[float] | None = None  # [x y z qw qx qy qz]; None = not given (pose_goal.pose_given)
    carrying_tray: bool = False
    tray_pose: Sequence[float] | None = None  # the carried tray's pose at the start state (with carrying_tray)


#: goal_from_pose(start positions (12,), the planner's order) -> goal positions (12,) for the request's
#: target_tray_pose; PlanRequestError (or scene.SceneError) says why there is none.
GoalFromPose = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RequestPolicy:
    """What the planner accepts (from its settings, see planner_settings.PlannerSettings)."""

    position_limits: np.ndarray  # (12, 2)
    velocity_limits: np.ndarray  # (12,)
    max_state_age: float
    default_num_samples: int
    default_integration_steps: int
    max_num_samples: int
    max_integration_steps: int
    start_state_tolerance: float = 0.01
    planner_joint_names: Sequence[str] = JOINT_NAMES

    @classmethod
    def from_settings(cls, settings: object, model_steps: int) -> RequestPolicy:
        """From a PlannerSettings (duck-typed to keep this module free of the node's settings); `model_steps` (the
        checkpoint's default Euler steps) stands in for integration_steps 0."""
        return cls(
            position_limits=settings.position_limits,
            velocity_limits=settings.velocity_limits,
            max_state_age=settings.joint_states_timeout,
            default_num_samples=settings.num_samples,
            default_integration_steps=settings.integration_steps or int(model_steps),
            max_num_samples=settings.max_num_samples,
            max_integration_steps=settings.max_integration_steps,
            start_state_tolerance=settings.start_state_tolerance,
            planner_joint_names=tuple(settings.joint_names),
        )


def fresh_state(latest_state: JointStateSample | None, now: float, max_age: float, purpose: str) -> JointStateSample:
    """The latest measured state if it is fresh, else PlanRequestError saying why it cannot be used for `purpose`."""
    if latest_state is None:
        raise PlanRequestError(f"no /joint_states received yet: cannot {purpose}")
    age = now - latest_state.stamp
    if age > max_age:
        raise PlanRequestError(f"latest /joint_states is {age:.2f} s old (> {max_age:.2f} s): stale, cannot {purpose}")
    return latest_state


def validate_plan_request(
    fields: RequestFields,
    policy: RequestPolicy,
    latest_state: JointStateSample | None,
    now: float,
    goal_from_pose: GoalFromPose | None = None,
) -> PlanRequest:
    """Check a request and return it in the planner's joint order, or raise PlanRequestError.

    A request that will be executed must start where the robot is: an explicit start farther than
    `policy.start_state_tolerance` from the fresh measured state is refused (and without a fresh measured state
    nothing is executed). Exactly one goal: `goal_positions`, or `target_tray_pose` resolved by `goal_from_pose`
    once everything else is valid (it is the costly part); the resolved goal is held to the same limits.
    """
    names = policy.planner_joint_names
    limits, velocity_limits = policy.position_limits, policy.velocity_limits
    order = joint_order(fields.joint_names, names)
    pose_goal = fields.target_tray_pose is not None
    if pose_goal and len(fields.goal_positions) > 0:
        raise PlanRequestError("both goal_positions and target_tray_pose are given: give one")
    if not pose_goal and len(fields.goal_positions) == 0:
        raise PlanRequestError(
            f"no goal given: set goal_positions ({NUM_JOINTS} values) or target_tray_pose (a tray pose in the world "
            "frame)"
        )
    if pose_goal and goal_from_pose is None:
        raise PlanRequestError("target_tray_pose is not supported here: give goal_positions")
    goal = None
    if not pose_goal:
        goal = _vector("goal_positions", fields.goal_positions, order, names)
        _within("goal_positions", goal, limits[:, 0], limits[:, 1], "rad", names)

    measured = None
    if fields.execute or (len(fields.start_positions) == 0 and len(fields.start_velocities) == 0):
        purpose = "execute a plan" if fields.execute else "plan from the measured state"
        measured = fresh_state(latest_state, now, policy.max_state_age, purpose)
    if len(fields.start_positions) == 0 and len(fields.start_velocities) == 0:
        start, start_vel = measured.positions.copy(), measured.velocities.copy()
    else:
        start = _vector("start_positions", fields.start_positions, order, names)
        start_vel = (
            np.zeros(NUM_JOINTS)
            if len(fields.start_velocities) == 0
            else _vector("start_velocities", fields.start_velocities, order, names)
        )
        if measured is not None:
            offset = np.abs(start - measured.positions)
            worst = int(np.argmax(offset))
            if offset[worst] > policy.start_state_tolerance:
                raise PlanRequestError(
                    f"execute=true but start_positions is {offset[worst]:.4f} rad from the measured state at "
                    f"{names[worst]} (tolerance {policy.start_state_tolerance:.4f} rad): leave the start empty to "
                    "plan from where the robot is"
                )
    _within("start_positions", start, limits[:, 0], limits[:, 1], "rad", names)
    _within("start_velocities", start_vel, -velocity_limits, velocity_limits, "rad/s", names)

    samples = int(fields.num_samples) or policy.default_num_samples
    steps = int(fields.integration_steps) or policy.default_integration_steps
    if not 1 <= samples <= policy.max_num_samples:
        raise PlanRequestError(f"num_samples {samples} not in [1, {policy.max_num_samples}]")
    if not 1 <= steps <= policy.max_integration_steps:
        raise PlanRequestError(f"integration_steps {steps} not in [1, {policy.max_integration_steps}]")
    if goal is None:
        goal = np.asarray(goal_from_pose(start), dtype=np.float64)
        _within("goal_positions from target_tray_pose", goal, limits[:, 0], limits[:, 1], "rad", names)
    return PlanRequest(
        start_positions=start,
        start_velocities=start_vel,
        goal_positions=goal,
        num_samples=samples,
        integration_steps=steps,
        seed=None if fields.seed < 0 else int(fields.seed),
        execute=bool(fields.execute),
    )
