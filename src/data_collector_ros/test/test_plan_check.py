"""The expert's data goes through the planner's own check (real MuJoCo, real CEM expert, real sphere checker): a
phase the physics judges successful but the planner's check refuses is recorded as a failure with the check's
reasons, and the check's figures round-trip through the trajectory files and the merge."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from data_collector_ros.cem import CEMConfig, CEMPlanner
from data_collector_ros.episode import EpisodeConfig, EpisodeRunner, PhaseOutcome
from data_collector_ros.grid import GridConfig, episode_seed, grid_pose
from data_collector_ros.ik import IKSolver
from data_collector_ros.plan_check import PLANNER_CHECK
from data_collector_ros.simulation import Simulation
from flow_planner_common.robot import PHASE_CARRY, PHASE_REACH
from flow_planner_common.scene_safety import DEFAULT_CLEARANCE_MARGIN, DEFAULT_MAX_GRIP_CHANGE
from flow_planner_common.trajectory_schema import SCHEMA_VERSION, read_dataset, read_trajectory, write_trajectory

WORKSPACE = Path(__file__).resolve().parents[3]
MERGE = WORKSPACE / "install" / "data_collector_ros" / "lib" / "data_collector_ros" / "merge"
GRID_INDEX = 37


@pytest.fixture(scope="module")
def episodes() -> dict[str, list[PhaseOutcome]]:
    """One grid episode run twice with the same seed (the same plans): the check at the planner's defaults, and the
    check made strict (a 200 mm margin, a 1 mm grip limit) through EpisodeConfig. The expert here lets the right arm
    move freely (hold_grip off: its carries then change the grip by a few mm, which the strict check refuses)."""
    sim = Simulation()
    planner, ik = CEMPlanner(sim.model, CEMConfig(hold_grip=False)), IKSolver(sim.model)
    pose, seed = grid_pose(GridConfig(nx=10, ny=10), GRID_INDEX), episode_seed(0, GRID_INDEX)
    strict = EpisodeConfig(check_margin=0.2, check_max_grip_change=0.001)
    return {
        name: EpisodeRunner(sim, planner, ik, config=config).run(GRID_INDEX, pose, seed)
        for name, config in (("default", EpisodeConfig()), ("strict", strict))
    }


def test_the_default_check_is_the_planners_and_passes_the_experts_episode(episodes) -> None:
    config = EpisodeConfig()
    assert (config.check_margin, config.check_max_grip_change) == (DEFAULT_CLEARANCE_MARGIN, DEFAULT_MAX_GRIP_CHANGE)
    reach, carry = episodes["default"]
    for outcome in (reach, carry):
        assert outcome.physics_success and outcome.check.passed, outcome.result.reasons
        assert outcome.result.success and outcome.record.success and outcome.record.check_passed
        assert outcome.record.check_min_margin >= 0 and outcome.check.reasons == ()
    assert np.isnan(reach.record.check_max_grip)
    assert 0 <= carry.record.check_max_grip <= DEFAULT_MAX_GRIP_CHANGE


def test_a_plan_the_physics_passes_but_the_check_refuses_is_recorded_as_a_failure(episodes, tmp_path: Path) -> None:
    (default_reach, default_carry), (reach, carry) = episodes["default"], episodes["strict"]
    np.testing.assert_array_equal(carry.record.positions, default_carry.record.positions)  # the same plan
    assert carry.physics_success  # the physics judged it a success ...
    assert not carry.check.passed and not carry.result.success and not carry.record.success  # ... the check did not
    assert carry.record.check_passed is False and carry.record.check_min_margin < 0
    assert carry.check.grip_refused and not carry.check.clearance_refused
    labelled = [r for r in carry.result.reasons if r.startswith(f"{PLANNER_CHECK}: grip: the right tool moved")]
    assert len(labelled) == len(carry.check.reasons) == 1, carry.result.reasons
    assert carry.record.check_max_grip == pytest.approx(default_carry.record.check_max_grip)
    assert carry.record.check_max_grip > 0.001
    # the reach: the 200 mm margin is lowered to the start's and goal's own clearances (minus 1 mm), as the planner's
    # rule does for every category, so the expert's reach still passes, 1 mm above its lowered thresholds
    assert reach.check.passed and reach.result.success
    assert reach.record.check_min_margin == pytest.approx(0.001, abs=1e-6)
    # the figures survive the file and the merge
    for outcome in (default_reach, default_carry, carry):
        folder = tmp_path / ("ok" if outcome.result.success else "refused")
        loaded = read_trajectory(write_trajectory(folder, outcome.record))
        assert loaded.schema_version == SCHEMA_VERSION and loaded.success == outcome.result.success
        assert (loaded.check_passed, loaded.check_min_margin) == (outcome.check.passed, outcome.check.min_margin)
        np.testing.assert_equal(loaded.check_max_grip, outcome.check.max_grip)
    result = subprocess.run([str(MERGE), "--input", str(tmp_path / "ok"), str(tmp_path / "refused"), "--output",
                             str(tmp_path / "m.npz")], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    merged = read_dataset(tmp_path / "m.npz")  # one grid index: the refused carry is a duplicate of the default one
    assert "skipping duplicate file" in result.stderr
    np.testing.assert_array_equal(merged["phase"], [PHASE_REACH, PHASE_CARRY])
    np.testing.assert_array_equal(merged["check_passed"], [True, True])
    assert np.isnan(merged["check_max_grip"][0]) and merged["check_max_grip"][1] > 0
    refused = subprocess.run([str(MERGE), "--input", str(tmp_path / "refused"), "--output", str(tmp_path / "r.npz")],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert refused.returncode == 0, refused.stderr
    merged = read_dataset(tmp_path / "r.npz")
    np.testing.assert_array_equal(merged["success"], [False])
    np.testing.assert_array_equal(merged["check_passed"], [False])
    np.testing.assert_allclose(merged["check_min_margin"], [carry.check.min_margin])


def test_check_plan_refuses_a_wall_and_a_tilted_tray() -> None:
    """check_plan (the collector's check, and the evaluation's for the CEM baseline's plans): a carry straight through
    the barrier scene's wall is refused with the check's reason, the same carry without the wall passes, as a reach
    too, and a tray pitched mid-carry is refused for its tilt."""
    import importlib.util

    from data_collector_ros.episode_sequence import PhaseTask
    from data_collector_ros.plan_check import check_plan
    from data_collector_ros.simulation import SimState
    from flow_planner_common.motion import reference_trajectory
    from flow_planner_common.robot import DEFAULT_DT, NUM_JOINTS
    from flow_planner_common.scene_safety import SceneSafety

    spec = importlib.util.spec_from_file_location(
        "scenes_for_tests", WORKSPACE / "src" / "flow_planner_ros" / "test" / "scenes_for_tests.py"
    )
    scenes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scenes)
    start, goal, tray = scenes.BARRIER_REACH, scenes.BARRIER_CARRY, scenes.BARRIER_TRAY
    state = SimState(0.0, start, np.zeros(NUM_JOINTS), tray, (True, True))

    def task(phase: int, obstacles: tuple = ()) -> PhaseTask:
        return PhaseTask(phase, 0, state, goal, True, np.zeros((2, 3)), tray, tray, obstacles)

    safety = SceneSafety()
    positions, _ = reference_trajectory(start, np.zeros(NUM_JOINTS), goal, DEFAULT_DT)
    refused = check_plan(safety, task(PHASE_CARRY, (scenes.BARRIER,)), positions)
    assert not refused.passed and refused.reasons[0].startswith("tray_obstacle: clearance -"), refused.reasons
    assert check_plan(safety, task(PHASE_CARRY), positions).passed
    assert check_plan(safety, task(PHASE_REACH), positions).passed  # as a reach: no tray, no grip, no tilt
    tilted = positions.copy()
    tilted[:, 3] -= 0.3 * np.sin(np.linspace(0.0, np.pi, len(positions)))  # the left wrist pitches and back
    tilted[:, 9] -= 0.3 * np.sin(np.linspace(0.0, np.pi, len(positions)))  # and the right's with it
    pitched = check_plan(safety, task(PHASE_CARRY), tilted)
    assert not pitched.passed and any(r.startswith("tilt: the tray tilts ") for r in pitched.reasons), pitched.reasons
