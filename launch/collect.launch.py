"""Collect expert trajectories with N collector processes on disjoint shards of the tray grid.

    ros2 launch data_collector_ros collect.launch.py output_dir:=DIR [start_index:=0] [count:=100]
        [shards:=2] [record_bag:=false] [params_file:=YAML]
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from data_collector_ros.sharding import shard_ranges


def _collector_nodes(context: LaunchContext) -> list[Node]:
    def value(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    ranges = shard_ranges(int(value("start_index")), int(value("count")), int(value("shards")))
    record_bag = value("record_bag").lower() in ("1", "true", "yes")
    return [
        Node(
            package="data_collector_ros",
            executable="collector",
            name=f"collector_{shard}",
            output="screen",
            parameters=[
                value("params_file"),
                {
                    "output_dir": value("output_dir"),
                    "start_index": start,
                    "count": count,
                    "record_bag": record_bag,
                },
            ],
        )
        for shard, (start, count) in enumerate(ranges)
    ]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("data_collector_ros")
    return LaunchDescription(
        [
            DeclareLaunchArgument("output_dir", default_value="data/expert", description="Where .npz files go."),
            DeclareLaunchArgument("start_index", default_value="0", description="First grid index."),
            DeclareLaunchArgument("count", default_value="100", description="Grid indices to collect in all."),
            DeclareLaunchArgument("shards", default_value="2", description="Collector processes (disjoint shards)."),
            DeclareLaunchArgument("record_bag", default_value="false", description="Record a rosbag2 per episode."),
            DeclareLaunchArgument(
                "params_file",
                default_value=os.path.join(share, "config", "collector.yaml"),
                description="Collector parameters (YAML).",
            ),
            OpaqueFunction(function=_collector_nodes),
        ]
    )
