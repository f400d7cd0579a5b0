"""The joint_trajectory_controller contract for incoming trajectories, as a pure (ROS-free) check.

A trajectory for one arm must name exactly that arm's joints (any order, no duplicates), have at least one point,
give every point positions and velocities of that length, all finite and within the position/velocity limits,
and strictly increasing time_from_start with the first point after t = 0. The motion those points imply must also
respect the velocity limits (within `speed_margin`): the controller interpolates with cubic Hermite segments from
the arm's current commanded state through every point (flow_planner_common.hermite), and the peak speed of each
segment (never below |dq| / dt) is checked, so a far point at an early time is refused even with zero velocities
written. Otherwise it is rejected with a reason and nothing is executed.

Start time (header.stamp, as joint_trajectory_controller reads it): time_from_start counts from the stamp; a zero
stamp means "now" (on receipt). The caller converts the stamp to seconds from now (`start_time`); points whose time
has passed are skipped and the motion runs from the commanded state to the first point still ahead; a trajectory
whose last point has passed is rejected (as JTC rejects one that ends in the past), and so is one that starts more
than MAX_START_DELAY ahead (the sender's clock is then not the controller's: wall time against sim time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flow_planner_common.robot import JOINT_NAMES, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS

#: s; a point less than this ahead of now is skipped as passed (the segment to it would be too short to follow).
MIN_LEAD = 1e-3
#: s; a trajectory may start at most this far in the future (further: the sender's clock is not the controller's).
MAX_START_DELAY = 10.0


class TrajectoryRejected(ValueError):
    """The trajectory breaks the controller contract; the message is the reason."""


@dataclass(frozen=True)
class ValidTrajectory:
    """Waypoints reordered to the controller's joint order, those still ahead, their times from now."""

    times: np.ndarray  # (N,)
    positions: np.ndarray  # (N, J)
    velocities: np.ndarray  # (N, J)


def validate_trajectory(
    controller_joints: Sequence[str],
    joint_names: Sequence[str],
    positions: Sequence[Sequence[float]],
    velocities: Sequence[Sequence[float]],
    times: Sequence[float],
    *,
    start_positions: Sequence[float],
    start_velocities: Sequence[float],
    speed_margin: float = 0.05,
    start_time: float = 0.0,
) -> ValidTrajectory:
    """Check one trajectory against the contract; raise TrajectoryRejected with the reason.

    start_positions / start_velocities: the arm's current commanded state in `controller_joints` order (where the
    motion starts now). speed_margin: tolerated fraction above the velocity limits for the implied speed.
    start_time: seconds from now to the trajectory's start (header.stamp; negative when it lies in the past).
    """
    names = list(joint_names)
    if len(set(names)) != len(names):
        raise TrajectoryRejected(f"duplicate joint names {names}")
    if set(names) != set(controller_joints):
        raise TrajectoryRejected(f"joint names {names} are not this controller's joints {list(controller_joints)}")
    if len(times) == 0:
        raise TrajectoryRejected("empty trajectory (no points)")
    if len(positions) != len(times) or len(velocities) != len(times):
        raise TrajectoryRejected("every point needs positions and velocities")
    for k, (p, v) in enumerate(zip(positions, velocities, strict=True)):
        if len(p) != len(names) or len(v) != len(names):
            raise TrajectoryRejected(f"point {k}: {len(p)} positions / {len(v)} velocities for {len(names)} joints")
    t = np.asarray(times, dtype=float)
    pos, vel = np.asarray(positions, dtype=float), np.asarray(velocities, dtype=float)
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(pos)) and np.all(np.isfinite(vel))):
        raise TrajectoryRejected("non-finite value (NaN or Inf) in the trajectory")
    if t[0] <= 0.0:
        raise TrajectoryRejected(f"first point at time_from_start {t[0]:.4f} s; must be after 0")
    if np.any(np.diff(t) <= 0.0):
        k = int(np.argmax(np.diff(t) <= 0.0)) + 1
        raise TrajectoryRejected(f"time_from_start not strictly increasing at point {k}")
    order = [names.index(j) for j in controller_joints]
    pos, vel = pos[:, order], vel[:, order]
    cols = [JOINT_NAMES.index(j) for j in controller_joints]
    lower, upper = JOINT_POSITION_LIMITS[cols, 0], JOINT_POSITION_LIMITS[cols, 1]
    if np.any(pos < lower) or np.any(pos > upper):
        raise TrajectoryRejected("position outside the joint limits")
    if np.any(np.abs(vel) > JOINT_VELOCITY_LIMITS[cols]):
        raise TrajectoryRejected("velocity above the joint velocity limits")
    if not start_time <= MAX_START_DELAY:
        raise TrajectoryRejected(
            f"header.stamp is {start_time:.4g} s ahead of the controller's clock (more than {MAX_START_DELAY:g} s: "
            "is the sender on the same clock? use_sim_time)"
        )
    t = t + start_time
    ahead = t > MIN_LEAD
    if not ahead.any():
        raise TrajectoryRejected(f"the trajectory ends in the past ({max(0.0, -t[-1]):.4f} s ago by its header.stamp)")
    t, pos, vel = t[ahead], pos[ahead], vel[ahead]
    check_implied_speed(
        controller_joints, start_positions, start_velocities, t, pos, vel, JOINT_VELOCITY_LIMITS[cols], speed_margin
    )
    return ValidTrajectory(t, pos, vel)


def hermite_peak_speeds(times: np.ndarray, positions: np.ndarray, velocities: np.ndarray) -> np.ndarray:
    """Peak |velocity| of each cubic Hermite segment between knots (K,), (K, J), (K, J): shape (K - 1, J).

    On a segment with h = dt, dq = q1 - q0 and s in [0, 1] the velocity is the quadratic
    v(s) = v0 + (6 dq / h - 4 v0 - 2 v1) s + (3 v0 + 3 v1 - 6 dq / h) s^2; its extreme is at an end or at the
    vertex when that lies inside (0, 1).
    """
    h = np.diff(times)[:, None]
    v0, v1 = velocities[:-1], velocities[1:]
    slope = np.diff(positions, axis=0) / h
    b = 6 * slope - 4 * v0 - 2 * v1
    a = 3 * v0 + 3 * v1 - 6 * slope
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.where(np.abs(a) > 1e-12, -b / (2 * a), 0.0)
    vertex = np.clip(vertex, 0.0, 1.0)
    inner = v0 + b * vertex + a * vertex**2
    return np.maximum.reduce([np.abs(v0), np.abs(v1), np.abs(inner), np.abs(slope)])


def check_implied_speed(
    joints: Sequence[str],
    start_positions: Sequence[float],
    start_velocities: Sequence[float],
    times: np.ndarray,
    positions: np.ndarray,
    velocities: np.ndarray,
    limits: np.ndarray,
    speed_margin: float,
) -> None:
    """Reject when a Hermite segment from the start state through the points exceeds limits * (1 + margin)."""
    q0, v0 = np.asarray(start_positions, dtype=float), np.asarray(start_velocities, dtype=float)
    if q0.shape != (len(joints),) or v0.shape != (len(joints),):
        raise ValueError(f"start state needs {len(joints)} positions and velocities, got {q0.shape}, {v0.shape}")
    if not (np.isfinite(speed_margin) and speed_margin >= 0):
        raise ValueError(f"speed_margin must be finite and >= 0, got {speed_margin}")
    knots_t = np.concatenate([[0.0], times])
    peaks = hermite_peak_speeds(knots_t, np.vstack([q0, positions]), np.vstack([v0, velocities]))
    ratio = peaks / limits
    if np.max(ratio) > 1.0 + speed_margin:
        seg, joint = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        where = "from the current state to point 0" if seg == 0 else f"between points {seg - 1} and {seg}"
        raise TrajectoryRejected(
            f"implied speed {peaks[seg, joint]:.2f} rad/s of {joints[joint]} {where} exceeds its velocity limit "
            f"{limits[joint]:.2f} rad/s (+{100 * speed_margin:.0f}% margin)"
        )
