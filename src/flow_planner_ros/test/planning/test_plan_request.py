"""Request validation: every malformed request is refused with a reason naming the problem."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flow_planner_common.robot import JOINT_NAMES, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, NUM_JOINTS
from flow_planner_ros.planning.request import (
    JointStateSample,
    PlanRequestError,
    RequestFields,
    RequestPolicy,
    validate_plan_request,
)

GOAL = [0.1 * i for i in range(NUM_JOINTS)]


def validate(**overrides):
    request = dict(
        start_positions=[0.0] * NUM_JOINTS,
        start_velocities=[],
        joint_names=[],
        goal_positions=GOAL,
        num_samples=0,
        integration_steps=0,
        seed=-1,
        execute=False,
        position_limits=JOINT_POSITION_LIMITS,
        velocity_limits=JOINT_VELOCITY_LIMITS,
        latest_state=None,
        now=100.0,
        max_state_age=0.5,
        default_num_samples=8,
        default_integration_steps=10,
        max_num_samples=64,
        max_integration_steps=100,
    )
    request.update(overrides)
    fields = RequestFields(**{k: request.pop(k) for k in RequestFields.__dataclass_fields__ if k in request})
    latest_state, now = request.pop("latest_state"), request.pop("now")
    return validate_plan_request(fields, RequestPolicy(**request), latest_state, now)


def test_defaults_and_reordering() -> None:
    names = list(reversed(JOINT_NAMES))
    request = validate(joint_names=names, goal_positions=list(reversed(GOAL)), seed=7)
    np.testing.assert_allclose(request.goal_positions, GOAL)
    assert (request.num_samples, request.integration_steps, request.seed) == (8, 10, 7)
    np.testing.assert_array_equal(request.start_velocities, np.zeros(NUM_JOINTS))
    assert validate(seed=-3).seed is None


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"goal_positions": GOAL[:11]}, "goal_positions has 11 values"),
        ({"goal_positions": [*GOAL[:11], math.nan]}, "goal_positions is not finite"),
        ({"start_positions": [math.inf] + [0.0] * 11}, "start_positions is not finite"),
        ({"joint_names": ["elbow", *JOINT_NAMES[1:]]}, "unknown joint name"),
        ({"joint_names": [JOINT_NAMES[0], *JOINT_NAMES[:-1]]}, "duplicated joint name"),
        ({"joint_names": list(JOINT_NAMES[:6])}, "must name all 12 joints"),
        ({"goal_positions": [*GOAL[:2], 4.0, *GOAL[3:]]}, "goal_positions beyond limits: left_elbow_joint"),
        ({"start_positions": [], "start_velocities": []}, "no /joint_states received yet"),
        ({"start_positions": [], "start_velocities": [0.0] * 12}, "start_positions has 0 values"),
        ({"start_velocities": [10.0] * 12}, "start_velocities beyond limits"),
        ({"num_samples": 1000}, "num_samples 1000 not in"),
        ({"integration_steps": 1000}, "integration_steps 1000 not in"),
    ],
)
def test_malformed_requests_are_refused(overrides: dict, reason: str) -> None:
    with pytest.raises(PlanRequestError, match=reason):
        validate(**overrides)


def test_start_from_joint_states_must_be_fresh() -> None:
    state = JointStateSample(np.full(NUM_JOINTS, 0.2), np.full(NUM_JOINTS, 0.01), stamp=99.8)
    request = validate(start_positions=[], latest_state=state)
    np.testing.assert_array_equal(request.start_positions, state.positions)
    np.testing.assert_array_equal(request.start_velocities, state.velocities)
    with pytest.raises(PlanRequestError, match="stale"):
        validate(start_positions=[], latest_state=state, now=101.0)


def test_messages_stay_short_whatever_the_values() -> None:
    """Found by the fuzz test: 1e300 on every joint made a 4 kB reply."""
    for field in ("goal_positions", "start_positions", "start_velocities"):
        with pytest.raises(PlanRequestError) as info:
            validate(**{field: [1e300] * NUM_JOINTS})
        assert "beyond limits" in str(info.value) and "and 8 more" in str(info.value)
        assert len(str(info.value)) < 400
