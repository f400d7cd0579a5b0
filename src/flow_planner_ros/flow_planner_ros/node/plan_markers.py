"""RViz markers of a plan: the two end-effector paths (numpy forward kinematics, no MuJoCo) as LINE_STRIPs and the
goal poses of the end effectors as spheres, in the scene's world frame. Each new plan replaces the previous markers
(same namespace and ids)."""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from flow_planner_common.arm_kinematics import ee_positions

#: Marker namespace and the colours of the left and right end-effector paths (the MJCF's site colours).
NAMESPACE = "flow_planner/plan"
ARM_COLORS = ((1.0, 0.2, 0.2), (0.2, 0.2, 1.0))
LINE_WIDTH = 0.006  # m
GOAL_DIAMETER = 0.03  # m


def plan_markers(
    positions: np.ndarray, goal_positions: np.ndarray, frame_id: str, stamp: object, alpha: float = 1.0
) -> MarkerArray:
    """Markers of a (H, 12) plan and its (12,) joint goal: ids 0/1 paths (left/right), 2/3 goals."""
    paths = ee_positions(positions)  # (H, 2, 3)
    goals = ee_positions(np.asarray(goal_positions)[None])[0]
    markers = MarkerArray()
    for arm, color in enumerate(ARM_COLORS):
        rgba = ColorRGBA(r=color[0], g=color[1], b=color[2], a=float(alpha))
        path = Marker(ns=NAMESPACE, id=arm, type=Marker.LINE_STRIP, action=Marker.ADD, color=rgba)
        path.header.frame_id, path.header.stamp = frame_id, stamp
        path.pose.orientation.w = 1.0
        path.scale.x = LINE_WIDTH
        path.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in paths[:, arm]]
        goal = Marker(ns=NAMESPACE, id=2 + arm, type=Marker.SPHERE, action=Marker.ADD, color=rgba)
        goal.header.frame_id, goal.header.stamp = frame_id, stamp
        x, y, z = (float(v) for v in goals[arm])
        goal.pose.position = Point(x=x, y=y, z=z)
        goal.pose.orientation.w = 1.0
        goal.scale.x = goal.scale.y = goal.scale.z = GOAL_DIAMETER
        markers.markers += [path, goal]
    return markers
