"""The default checkpoint's metadata file (written by tools/pipeline.sh):

    python -m flow_planner_eval.pipeline_meta --data expert.npz --checkpoint default.safetensors
        [--finetuned finetuned.safetensors --finetune-data finetune.npz --finetune-command "..."]
        [--compare compare.json] [--compare-seed-2 compare_seed202.json] [--compare-tray-poses compare_tray.json]
        [--flow flow.json --cem cem.json --straight straight.json] --times stage_times.txt --train-command "..."
        --out default.json

Records the data set (trajectories, episodes, success rate, content hash as the training code computes it, file
SHA-256), the training command and result (epochs, final train / validation loss, parameters, samples/s), the
checkpoint's size and SHA-256, the fine-tuning (`finetuning`: its data set, command and result) when the shipped
checkpoint is a fine-tuned one, the per-stage wall times, and the evaluation:
- `evaluation.held_out_scenes` / `evaluation.held_out_seed_2` / `evaluation.tray_poses`: the one-run comparisons
  (`evaluate_compare` reports, flow_planner_eval.compare) on the held-out cluttered scenes (family seed 101), on
  those of a second held-out family seed (202: generalisation beyond one seed) and on the tray poses: per planner
  configuration its table row (success overall and per template, collisions, published limit violations, jerk,
  clearance, planning time p50/p95, seconds per episode), the ratios, the targets and the markdown table;
- `evaluation.flow`, `evaluation.cem`, `evaluation.straight`: the summary of each planner's evaluate report
  (--flow/--cem/--straight), or else of the held-out comparison's headline flow configuration (the node's default
  num_samples), the default CEM budget and the straight line; `evaluation.comparison`: flow vs CEM (and straight).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from flow_planner_eval.metrics import PHASES, write_report

SUMMARY_KEYS = (
    "episodes",
    "valid_episodes",
    "success_rate",
    "mean_jerk",
    "path_length",
    "limit_violations",
    "planning_time_p50",
    "planning_time_p95",
    "round_trip_time_p50",
    "round_trip_time_p95",
    "execution_steps",
    "episodes_file",
    "collisions",
    "min_clearance",
    "min_clearance_median",
    "per_template",
)
PHASE_SUMMARY_KEYS = (
    "success_rate",
    "ee_error_mean",
    "tray_error_mean",
    "mean_jerk",
    "path_length",
    "limit_violations",
    "planning_time_p50",
    "planning_time_p95",
)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def evaluation_summary(report: dict[str, Any]) -> dict[str, Any]:
    out = {k: report.get(k) for k in SUMMARY_KEYS}
    out["invalid_episodes"] = (report.get("invalid_episodes") or {}).get("count")
    out["phases"] = {p: {k: report["phases"][p].get(k) for k in PHASE_SUMMARY_KEYS} for p in PHASES}
    return out


#: What the metadata keeps of a comparison report (its per-configuration reports and rows stay in the report).
COMPARISON_KEYS = (
    "episodes_file", "episodes", "valid_episodes", "real_time_factor", "seed", "wall_time_s", "summary", "ratios",
    "targets", "cost_model_s_per_episode", "notes", "markdown",
)  # fmt: skip


def comparison_summary(comparison: dict[str, Any]) -> dict[str, Any]:
    out = {k: comparison.get(k) for k in COMPARISON_KEYS}
    out["invalid_episodes"] = (comparison.get("invalid_episodes") or {}).get("count")
    return out


def _comparison_reports(comparison: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{flow, cem, straight: the comparison's report (rows left out) of the headline flow configuration, the
    reference CEM budget and the straight line}, those it has."""
    reports = comparison.get("reports", {})
    names = {
        "flow": (comparison.get("targets") or {}).get("flow"),
        "cem": comparison.get("ratios", {}).get("cem_reference"),
        "straight": comparison.get("ratios", {}).get("straight_reference"),
    }
    return {key: reports[name] for key, name in names.items() if name in reports}


def dataset_summary(data_path: Path) -> dict[str, Any]:
    """A merged data set: trajectories, episodes, successes per phase, the training code's content hash, SHA-256."""
    from flow_planner_ros.learning.dataset import TrajectoryData

    with np.load(data_path, allow_pickle=False) as data:
        success, phase = data["success"].astype(bool), data["phase"].astype(int)
        grid = data["grid_index"]
        dataset = {
            "path": data_path.name,
            "trajectories": len(success),
            "episodes": len(np.unique(grid)),
            "successful_trajectories": int(success.sum()),
            "success_rate_by_phase": {
                name: float(success[phase == i].mean()) if np.any(phase == i) else None
                for i, name in enumerate(PHASES)
            },
            "file_sha256": sha256(data_path),
            "file_bytes": data_path.stat().st_size,
        }
    dataset["hash"] = TrajectoryData.load(data_path, use_phase=False, only_success=True).hash
    return dataset


def training_summary(checkpoint_meta: dict[str, Any], command: str) -> dict[str, Any]:
    """What a checkpoint's own training record says (epochs, losses, speed, data hash, model and flow config)."""
    training = checkpoint_meta.get("training", {})
    return {
        "command": command,
        "config": "config/flow_config.yaml",
        "epochs": training.get("epochs"),
        "final_train_loss": training.get("train_loss"),
        "final_val_loss": training.get("val_loss"),
        "num_parameters": training.get("num_parameters"),
        "samples_per_s": training.get("samples_per_s"),
        "elapsed_s": training.get("elapsed_s"),
        "data_hash": training.get("data_hash"),
        "model": checkpoint_meta.get("model"),
        "flow": checkpoint_meta.get("flow"),
    }


def build(args: argparse.Namespace) -> dict[str, Any]:
    """The metadata of --checkpoint (trained on --data), or of --finetuned (that checkpoint fine-tuned on
    --finetune-data; the shipped file then). --base-meta: the checkpoint's data set and training as an earlier run's
    metadata recorded them, for a fine-tuning run that no longer has that data (--data is then not read)."""
    from flow_planner_ros.learning.checkpoint import load_checkpoint

    ckpt_path = Path(args.checkpoint)
    base_meta = json.loads(Path(args.base_meta).read_text()) if getattr(args, "base_meta", None) else None
    if base_meta is not None:
        dataset, training = base_meta["dataset"], base_meta["training"]
    else:
        if not args.data:
            raise SystemExit("pipeline_meta: error: --data (or --base-meta) is required")
        dataset = dataset_summary(Path(args.data))
        dataset["collector"] = {"episodes": args.episodes, "shards": args.shards, "config": "config/collector.yaml"}
        training = training_summary(load_checkpoint(ckpt_path).meta, args.train_command)
    shipped = ckpt_path
    meta: dict[str, Any] = {"dataset": dataset, "training": training}
    finetuned = getattr(args, "finetuned", None)
    if finetuned:
        shipped = Path(finetuned)
        tuned = load_checkpoint(shipped).meta
        meta["finetuning"] = {
            "from": {"file": ckpt_path.name, "sha256": sha256(ckpt_path)},
            "dataset": {**dataset_summary(Path(args.finetune_data)), "collector": args.finetune_collector},
            "training": {**training_summary(tuned, args.finetune_command),
                         "learning_rate": tuned.get("training", {}).get("config", {}).get("learning_rate")},
        }  # fmt: skip
    meta = {
        "checkpoint": {"file": "default.safetensors", "sha256": sha256(shipped), "bytes": shipped.stat().st_size},
        **meta,
        "host": {"machine": platform.machine(), "python": sys.version.split()[0]},
    }
    if args.times and Path(args.times).is_file():
        meta["stage_wall_time_s"] = {
            name: float(sec)
            for name, sec in (line.split() for line in Path(args.times).read_text().splitlines() if line)
        }
    evaluation: dict[str, Any] = {}
    compare = getattr(args, "compare", None)
    held_out = json.loads(Path(compare).read_text()) if compare and Path(compare).is_file() else None
    if held_out is not None:
        evaluation["held_out_scenes"] = comparison_summary(held_out)
        for name, report in _comparison_reports(held_out).items():
            evaluation[name] = evaluation_summary(report)
    seed_2 = getattr(args, "compare_seed_2", None)
    if seed_2 and Path(seed_2).is_file():
        evaluation["held_out_seed_2"] = comparison_summary(json.loads(Path(seed_2).read_text()))
    tray = getattr(args, "compare_tray_poses", None)
    if tray and Path(tray).is_file():
        evaluation["tray_poses"] = comparison_summary(json.loads(Path(tray).read_text()))
    for name, path in (("flow", args.flow), ("cem", args.cem), ("straight", getattr(args, "straight", None))):
        if path and Path(path).is_file():  # an explicit report wins over the comparison's
            evaluation[name] = evaluation_summary(json.loads(Path(path).read_text()))
    if {"flow", "cem"} <= set(evaluation):
        f, c = evaluation["flow"], evaluation["cem"]

        def ratio(a: Any, b: Any) -> float | None:
            return float(a) / float(b) if a and b else None

        def points(a: Any, b: Any) -> float | None:
            return 100.0 * (float(a) - float(b)) if a is not None and b is not None else None

        evaluation["comparison"] = {
            "success_rate_difference_points": points(f["success_rate"], c["success_rate"]),
            "jerk_ratio_flow_over_cem": ratio(f["mean_jerk"], c["mean_jerk"]),
            "planning_time_speedup_p50": ratio(c["planning_time_p50"], f["planning_time_p50"]),
        }
        if "straight" in evaluation:
            straight = evaluation["straight"]["success_rate"]
            evaluation["comparison"]["success_vs_straight_points"] = points(f["success_rate"], straight)
    meta["evaluation"] = evaluation
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pipeline_meta", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="the merged data set --checkpoint was trained on")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--base-meta", default=None, help="an earlier run's metadata of --checkpoint (no --data)")
    parser.add_argument("--finetuned", default=None, help="--checkpoint fine-tuned (the checkpoint shipped)")
    parser.add_argument("--finetune-data", default=None, help="the merged data set of the fine-tuning")
    parser.add_argument("--finetune-command", default="")
    parser.add_argument("--finetune-collector", default="", help="how the fine-tuning data was collected")
    parser.add_argument("--flow", default=None)
    parser.add_argument("--cem", default=None)
    parser.add_argument("--straight", default=None, help="the straight-line baseline's evaluate report")
    parser.add_argument("--compare", default=None, help="evaluate_compare report on the held-out cluttered scenes")
    parser.add_argument(
        "--compare-seed-2", default=None, help="evaluate_compare report on a second held-out family seed's scenes"
    )
    parser.add_argument("--compare-tray-poses", default=None, help="evaluate_compare report on the tray poses")
    parser.add_argument("--times", default=None)
    parser.add_argument("--episodes", type=int, default=None)
    parser.add_argument("--shards", type=int, default=None)
    parser.add_argument("--train-command", default="")
    parser.add_argument("--work", default=None)
    parser.add_argument("--note", action="append", default=[], help="a free-text note (repeatable)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.finetuned and not args.finetune_data:
        parser.error("--finetuned needs --finetune-data")
    meta = build(args)
    if args.note:
        meta["notes"] = list(args.note)
    write_report(args.out, meta)
    print(json.dumps(meta.get("evaluation", {}).get("comparison", {}), indent=1))
    for key in ("held_out_scenes", "held_out_seed_2", "tray_poses"):
        if meta.get("evaluation", {}).get(key, {}).get("markdown"):
            print(f"{key}:\n{meta['evaluation'][key]['markdown']}")
    print(f"metadata: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
