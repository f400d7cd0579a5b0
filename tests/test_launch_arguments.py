"""The launch files' argument handling, without launch_ros: overrides only when given, strict booleans and
integers, a params file that must exist, a failed required process failing the launch."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_collector_ros.collector_node import COLLECT_ARGUMENTS
from data_collector_ros.collector_parameters import PARAMETERS
from flow_planner_common.launch_arguments import (
    NOT_GIVEN,
    LaunchArgumentError,
    check_params_file,
    exit_failure,
    node_overrides,
    params_file_value,
    parse_all,
    parse_bool,
    parse_int,
)
from flow_planner_ros.node.launch_arguments import PLAN_ARGUMENTS, PLANNER_OVERRIDES
from flow_planner_ros.node.planner_settings import SPECS

WORKSPACE = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("text", "value"), [("true", True), ("True", True), ("1", True), ("false", False),
                                              ("FALSE", False), ("0", False)])  # fmt: skip
def test_booleans_are_what_launch_conditions_accept(text: str, value: bool) -> None:
    assert parse_bool("record_bag", text) is value


@pytest.mark.parametrize("text", ["maybe", "yes", "no", "", "2", "on"])
def test_other_boolean_words_are_refused_naming_the_argument(text: str) -> None:
    with pytest.raises(LaunchArgumentError, match=r"^record_bag must be true or false"):
        parse_bool("record_bag", text)


def test_integers_are_checked_against_their_range() -> None:
    assert parse_int("count", " 7 ", low=0) == 7
    with pytest.raises(LaunchArgumentError, match=r"count must be an integer, got '7\.5'"):
        parse_int("count", "7.5", low=0)
    with pytest.raises(LaunchArgumentError, match="count must be >= 0, got -1"):
        parse_int("count", "-1", low=0)
    with pytest.raises(LaunchArgumentError, match=r"execution_steps must be in \[1, 60\], got 61"):
        node_overrides(PLANNER_OVERRIDES, {"execution_steps": "61"})


def test_planner_arguments_override_the_params_file_only_when_given() -> None:
    assert all(a.default == NOT_GIVEN for a in PLANNER_OVERRIDES)
    assert node_overrides(PLANNER_OVERRIDES, {}) == {}
    assert node_overrides(PLANNER_OVERRIDES, {"checkpoint": "", "execution_steps": "", "num_samples": ""}) == {}
    given = node_overrides(PLANNER_OVERRIDES, {"checkpoint": "/x.safetensors", "execution_steps": "15"})
    assert given == {"checkpoint": "/x.safetensors", "execution_steps": 15}
    # Descriptions and ranges come from the planner's parameter spec (one definition).
    steps = next(a for a in PLANNER_OVERRIDES if a.name == "execution_steps")
    assert (steps.low, steps.high) == (SPECS["execution_steps"].low, SPECS["execution_steps"].high)
    assert SPECS["execution_steps"].description in steps.launch_description


def test_plan_launch_flags_are_strict_booleans() -> None:
    flags = [a for a in PLAN_ARGUMENTS if not a.parameter]
    assert parse_all(flags, {}) == {"use_sim": False, "rviz": False}
    assert parse_all(flags, {"use_sim": "true"})["use_sim"] is True
    with pytest.raises(LaunchArgumentError, match="use_sim must be true or false, got 'yes'"):
        parse_all(flags, {"use_sim": "yes"})


def test_collector_arguments_override_the_params_file_only_when_given() -> None:
    names = {a.name for a in COLLECT_ARGUMENTS if a.parameter}
    assert names == {"output_dir", "start_index", "count", "record_bag"} and names <= set(PARAMETERS)
    assert node_overrides(COLLECT_ARGUMENTS, {"shards": "3"}) == {}
    given = node_overrides(COLLECT_ARGUMENTS, {"output_dir": "/data", "count": "0", "record_bag": "True"})
    assert given == {"output_dir": "/data", "count": 0, "record_bag": True}
    with pytest.raises(LaunchArgumentError, match="record_bag must be true or false, got 'maybe'"):
        node_overrides(COLLECT_ARGUMENTS, {"record_bag": "maybe"})
    with pytest.raises(LaunchArgumentError, match="shards must be >= 1, got 0"):
        parse_all(COLLECT_ARGUMENTS, {"shards": "0"})


def test_a_params_file_must_exist_and_its_values_are_read(tmp_path: Path) -> None:
    with pytest.raises(LaunchArgumentError, match=r"params_file .*missing\.yaml does not exist"):
        check_params_file(str(tmp_path / "missing.yaml"))
    with pytest.raises(LaunchArgumentError, match="params_file must not be empty"):
        check_params_file(" ")
    broken = tmp_path / "broken.yaml"
    broken.write_text("flow_planner:\n  ros__parameters:\n    num_samples: [1, 2\n")
    with pytest.raises(LaunchArgumentError, match=r"params_file .*broken\.yaml: not valid YAML") as refused:
        check_params_file(str(broken))
    assert "\n" not in str(refused.value)
    path = tmp_path / "collector.yaml"
    path.write_text("/**:\n  ros__parameters:\n    count: 12\n    output_dir: /data/x\n")
    assert check_params_file(str(path)) == str(path)
    assert params_file_value(str(path), "count", 100) == 12
    assert params_file_value(str(path), "start_index", 0) == 0
    shipped = str(WORKSPACE / "config" / "collector.yaml")
    assert params_file_value(shipped, "count", None) == PARAMETERS["count"]


def test_a_required_process_that_fails_fails_the_launch() -> None:
    assert exit_failure("planner-1", 1, shutting_down=False) == "planner-1 exited with code 1; stopping the launch"
    assert exit_failure("planner-1", 0, shutting_down=False) is None
    assert exit_failure("planner-1", -2, shutting_down=True) is None  # Ctrl-C'd by the launch itself
