"""Bring up the flow planner (and, with use_sim:=true, the MuJoCo bridge acting as the arm controllers).

    ros2 launch flow_planner_ros plan.launch.py [params_file:=YAML] [checkpoint:=PATH] [execution_steps:=K]
        [num_samples:=N] [use_sim:=true|false] [rviz:=true|false]

The params file (default: the installed config/planner.yaml) sets the planner's parameters; checkpoint,
execution_steps and num_samples override it only when given. Arguments are checked before anything starts (one
line names a bad one, and the launch exits 1); a missing params file is refused. If the planner (or the bridge)
exits on its own, the launch stops, with a non-zero exit code when that process failed.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler, Shutdown
from launch.event_handlers import OnProcessExit
from launch.events.process import ProcessExited
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from flow_planner_common.launch_arguments import check_params_file, exit_failure, node_overrides, parse_all
from flow_planner_ros.node.launch_arguments import (
    PARAMS_FILE_DESCRIPTION,
    PLAN_ARGUMENTS,
    PLANNER_OVERRIDES,
    RVIZ,
    USE_SIM,
)


def _stop_when_it_exits(event: ProcessExited, context: LaunchContext) -> list[Shutdown]:
    """A required process ended: fail the launch if it failed (non-zero exit code), else shut down cleanly."""
    reason = exit_failure(event.process_name, event.returncode, context.is_shutdown)
    if reason is not None:
        raise RuntimeError(reason)
    return [] if context.is_shutdown else [Shutdown(reason=f"{event.process_name} exited")]


def _required(node: Node) -> list:
    return [node, RegisterEventHandler(OnProcessExit(target_action=node, on_exit=_stop_when_it_exits))]


def _launch_setup(context: LaunchContext) -> list:
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in PLAN_ARGUMENTS}
    params_file = check_params_file(LaunchConfiguration("params_file").perform(context))
    overrides = node_overrides(PLANNER_OVERRIDES, values)
    flags = parse_all((USE_SIM, RVIZ), values)
    planner_share = get_package_share_directory("flow_planner_ros")
    actions = _required(
        Node(
            package="flow_planner_ros",
            executable="planner",
            name="flow_planner",
            output="screen",
            parameters=[params_file, overrides] if overrides else [params_file],
        )
    )
    if flags["use_sim"]:
        collector_share = get_package_share_directory("data_collector_ros")
        bridge = Node(
            package="data_collector_ros",
            executable="sim_bridge",
            name="sim_bridge",
            output="screen",
            parameters=[os.path.join(collector_share, "config", "sim_bridge.yaml")],
        )
        actions = _required(bridge) + actions
    if flags["rviz"]:
        rviz_config = os.path.join(planner_share, "config", "flow_planner.rviz")
        actions.append(Node(package="rviz2", executable="rviz2", name="rviz2", arguments=["-d", rviz_config]))
    return actions


def generate_launch_description() -> LaunchDescription:
    planner_share = get_package_share_directory("flow_planner_ros")
    arguments = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.launch_description)
        for a in PLAN_ARGUMENTS
    ]
    arguments.append(
        DeclareLaunchArgument(
            "params_file",
            default_value=os.path.join(planner_share, "config", "planner.yaml"),
            description=PARAMS_FILE_DESCRIPTION,
        )
    )
    return LaunchDescription([*arguments, OpaqueFunction(function=_launch_setup)])
