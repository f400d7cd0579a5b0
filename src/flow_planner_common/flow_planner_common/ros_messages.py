"""Builders of the ROS messages the nodes exchange, defined once: Duration/Time from seconds, the per-arm
JointTrajectory of a planned (H, 12) trajectory, JointState and PoseStamped."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from flow_planner_common.robot import JOINT_NAMES, NUM_ARM_JOINTS

#: Largest time a Duration/Time may hold here (int32 seconds).
MAX_SECONDS = 2**31 - 1


def _sec_nanosec(seconds: float) -> tuple[int, int]:
    if not (np.isfinite(seconds) and 0 <= seconds <= MAX_SECONDS):
        raise ValueError(f"time {seconds!r} s is not a finite, non-negative int32 number of seconds")
    sec, nanosec = divmod(round(seconds * 1e9), 1_000_000_000)
    return int(sec), int(nanosec)


def duration(seconds: float) -> Duration:
    """builtin_interfaces/Duration of a non-negative number of seconds (ValueError past int32 seconds)."""
    sec, nanosec = _sec_nanosec(seconds)
    return Duration(sec=sec, nanosec=nanosec)


def time_msg(seconds: float) -> Time:
    """builtin_interfaces/Time of a non-negative number of seconds."""
    sec, nanosec = _sec_nanosec(seconds)
    return Time(sec=sec, nanosec=nanosec)


def duration_seconds(value: Duration) -> float:
    """Seconds of a Duration (or Time)."""
    return value.sec + value.nanosec * 1e-9


def joint_trajectory(
    positions: np.ndarray, velocities: np.ndarray, joint_names: Sequence[str], dt: float
) -> JointTrajectory:
    """JointTrajectory with waypoint k of (H, J) positions/velocities at time_from_start = (k + 1) * dt."""
    msg = JointTrajectory(joint_names=list(joint_names))
    for k in range(len(positions)):
        msg.points.append(
            JointTrajectoryPoint(
                positions=np.asarray(positions[k], dtype=float).tolist(),
                velocities=np.asarray(velocities[k], dtype=float).tolist(),
                time_from_start=duration((k + 1) * dt),
            )
        )
    return msg


def arm_trajectories(
    positions: np.ndarray, velocities: np.ndarray, dt: float, joint_names: Sequence[str] = JOINT_NAMES
) -> tuple[JointTrajectory, JointTrajectory]:
    """A (H, 12) plan split into the left and the right arm controller's JointTrajectory."""
    half = NUM_ARM_JOINTS
    return (
        joint_trajectory(positions[:, :half], velocities[:, :half], joint_names[:half], dt),
        joint_trajectory(positions[:, half:], velocities[:, half:], joint_names[half:], dt),
    )


def joint_state(
    positions: np.ndarray, velocities: np.ndarray, joint_names: Sequence[str] = JOINT_NAMES, stamp: Time | None = None
) -> JointState:
    """JointState of all joints (positions and velocities in `joint_names` order)."""
    msg = JointState(
        name=list(joint_names),
        position=np.asarray(positions, dtype=float).tolist(),
        velocity=np.asarray(velocities, dtype=float).tolist(),
    )
    if stamp is not None:
        msg.header.stamp = stamp
    return msg


def pose_stamped(pose7: np.ndarray, frame_id: str, stamp: Time | None = None) -> PoseStamped:
    """PoseStamped of a [x, y, z, qw, qx, qy, qz] pose."""
    msg = PoseStamped()
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    x, y, z, qw, qx, qy, qz = (float(v) for v in pose7)
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = x, y, z
    msg.pose.orientation.w, msg.pose.orientation.x = qw, qx
    msg.pose.orientation.y, msg.pose.orientation.z = qy, qz
    return msg
