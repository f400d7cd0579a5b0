"""The launch files parse with the real launch/launch_ros and yield the expected arguments and nodes.

launch and launch_ros are not installable from PyPI, so on a machine without a ROS install these tests
skip with that reason; on a ROS 2 Jazzy install (or in docker/) they run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("launch.actions", reason="launch is not installable from PyPI: runs on a ROS 2 Jazzy install")
pytest.importorskip("launch_ros", reason="launch_ros is not installable from PyPI: runs on a ROS 2 Jazzy install")

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

from data_collector_ros.sharding import shard_ranges


def load_installed_launch(package: str, file_name: str) -> LaunchDescription:
    """Import the launch file from the package's share dir (as `ros2 launch` resolves it)."""
    path = Path(get_package_share_directory(package)) / "launch" / file_name
    assert path.is_file(), f"{path} not installed"
    spec = importlib.util.spec_from_file_location(file_name.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def context_with(description: LaunchDescription, **overrides: str) -> LaunchContext:
    """A launch context with every declared argument set to its default, then the overrides."""
    context = LaunchContext()
    for entity in description.entities:
        if isinstance(entity, DeclareLaunchArgument):
            entity.visit(context)
    context.launch_configurations.update(overrides)
    return context


def arguments(description: LaunchDescription) -> set[str]:
    return {e.name for e in description.entities if isinstance(e, DeclareLaunchArgument)}


def test_plan_launch_declares_arguments_and_nodes() -> None:
    description = load_installed_launch("flow_planner_ros", "plan.launch.py")
    assert arguments(description) == {"checkpoint", "execution_steps", "params_file", "use_sim"}
    nodes = [e for e in description.entities if isinstance(e, Node)]
    assert {(n.node_package, n.node_executable) for n in nodes} == {
        ("flow_planner_ros", "planner"),
        ("data_collector_ros", "sim_bridge"),
    }
    defaults = context_with(description)
    assert Path(defaults.launch_configurations["params_file"]).is_file()
    bridge = next(n for n in nodes if n.node_executable == "sim_bridge")
    assert bridge.condition.evaluate(defaults) is False
    assert bridge.condition.evaluate(context_with(description, use_sim="true")) is True


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_collect_launch_starts_one_collector_per_shard(shards: int) -> None:
    description = load_installed_launch("data_collector_ros", "collect.launch.py")
    assert arguments(description) == {"output_dir", "start_index", "count", "shards", "record_bag", "params_file"}
    context = context_with(description, start_index="10", count="7", shards=str(shards))
    assert Path(context.launch_configurations["params_file"]).is_file()
    opaque = next(e for e in description.entities if isinstance(e, OpaqueFunction))
    nodes = opaque.execute(context)
    assert len(nodes) == len(shard_ranges(10, 7, shards)) == shards
    assert all((n.node_package, n.node_executable) == ("data_collector_ros", "collector") for n in nodes)
