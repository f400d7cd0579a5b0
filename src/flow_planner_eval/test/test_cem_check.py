"""The evaluation's CEM baseline publishes only what the flow planner's final check passes (runner.check_refusal):
a carry straight through the barrier scene's wall is refused with the check's reason, the same carry without the
wall passes, and a tray held at a tilt is refused for it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from flow_planner_common.motion import reference_trajectory
from flow_planner_common.robot import DEFAULT_DT, NUM_JOINTS
from flow_planner_common.scene_safety import SceneSafety
from flow_planner_eval.runner import check_refusal

_spec = importlib.util.spec_from_file_location(
    "scenes_for_tests", Path(__file__).parents[2] / "flow_planner_ros" / "test" / "scenes_for_tests.py"
)
scenes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scenes)


def test_the_cem_baseline_is_held_to_the_planner_check() -> None:
    safety = SceneSafety()
    start, goal, tray = scenes.BARRIER_REACH, scenes.BARRIER_CARRY, scenes.BARRIER_TRAY
    positions, _ = reference_trajectory(start, np.zeros(NUM_JOINTS), goal, DEFAULT_DT)
    refused = check_refusal(safety, [scenes.BARRIER], start, tray, positions)
    assert refused.startswith("tray_obstacle: clearance -"), refused
    assert check_refusal(safety, [], start, tray, positions) == ""
    assert check_refusal(safety, [], start, None, positions) == ""  # as a reach: no tray, no grip, no tilt
    tilted = positions.copy()
    tilted[:, 3] -= 0.3 * np.sin(np.linspace(0.0, np.pi, len(positions)))  # the left wrist pitches and back
    tilted[:, 9] -= 0.3 * np.sin(np.linspace(0.0, np.pi, len(positions)))  # and the right's with it
    assert "tilt: the tray tilts " in check_refusal(safety, [], start, tray, tilted)
