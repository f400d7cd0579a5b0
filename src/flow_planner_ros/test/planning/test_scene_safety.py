"""Scene safety and refinement (ROS-free) with the real kinematic checker, on held-out scenes of the family, and the
planning pipeline with the shipped (scene-blind) checkpoint: it never returns a colliding plan, refines when the
samples collide, and says so."""

from __future__ import annotations

import importlib.util
import math
import time
from pathlib import Path

import numpy as np
import pytest
from shape_msgs.msg import SolidPrimitive

from flow_planner_common.motion import reference_trajectory
from flow_planner_common.obstacles import Box, ObstacleError
from flow_planner_common.plan_scene import EMPTY_SCENE, PlanScene, SceneError, merge_boxes, validated_tray_pose
from flow_planner_common.quaternion import QUATERNION_NORM_TOLERANCE
from flow_planner_common.robot import DEFAULT_DT, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, NUM_JOINTS
from flow_planner_common.scene_safety import SceneBatch, SceneSafety
from flow_planner_ros.planning.refinement import Refiner
from flow_planner_ros.planning.request import PlanRequest
from flow_planner_ros.planning.trajectory_safety import SafetyLimits

_spec = importlib.util.spec_from_file_location("scenes_for_tests", Path(__file__).parents[1] / "scenes_for_tests.py")
scenes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scenes)

ZERO = np.zeros(NUM_JOINTS)
LIMITS = SafetyLimits.from_arrays(JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS)
CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "default.safetensors"


def straight(start: np.ndarray, goal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return reference_trajectory(start, ZERO, goal, DEFAULT_DT)


@pytest.fixture(scope="module")
def safety() -> SceneSafety:
    return SceneSafety(0.01)


def test_a_motion_through_a_box_is_flagged_and_one_clear_of_it_passes(safety: SceneSafety) -> None:
    positions, _ = straight(scenes.HOME, scenes.HANDLE_BOX_REACH)
    scene = PlanScene.from_boxes([scenes.HANDLE_BOX])
    assert safety.endpoint_problem(scenes.HOME, scenes.HANDLE_BOX_REACH, scene) is None
    check = safety.check(positions[None], scenes.HOME, scenes.HANDLE_BOX_REACH, scene)
    assert not check.passed[0]
    (reason,) = check.reasons(0)
    assert reason.startswith("arm_obstacle: clearance -") and " at step " in reason, reason
    # The same motion with the box lifted 0.5 m (above the arm's highest point) is clear, as is an empty scene.
    lifted = Box((0.533654, 0.337972, 1.5), scenes.HANDLE_BOX.size, scenes.HANDLE_BOX.yaw)
    for clear_scene in (PlanScene.from_boxes([lifted]), EMPTY_SCENE):
        assert safety.check(positions[None], scenes.HOME, scenes.HANDLE_BOX_REACH, clear_scene).passed[0]
    rejections = safety.rejections(np.stack([positions, positions]), scenes.HOME, scenes.HANDLE_BOX_REACH, scene,
                                   np.array([1]))  # fmt: skip
    assert list(rejections) == [1]


def test_the_margin_is_respected(safety: SceneSafety) -> None:
    positions, _ = straight(scenes.HOME, scenes.HANDLE_BOX_REACH)
    # A box above the path: ~30 mm from its highest point (measured here), far from start and goal.
    box = Box((0.533654, 0.337972, 1.40), (0.06, 0.06, 0.06))
    scene = PlanScene.from_boxes([box])
    closest = float(safety.clearances(positions, scene)[:, 2].min())
    assert 0.015 < closest < 0.08
    sweep = float(safety.sweep(positions[None], scenes.HOME, scene).max())
    assert sweep < closest - 0.002  # the margins below decide, not the sweep
    below, above = SceneSafety(closest - 0.002), SceneSafety(closest + 0.002)
    assert below.check(positions[None], scenes.HOME, scenes.HANDLE_BOX_REACH, scene).passed[0]
    failed = above.check(positions[None], scenes.HOME, scenes.HANDLE_BOX_REACH, scene)
    assert not failed.passed[0] and "margin" in failed.reasons(0)[0]


def test_a_carried_tray_is_checked_and_the_resting_one_is_not(safety: SceneSafety) -> None:
    positions, _ = straight(scenes.BARRIER_REACH, scenes.BARRIER_CARRY)
    grasp = safety.checker.grasp_from_start(scenes.BARRIER_REACH, scenes.BARRIER_TRAY)
    carried = PlanScene.from_boxes([scenes.BARRIER], grasp)
    check = safety.check(positions[None], scenes.BARRIER_REACH, scenes.BARRIER_CARRY, carried)
    assert [r.split(":")[0] for r in check.reasons(0)] == ["tray_obstacle"], check.reasons(0)
    # the tray rests on the table at the start (-2 mm: the checker's padding) and its handles are in the tools:
    # neither is a problem
    assert safety.endpoint_problem(scenes.BARRIER_REACH, scenes.BARRIER_CARRY, carried) is None
    # without the tray, the arms themselves pass over the wall
    no_tray = PlanScene.from_boxes([scenes.BARRIER])
    assert safety.check(positions[None], scenes.BARRIER_REACH, scenes.BARRIER_CARRY, no_tray).passed[0]


def _open_carry(safety: SceneSafety) -> tuple[np.ndarray, np.ndarray, PlanScene, np.ndarray, np.ndarray]:
    """The barrier episode's carry without the barrier (no box: only the grip or the tilt can fail): start, goal,
    scene and the straight carry's positions and velocities."""
    start, goal = scenes.BARRIER_REACH, scenes.BARRIER_CARRY
    open_scene = PlanScene.from_boxes([], safety.checker.grasp_from_start(start, scenes.BARRIER_TRAY))
    return start, goal, open_scene, *straight(start, goal)


def test_a_carry_that_pulls_the_grasps_apart_is_refused(safety: SceneSafety) -> None:
    """The right tool must keep its place relative to the left while both hold the tray (max_grip_change)."""
    start, goal, open_scene, positions, _ = _open_carry(safety)
    rigid = safety.check(positions[None], start, goal, open_scene)
    assert rigid.passed[0] and rigid.grip_change.max() < 0.05 and "grip" in rigid.categories
    # Bend the right arm's shoulder out and back mid-carry: the right tool leaves its handle, the left does not.
    pulled = positions.copy()
    pulled[:, 6] += 0.3 * np.sin(np.linspace(0.0, np.pi, len(positions)))
    check = safety.check(pulled[None], start, goal, open_scene)
    assert check.grip_change.max() > 0.1
    (reason,) = check.reasons(0)
    assert reason.startswith("grip: the right tool moved ") and "> 50.0 mm allowed" in reason, reason
    # The limit is a parameter: 0 = no grip check; the clearance categories are unchanged.
    assert SceneSafety(0.01, max_grip_change=0.0).check(pulled[None], start, goal, open_scene).passed[0]
    # A goal that itself pulls the grasps apart is refused up front, with its reason.
    problem = safety.endpoint_problem(start, pulled[len(pulled) // 2], open_scene)
    assert problem is not None and problem.startswith("the goal state pulls the grasps apart (the right tool "), problem
    # Reaches (no carried tray) have no grip check.
    assert "grip" not in safety.categories(PlanScene.from_boxes([]))


def test_a_carry_that_tilts_the_tray_is_refused(safety: SceneSafety) -> None:
    """The tray may tilt at most max_tray_tilt (5 deg) from level while carried, whatever the grip does."""
    from flow_planner_common.grip_follower import GripFollower

    start, goal, open_scene, positions, velocities = _open_carry(safety)
    level = safety.check(positions[None], start, goal, open_scene)
    assert level.passed[0] and "tilt" in level.categories
    assert safety.max_tray_tilt - level.clearance[0, :, level.categories.index("tilt")].min() < np.radians(2.0)
    # Pitch the left wrist and back mid-carry, the right arm following the grip: only the tilt fails.
    tilted = positions.copy()
    tilted[:, 3] -= 0.3 * np.sin(np.linspace(0.0, np.pi, len(positions)))
    tilted, _ = GripFollower(safety.checker).follow(tilted, velocities, start)
    check = safety.check(tilted[None], start, goal, open_scene)
    (reason,) = check.reasons(0)
    assert reason.startswith("tilt: the tray tilts ") and "deg from level > 5.0 deg allowed" in reason, reason
    assert 15.0 < float(reason.split("tilts ")[1].split(" deg")[0]) < 20.0  # 0.3 rad of wrist pitch ~ 17 deg
    # The limit is a parameter: 0 = no tilt check.
    assert SceneSafety(0.01, max_tray_tilt=0.0).check(tilted[None], start, goal, open_scene).passed[0]
    assert "tilt" not in SceneSafety(0.01, max_tray_tilt=0.0).categories(open_scene)
    # A goal that itself tilts the tray is refused up front, with its reason.
    problem = safety.endpoint_problem(start, tilted[len(tilted) // 2], open_scene)
    assert problem is not None and problem.startswith("the goal state tilts the tray 1"), problem
    assert "deg from level (max_tray_tilt 5.0 deg)" in problem
    # Reaches (no carried tray) have no tilt check.
    assert "tilt" not in safety.categories(PlanScene.from_boxes([]))


def test_the_compiled_motion_terms_agree_with_the_torch_ones(safety: SceneSafety) -> None:
    """The CPU's one compiled pass (motion_kernel) gives the sweep, grip change and tilt that the torch ops give from
    forward kinematics (the CUDA path), for reaches, two-tool and left-only carries, per-candidate starts and grasps
    (check_many's batches) and a horizon longer than one block of lanes."""
    from flow_planner_common.kinematics import TrayGrasp
    from flow_planner_common.sphere_kernel import LANES

    assert safety._motion is not None  # the CPU default: the compiled checker
    start, goal = scenes.BARRIER_REACH, scenes.BARRIER_CARRY
    two_tool = safety.checker.grasp_from_start(start, scenes.BARRIER_TRAY)
    left_only = TrayGrasp(two_tool.position, two_tool.rotation)
    rng = np.random.default_rng(4)
    for horizon in (60, LANES + 40):
        line = np.linspace(start, goal, horizon + 1)[1:]
        positions = line + np.cumsum(rng.normal(0.0, 0.01, (3, horizon, NUM_JOINTS)), axis=1)
        starts = start + rng.normal(0.0, 0.01, (3, 1, NUM_JOINTS))
        per_candidate = tuple(safety.checker.grasp_from_start(s[0], scenes.BARRIER_TRAY) for s in starts)
        for grasp in (None, two_tool, left_only, per_candidate):
            compiled = safety._motion_terms(positions, starts, grasp)
            q = safety.checker._input(positions)
            kinematics = safety.kinematics(q, safety.checker._input(starts))
            scene = SceneBatch(np.zeros((3, 1, 7)), np.zeros((3, 1), dtype=bool), grasp)
            sweep = safety.sweep(q, None, scene, kinematics)
            np.testing.assert_allclose(compiled[0].numpy(), sweep.numpy(), rtol=0.0, atol=2e-5)
            if grasp is not None:
                np.testing.assert_allclose(compiled[1].numpy(), safety.grip_change(q, None, kinematics).numpy(),
                                           rtol=0.0, atol=2e-5)  # fmt: skip
                tilt = safety.tray_tilt(kinematics, scene).numpy()  # float32 arccos near 1: ~1e-4 rad of rounding
                np.testing.assert_allclose(compiled[2].numpy(), tilt, rtol=0.0, atol=5e-4)
                assert compiled[2].max() > 1e-3 and compiled[1].max() > 1e-3  # the noise moves both
    # In a check: the same clearances and requirements as from the torch kinematics.
    positions = np.linspace(start, goal, 61)[1:][None]
    scene = PlanScene.from_boxes([scenes.BARRIER], two_tool)
    thresholds = safety.checker._input(safety.bind(start, goal, scene).thresholds)
    q, first = safety.checker._input(positions), safety.checker._input(start)
    compiled = safety._evaluate(q, first, scene, thresholds)
    torch_ops = safety._evaluate(q, first, scene, thresholds, safety.kinematics(q, first))
    for a, b in zip(compiled, torch_ops, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0.0, atol=5e-4)


def test_a_goal_inside_a_box_is_refused_with_its_reason(safety: SceneSafety) -> None:
    ee, _ = safety.checker.ee_poses(scenes.HANDLE_BOX_REACH)
    scene = PlanScene.from_boxes([Box(tuple(ee[0]), (0.1, 0.1, 0.1))])
    problem = safety.endpoint_problem(scenes.HOME, scenes.HANDLE_BOX_REACH, scene)
    assert problem is not None and problem.startswith("the goal state is in collision (arm_obstacle clearance -")


def test_refinement_bends_colliding_seeds_clear_of_the_box(safety: SceneSafety) -> None:
    reference = straight(scenes.HOME, scenes.HANDLE_BOX_REACH)
    scene = PlanScene.from_boxes([scenes.HANDLE_BOX])
    bump = np.sin(np.linspace(0.0, np.pi, 60))[None, :, None]
    seeds = reference[0][None] + np.random.default_rng(0).normal(0.0, 0.01, (8, 1, NUM_JOINTS)) * bump
    assert not safety.check(seeds, scenes.HOME, scenes.HANDLE_BOX_REACH, scene).passed.any()
    refiner = Refiner(safety, LIMITS, DEFAULT_DT, 60, iterations=3, samples=32)
    started = time.perf_counter()
    result = refiner.refine(seeds, reference, scenes.HOME, scenes.HANDLE_BOX_REACH, scene, seed=0)
    elapsed = time.perf_counter() - started
    passed = safety.check(result.positions, scenes.HOME, scenes.HANDLE_BOX_REACH, scene).passed
    iterations, rest = divmod(result.evaluated - 8, 32)
    assert passed.any() and rest == 0 and 1 <= iterations <= 3
    if iterations < 3:  # it stopped early: only once its best candidate was clear
        assert passed[0]
    np.testing.assert_allclose(result.positions[:, -1], np.broadcast_to(scenes.HANDLE_BOX_REACH, (6, 12)), atol=1e-9)
    assert elapsed < 5.0  # ~0.2 s on the 2-core CI machine


def test_refinement_stops_once_a_candidate_is_clear(safety: SceneSafety) -> None:
    """Seeds of which one is clear already: no iteration is drawn, and that seed comes back first."""
    reference = straight(scenes.HOME, scenes.HANDLE_BOX_REACH)
    bump = np.sin(np.linspace(0.0, np.pi, 60))[None, :, None]
    seeds = reference[0][None] + np.random.default_rng(0).normal(0.0, 0.01, (8, 1, NUM_JOINTS)) * bump
    scene = PlanScene.from_boxes([])
    assert safety.check(seeds, scenes.HOME, scenes.HANDLE_BOX_REACH, scene).passed.all()
    result = Refiner(safety, LIMITS, DEFAULT_DT, 60, iterations=3, samples=32).refine(
        seeds, reference, scenes.HOME, scenes.HANDLE_BOX_REACH, scene, seed=0
    )
    assert result.evaluated == 8
    assert safety.check(result.positions[:1], scenes.HOME, scenes.HANDLE_BOX_REACH, scene).passed[0]


def test_scene_inputs_are_validated() -> None:
    with pytest.raises(SceneError, match="make 5 distinct boxes; the planner supports at most 4"):
        merge_boxes([Box((0.5, 0.0, 0.9 + 0.1 * i), (0.05,) * 3) for i in range(3)],
                    [Box((0.5, 0.3, 0.9 + 0.1 * i), (0.05,) * 3) for i in range(2)], "/scene/obstacles")  # fmt: skip
    same = [Box((0.5, 0.0, 0.9), (0.05,) * 3)]
    assert merge_boxes(same, same, "/scene/obstacles") == tuple(same)  # one scene given twice is one scene
    with pytest.raises(SceneError, match="unit quaternion"):
        validated_tray_pose([0.4, 0.0, 0.76, 0.0, 0.0, 0.0, 0.0])
    with pytest.raises(SceneError, match="7 finite numbers"):
        validated_tray_pose([0.4, float("nan"), 0.76, 1.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(validated_tray_pose([0.4, 0, 0.76, 1.005, 0, 0, 0])[3:], [1, 0, 0, 0])


@pytest.mark.parametrize("norm", [2.0, 1e-9, 0.0, 1.02, 0.98, 1.0, 1.01, 0.99, 1.005])
def test_one_quaternion_rule_for_the_boxes_and_the_tray(norm: float) -> None:
    """A box's orientation (request or /scene/obstacles) and a carried tray's pose: the same rule, norm 1 +- 0.01
    (normalised), else refused (box quaternions of norm 2 or 1e-9 used to be normalised, a tray's 1.01 refused)."""
    from flow_planner_common.ros_messages import boxes_from_obstacle_array
    from flow_planner_msgs.msg import Obstacle, ObstacleArray

    half_yaw = 0.3
    quat = norm * np.array([math.cos(half_yaw), 0.0, 0.0, math.sin(half_yaw)])
    box = Obstacle(id="b")
    box.shape.type, box.shape.dimensions = SolidPrimitive.BOX, [0.1, 0.1, 0.1]
    box.pose.position.x, box.pose.position.z = 0.5, 0.9
    o = box.pose.orientation
    o.w, o.x, o.y, o.z = (float(v) for v in quat)
    tray = [0.4, 0.0, 0.76, *quat]
    if abs(norm - 1.0) <= QUATERNION_NORM_TOLERANCE + 1e-12:
        (parsed,) = boxes_from_obstacle_array(ObstacleArray(obstacles=[box]))
        assert parsed.yaw == pytest.approx(2 * half_yaw)
        np.testing.assert_allclose(validated_tray_pose(tray)[3:], quat / norm)
    else:
        with pytest.raises(ObstacleError, match=f"must be a unit quaternion .* got norm {norm:.4g}"):
            boxes_from_obstacle_array(ObstacleArray(obstacles=[box]))
        with pytest.raises(SceneError, match=f"must be a unit quaternion .* got norm {norm:.4g}"):
            validated_tray_pose(tray)


@pytest.fixture(scope="module")
def sampler():
    from flow_planner_ros.learning.flow_sampler import FlowSampler

    return FlowSampler.from_checkpoint(CHECKPOINT, backend="onnx", num_threads=1)


@pytest.mark.parametrize("iterations", [0, 3])
def test_the_pipeline_never_returns_a_colliding_plan_and_refines_when_asked(sampler, iterations: int) -> None:
    """The shipped model on a reach the straight line cannot make (a box over the handle): whatever it samples, a
    returned plan keeps its clearance; without refinement it may fail (with the collision as the reason), with
    refinement it succeeds. The refinement alone on colliding seeds:
    test_refinement_bends_colliding_seeds_clear_of_the_box."""
    from flow_planner_ros.planning.pipeline import PlanningPipeline

    pipeline = PlanningPipeline(sampler, LIMITS, refine_iterations=iterations)
    scene = PlanScene.from_boxes([scenes.HANDLE_BOX])
    request = PlanRequest(scenes.HOME, ZERO, scenes.HANDLE_BOX_REACH, 8, 5, 0, False)
    result = pipeline.plan(request, scene=scene)
    if iterations == 0:
        assert not result.refined
        if not result.success:
            assert result.message().startswith("no safe candidate among 8:") and "arm_obstacle" in result.message()
            return
    assert result.success, result.message()
    check = pipeline.safety.check(result.positions[None], scenes.HOME, scenes.HANDLE_BOX_REACH, scene)
    assert check.passed[0] and check.clearance[0, :, 2].min() >= 0.0
    # without the box the same request needs no refinement
    assert pipeline.plan(request).message().startswith("ok: ")
