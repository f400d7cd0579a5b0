"""Closed-loop evaluation: the episodes file, the metrics and the report (ROS-free), bad input of the `evaluate`
CLI, and one real episode per planner through the in-process bridge over DDS (flow: the planner node as a process
with a small checkpoint trained here)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from flow_planner_common.motion import min_jerk_waypoints
from flow_planner_common.robot import DEFAULT_DT, HOME_POSITIONS, JOINT_POSITION_LIMITS, NUM_JOINTS
from flow_planner_eval.cli import evaluate as evaluate_cli
from flow_planner_eval.episodes_file import EpisodesError, load_episodes
from flow_planner_eval.metrics import (
    mean_jerk,
    path_length,
    summarize,
    table,
    waypoint_limit_violations,
    write_report,
)

WORKSPACE = Path(__file__).resolve().parents[3]
BOX = ((0.42, 0.58), (-0.08, 0.08))
REPORT_KEYS = ("success_rate", "episodes", "phases", "mean_jerk", "path_length", "limit_violations",
               "planning_time_p50", "planning_time_p95", "rows")  # fmt: skip
PHASE_KEYS = ("success_rate", "ee_error_mean", "tray_error_mean", "mean_jerk", "path_length", "limit_violations",
              "planning_time_p50", "planning_time_p95")  # fmt: skip


def test_shipped_episodes_file_is_held_out(tmp_path: Path) -> None:
    episodes = load_episodes(WORKSPACE / "config" / "eval_episodes.yaml", *BOX)
    assert len(episodes) >= 10
    uv = episodes.uvyaw[:, :2]
    # The collector's 10 x 10 grid puts tray centres at cell centres (k + 0.5) / 10: every held-out pose is off it.
    off_grid = np.abs(uv * 10 - np.floor(uv * 10) - 0.5) > 0.25
    assert np.all(np.any(off_grid, axis=1))
    x, y, yaw = episodes.xy_yaw(0)
    assert BOX[0][0] <= x <= BOX[0][1] and BOX[1][0] <= y <= BOX[1][1] and abs(yaw) <= math.radians(15)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("tray_poses: [[0.5, 0.5, 0.0], [1.2, 0.5, 0.0]]", r"tray_poses\[1\]: u and v must be in \[0, 1\]"),
        ("tray_poses: [[0.5, -0.1, 0.0]]", "u and v must be in"),
        ("tray_poses: [[0.5, 0.5]]", "3 finite numbers"),
        ("tray_poses: []", "non-empty list"),
        ("poses: [[0.5, 0.5, 0.0]]", "'tray_poses'"),
        ("tray_poses: [[0.5, 0.5, 0.0]\n  bad: [", "not valid YAML"),
        ("tray_poses: [[0.5, 0.5, 0.0]]\nworkspace_x: [0.6, 0.4]", "workspace_x"),
    ],
)
def test_bad_episodes_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "episodes.yaml"
    path.write_text(text)
    with pytest.raises(EpisodesError, match=match):
        load_episodes(path, *BOX)
    with pytest.raises(EpisodesError, match="not found"):
        load_episodes(tmp_path / "missing.yaml", *BOX)


def test_uv_maps_onto_the_workspace_box(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text("tray_poses: [[0, 0, 0.1], [1, 1, -0.1], [0.5, 0.25, 0]]\nworkspace_x: [0.4, 0.6]\n")
    episodes = load_episodes(path, *BOX)
    assert episodes.xy_yaw(0) == pytest.approx((0.4, -0.08, 0.1))
    assert episodes.xy_yaw(1) == pytest.approx((0.6, 0.08, -0.1))
    assert episodes.xy_yaw(2) == pytest.approx((0.5, -0.04, 0.0))
    assert len(load_episodes(path, *BOX, limit=1)) == 1


def test_metrics() -> None:
    start = HOME_POSITIONS.copy()
    goal = start + 0.5
    positions, velocities = min_jerk_waypoints(start, goal, DEFAULT_DT)
    smooth = mean_jerk(start, np.zeros(NUM_JOINTS), positions, DEFAULT_DT)
    noisy = positions + np.random.default_rng(0).normal(0, 0.01, positions.shape)
    assert 0 < smooth < mean_jerk(start, np.zeros(NUM_JOINTS), noisy, DEFAULT_DT)
    # A jump away from the start counts.
    assert mean_jerk(start - 0.2, np.zeros(NUM_JOINTS), positions, DEFAULT_DT) > 10 * smooth
    assert path_length(start, positions) == pytest.approx(0.5 * math.sqrt(NUM_JOINTS), rel=1e-6)
    assert waypoint_limit_violations(positions, velocities) == 0
    bad = positions.copy()
    bad[3, 2] = JOINT_POSITION_LIMITS[2, 1] + 0.1
    fast = velocities.copy()
    fast[5:7, 0] = 4.0
    assert waypoint_limit_violations(bad, fast) == 3


def _phase(success: bool, time: float) -> dict:
    return {
        "success": success, "reasons": [] if success else ["end effector off target"], "ee_error": 0.01,
        "tray_error": 0.005, "tray_angle_error": 0.01, "mean_jerk": 2.0, "path_length": 3.0, "limit_violations": 0,
        "planning_times": [time], "round_trip_times": [],
    }  # fmt: skip


def test_summary_and_report_are_strict_json(tmp_path: Path) -> None:
    rows = [
        {
            "index": i,
            "success": i != 1,
            "phases": {"reach": _phase(True, 0.01 * (i + 1)), "carry": _phase(i != 1, 0.02)},
        }
        for i in range(4)
    ]
    report = summarize("flow", rows, {"wall_time_s": 1.0, "round_trip_time_p50": float("nan")})
    for key in REPORT_KEYS:
        assert key in report
    for phase in ("reach", "carry"):
        for key in PHASE_KEYS:
            assert key in report["phases"][phase]
    assert report["success_rate"] == pytest.approx(0.75)
    assert report["phases"]["reach"]["success_rate"] == 1.0
    assert report["phases"]["carry"]["failure_reasons"] == ["end effector off target"]
    path = write_report(tmp_path / "r.json", report)
    loaded = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert loaded["round_trip_time_p50"] is None


def test_invalid_episodes_are_reported_and_left_out_of_the_rates(tmp_path: Path) -> None:
    def row(i: int, template: str, success: bool, collision: bool, clearance: float | None) -> dict:
        phase = _phase(success, 0.01) | {"arm_obstacle_contact": False, "tray_obstacle_contact": collision}
        return {"index": i, "template": template, "valid": True, "success": success, "collision": collision,
                "min_clearance": clearance, "phases": {"reach": _phase(True, 0.01), "carry": phase}}  # fmt: skip

    rows = [
        row(0, "barrier", False, True, -0.004),
        row(1, "barrier", True, False, 0.012),
        row(2, "empty", True, False, None),
        {"index": 3, "template": "barrier", "valid": False, "invalid_reason": "collision at the start: tray-obstacle",
         "success": False, "phases": {}},
    ]  # fmt: skip
    report = summarize("straight", rows, {})
    assert report["episodes"] == 4 and report["valid_episodes"] == 3
    assert report["success_rate"] == pytest.approx(2 / 3)  # the invalid episode is not a failure
    assert report["collisions"] == 1 and report["phases"]["carry"]["collisions"] == 1
    assert report["min_clearance"] == pytest.approx(-0.004) and report["min_clearance_median"] == pytest.approx(0.004)
    assert report["invalid_episodes"] == {
        "count": 1, "episodes": [{"index": 3, "template": "barrier", "reason": "collision at the start: tray-obstacle"}]
    }  # fmt: skip
    barrier = report["per_template"]["barrier"]
    assert (barrier["episodes"], barrier["successes"], barrier["collisions"], barrier["invalid"]) == (2, 1, 1, 1)
    assert barrier["success_rate"] == 0.5 and report["per_template"]["empty"]["min_clearance_median"] is None
    text = table([report])
    assert "barrier: success" in text and "1/2" in text and "collisions (episodes)" in text
    json.loads(write_report(tmp_path / "r.json", report).read_text())


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tray_poses: [[0.5, 1.5, 0.0]]\n")
    good = tmp_path / "good.yaml"
    good.write_text("tray_poses: [[0.5, 0.5, 0.0]]\n")
    cases = [
        ["--planner", "cem", "--episodes", str(tmp_path / "missing.yaml"), "--report", str(tmp_path / "r.json")],
        ["--planner", "cem", "--episodes", str(bad), "--report", str(tmp_path / "r.json")],
        ["--planner", "flow", "--episodes", str(good), "--report", str(tmp_path / "r.json"),
         "--checkpoint", str(tmp_path / "missing.safetensors")],
        ["--planner", "flow", "--episodes", str(good), "--report", str(tmp_path / "r.json"), "--execution-steps", "0"],
    ]  # fmt: skip
    for argv in cases:
        assert evaluate_cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("evaluate: error:") and "\n" not in err, err
    assert not (tmp_path / "r.json").exists()


# ------------------------------------------------------------------------------------------- closed loop, DDS
def _weak_checkpoint(folder: Path) -> Path:
    """A flow checkpoint trained for one epoch on the synthetic set: its samples are far from these requests."""
    from flow_planner_ros.learning.synthetic import write_synthetic_dataset
    from flow_planner_ros.learning.training import train
    from flow_planner_ros.learning.training_config import load_config

    data = write_synthetic_dataset(folder / "synthetic.npz", 64, seed=0)
    overrides = {"model": {"type": "unet", "unet": {"hidden_dims": [16, 32]}}, "training": {"epochs": 1}}
    out = folder / "weak.safetensors"
    train(data, load_config(None, overrides), out, progress_bar=False, log=lambda *_: None)
    return out


def _default_checkpoint() -> Path | None:
    try:
        from flow_planner_ros.node.planner_node import default_checkpoint_path

        path = default_checkpoint_path()
    except Exception:  # not installed
        return None
    return path if path.is_file() else None


def _check_report(report: dict, planner: str) -> None:
    for key in REPORT_KEYS:
        assert key in report, key
    assert report["planner"] == planner and report["episodes"] == 1 and len(report["rows"]) == 1
    row = report["rows"][0]
    for phase in ("reach", "carry"):
        assert set(PHASE_KEYS) <= set(report["phases"][phase])
        p = row["phases"][phase]
        assert p["plans_published"] >= 1, p["reasons"]
        assert p["planning_times"] and all(t > 0 for t in p["planning_times"])
        assert math.isfinite(p["ee_error"]) and math.isfinite(p["mean_jerk"]) and p["path_length"] > 0.1
    assert report["limit_violations"] == 0
    assert 0.0 <= report["success_rate"] <= 1.0


def test_cem_episode_through_the_bridge(ros_domain_id: int, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    episodes = tmp_path / "one.yaml"
    episodes.write_text("tray_poses: [[0.3, 0.6, 0.1]]\n")
    report_path = tmp_path / "cem.json"
    argv = ["--planner", "cem", "--episodes", str(episodes), "--report", str(report_path), "--plots",
            str(tmp_path / "plots"), "--video", str(tmp_path / "video"), "--video-episodes", "1"]  # fmt: skip
    assert evaluate_cli.main(argv) == 0, capsys.readouterr().err[-2000:]
    report = json.loads(report_path.read_text())
    _check_report(report, "cem")
    # The expert solves an in-workspace pose: both phases succeed, the tray ends at its goal.
    assert report["success_rate"] == 1.0, report["rows"][0]
    assert report["phases"]["carry"]["tray_error_mean"] < 0.02
    assert sorted(p.name for p in (tmp_path / "plots").glob("*.png")) == ["joint_curves.png", "success_per_episode.png"]
    video = tmp_path / "video" / "evaluate_cem.mp4"
    assert video.is_file() and video.stat().st_size > 10_000


def test_rrt_episode_through_the_bridge(ros_domain_id: int, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """OMPL's RRTConnect, checked by the planner's final check, reaches and carries on an in-workspace pose."""
    episodes = tmp_path / "one.yaml"
    episodes.write_text("tray_poses: [[0.3, 0.6, 0.1]]\n")
    report_path = tmp_path / "rrt.json"
    argv = ["--planner", "rrt", "--episodes", str(episodes), "--report", str(report_path), "--rrt-time-limit", "5"]
    assert evaluate_cli.main(argv) == 0, capsys.readouterr().err[-2000:]
    report = json.loads(report_path.read_text())
    _check_report(report, "rrt")
    assert report["rrt_time_limit"] == 5.0 and report["planner_sees_obstacles"]
    assert report["success_rate"] == 1.0, report["rows"][0]
    assert report["phases"]["carry"]["tray_error_mean"] < 0.02
    assert report["published_limit_violations"] == 0 and report["collisions"] == 0


@pytest.mark.skipif(_default_checkpoint() is None, reason="no default checkpoint installed (tools/pipeline.sh --ship)")
def test_flow_episode_with_the_default_checkpoint(
    ros_domain_id: int, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    episodes = tmp_path / "one.yaml"
    episodes.write_text("tray_poses: [[0.5, 0.5, 0.0]]\n")
    report_path = tmp_path / "flow.json"
    argv = ["--planner", "flow", "--episodes", str(episodes), "--report", str(report_path)]
    assert evaluate_cli.main(argv) == 0, capsys.readouterr().err[-2000:]
    report = json.loads(report_path.read_text())
    _check_report(report, "flow")
    assert report["checkpoint"] == str(_default_checkpoint())
    assert report["round_trip_time_p50"] >= report["planning_time_p50"] > 0


def test_flow_refusals_are_reported_and_nothing_is_published(
    ros_domain_id: int, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    episodes = tmp_path / "one.yaml"
    episodes.write_text("tray_poses: [[0.5, 0.5, 0.0]]\n")
    report_path = tmp_path / "flow.json"
    argv = ["--planner", "flow", "--checkpoint", str(_weak_checkpoint(tmp_path)), "--episodes", str(episodes),
            "--report", str(report_path), "--backend", "torch"]  # fmt: skip
    assert evaluate_cli.main(argv) == 0, capsys.readouterr().err[-2000:]
    report = json.loads(report_path.read_text())
    assert report["success_rate"] == 0.0 and report["limit_violations"] == 0
    reach = report["rows"][0]["phases"]["reach"]
    assert not reach["success"] and reach["plans_published"] == 0
    # "no safe candidate among N: ..." (refinement off) or "no safe sample among N (...), nor among M refined ..."
    assert reach["reasons"][0].startswith(("planner: no safe candidate", "planner: no safe sample")), reach["reasons"]
