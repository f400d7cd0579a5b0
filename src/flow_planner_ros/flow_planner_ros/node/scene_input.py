"""The planner node's scene input (rclpy message types, no node): the latest ObstacleArray on the scene topic (or why
it is unusable) and, per request, the PlanScene of its own boxes, the topic's and the carried tray
(flow_planner_common.plan_scene.PlanScene.from_request). A bad scene is a SceneError whose message becomes the
service's reason."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flow_planner_common.obstacles import Box, ObstacleError
from flow_planner_common.plan_scene import PlanScene, SceneError
from flow_planner_common.ros_messages import boxes_from_obstacle_array, pose_values
from flow_planner_msgs.msg import ObstacleArray
from flow_planner_msgs.srv import PlanTrajectory


class SceneInput:
    """The boxes of the latest `topic` message in `frame_id` and the requests' scenes."""

    def __init__(self, topic: str, frame_id: str) -> None:
        self.topic, self.frame_id = topic, frame_id
        self.boxes: tuple[Box, ...] = ()  # the latest topic message's boxes
        self.error: str | None = None  # why that message is unusable (then no request is planned)

    def on_message(self, msg: ObstacleArray) -> str | None:
        """Take a topic message; a warning when it is unusable (planning is refused until a usable one comes)."""
        try:
            self.boxes, self.error = boxes_from_obstacle_array(msg, self.frame_id), None
        except ObstacleError as exc:  # never ignore a box
            self.boxes, self.error = (), str(exc)
            return f"{self.topic}: {exc}"
        return None

    def scene(
        self, request: PlanTrajectory.Request, start_positions: np.ndarray,
        grasp_from_start: Callable[[np.ndarray, np.ndarray], object],
    ) -> PlanScene:  # fmt: skip
        """The request's scene: its boxes and the topic's, and the carried tray (SceneError says what is wrong)."""
        try:
            request_boxes = boxes_from_obstacle_array(ObstacleArray(obstacles=list(request.obstacles)))
        except ObstacleError as exc:
            raise SceneError(f"obstacles: {exc}") from None
        return PlanScene.from_request(
            request_boxes, self.boxes, self.topic, pose_values(request.tray_pose) if request.carrying_tray else None,
            start_positions, grasp_from_start, topic_error=self.error,
        )  # fmt: skip
