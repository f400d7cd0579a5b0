"""The planner's parameters have one source: the spec declares them, config/planner.yaml is generated from it,
and validation refuses what the node could not use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from flow_planner_common.robot import JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS
from flow_planner_ros.node.planner_settings import (
    PLANNER_PARAMETERS,
    SPECS,
    PlannerSettings,
    SettingsError,
    planner_yaml,
)
from flow_planner_ros.planning.request import RequestPolicy

WORKSPACE = Path(__file__).resolve().parents[4]


def test_config_yaml_is_generated_from_the_spec() -> None:
    text = (WORKSPACE / "config" / "planner.yaml").read_text()
    assert text == planner_yaml(), "config/planner.yaml is stale: python -m flow_planner_ros.node.planner_settings"
    values = yaml.safe_load(text)["flow_planner"]["ros__parameters"]
    assert set(values) == set(SPECS)
    settings = PlannerSettings.from_values(values)
    assert settings.integration_steps == SPECS["integration_steps"].default


def test_integration_steps_zero_means_the_checkpoints_own() -> None:
    """The shipped default 0 plans with the Euler steps the checkpoint was tuned for; a number overrides them."""
    assert SPECS["integration_steps"].default == 0
    assert RequestPolicy.from_settings(PlannerSettings.from_values({}), 2).default_integration_steps == 2
    chosen = PlannerSettings.from_values({"integration_steps": 7})
    assert RequestPolicy.from_settings(chosen, 2).default_integration_steps == 7


def test_every_parameter_is_described_and_numbers_have_ranges() -> None:
    for spec in PLANNER_PARAMETERS:
        assert len(spec.description) > 10, spec.name
        if isinstance(spec.default, int | float) and not isinstance(spec.default, bool):
            assert spec.low is not None and spec.low <= spec.default <= spec.high, spec.name


def test_defaults_resolve_the_robot_limits() -> None:
    settings = PlannerSettings.from_values({})
    np.testing.assert_array_equal(settings.position_limits, JOINT_POSITION_LIMITS)
    np.testing.assert_array_equal(settings.velocity_limits, JOINT_VELOCITY_LIMITS)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"execution_steps": 0}, "execution_steps=0 not in"),
        ({"execution_steps": 61}, "execution_steps=61 not in"),
        ({"goal_tolerance": float("nan")}, "goal_tolerance=nan not in"),
        ({"num_samples": 2.5}, "num_samples must be an integer"),
        ({"num_samples": True}, "num_samples must be a number"),
        ({"backend": "tensorrt"}, "backend must be one of onnx, torch"),
        ({"device": "tpu"}, "device must be cpu, cuda or cuda:N"),
        ({"num_samples": 100, "max_num_samples": 64}, "num_samples must not exceed max_num_samples"),
        ({"velocity_limits": [1.0] * 11}, "velocity_limits must hold 12 finite values"),
        ({"velocity_limits": [0.0] * 12}, "velocity limits must be > 0"),
        ({"joint_names": ["a"] * 12}, "12 distinct joints"),
        ({"no_such_parameter": 1}, "unknown parameter(s): no_such_parameter"),
    ],
)
def test_bad_values_are_refused_with_the_parameter_named(values: dict, problem: str) -> None:
    with pytest.raises(SettingsError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        PlannerSettings.from_values(values)


def test_dynamic_updates_are_validated_and_read_only_ones_refused() -> None:
    settings = PlannerSettings.from_values({})
    updated = settings.updated({"num_samples": 16, "goal_tolerance": 0.01})
    assert updated.num_samples == 16 and updated.goal_tolerance == 0.01 and settings.num_samples == 8
    with pytest.raises(SettingsError, match="read-only parameter"):
        settings.updated({"checkpoint": "/tmp/other.safetensors"})
    with pytest.raises(SettingsError, match="max_replans"):
        settings.updated({"max_replans": -1})
