"""The scene message builders of flow_planner_common.ros_messages: ObstacleArray and MarkerArray of boxes, and the
validated way back (boxes_from_obstacle_array) the planner uses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from shape_msgs.msg import SolidPrimitive
from visualization_msgs.msg import Marker

from flow_planner_common.obstacles import MAX_OBSTACLES, Box, ObstacleError
from flow_planner_common.ros_messages import (
    OBSTACLE_NAMESPACE,
    boxes_from_obstacle_array,
    obstacle_array,
    obstacle_markers,
    time_msg,
)
from flow_planner_msgs.msg import Obstacle, ObstacleArray

BOXES = (
    Box((0.5, 0.1, 0.9), (0.1, 0.2, 0.3), 0.4),
    Box((0.4, -0.2, 0.8), (0.05, 0.05, 0.5), -3.0),
    Box((0.7, 0.0, 0.85), (0.04, 0.6, 0.2), 0.0),
)


def assert_same_boxes(got: tuple[Box, ...], expected: tuple[Box, ...]) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a.as_array(), b.as_array(), atol=1e-12)


def test_obstacle_array_round_trip() -> None:
    msg = obstacle_array(BOXES, "world", time_msg(12.5))
    assert msg.header.frame_id == "world" and (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 500_000_000)
    assert [o.id for o in msg.obstacles] == ["box_0", "box_1", "box_2"]
    first = msg.obstacles[0]
    assert first.shape.type == SolidPrimitive.BOX and list(first.shape.dimensions) == [0.1, 0.2, 0.3]
    assert (first.pose.position.x, first.pose.position.y, first.pose.position.z) == (0.5, 0.1, 0.9)
    q = first.pose.orientation
    assert (q.w, q.x, q.y, q.z) == pytest.approx((math.cos(0.2), 0.0, 0.0, math.sin(0.2)))
    assert_same_boxes(boxes_from_obstacle_array(msg), BOXES)
    assert_same_boxes(boxes_from_obstacle_array(msg, frame_id="world"), BOXES)
    assert boxes_from_obstacle_array(obstacle_array((), "world")) == ()


def test_yaw_comes_back_in_minus_pi_pi() -> None:
    msg = obstacle_array([Box((0.5, 0.0, 0.9), (0.1, 0.1, 0.1), 4.0)], "world")
    (box,) = boxes_from_obstacle_array(msg)
    assert box.yaw == pytest.approx(4.0 - 2 * math.pi)
    np.testing.assert_allclose(box.quaternion(), -msg_quaternion(msg.obstacles[0]), atol=1e-12)  # same rotation


def msg_quaternion(obstacle: Obstacle) -> np.ndarray:
    q = obstacle.pose.orientation
    return np.array([q.w, q.x, q.y, q.z])


def test_markers_delete_all_then_one_cube_per_box() -> None:
    markers = obstacle_markers(BOXES, "world").markers
    assert markers[0].action == Marker.DELETEALL and markers[0].ns == OBSTACLE_NAMESPACE
    cubes = markers[1:]
    assert [m.id for m in cubes] == [0, 1, 2]
    for cube, box in zip(cubes, BOXES, strict=True):
        assert cube.type == Marker.CUBE and cube.action == Marker.ADD and cube.ns == OBSTACLE_NAMESPACE
        assert cube.header.frame_id == "world" and cube.color.a > 0
        assert (cube.scale.x, cube.scale.y, cube.scale.z) == box.size
        assert (cube.pose.position.x, cube.pose.position.y, cube.pose.position.z) == box.center
        q = cube.pose.orientation
        np.testing.assert_allclose([q.w, q.x, q.y, q.z], box.quaternion())
    empty = obstacle_markers((), "map", namespace="other").markers
    assert len(empty) == 1 and empty[0].action == Marker.DELETEALL and empty[0].ns == "other"


def obstacle(dimensions=(0.1, 0.1, 0.1), shape_type=SolidPrimitive.BOX, position=(0.5, 0.0, 0.9), quat=(1, 0, 0, 0)):
    msg = Obstacle(id="o", shape=SolidPrimitive(type=shape_type, dimensions=[float(d) for d in dimensions]))
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in position)
    q = msg.pose.orientation
    q.w, q.x, q.y, q.z = (float(v) for v in quat)
    return msg


@pytest.mark.parametrize(
    ("obstacles", "reason"),
    [
        ([obstacle(shape_type=SolidPrimitive.SPHERE, dimensions=(0.1,))], "only BOX primitives"),
        ([obstacle(shape_type=SolidPrimitive.CYLINDER, dimensions=(0.1, 0.05))], "only BOX primitives"),
        ([obstacle(dimensions=(0.1, 0.1))], "needs 3 dimensions, got 2"),
        ([obstacle(dimensions=(0.1, math.nan, 0.1))], "non-finite"),
        ([obstacle(position=(0.5, math.inf, 0.9))], "non-finite"),
        ([obstacle(quat=(math.nan, 0, 0, 0))], "non-finite"),
        ([obstacle(quat=(0, 0, 0, 0))], "must be a unit quaternion"),
        ([obstacle(quat=(2, 0, 0, 0))], r"unit quaternion \(norm within 0.01 of 1\), got norm 2"),
        ([obstacle(quat=(1e-9, 0, 0, 0))], "got norm 1e-09"),
        ([obstacle(quat=(math.cos(0.2), math.sin(0.2), 0, 0))], "only be rotated about world z"),
        ([obstacle(dimensions=(0.1, -0.1, 0.1))], "edge lengths must be in"),
        ([obstacle(dimensions=(0.1, 5.0, 0.1))], "edge lengths must be in"),
        ([obstacle(position=(10.0, 0.0, 0.9))], "from the world origin"),
        ([obstacle()] * 2, "duplicate id"),
        ([obstacle() for _ in range(MAX_OBSTACLES + 1)], f"{MAX_OBSTACLES + 1} obstacles, at most {MAX_OBSTACLES}"),
    ],
)
def test_refuses_what_a_box_scene_cannot_hold(obstacles: list[Obstacle], reason: str) -> None:
    msg = ObstacleArray(obstacles=obstacles)
    msg.header.frame_id = "world"
    with pytest.raises(ObstacleError, match=reason) as info:
        boxes_from_obstacle_array(msg)
    assert "\n" not in str(info.value)


def test_refuses_another_frame_and_names_the_obstacle() -> None:
    msg = obstacle_array(BOXES, "map")
    with pytest.raises(ObstacleError, match="frame 'map', expected 'world'"):
        boxes_from_obstacle_array(msg, frame_id="world")
    msg.obstacles[1].shape.dimensions = [0.1, 0.1]
    with pytest.raises(ObstacleError, match=r"obstacle 1 \('box_1'\)"):
        boxes_from_obstacle_array(msg)


def test_builders_refuse_too_many_boxes() -> None:
    with pytest.raises(ObstacleError, match="at most"):
        obstacle_array([BOXES[0]] * (MAX_OBSTACLES + 1), "world")
