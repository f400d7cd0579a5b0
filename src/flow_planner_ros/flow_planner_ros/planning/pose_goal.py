"""Goals given as tray poses (ROS-free): a request's `target_tray_pose` turned into goal joint positions.

A PlanTrajectory request (or ExecutePlan goal) gives either `goal_positions` or `target_tray_pose` (world frame):
without the tray (`carrying_tray` false) both end effectors go to the handles of a tray at that pose (reach); with it
the tray, at `tray_pose` at the start state, is carried to that pose, level, both tools keeping their pose in the
tray's frame (no grip change). The pose is

- not given when it is the message's default (position 0, identity quaternion: geometry_msgs/Pose() in ROS 2) or
  all zeros (`pose_given`);
- validated like a carried tray's pose (scene.validated_tray_pose: finite, within MAX_BOX_DISTANCE of the origin, a
  unit quaternion by quaternion.unit_quaternion's rule), level when carried (tilt at most `max_tilt_deg`), and each
  tool's target within its arm's reach (a bound: the chain's link lengths summed from the shoulder);
- resolved by the inverse kinematics (flow_planner_common.tray_ik) seeded with the start state: the converged solution
  closest to the start that the planner takes as a joint goal, i.e. within the planner's position limits and not in
  collision by the pipeline's own endpoint rule (scene_safety: the check that refuses a joint goal in collision, on
  the request's scene, carried tray and grip included). Unreachable poses and poses whose every solution collides are
  refused (`PoseGoalError`) with the IK's reason.

The resolved goal is then an ordinary joint goal: the pipeline, the execution and its replans only see joint positions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from flow_planner_common.kinematics import quat_to_matrix
from flow_planner_common.plan_scene import PlanScene, SceneError, validated_tray_pose
from flow_planner_common.robot import JOINT_NAMES
from flow_planner_common.scene_safety import SceneSafety, endpoint_clearance_problem
from flow_planner_common.tray_ik import Acceptance, TrayIK
from flow_planner_ros.planning.request import (
    JointStateSample,
    PlanRequest,
    PlanRequestError,
    RequestFields,
    RequestPolicy,
    validate_plan_request,
)

#: The largest tilt (degrees) of a carry's target pose: the tray is carried level.
MAX_CARRY_TILT_DEG = 1.0
#: IK seeds per request: the start state and noisy copies of it (tray_ik.TrayIK.solve).
IK_ATTEMPTS = 8
#: A target pose equal to one of these (x y z qw qx qy qz) is "not given": the message's default and all zeros.
NOT_GIVEN = (np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]), np.zeros(7))

#: scene_at(start positions (12,)) -> the request's scene (the carried tray's grasp depends on the start).
SceneAt = Callable[[np.ndarray], PlanScene]


class PoseGoalError(PlanRequestError):
    """A target tray pose the planner refuses; the message says why."""


def pose_given(values: Sequence[float]) -> bool:
    """Whether a target pose [x y z qw qx qy qz] is given (not the message's default nor all zeros; NaN is given)."""
    pose = np.asarray(values, dtype=np.float64)
    return not any(np.array_equal(pose, default) for default in NOT_GIVEN)


def tilt_degrees(quaternion: np.ndarray) -> float:
    """The angle (degrees) between a rotation's z axis and world z (0 = level, whatever the yaw)."""
    return math.degrees(math.acos(float(np.clip(quat_to_matrix(quaternion)[2, 2], -1.0, 1.0))))


class PoseGoals:
    """Target tray poses to goal joint positions (see the module docstring), on the planner's own clearance check."""

    def __init__(
        self,
        safety: SceneSafety,
        ik: TrayIK | None = None,
        attempts: int = IK_ATTEMPTS,
        max_tilt_deg: float = MAX_CARRY_TILT_DEG,
    ) -> None:
        self.safety = safety
        self.ik = ik or TrayIK()
        self.attempts = int(attempts)
        self.max_tilt_deg = float(max_tilt_deg)
        g = self.ik.kinematics.geometry
        # The first hinge turns about its body's origin: the shoulder is fixed, every later body origin stays within
        # its link's length of its parent's, so no tool target farther than their sum is reachable.
        self.shoulders = g.base_pos + np.einsum("aij,aj->ai", g.base_rot, g.link_pos[:, 0])  # (2, 3)
        links = np.linalg.norm(g.link_pos[:, 1:], axis=-1).sum(axis=-1)
        self.reach = links + np.linalg.norm(g.tool_pos, axis=-1) + np.linalg.norm(g.ee_pos, axis=-1)  # (2,) m

    def validated_target(self, values: Sequence[float], carrying: bool) -> np.ndarray:
        """The target pose (7,), quaternion normalised; PoseGoalError unless finite, a unit quaternion, within
        MAX_BOX_DISTANCE of the origin (scene.validated_tray_pose's rule) and, when `carrying`, level."""
        try:
            pose = validated_tray_pose(values)
        except SceneError as exc:  # its messages name "tray_pose ..."
            raise PoseGoalError(f"target_{exc}") from None
        if carrying:
            tilt = tilt_degrees(pose[3:])
            if tilt > self.max_tilt_deg:
                raise PoseGoalError(
                    f"target_tray_pose is tilted {tilt:.1f} degrees from level; a carried tray is kept level "
                    f"(at most {self.max_tilt_deg:g} degrees)"
                )
        return pose

    def acceptance(
        self, start: np.ndarray, scene: PlanScene, position_limits: np.ndarray | None = None,
        joint_names: Sequence[str] = JOINT_NAMES,
    ) -> Acceptance:  # fmt: skip
        """IK candidates (K, 12) -> per candidate "" or why the planner would refuse it as a joint goal from
        `start`: outside `position_limits` (12, 2), or in collision by the pipeline's endpoint rule
        (SceneSafety.endpoint_problem, batched: one clearance call for the start and every candidate)."""
        start = np.asarray(start, dtype=np.float64)

        def accept(candidates: np.ndarray) -> list[str]:
            candidates = np.asarray(candidates, dtype=np.float64).reshape(-1, start.size)
            rows = self.safety.clearances(np.vstack([start, candidates]), scene)  # grip from row 0
            categories = self.safety.categories(scene)
            reasons = []
            for k, goal in enumerate(candidates):
                why = None if position_limits is None else _outside(goal, position_limits, joint_names)
                why = why or endpoint_clearance_problem(rows[[0, k + 1]], categories, self.safety)
                reasons.append(why or "")
            return reasons

        return accept

    def resolve(
        self,
        target: Sequence[float],
        start: np.ndarray,
        scene: PlanScene,
        carried_tray_pose: Sequence[float] | None = None,
        position_limits: np.ndarray | None = None,
        joint_names: Sequence[str] = JOINT_NAMES,
    ) -> np.ndarray:
        """Goal joint positions (12,) for `target` from `start`: reach the handles of a tray at `target`, or with
        `carried_tray_pose` (the tray's pose at `start`) carry it there; PoseGoalError says why not."""
        start = np.asarray(start, dtype=np.float64)
        carrying = carried_tray_pose is not None
        pose = self.validated_target(target, carrying)
        if carrying:
            try:
                held = validated_tray_pose(carried_tray_pose)
            except SceneError as exc:
                raise PoseGoalError(str(exc)) from None
            target_pos, target_rot = self.ik.carry_targets(start, held, pose)
            what = "cannot carry the tray to target_tray_pose"
        else:
            target_pos, target_rot = self.ik.reach_targets(pose)
            what = "cannot reach the handles of a tray at target_tray_pose"
        distance = np.linalg.norm(target_pos - self.shoulders, axis=-1)
        for arm, name in enumerate(("left", "right")):
            if distance[arm] > self.reach[arm]:
                raise PoseGoalError(
                    f"{what}: the {name} end effector's target is {distance[arm]:.2f} m from its shoulder, beyond the "
                    f"arm's reach ({self.reach[arm]:.2f} m)"
                )
        solution = self.ik.solve(target_pos, target_rot, start, attempts=self.attempts,
                                 accept=self.acceptance(start, scene, position_limits, joint_names))  # fmt: skip
        if not solution.success:
            raise PoseGoalError(f"{what}: {solution.reason}")
        return solution.positions

    def plan_request(
        self,
        fields: RequestFields,
        policy: RequestPolicy,
        latest_state: JointStateSample | None,
        now: float,
        scene_at: SceneAt,
    ) -> tuple[PlanRequest, PlanScene]:
        """validate_plan_request with a pose goal resolved against the request's scene (built once, from the
        validated start), and that scene. PlanRequestError / SceneError say what is wrong. The pose's own problems
        (not finite, not a unit quaternion, tilted) are told first, before the start state's."""
        if fields.target_tray_pose is not None and len(fields.goal_positions) == 0:
            self.validated_target(fields.target_tray_pose, fields.carrying_tray)
        built: list[PlanScene] = []

        def scene(start: np.ndarray) -> PlanScene:
            if not built:
                built.append(scene_at(start))
            return built[0]

        def goal_from_pose(start: np.ndarray) -> np.ndarray:
            carried = fields.tray_pose if fields.carrying_tray else None
            return self.resolve(fields.target_tray_pose, start, scene(start), carried, policy.position_limits,
                                policy.planner_joint_names)  # fmt: skip

        plan_request = validate_plan_request(fields, policy, latest_state, now, goal_from_pose)
        return plan_request, scene(plan_request.start_positions)


def _outside(goal: np.ndarray, limits: np.ndarray, joint_names: Sequence[str]) -> str | None:
    """Why `goal` is beyond the position limits (12, 2), or None."""
    outside = np.flatnonzero((goal < limits[:, 0]) | (goal > limits[:, 1]))
    if outside.size == 0:
        return None
    i = int(outside[0])
    return (
        f"{joint_names[i]}={goal[i]:.4f} rad is beyond the planner's position limits "
        f"[{limits[i, 0]:.4f}, {limits[i, 1]:.4f}]"
    )
