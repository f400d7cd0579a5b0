"""The arguments of plan.launch.py (ROS-free, unit-tested without launch_ros): the planner parameters a user may
override on the command line take their descriptions and ranges from the planner's parameter spec."""

from __future__ import annotations

from flow_planner_common.launch_arguments import LaunchArgument
from flow_planner_ros.node.planner_settings import SPECS

#: Launch arguments that override the planner parameter of the same name, when given.
PLANNER_OVERRIDES: tuple[LaunchArgument, ...] = (
    LaunchArgument("checkpoint", str, SPECS["checkpoint"].description),
    LaunchArgument("execution_steps", int, SPECS["execution_steps"].description,
                   low=int(SPECS["execution_steps"].low), high=int(SPECS["execution_steps"].high)),
    LaunchArgument("num_samples", int, SPECS["num_samples"].description,
                   low=int(SPECS["num_samples"].low), high=int(SPECS["num_samples"].high)),
)  # fmt: skip
#: Arguments that steer the launch itself.
USE_SIM = LaunchArgument("use_sim", bool, "also start the MuJoCo bridge as the arm controllers", "false",
                         parameter=False)  # fmt: skip
RVIZ = LaunchArgument("rviz", bool, "also start rviz2 with config/flow_planner.rviz", "false", parameter=False)
PLAN_ARGUMENTS: tuple[LaunchArgument, ...] = (*PLANNER_OVERRIDES, USE_SIM, RVIZ)
#: The params file argument's description (its default is the installed config/planner.yaml).
PARAMS_FILE_DESCRIPTION = "planner parameters (YAML); must exist; given arguments override its values"
