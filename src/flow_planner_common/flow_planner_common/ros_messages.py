"""Builders of the ROS messages the nodes exchange, defined once: Duration/Time from seconds, the per-arm
JointTrajectory of a planned (H, 12) trajectory, JointState and PoseStamped, the scene's obstacles as a
flow_planner_msgs/ObstacleArray and as RViz markers, and the boxes of a received ObstacleArray (validated)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Pose, PoseStamped
from sensor_msgs.msg import JointState
from shape_msgs.msg import SolidPrimitive
from std_msgs.msg import ColorRGBA
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from visualization_msgs.msg import Marker, MarkerArray

from flow_planner_common.obstacles import MAX_OBSTACLES, Box, ObstacleError
from flow_planner_common.quaternion import QuaternionError, unit_quaternion
from flow_planner_common.robot import JOINT_NAMES, NUM_ARM_JOINTS
from flow_planner_msgs.msg import Obstacle, ObstacleArray

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
    positions: np.ndarray,
    velocities: np.ndarray,
    dt: float,
    joint_names: Sequence[str] = JOINT_NAMES,
    stamp: Time | None = None,
) -> tuple[JointTrajectory, JointTrajectory]:
    """A (H, 12) plan split into the left and the right arm controller's JointTrajectory; `stamp` (header.stamp)
    is when the controllers start it (time_from_start counts from it; None = on receipt)."""
    half = NUM_ARM_JOINTS
    left = joint_trajectory(positions[:, :half], velocities[:, :half], joint_names[:half], dt)
    right = joint_trajectory(positions[:, half:], velocities[:, half:], joint_names[half:], dt)
    if stamp is not None:
        left.header.stamp, right.header.stamp = stamp, stamp
    return left, right


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


# ---------------------------------------------------------------------------------------------- scene obstacles
#: RViz namespace of the obstacle markers and their colour (the MJCF's obstacle red, slightly transparent).
OBSTACLE_NAMESPACE = "scene/obstacles"
OBSTACLE_COLOR = (0.75, 0.2, 0.2, 0.8)
#: A box's pose must be a yaw about world z: |qx|, |qy| of its normalized quaternion at most this (~0.1 degree).
MAX_TILT_COMPONENT = 1e-3


def obstacle_id(index: int) -> str:
    """The id of the scene's box number `index` (its slot): "box_0", "box_1", ..."""
    return f"box_{index}"


def _box_pose(box: Box) -> Pose:
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in box.center)
    qw, qx, qy, qz = (float(v) for v in box.quaternion())
    pose.orientation.w, pose.orientation.x, pose.orientation.y, pose.orientation.z = qw, qx, qy, qz
    return pose


def obstacle_array(boxes: Sequence[Box], frame_id: str, stamp: Time | None = None) -> ObstacleArray:
    """flow_planner_msgs/ObstacleArray of the boxes: ids box_<i>, BOX primitives (full edge lengths), yaw poses."""
    if len(boxes) > MAX_OBSTACLES:
        raise ObstacleError(f"{len(boxes)} obstacles, at most {MAX_OBSTACLES} are supported")
    msg = ObstacleArray()
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    for i, box in enumerate(boxes):
        shape = SolidPrimitive(type=SolidPrimitive.BOX, dimensions=[float(v) for v in box.size])
        msg.obstacles.append(Obstacle(id=obstacle_id(i), shape=shape, pose=_box_pose(box)))
    return msg


def obstacle_markers(
    boxes: Sequence[Box], frame_id: str, namespace: str = OBSTACLE_NAMESPACE, stamp: Time | None = None
) -> MarkerArray:
    """RViz MarkerArray of the boxes: a DELETEALL first (boxes of an earlier scene disappear), then one CUBE per box
    (marker id i = obstacle box_<i>, scale = full edge lengths) in `namespace`."""
    clear = Marker(ns=namespace, action=Marker.DELETEALL)
    clear.header.frame_id = frame_id
    markers = MarkerArray(markers=[clear])
    r, g, b, a = OBSTACLE_COLOR
    for i, box in enumerate(boxes):
        cube = Marker(ns=namespace, id=i, type=Marker.CUBE, action=Marker.ADD, color=ColorRGBA(r=r, g=g, b=b, a=a))
        cube.header.frame_id = frame_id
        if stamp is not None:
            cube.header.stamp = stamp
        cube.pose = _box_pose(box)
        cube.scale.x, cube.scale.y, cube.scale.z = (float(v) for v in box.size)
        markers.markers.append(cube)
    return markers


def pose_values(pose: Pose) -> np.ndarray:
    """[x, y, z, qw, qx, qy, qz] of a geometry_msgs/Pose (unchecked: callers validate)."""
    p, q = pose.position, pose.orientation
    return np.array([p.x, p.y, p.z, q.w, q.x, q.y, q.z], dtype=np.float64)


def boxes_from_obstacle_array(msg: ObstacleArray, frame_id: str | None = None) -> tuple[Box, ...]:
    """The boxes of an ObstacleArray, in its order. ObstacleError (naming the obstacle) for: more than
    MAX_OBSTACLES, a primitive other than BOX, not 3 dimensions, non-finite or out-of-range values, an orientation
    that is not a unit quaternion (quaternion.unit_quaternion: the tray pose's rule) or is tilted (a box may only be
    yawed about world z), duplicate ids, or a header frame other than `frame_id` (when given)."""
    if frame_id is not None and msg.header.frame_id != frame_id:
        raise ObstacleError(f"obstacles are in frame '{msg.header.frame_id}', expected '{frame_id}'")
    if len(msg.obstacles) > MAX_OBSTACLES:
        raise ObstacleError(f"{len(msg.obstacles)} obstacles, at most {MAX_OBSTACLES} are supported")
    boxes, seen = [], set()
    for i, obstacle in enumerate(msg.obstacles):
        name = f"obstacle {i} ('{obstacle.id}')"
        if obstacle.id in seen:
            raise ObstacleError(f"{name}: duplicate id")
        seen.add(obstacle.id)
        if obstacle.shape.type != SolidPrimitive.BOX:
            raise ObstacleError(f"{name}: only BOX primitives are supported, got type {obstacle.shape.type}")
        if len(obstacle.shape.dimensions) != 3:
            raise ObstacleError(f"{name}: a BOX needs 3 dimensions, got {len(obstacle.shape.dimensions)}")
        p, q = obstacle.pose.position, obstacle.pose.orientation
        quat = np.array([q.w, q.x, q.y, q.z], dtype=float)
        values = np.array([p.x, p.y, p.z, *obstacle.shape.dimensions, *quat], dtype=float)
        if not np.all(np.isfinite(values)):
            raise ObstacleError(f"{name}: non-finite pose or dimensions {values.tolist()}")
        try:
            unit = unit_quaternion(quat)
        except QuaternionError as exc:
            raise ObstacleError(f"{name}: {exc}") from None
        qw, qx, qy, qz = unit if unit[0] >= 0 else -unit  # same rotation; yaw in [-pi, pi]
        if max(abs(qx), abs(qy)) > MAX_TILT_COMPONENT:
            raise ObstacleError(f"{name}: a box may only be rotated about world z (yaw), got quaternion {quat}")
        try:
            boxes.append(
                Box((p.x, p.y, p.z), tuple(float(d) for d in obstacle.shape.dimensions), 2.0 * math.atan2(qz, qw))
            )
        except ObstacleError as exc:
            raise ObstacleError(f"{name}: {exc}") from None
    return tuple(boxes)


def joint_state_in_order(msg: JointState, joint_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """(positions, velocities) of `joint_names` in that order from a JointState, or None when a joint is missing or
    a position is not finite; velocities are zeros when the message has no usable ones."""
    index = {name: i for i, name in enumerate(msg.name)}
    if any(name not in index for name in joint_names):
        return None
    order = [index[name] for name in joint_names]
    positions = np.asarray(msg.position, dtype=np.float64)
    velocities = np.asarray(msg.velocity, dtype=np.float64)
    if len(positions) != len(msg.name) or not np.all(np.isfinite(positions)):
        return None
    usable = len(velocities) == len(msg.name) and np.all(np.isfinite(velocities[order]))
    return positions[order], velocities[order] if usable else np.zeros(len(order))
