"""The one-run comparison (`evaluate_compare`, flow_planner_eval.compare): its configurations, the report,
ratios, targets, table and plot from known per-planner reports (ROS-free), the checkpoint metadata holding the
table (pipeline_meta), and one real run of every configuration on one cluttered scene (plus an invalid one) through
the in-process bridge over DDS, the flow configurations with the installed default checkpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from flow_planner_eval.compare import (
    CompareOptions,
    comparison_report,
    default_configs,
    markdown,
    run_order,
)
from flow_planner_eval.metrics import summarize, write_report
from flow_planner_eval.plots import write_comparison_plot

SUMMARY_KEYS = ("success_rate", "per_template", "collisions", "published_limit_violations", "mean_jerk",
                "min_clearance_p5", "min_clearance_median", "planning_time_p50", "planning_time_p95",
                "seconds_per_episode")  # fmt: skip


def test_configurations_and_their_order() -> None:
    configs, notes = default_configs(node_has=lambda name: name == "refine_iterations")
    names = [c.name for c in configs]
    assert names == ["straight", "flow-1", "flow-8", "flow-32", "flow-32-raw", "cem-1", "cem-2", "cem-5", "cem-10"]
    assert notes == []
    by_name = {c.name: c for c in configs}
    assert by_name["flow-8"].default and not by_name["flow-32"].default  # the node's default num_samples
    assert by_name["flow-32-raw"].node_parameters == (("refine_iterations", "0"),)
    assert by_name["cem-5"].default  # CEMConfig's budget
    budgets = [(by_name[f"cem-{b}"].cem_iterations, by_name[f"cem-{b}"].cem_route_iterations) for b in (1, 2, 5, 10)]
    assert budgets == [(1, 1), (2, 2), (5, 4), (10, 8)]
    # Flow first (node defaults, then the process with other parameters), then straight, then CEM by budget.
    assert [c.name for c in run_order(configs)] == [
        "flow-1", "flow-8", "flow-32", "flow-32-raw", "straight", "cem-1", "cem-2", "cem-5", "cem-10"
    ]  # fmt: skip
    configs, notes = default_configs((8,), (5,), (32,), straight=False, node_has=lambda name: False)
    assert [c.name for c in configs] == ["flow-8", "cem-5"] and "refine_iterations" in notes[0]
    configs, notes = default_configs((8,), (5,), (), rrt_time_limits=(2.0, 0.5), fallback_samples=(8,))
    assert [c.name for c in configs] == ["straight", "flow-8", "flow-8+rrt", "rrt", "rrt-0.5s", "cem-5"] and not notes
    assert [c.name for c in run_order(configs)] == ["flow-8", "flow-8+rrt", "straight", "rrt", "rrt-0.5s", "cem-5"]
    assert configs[2].node_parameters == (("fallback_planner", "rrt"),) and configs[4].rrt_time_limit == 0.5
    with pytest.raises(ValueError, match="RRT time limits"):
        default_configs((), (), (), rrt_time_limits=(0.0,))
    with pytest.raises(ValueError, match="duplicate"):
        default_configs((8, 8), ())
    with pytest.raises(ValueError, match=">= 1"):
        default_configs((0,), ())


def _row(i: int, template: str, success: bool, collision: bool, time: float, clearance: float | None) -> dict:
    def phase(ok: bool, violations: int = 0) -> dict:
        return {
            "success": ok, "reasons": [] if ok else ["tray off target"], "ee_error": 0.01, "tray_error": 0.005,
            "tray_angle_error": 0.01, "mean_jerk": 0.5, "path_length": 3.0, "limit_violations": violations,
            "published_limit_violations": violations, "sim_limit_excess": False, "planning_times": [time],
            "round_trip_times": [], "arm_obstacle_contact": False, "tray_obstacle_contact": collision,
        }  # fmt: skip

    return {"index": i, "template": template, "valid": True, "success": success, "collision": collision,
            "min_clearance": clearance, "phases": {"reach": phase(True), "carry": phase(success)}}  # fmt: skip


def _comparison(tmp_path: Path) -> dict:
    """A comparison of known reports: 4 scenes (2 barrier, 2 empty) and an invalid one."""
    configs, _ = default_configs((1, 8), (1, 5), (), node_has=lambda name: False)
    invalid = {"index": 4, "template": "barrier", "valid": False, "invalid_reason": "collision at the start",
               "success": False, "phases": {}}  # fmt: skip
    outcomes = {  # per config: (successes per scene, collisions per scene, planning time s, clearance of scene 0)
        "straight": ((0, 0, 1, 1), (1, 1, 0, 0), 1e-4, -0.005),
        "flow-1": ((1, 0, 1, 1), (0, 1, 0, 0), 0.010, 0.004),
        "flow-8": ((1, 1, 1, 1), (0, 0, 0, 0), 0.030, 0.012),
        "cem-1": ((1, 0, 1, 1), (0, 1, 0, 0), 0.200, 0.002),
        "cem-5": ((1, 1, 1, 1), (0, 0, 0, 0), 0.900, 0.015),
    }
    reports, files = {}, {}
    for name, (ok, hit, t, clearance) in outcomes.items():
        rows = [_row(i, "barrier" if i < 2 else "empty", bool(ok[i]), bool(hit[i]), t * (1 + 0.1 * i),
                     (clearance, 0.02)[i] if i < 2 else None) for i in range(4)] + [invalid]  # fmt: skip
        reports[name] = summarize(name, rows, {"seconds_per_episode": 2.0, "episodes_file": "scenes.yaml"})
        files[name] = str(tmp_path / f"compare_{name}.json")
    options = CompareOptions(tmp_path / "compare.json", meta={"episodes_file": "scenes.yaml"})
    return comparison_report(configs, reports, files, 12.0, options)


def test_report_ratios_targets_table_and_plot(tmp_path: Path) -> None:
    comparison = _comparison(tmp_path)
    assert comparison["episodes"] == 5 and comparison["valid_episodes"] == 4
    assert comparison["invalid_episodes"]["count"] == 1
    assert list(comparison["summary"]) == ["straight", "flow-1", "flow-8", "cem-1", "cem-5"]
    for summary in comparison["summary"].values():
        assert set(SUMMARY_KEYS) <= set(summary)
    flow8 = comparison["summary"]["flow-8"]
    assert flow8["success_rate"] == 1.0 and flow8["successes"] == 4 and flow8["collisions"] == 0
    assert flow8["per_template"]["barrier"] == {"episodes": 2, "successes": 2, "success_rate": 1.0, "collisions": 0}
    assert flow8["min_clearance"] == pytest.approx(0.012) and flow8["min_clearance_median"] == pytest.approx(0.016)
    assert comparison["summary"]["straight"]["collisions"] == 2
    ratios = comparison["ratios"]
    assert ratios["cem_reference"] == "cem-5" and ratios["straight_reference"] == "straight"
    assert ratios["flow"]["flow-8"]["success_vs_straight_points"] == pytest.approx(50.0)
    assert ratios["flow"]["flow-1"]["success_vs_cem_points"] == pytest.approx(-25.0)
    assert ratios["flow"]["flow-8"]["planning_p50_speedup_vs_cem"] == pytest.approx(30.0, rel=0.05)
    targets = comparison["targets"]
    assert targets["flow"] == "flow-8"
    aims = ("success_vs_cem_points", "success_vs_straight_points", "planning_p50_speedup_vs_cem", "collisions",
            "published_limit_violations")  # fmt: skip
    assert all(targets[k]["met"] for k in aims)
    assert comparison["cost_model_s_per_episode"]["cem-5"] == 2.0
    text = markdown(comparison)
    assert text.splitlines()[0].startswith("| config | success | barrier | empty | collisions")
    assert "| **flow-8** | 4/4 (100 %) | 2/2 | 2/2 | 0 | 0 |" in text and "| **cem-5** |" in text
    assert "targets (flow-8 vs cem-5)" in text and "(not met)" not in text
    write_report(tmp_path / "compare.json", comparison)
    json.loads((tmp_path / "compare.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    plot = write_comparison_plot(comparison, tmp_path / "compare.png")
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pipeline_metadata_holds_the_comparison_table(tmp_path: Path) -> None:
    from flow_planner_eval import pipeline_meta
    from flow_planner_ros.learning.synthetic import write_synthetic_dataset
    from flow_planner_ros.learning.training import train
    from flow_planner_ros.learning.training_config import load_config

    data = write_synthetic_dataset(tmp_path / "data.npz", 64, seed=0)
    checkpoint = tmp_path / "default.safetensors"
    overrides = {"model": {"type": "unet", "unet": {"hidden_dims": [16, 32]}}, "training": {"epochs": 1}}
    train(data, load_config(None, overrides), checkpoint, progress_bar=False, log=lambda *_: None)
    comparison = _comparison(tmp_path)
    comparison["markdown"] = markdown(comparison)
    write_report(tmp_path / "compare.json", comparison)
    tray = _comparison(tmp_path) | {"episodes_file": "config/eval_episodes.yaml"}
    write_report(tmp_path / "tray.json", tray)
    seed_2 = _comparison(tmp_path) | {"episodes_file": "config/eval_scenes_seed202.yaml"}
    write_report(tmp_path / "seed202.json", seed_2)
    out = tmp_path / "default.json"
    argv = ["--data", str(data), "--checkpoint", str(checkpoint), "--compare", str(tmp_path / "compare.json"),
            "--compare-seed-2", str(tmp_path / "seed202.json"), "--compare-tray-poses", str(tmp_path / "tray.json"),
            "--out", str(out)]  # fmt: skip
    assert pipeline_meta.main(argv) == 0
    meta = json.loads(out.read_text())
    evaluation = meta["evaluation"]
    held_out = evaluation["held_out_scenes"]
    assert held_out["episodes_file"] == "scenes.yaml" and held_out["valid_episodes"] == 4
    assert held_out["invalid_episodes"] == 1
    assert set(held_out["summary"]) == {"straight", "flow-1", "flow-8", "cem-1", "cem-5"}
    assert held_out["summary"]["flow-8"]["per_template"]["barrier"]["successes"] == 2
    assert held_out["targets"]["flow"] == "flow-8" and "| **flow-8** |" in held_out["markdown"]
    assert evaluation["tray_poses"]["episodes_file"] == "config/eval_episodes.yaml"
    assert evaluation["held_out_seed_2"]["episodes_file"] == "config/eval_scenes_seed202.yaml"
    assert set(evaluation["held_out_seed_2"]["summary"]) == set(held_out["summary"])
    # The keys of the separate evaluate reports stay: flow, cem, straight and their comparison.
    assert evaluation["flow"]["success_rate"] == 1.0 and evaluation["straight"]["success_rate"] == 0.5
    assert evaluation["cem"]["planning_time_p50"] == pytest.approx(comparison["summary"]["cem-5"]["planning_time_p50"])
    assert evaluation["comparison"]["success_rate_difference_points"] == pytest.approx(0.0)
    assert evaluation["comparison"]["success_vs_straight_points"] == pytest.approx(50.0)
    assert evaluation["comparison"]["planning_time_speedup_p50"] > 20
    assert meta["checkpoint"]["file"] == "default.safetensors" and meta["dataset"]["trajectories"] == 64
    # Old form: separate evaluate reports only.
    flow_report = tmp_path / "flow.json"
    write_report(flow_report, comparison["reports"]["flow-8"])
    argv = ["--data", str(data), "--checkpoint", str(checkpoint), "--flow", str(flow_report), "--cem",
            str(flow_report), "--out", str(out)]  # fmt: skip
    assert pipeline_meta.main(argv) == 0
    evaluation = json.loads(out.read_text())["evaluation"]
    assert set(evaluation) == {"flow", "cem", "comparison"}
    # A fine-tuned checkpoint: the base's data and training from its earlier metadata, the fine-tuning's own.
    more = write_synthetic_dataset(tmp_path / "more.npz", 32, seed=1)
    tuned = tmp_path / "tuned.safetensors"
    train(more, load_config(None, overrides), tuned, progress_bar=False, log=lambda *_: None, init=checkpoint)
    argv = ["--checkpoint", str(checkpoint), "--base-meta", str(out), "--finetuned", str(tuned), "--finetune-data",
            str(more), "--finetune-command", "train --init", "--out", str(tmp_path / "tuned.json")]  # fmt: skip
    assert pipeline_meta.main(argv) == 0
    tuned_meta = json.loads((tmp_path / "tuned.json").read_text())
    assert tuned_meta["dataset"]["trajectories"] == 64 and tuned_meta["finetuning"]["dataset"]["trajectories"] == 32
    assert tuned_meta["checkpoint"]["sha256"] == pipeline_meta.sha256(tuned)
    assert tuned_meta["finetuning"]["from"]["sha256"] == pipeline_meta.sha256(checkpoint)
    assert tuned_meta["finetuning"]["training"]["command"] == "train --init"
    with pytest.raises(SystemExit):  # --finetuned without its data
        pipeline_meta.main(["--checkpoint", str(checkpoint), "--data", str(data), "--finetuned", str(tuned),
                            "--out", str(tmp_path / "x.json")])  # fmt: skip


def _default_checkpoint() -> Path | None:
    try:
        from flow_planner_ros.node.planner_node import default_checkpoint_path

        path = default_checkpoint_path()
    except Exception:  # not installed
        return None
    return path if path.is_file() else None


#: A box through the tray resting at (0.5, 0, yaw 0): the scene collides at the start (invalid, not counted).
INVALID = """  - tray_start: [0.5, 0.0, 0.0]
    tray_goal: [0.5, 0.0, 0.96, 0.0]
    obstacles:
      - {center: [0.5, 0.0, 0.77], size: [0.1, 0.1, 0.06], yaw: 0.0}
    template: blocked
"""


@pytest.mark.skipif(_default_checkpoint() is None, reason="no default checkpoint installed (tools/pipeline.sh --ship)")
def test_every_configuration_in_one_run(ros_domain_id: int, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from flow_planner_eval.cli import evaluate_compare
    from flow_planner_eval.make_scenes import generate, scene_yaml

    scenes, _ = generate(1, 1, "barrier")
    episodes = tmp_path / "scenes.yaml"
    episodes.write_text("episodes:\n" + scene_yaml(scenes[0]) + INVALID)
    report_path = tmp_path / "out" / "compare.json"
    argv = ["--episodes", str(episodes), "--report", str(report_path), "--cem-budgets", "1,5", "--quiet",
            "--flow-unrefined", "", "--video", str(tmp_path / "video"), "--video-episodes", "1"]  # fmt: skip
    assert evaluate_compare.main(argv) == 0, capsys.readouterr().err[-2000:]
    out = capsys.readouterr().out
    report = json.loads(report_path.read_text())
    names = [c["name"] for c in report["configs"]]
    assert names == ["straight", "flow-1", "flow-8", "flow-32", "flow-8+rrt", "rrt", "cem-1", "cem-5"]
    assert set(report["summary"]) == set(names)
    assert report["episodes"] == 2 and report["valid_episodes"] == 1 and report["invalid_episodes"]["count"] == 1
    for name in names:
        s = report["summary"][name]
        assert set(SUMMARY_KEYS) <= set(s), name
        assert s["valid_episodes"] == 1 and s["per_template"]["barrier"]["episodes"] == 1
        assert s["published_limit_violations"] == 0, name  # nothing unsafe is ever published
        assert s["planning_time_p50"] > 0 and s["seconds_per_episode"] > 0
        full = json.loads(Path(report["report_files"][name]).read_text())
        assert full["planner"] == name and len(full["rows"]) == 2 and full["config"]["name"] == name
    assert report["summary"]["flow-1"]["planning_time_p50"] < report["summary"]["flow-32"]["planning_time_p50"]
    assert report["summary"]["straight"]["planning_time_p95"] < 0.05
    assert report["summary"]["cem-5"]["planning_time_p50"] > report["summary"]["straight"]["planning_time_p50"]
    assert report["ratios"]["cem_reference"] == "cem-5" and report["targets"]["flow"] == "flow-8"
    assert report["ratios"]["rrt_reference"] == "rrt" and "success_vs_rrt_points" in report["ratios"]["flow"]["flow-8"]
    assert report["reports"]["flow-8+rrt"]["config"]["node_parameters"] == [["fallback_planner", "rrt"]]
    assert math.isfinite(report["ratios"]["flow"]["flow-8"]["planning_p50_speedup_vs_cem"])
    assert Path(report["plot"]).stat().st_size > 10_000
    assert (tmp_path / "out" / "compare.md").read_text().startswith("| config | success |")
    assert "| **flow-8** |" in out and "targets (flow-8 vs cem-5)" in out
    videos = sorted(p.name for p in (tmp_path / "video").glob("*.mp4"))
    assert videos == ["evaluate_cem-5.mp4", "evaluate_flow-8.mp4", "evaluate_straight.mp4"]
