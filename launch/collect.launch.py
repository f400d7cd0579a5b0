"""Collect expert trajectories with N collector processes on disjoint shards of the tray grid.

    ros2 launch data_collector_ros collect.launch.py [params_file:=YAML] [output_dir:=DIR] [start_index:=I]
        [count:=N] [record_bag:=true|false] [shards:=2]

The params file (default: the installed config/collector.yaml) sets every collector parameter; output_dir,
start_index, count and record_bag override it only when given. Arguments are checked before anything starts (one
line names a bad one, and the launch exits 1); a missing params file is refused; count:=0 starts nothing and says
so. A collector that fails (non-zero exit code) stops the launch, which then exits non-zero.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events.process import ProcessExited
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from data_collector_ros.collector_node import COLLECT_ARGUMENTS
from data_collector_ros.collector_parameters import PARAMETERS
from data_collector_ros.sharding import shard_ranges
from flow_planner_common.launch_arguments import (
    check_params_file,
    exit_failure,
    node_overrides,
    params_file_value,
    parse_all,
)

PARAMS_FILE_DESCRIPTION = "collector parameters (YAML); must exist; given arguments override its values"


def _fail_if_it_failed(event: ProcessExited, context: LaunchContext) -> None:
    reason = exit_failure(event.process_name, event.returncode, context.is_shutdown)
    if reason is not None:
        raise RuntimeError(reason)


def _collector_nodes(context: LaunchContext) -> list:
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in COLLECT_ARGUMENTS}
    params_file = check_params_file(LaunchConfiguration("params_file").perform(context))
    overrides = node_overrides(COLLECT_ARGUMENTS, values)
    shards = parse_all(COLLECT_ARGUMENTS, values)["shards"]
    # The shards split [start_index, start_index + count): from the arguments when given, else from the file.
    start = int(overrides.get("start_index", params_file_value(params_file, "start_index", PARAMETERS["start_index"])))
    count = int(overrides.get("count", params_file_value(params_file, "count", PARAMETERS["count"])))
    ranges = shard_ranges(start, count, shards)
    if not ranges:
        return [LogInfo(msg="collect.launch.py: nothing to do: count is 0")]
    actions: list = []
    for shard, (shard_start, shard_count) in enumerate(ranges):
        node = Node(
            package="data_collector_ros",
            executable="collector",
            name=f"collector_{shard}",
            output="screen",
            parameters=[params_file, {**overrides, "start_index": shard_start, "count": shard_count}],
        )
        actions += [node, RegisterEventHandler(OnProcessExit(target_action=node, on_exit=_fail_if_it_failed))]
    return actions


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("data_collector_ros")
    arguments = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.launch_description)
        for a in COLLECT_ARGUMENTS
    ]
    arguments.append(
        DeclareLaunchArgument(
            "params_file",
            default_value=os.path.join(share, "config", "collector.yaml"),
            description=PARAMS_FILE_DESCRIPTION,
        )
    )
    return LaunchDescription([*arguments, OpaqueFunction(function=_collector_nodes)])
