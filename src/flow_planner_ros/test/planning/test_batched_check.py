"""Concurrent requests checked in one checker call (issue 20): SceneSafety.check_many over the candidates of several
requests, each with its own scene (0 to 4 boxes, a carried tray or none), start and thresholds, gives what each
request's own check gives; PlanningPipeline.plan_many with the shipped checkpoint chooses what `plan` chooses for
each request alone; bad input is refused with a ValueError."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from flow_planner_common.motion import reference_trajectory
from flow_planner_common.obstacles import Box
from flow_planner_common.plan_scene import EMPTY_SCENE, PlanScene
from flow_planner_common.robot import DEFAULT_DT, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, NUM_JOINTS
from flow_planner_common.scene_safety import SceneSafety
from flow_planner_common.sphere_checker import SphereChecker
from flow_planner_ros.planning.continuation import commanded_trajectory, running_plan_prefix
from flow_planner_ros.planning.request import PlanRequest
from flow_planner_ros.planning.trajectory_safety import SafetyLimits

_spec = importlib.util.spec_from_file_location("scenes_for_tests", Path(__file__).parents[1] / "scenes_for_tests.py")
scenes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scenes)

ZERO = np.zeros(NUM_JOINTS)
LIMITS = SafetyLimits.from_arrays(JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS)
CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "default.safetensors"
#: Boxes near the reach from home to the handle box's goal (the first one on its straight path).
NEAR_REACH = (
    scenes.HANDLE_BOX,
    Box((0.45, 0.30, 1.15), (0.08, 0.08, 0.08), 0.3),
    Box((0.60, -0.25, 1.05), (0.10, 0.06, 0.05), -0.5),
    Box((0.30, 0.45, 0.95), (0.05, 0.12, 0.30), 1.0),
)


@pytest.fixture(scope="module")
def safety() -> SceneSafety:
    return SceneSafety(0.01)


def candidates(start: np.ndarray, goal: np.ndarray, count: int, seed: int) -> np.ndarray:
    """(count, H, 12): the straight motion bent by smooth random bumps (zero at both ends), some clear, some not."""
    positions, _ = reference_trajectory(start, ZERO, goal, DEFAULT_DT)
    rng = np.random.default_rng(seed)
    bump = np.sin(np.linspace(0.0, np.pi, len(positions)))[None, :, None]
    return positions[None] + bump * rng.normal(0.0, 0.25, (count, 1, NUM_JOINTS))


def checks(safety: SceneSafety) -> list:
    """Bound checks of reaches with 0 to 4 boxes (and a scene of none at all), a carry held by both tools and two
    held by the left tool only, with their candidates (different counts)."""
    grasp = safety.checker.grasp_from_start(scenes.BARRIER_REACH, scenes.BARRIER_TRAY)
    no_rows = PlanScene(np.zeros((0, 7)), np.zeros(0, dtype=bool))
    reach = (scenes.HOME, scenes.HANDLE_BOX_REACH)
    carry = (scenes.BARRIER_REACH, scenes.BARRIER_CARRY)
    cases = [(reach, EMPTY_SCENE), (reach, no_rows)]
    cases += [(reach, PlanScene.from_boxes(NEAR_REACH[:count])) for count in range(1, 5)]
    cases += [(carry, PlanScene.from_boxes([scenes.BARRIER], grasp)), (reach, PlanScene.from_boxes(NEAR_REACH[1:3]))]
    cases += [(carry, PlanScene.from_boxes([scenes.BARRIER], grasp.left_only())), (carry, PlanScene.from_boxes(
        [], grasp.left_only()))]  # fmt: skip
    out = []
    for k, ((start, goal), scene) in enumerate(cases):
        out.append((safety.bind(start, goal, scene), candidates(start, goal, 3 + k % 4, seed=k)))
    return out


def test_one_call_checks_every_request_as_its_own_check_would(safety: SceneSafety, monkeypatch) -> None:
    bound = checks(safety)
    calls = []
    real = SphereChecker.clearance
    monkeypatch.setattr(SphereChecker, "clearance", lambda *a, **k: calls.append(1) or real(*a, **k))
    batched = safety.check_many([c for c, _ in bound], [p for _, p in bound])
    assert len(calls) == 3  # one per phase: reaches, two-tool carries, left-only carries
    monkeypatch.undo()
    passed = []
    for (check, positions), together in zip(bound, batched, strict=True):
        alone = check.check(positions)
        assert together.categories == alone.categories and together.clearance.shape == alone.clearance.shape
        np.testing.assert_allclose(together.clearance, alone.clearance, rtol=0, atol=1e-6)
        np.testing.assert_allclose(together.required, alone.required, rtol=0, atol=1e-6)
        assert list(together.passed) == list(alone.passed)
        assert [together.reasons(i) for i in range(len(positions))] == [alone.reasons(i) for i in range(len(positions))]
        passed += list(alone.passed)
    assert any(passed) and not all(passed)  # both outcomes are compared
    assert "grip" in batched[6].categories and "tray_obstacle" in batched[8].categories


def test_per_scene_checker_calls_equal_one_scene_at_a_time() -> None:
    """SphereChecker.clearance with (G, M, 7) boxes, a (G, M) mask and G grasps equals G calls with one each; the
    resting tray with per-scene boxes too."""
    checker = SphereChecker()
    rng = np.random.default_rng(1)
    q = scenes.BARRIER_REACH + rng.normal(0.0, 0.3, (4, 5, NUM_JOINTS))
    boxes = np.stack([np.stack([b.as_array() for b in (*NEAR_REACH[:3], scenes.BARRIER)])] * 4)
    boxes[..., :3] += rng.normal(0.0, 0.05, (4, 4, 3))
    mask = np.array([[1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]], dtype=bool)
    grasps = [checker.grasp_from_start(q[g, 0], scenes.BARRIER_TRAY) for g in range(4)]
    for tray, one in (({"grasp": grasps}, lambda g: {"grasp": grasps[g]}),
                      ({"tray_pose": scenes.BARRIER_TRAY}, lambda g: {"tray_pose": scenes.BARRIER_TRAY}),
                      ({}, lambda g: {})):  # fmt: skip
        together = checker.clearance(q, boxes, mask, **tray).numpy()
        for g in range(4):
            alone = checker.clearance(q[g], boxes[g], mask[g], **one(g)).numpy()
            np.testing.assert_allclose(together[g], alone, rtol=0, atol=1e-6)


def test_bad_batches_are_refused(safety: SceneSafety) -> None:
    (first, positions), (second, other) = checks(safety)[:2]
    with pytest.raises(ValueError, match="no checks"):
        safety.check_many([], [])
    with pytest.raises(ValueError, match="2 checks but 1 candidate batches"):
        safety.check_many([first, second], [positions])
    with pytest.raises(ValueError, match=r"must be \(N > 0, H, 12\)"):
        safety.check_many([first], [positions[:0]])
    with pytest.raises(ValueError, match=r"must be \(N > 0, H, 12\)"):
        safety.check_many([first], [positions[..., :11]])
    with pytest.raises(ValueError, match=r"must be \(N > 0, H, 12\)"):
        safety.check_many([first], [positions[0]])
    with pytest.raises(ValueError, match="different horizons"):
        safety.check_many([first, second], [positions, other[:, :30]])
    with pytest.raises(ValueError, match="not a SceneCheck bound by this SceneSafety"):
        safety.check_many([SceneSafety(0.02).bind(first.start, first.goal, first.scene)], [positions])
    checker = safety.checker
    grasp = checker.grasp_from_start(scenes.BARRIER_REACH, scenes.BARRIER_TRAY)
    with pytest.raises(ValueError, match="all be two-tool or all left-only"):
        checker.clearance(positions[:2], grasp=[grasp, grasp.left_only()])
    with pytest.raises(ValueError, match="3 scenes need positions"):
        checker.clearance(positions[:2], np.zeros((3, 1, 7)))
    with pytest.raises(ValueError, match="disagree on the number of scenes"):
        checker.clearance(positions[:2], np.zeros((2, 1, 7)), grasp=[grasp] * 3)


@pytest.fixture(scope="module")
def pipeline():
    from flow_planner_ros.learning.flow_sampler import FlowSampler
    from flow_planner_ros.planning.pipeline import PlanningPipeline

    return PlanningPipeline(FlowSampler.from_checkpoint(CHECKPOINT, backend="onnx", num_threads=1), LIMITS)


def test_plan_many_chooses_what_each_request_alone_would(pipeline) -> None:
    """Reaches with different scenes, a carry, a request refused for its goal and one joining a running plan, in
    one plan_many: the same choice (index, positions) and account as `plan` one by one with the same seeds."""
    grasp = pipeline.safety.checker.grasp_from_start(scenes.BARRIER_REACH, scenes.BARRIER_TRAY)
    first = pipeline.plan(PlanRequest(scenes.HOME, ZERO, scenes.HANDLE_BOX_REACH, 8, 5, 0, True))
    assert first.success, first.message()
    running = commanded_trajectory(scenes.HOME, ZERO, first.positions, first.velocities, pipeline.dt)
    joined = PlanRequest(first.positions[14], first.velocities[14], scenes.HANDLE_BOX_REACH, 8, 5, 1, True)
    inside = scenes.HANDLE_BOX_REACH.copy()
    items = [
        (PlanRequest(scenes.HOME, ZERO, scenes.HANDLE_BOX_REACH, 8, 5, 3, False), EMPTY_SCENE, None),
        (PlanRequest(scenes.HOME, ZERO, scenes.HANDLE_BOX_REACH, 6, 5, 4, False),
         PlanScene.from_boxes(NEAR_REACH[:2]), None),
        (PlanRequest(scenes.BARRIER_REACH, ZERO, scenes.BARRIER_CARRY, 8, 5, 5, False),
         PlanScene.from_boxes([scenes.BARRIER], grasp), None),
        (joined, EMPTY_SCENE, lambda: running_plan_prefix(running, pipeline.dt, 0.75, 5)),
        (PlanRequest(scenes.HOME, ZERO, inside, 4, 5, 6, False), PlanScene.from_boxes([Box(
            (0.533654, 0.337972, 0.86), (0.3, 0.3, 0.3))]), None),
        (PlanRequest(scenes.HOME, ZERO, scenes.HANDLE_BOX_REACH, 8, 5, 7, False),
         PlanScene.from_boxes(NEAR_REACH), None),
    ]  # fmt: skip
    together = pipeline.plan_many(items)
    for (request, scene, prefix), result in zip(items, together, strict=True):
        alone = pipeline.plan(request, prefix, scene)
        assert result.selection.index == alone.selection.index, (result.message(), alone.message())
        assert result.success == alone.success and result.message() == alone.message()
        assert sorted(result.selection.rejections) == sorted(alone.selection.rejections)
        if alone.success:
            np.testing.assert_allclose(result.positions, alone.positions, rtol=0, atol=1e-5)
            np.testing.assert_allclose(result.velocities, alone.velocities, rtol=0, atol=1e-5)
    assert together[0].success and together[3].success  # the carry through the barrier may fail (it did, refined)
    assert together[4].problem  # the goal inside a box: refused before sampling
