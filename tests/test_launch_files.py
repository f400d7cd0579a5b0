"""The launch files with the real launch/launch_ros: arguments, nodes, the parameters each node really gets (params
file first, then only the arguments that were given), refused arguments, and a real `LaunchService` run in which a
planner that cannot start stops the launch (and the bridge) with a non-zero exit code.

launch and launch_ros are not installable from PyPI, so on a machine without a ROS install these tests skip with
that reason; on a ROS 2 Jazzy install (or in docker/) they run. The argument rules themselves are unit-tested
without launch_ros in test_launch_arguments.py.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("launch.actions", reason="launch is not installable from PyPI: runs on a ROS 2 Jazzy install")
pytest.importorskip("launch_ros", reason="launch_ros is not installable from PyPI: runs on a ROS 2 Jazzy install")

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription, LaunchDescriptionSource, LaunchService
from launch.actions import (
    DeclareLaunchArgument,
    IncludeLaunchDescription,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
)
from launch_ros.actions import Node

from data_collector_ros.sharding import shard_ranges
from flow_planner_common.launch_arguments import LaunchArgumentError


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


def launched(description: LaunchDescription, **overrides: str) -> tuple[list, LaunchContext]:
    """What the launch file's OpaqueFunction starts for these arguments."""
    context = context_with(description, **overrides)
    opaque = next(e for e in description.entities if isinstance(e, OpaqueFunction))
    return opaque.execute(context), context


def nodes_of(actions: list) -> list[Node]:
    return [a for a in actions if isinstance(a, Node)]


def effective_parameters(node: Node, context: LaunchContext) -> dict[str, object]:
    """The parameters the node process gets: its --params-file arguments applied in order (later ones win)."""
    node._perform_substitutions(context)
    values: dict[str, object] = {}
    for argument, is_file in node._Node__expanded_parameter_arguments:
        assert is_file, argument
        for key, section in yaml.safe_load(Path(argument).read_text()).items():
            name = node.node_name.rsplit("/", 1)[-1]
            if key in ("/**", name, f"/{name}", f"/**/{name}"):
                values.update(section["ros__parameters"])
    return values


def write_params(path: Path, node_key: str, **values: object) -> str:
    path.write_text(yaml.safe_dump({node_key: {"ros__parameters": values}}))
    return str(path)


# -- plan.launch.py ---------------------------------------------------------------------------------------------
def test_plan_launch_declares_arguments_and_nodes() -> None:
    description = load_installed_launch("flow_planner_ros", "plan.launch.py")
    assert arguments(description) == {"checkpoint", "execution_steps", "num_samples", "params_file", "use_sim", "rviz"}
    actions, context = launched(description)
    assert Path(context.launch_configurations["params_file"]).is_file()
    assert [(n.node_package, n.node_executable) for n in nodes_of(actions)] == [("flow_planner_ros", "planner")]
    assert any(isinstance(a, RegisterEventHandler) for a in actions)  # the planner's exit stops the launch
    actions, _ = launched(description, use_sim="true", rviz="true")
    assert [n.node_executable for n in nodes_of(actions)] == ["sim_bridge", "planner", "rviz2"]
    rviz = nodes_of(actions)[-1]
    assert Path(get_package_share_directory("flow_planner_ros"), "config", "flow_planner.rviz").is_file()
    assert rviz is not None


def test_plan_launch_params_file_applies_unless_an_argument_is_given(tmp_path: Path) -> None:
    """Item 1: checkpoint and execution_steps from a custom params file were replaced by the arguments' defaults."""
    description = load_installed_launch("flow_planner_ros", "plan.launch.py")
    params = write_params(tmp_path / "planner.yaml", "flow_planner", checkpoint="/models/mine.safetensors",
                          execution_steps=15, num_samples=4)  # fmt: skip
    actions, context = launched(description, params_file=params)
    got = effective_parameters(nodes_of(actions)[0], context)
    assert (got["checkpoint"], got["execution_steps"], got["num_samples"]) == ("/models/mine.safetensors", 15, 4)
    actions, context = launched(description, params_file=params, execution_steps="30", checkpoint="/other.st")
    got = effective_parameters(nodes_of(actions)[0], context)
    assert (got["checkpoint"], got["execution_steps"], got["num_samples"]) == ("/other.st", 30, 4)
    # The shipped file: its values (not hidden launch defaults) reach the node.
    actions, context = launched(description)
    got = effective_parameters(nodes_of(actions)[0], context)
    assert got["integration_steps"] == 0 and got["execution_steps"] == 60


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"use_sim": "yes"}, "use_sim must be true or false"),
        ({"rviz": "maybe"}, "rviz must be true or false"),
        ({"execution_steps": "0"}, "execution_steps must be in [1, 60]"),
        ({"num_samples": "many"}, "num_samples must be an integer"),
        ({"params_file": "/nonexistent/planner.yaml"}, "params_file /nonexistent/planner.yaml does not exist"),
    ],
)
def test_plan_launch_refuses_bad_arguments_before_starting_anything(overrides: dict, reason: str) -> None:
    """Items 2 and 4: a missing params_file was a warning; bad values must stop the launch with one line."""
    description = load_installed_launch("flow_planner_ros", "plan.launch.py")
    with pytest.raises(LaunchArgumentError) as error:
        launched(description, **overrides)
    assert reason in str(error.value)


def test_a_planner_that_cannot_start_stops_the_launch_and_the_bridge(ros_domain_id: int, tmp_path: Path) -> None:
    """Item 2, with real processes: the bridge kept running and `ros2 launch` exited 0 while the planner exited 1."""
    description = load_installed_launch("flow_planner_ros", "plan.launch.py")
    service = LaunchService()
    arguments = {"checkpoint": str(tmp_path / "missing.safetensors"), "use_sim": "true"}
    service.include_launch_description(
        IncludeLaunchDescription(LaunchDescriptionSource(description), launch_arguments=arguments.items())
    )
    assert os.environ["ROS_DOMAIN_ID"] == str(ros_domain_id)
    started = time.monotonic()
    loop = asyncio.new_event_loop()
    task = loop.create_task(service.run_async())
    try:
        loop.run_until_complete(asyncio.wait([task], timeout=90))
        if not task.done():  # the launch did not stop by itself: stop its processes before failing
            service.shutdown()
            loop.run_until_complete(task)
            pytest.fail("the launch kept running after the planner failed to start")
    finally:
        loop.close()
    assert task.result() != 0, "the launch exited 0 although the planner failed"
    assert time.monotonic() - started < 90


# -- collect.launch.py ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shards", [1, 2, 3])
def test_collect_launch_starts_one_collector_per_shard(shards: int) -> None:
    description = load_installed_launch("data_collector_ros", "collect.launch.py")
    assert arguments(description) == {"output_dir", "start_index", "count", "shards", "record_bag", "params_file"}
    actions, context = launched(description, start_index="10", count="7", shards=str(shards))
    assert Path(context.launch_configurations["params_file"]).is_file()
    nodes = nodes_of(actions)
    assert len(nodes) == len(shard_ranges(10, 7, shards)) == shards
    assert all((n.node_package, n.node_executable) == ("data_collector_ros", "collector") for n in nodes)
    ranges = [(p["start_index"], p["count"]) for p in (effective_parameters(n, context) for n in nodes)]
    assert ranges == shard_ranges(10, 7, shards)


def test_collect_launch_params_file_applies_unless_an_argument_is_given(tmp_path: Path) -> None:
    """Item 1: output_dir, start_index, count and record_bag from the file were replaced by the defaults."""
    description = load_installed_launch("data_collector_ros", "collect.launch.py")
    params = write_params(tmp_path / "collector.yaml", "/**", output_dir="/data/mine", start_index=40, count=6,
                          record_bag=True, grid_nx=4)  # fmt: skip
    actions, context = launched(description, params_file=params, shards="2")
    got = [effective_parameters(n, context) for n in nodes_of(actions)]
    assert [(p["start_index"], p["count"]) for p in got] == [(40, 3), (43, 3)]
    assert all(p["output_dir"] == "/data/mine" and p["record_bag"] is True and p["grid_nx"] == 4 for p in got)
    actions, context = launched(description, params_file=params, shards="1", output_dir="/tmp/x", record_bag="false")
    (got,) = [effective_parameters(n, context) for n in nodes_of(actions)]
    assert (got["output_dir"], got["record_bag"], got["start_index"], got["count"]) == ("/tmp/x", False, 40, 6)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"record_bag": "maybe"}, "record_bag must be true or false, got 'maybe'"),
        ({"count": "-1"}, "count must be >= 0"),
        ({"shards": "0"}, "shards must be >= 1"),
        ({"params_file": "/nonexistent/collector.yaml"}, "does not exist"),
    ],
)
def test_collect_launch_refuses_bad_arguments(overrides: dict, reason: str) -> None:
    description = load_installed_launch("data_collector_ros", "collect.launch.py")
    with pytest.raises(LaunchArgumentError) as error:
        launched(description, **overrides)
    assert reason in str(error.value)


def test_collect_launch_with_count_zero_says_it_does_nothing() -> None:
    description = load_installed_launch("data_collector_ros", "collect.launch.py")
    actions, _ = launched(description, count="0")
    assert nodes_of(actions) == [] and len(actions) == 1 and isinstance(actions[0], LogInfo)
