"""The pipeline's fallback planner (fallback_planner rrt): a carry that every sample and every refined candidate of
the shipped model fails (the tray would touch the barrier; with a weaker refinement than the node's default:
hold_grip off, so it searches both arms without the grip, and 3 iterations) is planned by OMPL RRTConnect, and its
plan passes the same checks; without the fallback, or when the fallback fails too, the request fails with both
accounts. With the default refinement (hold_grip: it searches the left arm and scores the held carries) the learned
planner plans the same carry itself."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from flow_planner_common.kinematics import ArmKinematics
from flow_planner_common.plan_scene import PlanScene
from flow_planner_common.robot import JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, NUM_JOINTS
from flow_planner_ros.planning import refinement
from flow_planner_ros.planning.pipeline import PlanningPipeline
from flow_planner_ros.planning.request import PlanRequest
from flow_planner_ros.planning.trajectory_safety import SafetyLimits, check_candidates

_spec = importlib.util.spec_from_file_location("scenes_for_tests", Path(__file__).parents[1] / "scenes_for_tests.py")
scenes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scenes)

ZERO = np.zeros(NUM_JOINTS)
LIMITS = SafetyLimits.from_arrays(JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS)
CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "default.safetensors"
#: The barrier carry with this seed: all 8 samples and all refined candidates of the shipped model touch the wall.
SEED = 0


@pytest.fixture(scope="module")
def pipeline() -> PlanningPipeline:
    from flow_planner_ros.learning.flow_sampler import FlowSampler

    sampler = FlowSampler.from_checkpoint(CHECKPOINT, backend="onnx", num_threads=1)
    return PlanningPipeline(sampler, LIMITS, fallback_time_limit=5.0, hold_grip=False, refine_iterations=3)


@pytest.fixture(scope="module")
def barrier_carry() -> tuple[PlanRequest, PlanScene]:
    grasp = ArmKinematics().grasp_from_start(scenes.BARRIER_REACH, scenes.BARRIER_TRAY)
    request = PlanRequest(scenes.BARRIER_REACH, ZERO, scenes.BARRIER_CARRY, 8, 0, SEED, False)
    return request, PlanScene.from_boxes([scenes.BARRIER], grasp)


def test_rrt_plans_what_no_sample_or_refined_candidate_could(pipeline: PlanningPipeline, barrier_carry) -> None:
    request, scene = barrier_carry
    pipeline.configure(fallback_planner="none")
    learned = pipeline.plan(request, scene=scene)
    # the precondition: the learned planner alone fails here (samples and refined candidates hit the barrier)
    assert not learned.success and learned.refined, learned.message()
    assert "nor among" in learned.message() and "tray_obstacle" in learned.message()
    assert not learned.fallback

    pipeline.configure(fallback_planner="rrt")
    try:
        result = pipeline.plan(request, scene=scene)
    finally:
        pipeline.configure(fallback_planner="none")
    assert result.success, result.message()
    message = result.message()
    assert message.startswith("ok by the fallback: " + learned.message()), message
    assert "carry by RRTConnect" in result.fallback
    assert result.positions.shape == (60, NUM_JOINTS) and result.selection.num_valid == 1
    # the same checks as every flow candidate: clearance (sweep and grip included) and limits
    check = pipeline.safety.check(result.positions[None], request.start_positions, request.goal_positions, scene)
    assert check.passed[0], check.reasons(0)
    limits = check_candidates(result.positions[None], result.velocities[None], request.start_positions,
                              pipeline.dt, LIMITS)  # fmt: skip
    assert limits == [[]]
    assert np.allclose(result.positions[-1], request.goal_positions, atol=1e-6)


@pytest.mark.parametrize("seed", [SEED, 1])
def test_the_grip_held_refinement_plans_the_carry_itself(pipeline: PlanningPipeline, barrier_carry, seed) -> None:
    request, scene = barrier_carry
    pipeline.configure(hold_grip=True, refine_iterations=refinement.DEFAULT_ITERATIONS)
    try:
        result = pipeline.plan(replace(request, seed=seed), scene=scene)
    finally:
        pipeline.configure(hold_grip=False, refine_iterations=3)
    assert result.success and result.refined and not result.fallback, result.message()
    assert result.message().startswith("ok after refinement: no safe sample among 8 (8x tray_obstacle")
    check = pipeline.safety.check(result.positions[None], request.start_positions, request.goal_positions, scene)
    assert check.passed[0], check.reasons(0)
    grip = check.grip_change
    assert grip is not None and grip.max() < 1e-3  # held: the right tool keeps its place on the tray


def test_a_failing_fallback_adds_its_reason(pipeline: PlanningPipeline, barrier_carry) -> None:
    request, scene = barrier_carry
    pipeline.configure(fallback_planner="rrt", fallback_time_limit=1e-4)
    try:
        result = pipeline.plan(request, scene=scene)
    finally:
        pipeline.configure(fallback_planner="none", fallback_time_limit=5.0)
    assert not result.success
    assert "; fallback: no carry plan" in result.message() and "time limit" in result.message(), result.message()
    with pytest.raises(ValueError, match="fallback_planner must be one of none, rrt"):
        pipeline.configure(fallback_planner="prm")
