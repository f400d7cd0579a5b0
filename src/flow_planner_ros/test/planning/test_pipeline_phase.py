"""The planning pipeline tells a phase-conditioned model which phase it plans: carrying the tray (a request with
carrying_tray, i.e. a scene with a grasp) is the carry, anything else the reach (a phase model refuses to sample
without it). Real short training."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flow_planner_common.kinematics import ArmKinematics
from flow_planner_common.plan_scene import PlanScene
from flow_planner_common.robot import HOME_POSITIONS, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, NUM_JOINTS
from flow_planner_ros.planning.request import PlanRequest
from flow_planner_ros.planning.trajectory_safety import SafetyLimits

TRAY_POSE = np.array([0.45, 0.134, 1.1179, 1.0, 0.0, 0.0, 0.0])  # centred between the tools at HOME, clear of the arms


def test_a_phase_model_plans_reach_and_carry_apart(synthetic_path: Path, tmp_path: Path) -> None:
    from flow_planner_ros.learning.flow_sampler import FlowSampler
    from flow_planner_ros.learning.training import train
    from flow_planner_ros.learning.training_config import load_config
    from flow_planner_ros.planning.pipeline import PlanningPipeline

    overrides = {"conditioning": {"use_phase": True}, "training": {"epochs": 1, "warmup_steps": 5}}
    out = tmp_path / "phase.safetensors"
    train(synthetic_path, load_config(None, overrides), out, progress_bar=False, log=lambda *_: None)
    sampler = FlowSampler.from_checkpoint(out, num_threads=1)
    assert sampler.checkpoint.use_phase
    limits = SafetyLimits.from_arrays(JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS)
    pipeline = PlanningPipeline(sampler, limits, refine_iterations=0, max_projection_change=10.0)
    goal = HOME_POSITIONS + np.tile([0.05, 0.05, -0.05, 0.0, 0.0, 0.0], 2)  # pan and lift, the tray stays level
    request = PlanRequest(HOME_POSITIONS, np.zeros(NUM_JOINTS), goal, 4, 5, 3, False)
    grasp = ArmKinematics().grasp_from_start(HOME_POSITIONS, TRAY_POSE)
    carry = PlanScene.from_boxes([], grasp)
    results = {name: pipeline.plan(request, scene=scene) for name, scene in (("reach", PlanScene.from_boxes([])),
                                                                               ("carry", carry))}  # fmt: skip
    for name, result in results.items():
        assert not result.problem and result.selection.num_valid + len(result.selection.rejections) > 0, name
