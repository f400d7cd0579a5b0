"""The planner node's parameters, defined once (ROS-free): name, default, description, range, whether it may change
while the node runs. The node declares them from here (with ROS ParameterDescriptors), `config/planner.yaml` is
generated from here (`python -m flow_planner_ros.node.planner_settings > config/planner.yaml`; a test keeps it
current) and the launch file overrides only what it is given.

`PlannerSettings.from_values` validates a complete set of values (ranges, choices, cross-field rules); the node
builds its settings once at start and again, validated, for every dynamic update.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from flow_planner_common.parameters import ParameterError, ParameterSpec, checked_value, parameters_yaml
from flow_planner_common.robot import HORIZON, JOINT_NAMES, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, NUM_JOINTS
from flow_planner_common.scene_safety import DEFAULT_CLEARANCE_MARGIN, DEFAULT_MAX_GRIP_CHANGE, DEFAULT_MAX_TRAY_TILT
from flow_planner_ros.planning import refinement
from flow_planner_ros.planning.execution import DEFAULT_PATH_TOLERANCE
from flow_planner_ros.planning.pipeline import FALLBACK_PLANNERS


class SettingsError(ParameterError):
    """A parameter value the planner refuses; the message names the parameter."""


NAN_LIST = [float("nan")]  # limit lists: [nan] = the robot description's limits

PLANNER_PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec("checkpoint", "", "checkpoint file (.safetensors); empty = the one installed with flow_planner_ros",
                  read_only=True),
    ParameterSpec("device", "cpu", "torch device for inference: cpu, cuda or cuda:N", read_only=True),
    ParameterSpec("backend", "onnx", "inference runtime: onnx (ONNX Runtime, fastest at batch 1 on CPU) or torch "
                  "(used on cuda)", choices=("onnx", "torch"), read_only=True),
    ParameterSpec("num_threads", 1, "CPU inference threads (1 is fastest when the simulator shares the cores)",
                  1, 64, read_only=True),
    ParameterSpec("num_samples", 8, "best-of-N candidates per request (a request's 0 = this)", 1, 1024),
    ParameterSpec("integration_steps", 0, "Euler steps per sample (a request's 0 = this; 0 = the checkpoint's "
                  "flow.integration_steps, what it was tuned for)", 0, 1000),
    ParameterSpec("max_num_samples", 64, "requests asking for more samples are refused", 1, 1024),
    ParameterSpec("max_integration_steps", 100, "requests asking for more steps are refused", 1, 1000),
    ParameterSpec("execution_steps", HORIZON, f"waypoints executed before replanning (1..{HORIZON}; {HORIZON} = the "
                  "whole plan, no replanning)", 1, HORIZON),
    ParameterSpec("blend_steps", 5, "waypoints over which a replan or a preempting plan cross-fades from the "
                  "running plan", 0, HORIZON - 1),
    ParameterSpec("goal_tolerance", 0.02, "rad; max joint error at which the goal counts as reached", 1e-4, 1.0),
    ParameterSpec("final_approach_distance", 0.1, "rad; closer to the goal than this, the running plan is executed "
                  "to its end instead of replanning", 0.0, math.pi),
    ParameterSpec("max_replans", 30, "replans per request; then the execution is reported failed", 0, 10000),
    ParameterSpec("path_tolerance", DEFAULT_PATH_TOLERANCE, "rad; a measured joint farther than this from where the "
                  "running plan commands it stops both arms and fails the execution (an arm that does not follow, "
                  "e.g. its controller refused the trajectory); 0 = not checked", 0.0, math.pi),
    ParameterSpec("smoothing_knots", 4, "bumps per joint of the smooth projection through start and goal (the CEM "
                  "expert's resolution); 0 = raw samples", 0, 16, read_only=True),
    ParameterSpec("max_projection_change", 0.2, "rad; samples the projection had to move further are refused",
                  0.0, 10.0),
    ParameterSpec("clearance_margin", DEFAULT_CLEARANCE_MARGIN, "m; every published waypoint keeps this clearance "
                  "(more for fast steps) to the scene's boxes, the other arm, the table and a carried tray "
                  "(kinematic checker; see scene_safety)", 0.0, 0.05),
    ParameterSpec("max_grip_change", DEFAULT_MAX_GRIP_CHANGE, "m; while carrying, the right tool may move at most "
                  "this far from its grasp relative to the left tool (both hold the tray); 0 = no limit", 0.0, 0.5),
    ParameterSpec("max_tray_tilt", DEFAULT_MAX_TRAY_TILT, "rad; while carrying, the tray may tilt at most this far "
                  "from level (so that what it carries stays on it; the evaluation's success rule allows 10 deg); "
                  "0 = no limit", 0.0, 1.0),
    ParameterSpec("hold_grip", True, "while carrying, the right arm of every sample and refined candidate follows "
                  "the left from the start's grip before the check (as the expert's carries do; the model learns "
                  "the grip only approximately)"),
    ParameterSpec("refine_iterations", refinement.DEFAULT_ITERATIONS, "CEM iterations (at most: it stops once a "
                  "candidate is clear) that bend the samples when none is collision-free (0 = off: such a request "
                  "fails)", 0, 50),
    ParameterSpec("refine_samples", refinement.DEFAULT_SAMPLES, "candidates per refinement iteration", 4, 256),
    ParameterSpec("fallback_planner", "none", "when no sample and no refined candidate is safe: none = the request "
                  "fails; rrt = OMPL RRTConnect (joint space for a reach, level tray poses with IK for a carry) "
                  "plans it, and its plan goes through the same checks", choices=FALLBACK_PLANNERS),
    ParameterSpec("fallback_time_limit", 1.0, "s; the fallback planner's time limit per plan", 0.01, 30.0),
    ParameterSpec("start_state_tolerance", 0.01, "rad; an executed request's explicit start may differ this much "
                  "from the measured /joint_states (else it is refused)", 1e-4, 1.0),
    ParameterSpec("joint_states_timeout", 0.5, "s; older /joint_states are stale: no plan or execution from them, and "
                  "a running execution whose /joint_states stop this long ends failed (nothing more published)",
                  0.01, 60.0),
    ParameterSpec("max_pending_requests", 64, "requests that may wait for planning; more are answered "
                  "success=false 'busy' at once", 1, 1000),
    ParameterSpec("max_batch_requests", 8, "plain plan requests (execute=false) waiting in the queue that are "
                  "sampled together in one model call (dynamic batching); 1 = one at a time", 1, 64),
    ParameterSpec("stop_deceleration", 2.0, "rad/s^2; peak joint deceleration of the smooth stop when an "
                  "ExecutePlan goal is canceled, as commanded (the controllers' interpolation of its waypoints; the "
                  "measured joints follow within their tracking, a few %)", 0.1, 100.0),
    ParameterSpec("feedback_rate", 10.0, "Hz; ExecutePlan feedback while a goal executes", 0.5, 100.0),
    ParameterSpec("joint_names", list(JOINT_NAMES), f"the {NUM_JOINTS} joints, left arm then right arm, as the "
                  "controllers and /joint_states name them", read_only=True),
    ParameterSpec("joint_states_topic", "/joint_states", "measured joint states", read_only=True),
    ParameterSpec("left_controller_topic", "/left_arm_controller/joint_trajectory", "left arm JointTrajectory",
                  read_only=True),
    ParameterSpec("right_controller_topic", "/right_arm_controller/joint_trajectory", "right arm JointTrajectory",
                  read_only=True),
    ParameterSpec("scene_obstacles_topic", "/scene/obstacles", "flow_planner_msgs/ObstacleArray (latched, in "
                  "frame_id) whose boxes every plan also avoids, besides the request's; empty = none", read_only=True),
    ParameterSpec("status_topic", "/flow_planner/status", "PlannerStatus of executions", read_only=True),
    ParameterSpec("marker_topic", "/flow_planner/markers", "visualization_msgs/MarkerArray of each plan's "
                  "end-effector paths (latched)", read_only=True),
    ParameterSpec("frame_id", "world", "frame of the markers (the scene's world frame)", read_only=True),
    ParameterSpec("position_limits_lower", NAN_LIST, "rad, 12 values; [nan] = the robot description's",
                  read_only=True),
    ParameterSpec("position_limits_upper", NAN_LIST, "rad, 12 values; [nan] = the robot description's",
                  read_only=True),
    ParameterSpec("velocity_limits", NAN_LIST, "rad/s, 12 values; [nan] = the robot description's", read_only=True),
)  # fmt: skip
SPECS: dict[str, ParameterSpec] = {spec.name: spec for spec in PLANNER_PARAMETERS}


@dataclass(frozen=True)
class PlannerSettings:
    """Validated values of every planner parameter (limits resolved to arrays in the planner's joint order)."""

    checkpoint: str
    device: str
    backend: str
    num_threads: int
    num_samples: int
    integration_steps: int
    max_num_samples: int
    max_integration_steps: int
    execution_steps: int
    blend_steps: int
    goal_tolerance: float
    final_approach_distance: float
    max_replans: int
    path_tolerance: float
    smoothing_knots: int
    max_projection_change: float
    clearance_margin: float
    max_grip_change: float
    max_tray_tilt: float
    hold_grip: bool
    refine_iterations: int
    refine_samples: int
    fallback_planner: str
    fallback_time_limit: float
    start_state_tolerance: float
    joint_states_timeout: float
    max_pending_requests: int
    max_batch_requests: int
    stop_deceleration: float
    feedback_rate: float
    joint_names: tuple[str, ...]
    joint_states_topic: str
    left_controller_topic: str
    right_controller_topic: str
    scene_obstacles_topic: str
    status_topic: str
    marker_topic: str
    frame_id: str
    position_limits: np.ndarray  # (12, 2)
    velocity_limits: np.ndarray  # (12,)

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> PlannerSettings:
        """Settings from parameter values (missing ones take their defaults); SettingsError on a bad value."""
        unknown = sorted(set(values) - set(SPECS))
        if unknown:
            raise SettingsError(f"unknown parameter(s): {', '.join(unknown)}")
        merged = {spec.name: values.get(spec.name, spec.default) for spec in PLANNER_PARAMETERS}
        try:
            checked = {name: checked_value(SPECS[name], value) for name, value in merged.items()}
        except ParameterError as exc:
            raise SettingsError(str(exc)) from None
        names = tuple(str(n) for n in checked.pop("joint_names"))
        if len(names) != NUM_JOINTS or len(set(names)) != NUM_JOINTS:
            raise SettingsError(f"joint_names must list {NUM_JOINTS} distinct joints (left arm, then right)")
        device = checked["device"]
        if device != "cpu" and not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
            raise SettingsError(f"device must be cpu, cuda or cuda:N, got {device[:40]!r}")
        lower = _limits(checked.pop("position_limits_lower"), JOINT_POSITION_LIMITS[:, 0], "position_limits_lower")
        upper = _limits(checked.pop("position_limits_upper"), JOINT_POSITION_LIMITS[:, 1], "position_limits_upper")
        velocity = _limits(checked.pop("velocity_limits"), JOINT_VELOCITY_LIMITS, "velocity_limits")
        if np.any(lower >= upper) or np.any(velocity <= 0):
            raise SettingsError("position limits need lower < upper and velocity limits must be > 0")
        if checked["num_samples"] > checked["max_num_samples"]:
            raise SettingsError("num_samples must not exceed max_num_samples")
        if checked["integration_steps"] > checked["max_integration_steps"]:
            raise SettingsError("integration_steps must not exceed max_integration_steps")
        return cls(
            **checked, joint_names=names, position_limits=np.column_stack([lower, upper]), velocity_limits=velocity
        )

    def values(self) -> dict[str, object]:
        """The parameter values these settings came from (limit arrays as lists)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name in SPECS}
        out["joint_names"] = list(self.joint_names)
        out["position_limits_lower"] = self.position_limits[:, 0].tolist()
        out["position_limits_upper"] = self.position_limits[:, 1].tolist()
        out["velocity_limits"] = self.velocity_limits.tolist()
        return out

    def updated(self, changes: Mapping[str, object]) -> PlannerSettings:
        """New settings with `changes` applied, validated; read-only parameters cannot change."""
        frozen = sorted(name for name in changes if name in SPECS and SPECS[name].read_only)
        if frozen:
            raise SettingsError(f"read-only parameter(s) (set at start only): {', '.join(frozen)}")
        return PlannerSettings.from_values({**self.values(), **changes})


def _limits(values: object, default: np.ndarray, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise SettingsError(f"{name} must be a list of numbers") from None
    if array.size == 1 and np.isnan(array[0]):
        return np.array(default, dtype=np.float64)
    if array.shape != (NUM_JOINTS,) or not np.all(np.isfinite(array)):
        raise SettingsError(f"{name} must hold {NUM_JOINTS} finite values (or [nan] for the robot's limits)")
    return array


def planner_yaml(node_name: str = "flow_planner") -> str:
    """The text of config/planner.yaml: every parameter with its default and description."""
    header = [
        "Parameters of the planner node (flow_planner_ros/planner), generated from flow_planner_ros/node/",
        "planner_settings.py: python -m flow_planner_ros.node.planner_settings > config/planner.yaml",
        "(*) = read at start only; the others may be changed while the node runs (ros2 param set).",
    ]
    return parameters_yaml(node_name, PLANNER_PARAMETERS, header)


if __name__ == "__main__":
    sys.stdout.write(planner_yaml())
