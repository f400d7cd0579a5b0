"""The planner node's RRTConnect fallback over real DDS, with the shipped checkpoint: the barrier carry that every
sample and refined candidate fails (seed 0; with a weaker refinement than the default, as in test_fallback.py:
hold_grip off and 3 iterations, since the default refinement plans this carry itself) is refused with
fallback_planner none (the default) and planned, by the fallback, once `fallback_planner` is set to rrt while the
node runs; its trajectory is a valid 60-point plan.

The fixtures (start_process, client) are conftest.py's; nothing is trained here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters

from flow_planner_common.ros_messages import obstacle_array, pose_stamped
from flow_planner_common.service_calls import call_until_answered


def _load(name: str, folder: Path = Path(__file__).parent):
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_dds = _load("test_planner_node_dds")
scenes = _load("scenes_for_tests", Path(__file__).parents[1])


def set_string(client, name: str, value: str) -> bool:
    parameter = ParameterMsg(name=name, value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value))
    request = SetParameters.Request(parameters=[parameter])
    service = client.node.create_client(SetParameters, "/flow_planner/set_parameters")
    return call_until_answered(service, request, 30.0).results[0].successful


def test_the_fallback_plans_the_carry_the_model_cannot(start_process, client) -> None:
    planner = start_process(_dds.PLANNER, "-p", "fallback_time_limit:=5.0", "-p", "hold_grip:=false",
                            "-p", "refine_iterations:=3")  # fmt: skip
    client.wait_for_service(planner)
    carry = {
        "start_positions": list(scenes.BARRIER_REACH), "goal_positions": list(scenes.BARRIER_CARRY),
        "num_samples": 8, "seed": 0,
        "carrying_tray": True, "tray_pose": pose_stamped(scenes.BARRIER_TRAY, "world").pose,
        "obstacles": list(obstacle_array([scenes.BARRIER], "world").obstacles),
    }  # fmt: skip
    refused = client.plan(**carry)
    assert not refused.success and "nor among" in refused.message and "tray_obstacle" in refused.message, (
        refused.message
    )
    assert not set_string(client, "fallback_planner", "prm")  # not a choice
    assert set_string(client, "fallback_planner", "rrt")
    response = client.plan(**carry)
    assert response.success, response.message
    assert response.message.startswith("ok by the fallback: ") and "carry by RRTConnect" in response.message
    _dds.assert_valid_trajectory(response.trajectory)
    last = np.array(response.trajectory.points[-1].positions)
    np.testing.assert_allclose(last, scenes.BARRIER_CARRY, atol=1e-6)
    assert response.num_valid_candidates == 1 and planner.popen.poll() is None
