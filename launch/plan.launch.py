"""Bring up the flow planner (and, with use_sim:=true, the MuJoCo bridge acting as the arm controllers).

    ros2 launch flow_planner_ros plan.launch.py [checkpoint:=PATH] [execution_steps:=K]
        [params_file:=YAML] [use_sim:=true|false]
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from flow_planner_ros.planner_settings import SPECS


def generate_launch_description() -> LaunchDescription:
    planner_share = get_package_share_directory("flow_planner_ros")
    collector_share = get_package_share_directory("data_collector_ros")
    arguments = [
        DeclareLaunchArgument(
            "checkpoint", default_value=str(SPECS["checkpoint"].default), description=SPECS["checkpoint"].description
        ),
        DeclareLaunchArgument(
            "execution_steps",
            default_value=str(SPECS["execution_steps"].default),
            description=SPECS["execution_steps"].description,
        ),
        DeclareLaunchArgument(
            "params_file",
            default_value=os.path.join(planner_share, "config", "planner.yaml"),
            description="Planner parameters (YAML).",
        ),
        DeclareLaunchArgument(
            "use_sim", default_value="false", description="Also start the MuJoCo bridge (self-contained demo)."
        ),
    ]
    planner = Node(
        package="flow_planner_ros",
        executable="planner",
        name="flow_planner",
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "checkpoint": LaunchConfiguration("checkpoint"),
                "execution_steps": ParameterValue(LaunchConfiguration("execution_steps"), value_type=int),
            },
        ],
    )
    sim_bridge = Node(
        package="data_collector_ros",
        executable="sim_bridge",
        name="sim_bridge",
        output="screen",
        parameters=[os.path.join(collector_share, "config", "sim_bridge.yaml")],
        condition=IfCondition(LaunchConfiguration("use_sim")),
    )
    return LaunchDescription([*arguments, sim_bridge, planner])
