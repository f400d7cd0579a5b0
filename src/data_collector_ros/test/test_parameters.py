"""The collector's and the MuJoCo bridge's parameters have one source each: the specs declare them (with descriptions,
ranges and read-only flags that `ros2 param describe` shows), the shipped config YAML is generated from them, and
validation refuses what the nodes could not use."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from data_collector_ros.collector_parameters import (
    COLLECTOR_PARAMETERS,
    PARAMETERS,
    collector_yaml,
    config_from_parameters,
)
from data_collector_ros.sim_bridge_parameters import REST_TRAY_POSE, SIM_BRIDGE_PARAMETERS, SPECS, sim_bridge_yaml
from flow_planner_common.parameters import (
    INT64_MAX,
    ParameterError,
    ParameterSpec,
    checked_value,
    parameter_descriptor,
    parameters_yaml,
)

WORKSPACE = Path(__file__).resolve().parents[3]
BRIDGE = WORKSPACE / "install" / "data_collector_ros" / "lib" / "data_collector_ros" / "sim_bridge"
NODES = {"collector": COLLECTOR_PARAMETERS, "sim_bridge": SIM_BRIDGE_PARAMETERS}


@pytest.mark.parametrize(
    ("file", "text", "module", "key", "specs"),
    [
        ("collector.yaml", collector_yaml, "collector_parameters", "/**", COLLECTOR_PARAMETERS),
        ("sim_bridge.yaml", sim_bridge_yaml, "sim_bridge_parameters", "sim_bridge", SIM_BRIDGE_PARAMETERS),
    ],
)
def test_config_yaml_is_generated_from_the_spec(file: str, text, module: str, key: str, specs) -> None:
    shipped = (WORKSPACE / "config" / file).read_text()
    assert shipped == text(), f"config/{file} is stale: python -m data_collector_ros.{module} > config/{file}"
    values = yaml.safe_load(shipped)[key]["ros__parameters"]
    assert list(values) == [spec.name for spec in specs]
    for spec in specs:
        assert values[spec.name] == ([] if spec.default is None else spec.default), spec.name


@pytest.mark.parametrize("node", sorted(NODES))
def test_every_default_passes_its_own_check_and_numbers_have_ranges(node: str) -> None:
    for spec in NODES[node]:
        assert checked_value(spec, spec.default) == spec.default, spec.name
        assert len(spec.description) > 10 and "\n" not in spec.description, spec.name
        if isinstance(spec.default, int | float) and not isinstance(spec.default, bool):
            assert spec.low is not None and spec.low <= spec.default, spec.name
            assert spec.high is None or spec.default <= spec.high, spec.name
        if spec.choices:
            assert spec.default in spec.choices, spec.name


def test_the_collector_reads_everything_at_start_only_and_the_bridge_its_scene_at_reset() -> None:
    assert all(spec.read_only for spec in COLLECTOR_PARAMETERS)
    assert {spec.name: spec.default for spec in COLLECTOR_PARAMETERS} == PARAMETERS
    dynamic = {spec.name for spec in SIM_BRIDGE_PARAMETERS if not spec.read_only}
    assert dynamic == {"tray_pose", "obstacles"}
    assert SPECS["obstacles"].default is None and SPECS["obstacles"].dynamic_typing


def test_the_default_tray_pose_is_the_packaged_scenes_rest_pose() -> None:
    import data_collector_ros  # noqa: F401  (sets MUJOCO_GL before mujoco is imported)
    from data_collector_ros.simulation import Simulation

    assert Simulation().rest_tray_pose.tolist() == REST_TRAY_POSE


def test_the_shipped_collector_values_build_the_default_config() -> None:
    values = yaml.safe_load((WORKSPACE / "config" / "collector.yaml").read_text())["/**"]["ros__parameters"]
    assert config_from_parameters(values) == config_from_parameters({})
    config = config_from_parameters({"scenes": "flat", "count": 0, "workspace_x": [0.4, 0.6], "cell_jitter": 1})
    assert config.family is None and config.count == 0 and config.grid.x_range == (0.4, 0.6)
    assert config.grid.cell_jitter == 1.0


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"count": -1}, "need count >= 0 (got -1)"),
        ({"start_index": -5}, "need start_index >= 0 (got -5)"),
        ({"reset_every": 0}, "need reset_every >= 1 (got 0)"),
        ({"grid_nx": 0}, "grid_nx=0 not in"),
        ({"cem_iterations": 0}, "cem_iterations=0 not in"),
        ({"dt": float("nan")}, "dt=nan not in"),
        ({"joint_states_rate": -1.0}, "joint_states_rate=-1.0 not in"),
        ({"cell_jitter": 1.5}, "cell_jitter=1.5 not in"),
        ({"count": 2.5}, "count must be an integer"),
        ({"record_bag": "yes"}, "record_bag must be true or false"),
        ({"scenes": "maze"}, "scenes must be one of family, flat, got 'maze'"),
        ({"output_dir": " "}, "output_dir must not be empty"),
        ({"workspace_x": [0.4]}, "workspace_x must be [min, max]"),
        ({"no_such_parameter": 1}, "unknown collector parameter(s): no_such_parameter"),
        ({"templates": []}, "templates must be a non-empty list of empty, barrier"),
        ({"templates": ["bar", "maze"]}, "templates must be a non-empty list"),
        ({"templates": "bar"}, "templates must be a non-empty list"),
    ],
)
def test_bad_collector_values_are_refused_with_the_parameter_named(values: dict, problem: str) -> None:
    with pytest.raises(ParameterError) as refused:
        config_from_parameters(values)
    assert problem in str(refused.value) and "\n" not in str(refused.value)


def test_a_templates_subset_collects_only_those_scenes() -> None:
    from data_collector_ros.scene_family import template_of

    family = config_from_parameters({"templates": ["bar"]}).family
    assert family.templates == ("bar",)
    assert {template_of(family, i) for i in range(100_000, 100_050)} == {"bar"}
    default = config_from_parameters({}).family
    assert {template_of(default, i) for i in range(200)} == set(default.templates)


def test_rules_across_parameters_still_apply_after_the_checks() -> None:
    with pytest.raises(ValueError, match="num_elites <= num_candidates"):
        config_from_parameters({"cem_candidates": 4, "cem_elites": 5})
    with pytest.raises(ValueError, match="workspace x range"):
        config_from_parameters({"workspace_x": [0.6, 0.4]})


def test_a_range_without_upper_limit() -> None:
    """`high=None`: at least `low`; its ROS range ends at the largest int64 (or inf), its YAML comment at inf."""
    count, rate = ParameterSpec("count", 3, "how many of them", 0), ParameterSpec("rate", 1.0, "how often", 0.5)
    assert checked_value(count, 10**12) == 10**12 and checked_value(rate, 2) == 2.0
    with pytest.raises(ParameterError, match=r"need rate >= 0.5 \(got inf\)"):
        checked_value(rate, float("inf"))
    (integers,) = parameter_descriptor(count).integer_range
    assert (integers.from_value, integers.to_value, integers.step) == (0, INT64_MAX, 1)
    (floats,) = parameter_descriptor(rate).floating_point_range
    assert (floats.from_value, floats.to_value) == (0.5, float("inf"))
    assert "    # how many of them [0, inf)\n    count: 3\n" in parameters_yaml("n", [count], [])


# --------------------------------------------------------------------------------------------- over real DDS
class ParameterClient:
    """A node in its own context, spun in a background thread, that calls another node's parameter services."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("parameters_test_client", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def call(self, srv_type, service: str, request, why_not):
        """`request` (safe to repeat) until it is answered."""
        from flow_planner_common.service_calls import call_until_answered

        return call_until_answered(self.node.create_client(srv_type, service), request, 60.0, why_not=why_not)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()
        self.thread.join(timeout=5.0)


def test_ros2_param_describe_shows_the_specs_and_set_honours_them(ros_domain_id: int, tmp_path: Path) -> None:
    """What `ros2 param describe` / `ros2 param set` see on a running sim_bridge, through its parameter services."""
    from rcl_interfaces.msg import Parameter as ParameterMsg
    from rcl_interfaces.msg import ParameterType, ParameterValue
    from rcl_interfaces.srv import DescribeParameters, GetParameters, SetParameters

    assert BRIDGE.exists(), f"{BRIDGE} missing: colcon build the workspace first"
    log_path = tmp_path / "bridge.log"
    with open(log_path, "w+") as log:
        bridge = subprocess.Popen([str(BRIDGE), "--ros-args", "-p", "real_time_factor:=2.0"], stdout=log,
                                  stderr=subprocess.STDOUT, env=os.environ)  # fmt: skip
        client = ParameterClient(ros_domain_id)
        try:
            exited = lambda: f"it exited:\n{log_path.read_text()}" if bridge.poll() is not None else None  # noqa: E731

            def call(srv_type, name: str, request):
                return client.call(srv_type, f"/sim_bridge/{name}", request, exited)

            names = [spec.name for spec in SIM_BRIDGE_PARAMETERS]
            described = call(DescribeParameters, "describe_parameters", DescribeParameters.Request(names=names))
            for spec, descriptor in zip(SIM_BRIDGE_PARAMETERS, described.descriptors, strict=True):
                assert descriptor.name == spec.name and descriptor.description == spec.description, spec.name
                assert descriptor.read_only == spec.read_only, spec.name
                assert descriptor.dynamic_typing == spec.dynamic_typing, spec.name
                ranges = [*descriptor.integer_range, *descriptor.floating_point_range]
                if spec.low is None:
                    assert ranges == [], spec.name
                else:
                    assert [(r.from_value, r.to_value) for r in ranges] == [(spec.low, spec.high)], spec.name
            margin = described.descriptors[names.index("implied_speed_margin")]
            assert margin.floating_point_range[0].to_value == 1.0 and margin.read_only

            def set_parameter(name: str, value: ParameterValue):
                request = SetParameters.Request(parameters=[ParameterMsg(name=name, value=value)])
                return call(SetParameters, "set_parameters", request).results[0]

            def double(x: float) -> ParameterValue:
                return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=x)

            assert not set_parameter("grasp_tolerance", double(0.03)).successful  # read-only
            assert not set_parameter("real_time_factor", double(1.0)).successful  # read-only
            # `ros2 param set /sim_bridge obstacles "[]"` sends an empty bool array: dynamic typing accepts it
            empty = ParameterValue(type=ParameterType.PARAMETER_BOOL_ARRAY, bool_array_value=[])
            assert set_parameter("obstacles", empty).successful
            pose = [0.45, 0.05, 0.76, 1.0, 0.0, 0.0, 0.0]
            tray = ParameterValue(type=ParameterType.PARAMETER_DOUBLE_ARRAY, double_array_value=pose)
            assert set_parameter("tray_pose", tray).successful
            got = call(GetParameters, "get_parameters", GetParameters.Request(names=["grasp_tolerance", "tray_pose"]))
            assert got.values[0].double_value == 0.02 and list(got.values[1].double_array_value) == pose
        finally:
            client.close()
            bridge.send_signal(signal.SIGINT)
            try:
                bridge.wait(timeout=10)
            except subprocess.TimeoutExpired:
                bridge.kill()


def test_the_collector_declares_its_specs(ros_domain_id: int) -> None:
    """The collector node (in this process) declares every spec with its descriptor; a start value out of range is
    refused with the spec's one-line reason."""
    import rclpy
    from rclpy.parameter import Parameter

    from data_collector_ros.collector_node import CollectorNode

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    try:
        node = CollectorNode(context=context)
        try:
            for spec in COLLECTOR_PARAMETERS:
                descriptor = node.describe_parameter(spec.name)
                assert descriptor.description == spec.description and descriptor.read_only, spec.name
                assert node.params[spec.name] == spec.default, spec.name
            (count,) = node.describe_parameter("count").integer_range
            assert (count.from_value, count.to_value) == (0, INT64_MAX)
        finally:
            node.destroy_node()
        with pytest.raises(ParameterError, match=r"^need count >= 0 \(got -1\)$"):
            CollectorNode(context=context, parameter_overrides=[Parameter("count", value=-1)])
    finally:
        rclpy.shutdown(context=context)
