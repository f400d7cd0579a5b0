"""The scene a plan is checked against (ROS-free): the union of a request's boxes and the latest /scene/obstacles,
and the carried tray. The planner node builds one `PlanScene` per request with `PlanScene.from_request` (and keeps
it for the request's replans); every problem is a `SceneError` whose message becomes the service's reason."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from flow_planner_common.kinematics import TrayGrasp
from flow_planner_common.obstacles import MAX_BOX_DISTANCE, MAX_OBSTACLES, Box, boxes_to_array
from flow_planner_common.quaternion import QuaternionError, unit_quaternion

#: Two boxes closer than this in every number (m, rad) are the same box (a scene given twice is not two scenes).
SAME_BOX_TOLERANCE = 1e-6


class SceneError(ValueError):
    """A scene the planner cannot plan against; the message says why."""


@dataclass(frozen=True)
class PlanScene:
    """Boxes in the fixed-size form (MAX_OBSTACLES, 7) with a mask, and the carried tray's grasp (None: no tray)."""

    boxes: np.ndarray
    mask: np.ndarray
    grasp: TrayGrasp | None = None

    @classmethod
    def from_boxes(cls, boxes: Sequence[Box], grasp: TrayGrasp | None = None) -> PlanScene:
        if len(boxes) > MAX_OBSTACLES:
            raise SceneError(f"{len(boxes)} obstacles, at most {MAX_OBSTACLES} are supported")
        array, mask = boxes_to_array(boxes)
        return cls(array, mask, grasp)

    @classmethod
    def from_request(
        cls,
        request_boxes: Sequence[Box],
        topic_boxes: Sequence[Box],
        topic: str,
        carried_tray_pose: Sequence[float] | None,
        start_positions: np.ndarray,
        grasp_from_start: Callable[[np.ndarray, np.ndarray], TrayGrasp],
        topic_error: str | None = None,
    ) -> PlanScene:
        """A request's scene: its boxes and the scene topic's (`topic_error`: why the topic's latest message is
        unusable), and, when `carried_tray_pose` is given, the tray carried from that pose at `start_positions`
        (`grasp_from_start`: the collision checker's)."""
        if topic_error is not None:
            raise SceneError(f"the latest {topic} message is unusable: {topic_error}")
        boxes = merge_boxes(request_boxes, topic_boxes, topic)
        grasp = None
        if carried_tray_pose is not None:
            grasp = grasp_from_start(start_positions, validated_tray_pose(carried_tray_pose))
        return cls.from_boxes(boxes, grasp)

    @property
    def num_boxes(self) -> int:
        return int(self.mask.sum())

    def describe(self) -> str:
        tray = ", carried tray" if self.grasp is not None else ""
        return f"{self.num_boxes} box{'es' if self.num_boxes != 1 else ''}{tray}"


EMPTY_SCENE = PlanScene.from_boxes(())


def merge_boxes(request_boxes: Sequence[Box], topic_boxes: Sequence[Box], topic: str) -> tuple[Box, ...]:
    """The union of the request's boxes and those of the scene topic, a box given by both counted once;
    SceneError when the union holds more than MAX_OBSTACLES."""
    merged = list(request_boxes)
    for box in topic_boxes:
        if not any(np.allclose(box.as_array(), b.as_array(), rtol=0.0, atol=SAME_BOX_TOLERANCE) for b in merged):
            merged.append(box)
    if len(merged) > MAX_OBSTACLES:
        raise SceneError(
            f"{len(request_boxes)} obstacles in the request and {len(topic_boxes)} on {topic} make {len(merged)} "
            f"distinct boxes; the planner supports at most {MAX_OBSTACLES}"
        )
    return tuple(merged)


def validated_tray_pose(pose: Sequence[float]) -> np.ndarray:
    """A carried tray's pose [x, y, z, qw, qx, qy, qz] with its quaternion normalized; SceneError unless finite,
    within MAX_BOX_DISTANCE of the world origin, with a unit quaternion (quaternion.unit_quaternion, as the boxes)."""
    values = np.asarray(pose, dtype=np.float64)
    if values.shape != (7,) or not np.all(np.isfinite(values)):
        raise SceneError(f"tray_pose must be 7 finite numbers (position, quaternion), got {values.tolist()}")
    if np.linalg.norm(values[:3]) > MAX_BOX_DISTANCE:
        raise SceneError(f"tray_pose position {values[:3].tolist()} is more than {MAX_BOX_DISTANCE} m from the origin")
    try:
        values[3:] = unit_quaternion(values[3:], "tray_pose orientation")
    except QuaternionError as exc:
        raise SceneError(str(exc)) from None
    return values
