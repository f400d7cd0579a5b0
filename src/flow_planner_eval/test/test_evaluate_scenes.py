"""`evaluate` on cluttered scenes, for real: the bridge in process over DDS, MuJoCo physics. A barrier scene from
make_scenes' generator (FamilyConfig(seed=1), its first valid barrier: grid index 4 when written) where the
straight minimum-jerk line hits the wall and the CEM expert (with the scene's boxes and its routes) does not, plus an
invalid episode (a box through the resting tray) that is reported as invalid and left out of every rate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flow_planner_eval.cli import evaluate as evaluate_cli
from flow_planner_eval.make_scenes import generate, scene_yaml

#: A box through the tray resting at (0.5, 0, yaw 0): the scene collides at the start.
INVALID = """  - tray_start: [0.5, 0.0, 0.0]
    tray_goal: [0.5, 0.0, 0.96, 0.0]
    obstacles:
      - {center: [0.5, 0.0, 0.77], size: [0.1, 0.1, 0.06], yaw: 0.0}
    template: blocked
"""


@pytest.fixture(scope="module")
def scenes_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scenes, _ = generate(1, 1, "barrier")
    assert scenes[0].template == "barrier"
    path = tmp_path_factory.mktemp("scenes") / "barrier.yaml"
    path.write_text("episodes:\n" + scene_yaml(scenes[0]) + INVALID)
    return path


def _evaluate(planner: str, episodes: Path, report: Path, capsys: pytest.CaptureFixture) -> dict:
    argv = ["--planner", planner, "--episodes", str(episodes), "--report", str(report), "--real-time-factor", "4"]
    assert evaluate_cli.main(argv) == 0, capsys.readouterr().err[-2000:]
    out = capsys.readouterr().out
    assert "collisions (episodes)" in out and "barrier: success" in out and "invalid episodes" in out
    return json.loads(report.read_text())


def _check_scene_report(report: dict) -> dict:
    for key in ("success_rate", "planning_time_p50", "planning_time_p95", "mean_jerk", "limit_violations",
                "collisions", "invalid_episodes", "per_template", "min_clearance", "min_clearance_median"):  # fmt: skip
        assert key in report, key
    assert report["episodes"] == 2 and report["valid_episodes"] == 1
    invalid = report["invalid_episodes"]
    assert invalid["count"] == 1 and invalid["episodes"][0]["index"] == 1
    assert invalid["episodes"][0]["reason"].startswith("collision at the start"), invalid
    assert report["per_template"]["blocked"] == {
        "episodes": 0, "successes": 0, "success_rate": None, "collisions": 0, "invalid": 1,
        "min_clearance_median": None,
    }  # fmt: skip
    row = report["rows"][1]
    assert row["valid"] is False and row["phases"] == {}  # nothing ran
    barrier = report["per_template"]["barrier"]
    assert barrier["episodes"] == 1 and barrier["invalid"] == 0
    # The rates are over the one valid episode only.
    assert report["success_rate"] == barrier["success_rate"] == float(report["rows"][0]["success"])
    return report["rows"][0]


def test_straight_collides_and_cem_does_not(
    ros_domain_id: int, scenes_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    straight = _evaluate("straight", scenes_file, tmp_path / "straight.json", capsys)
    row = _check_scene_report(straight)
    assert straight["collisions"] == 1 and row["collision"] and straight["success_rate"] == 0.0
    assert straight["min_clearance"] < 0.0  # penetration measured by mj_geomDistance
    assert straight["planning_time_p95"] < 0.05  # a formula, no search
    carry = row["phases"]["carry"]
    assert carry["tray_obstacle_contact"] or carry["arm_obstacle_contact"]

    cem = _evaluate("cem", scenes_file, tmp_path / "cem.json", capsys)
    row = _check_scene_report(cem)
    assert cem["collisions"] == 0 and not row["collision"], row["phases"]["carry"]["reasons"]
    assert cem["success_rate"] == 1.0 and cem["per_template"]["barrier"]["successes"] == 1
    assert cem["min_clearance"] > 0.0 and cem["limit_violations"] == 0
    assert cem["phases"]["carry"]["path_length"] > straight["phases"]["carry"]["path_length"]  # it went around
