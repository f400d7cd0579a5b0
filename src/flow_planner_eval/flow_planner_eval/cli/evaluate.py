"""evaluate --planner straight|cem|flow|rrt --episodes FILE.yaml --report OUT.json [--checkpoint CKPT] [--video DIR]
[--execution-steps K] [--plots DIR] [--rrt-time-limit S]: closed-loop evaluation of a planner on tray episodes in
the physics sim.

For each episode of the episodes file (flow_planner_eval.episodes_file: scenes with a tray start, a carry goal and
boxes, or the old tray poses) it places the scene's boxes, validates the scene, and runs a full reach -> attach ->
carry episode (flow_planner_eval.runner) through the same ROS 2 interfaces a real robot gets: the MuJoCo
bridge in this process, the flow planner as its own process over DDS, the CEM expert, OMPL's RRTConnect and
the straight-line baseline publishing on the controller topics (flow_planner_eval.harness). The report
(flow_planner_eval.metrics) is written as JSON and printed as a table; --plots and --video add PNG plots and an
MP4.

Bad input (missing files, bad or oversized YAML, anchors/aliases, u/v outside [0, 1], a workspace off the table, bad
scenes: non-finite numbers, wrong lengths, unknown keys, box sizes, too many boxes; a bad checkpoint) gives one short
line on stderr and exit code 2; a failure of the bridge or the planner at run time gives one line and exit code 1.
An episode whose scene is not valid (unreachable, in collision at the start, the grasp or the goal) is not an error:
it is reported as invalid and left out of the rates.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

from flow_planner_common.safe_yaml import truncate
from flow_planner_ros.cli.common import run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--planner", required=True, choices=("straight", "cem", "flow", "rrt"),
        help="straight: min-jerk joint line to the IK goal (no search); cem: the expert; flow: the planner node; "
        "rrt: OMPL RRTConnect with the planner's final check",
    )  # fmt: skip
    parser.add_argument(
        "--episodes", required=True, help="episodes YAML (episodes: [{tray_start, tray_goal, obstacles}, ...])"
    )
    parser.add_argument("--report", required=True, help="report JSON to write")
    parser.add_argument("--checkpoint", default=None, help="flow checkpoint (default: the installed default)")
    parser.add_argument("--video", default=None, help="folder for an MP4 of the first --video-episodes episodes")
    parser.add_argument("--video-episodes", type=int, default=3)
    parser.add_argument("--plots", default=None, help="folder for PNG plots (success/error per episode, joints)")
    parser.add_argument("--execution-steps", type=int, default=60, help="flow: planner execution_steps (1..60)")
    parser.add_argument("--num-samples", type=int, default=0, help="flow: best-of-N (0 = the planner's default)")
    parser.add_argument("--integration-steps", type=int, default=0, help="flow: Euler steps (0 = default)")
    parser.add_argument("--backend", choices=("onnx", "torch"), default=None, help="flow: planner backend")
    parser.add_argument("--rrt-time-limit", type=float, default=2.0, help="rrt: planning time limit per phase (s)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N episodes")
    parser.add_argument("--seed", type=int, default=0, help="seeds IK restarts, CEM and flow sampling")
    parser.add_argument(
        "--real-time-factor", type=float, default=1.0,
        help="bridge speed (1 = real time). != 1: the bridge publishes /clock and the planner uses sim time",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no per-episode lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_cli("evaluate", lambda: _body(args))
    except RuntimeError as exc:  # the bridge or the planner failed at run time (not bad input)
        print(f"evaluate: failed: {truncate(str(exc), 2000)}", file=sys.stderr)
        return 1


def _body(args: argparse.Namespace) -> int:
    from flow_planner_eval.episodes_file import collector_workspace, load_episodes
    from flow_planner_eval.metrics import percentile, summarize, table, write_report
    from flow_planner_eval.planner_process import package_share
    from flow_planner_eval.plots import write_plots

    if not 1 <= args.execution_steps <= 60:
        raise ValueError(f"--execution-steps must be in 1..60 (got {args.execution_steps})")
    if args.real_time_factor <= 0 or not math.isfinite(args.real_time_factor):
        raise ValueError("--real-time-factor must be > 0")
    if args.video_episodes < 0:
        raise ValueError("--video-episodes must be >= 0")
    if not 0 < args.rrt_time_limit <= 60 or not math.isfinite(args.rrt_time_limit):
        raise ValueError(f"--rrt-time-limit must be in (0, 60] s (got {args.rrt_time_limit})")
    share = package_share("data_collector_ros")
    x_range, y_range = collector_workspace(share / "config" / "collector.yaml" if share else None)
    episodes = load_episodes(args.episodes, x_range, y_range, args.limit)
    checkpoint = _checkpoint(args) if args.planner == "flow" else None
    started = time.perf_counter()
    run = _run(args, checkpoint, episodes)
    round_trips = [t for r in run.rows for p in r["phases"].values() for t in p["round_trip_times"]]
    meta = {
        "episodes_file": str(args.episodes), "checkpoint": str(checkpoint) if checkpoint else None,
        "execution_steps": args.execution_steps if args.planner == "flow" else 60,
        "real_time_factor": args.real_time_factor, "seed": args.seed,
        "rrt_time_limit": args.rrt_time_limit if args.planner == "rrt" else None,
        "episodes_form": "tray_poses" if episodes.legacy else "scenes",
        "workspace_x": list(episodes.x_range) if episodes.x_range else None,
        "workspace_y": list(episodes.y_range) if episodes.y_range else None,
        # flow: the boxes go in its requests; a scene-blind planner refuses them and plans without
        "planner_sees_obstacles": args.planner in ("cem", "rrt")
        or (args.planner == "flow" and not run.obstacles_refused),
        "wall_time_s": time.perf_counter() - started,
        "round_trip_time_p50": percentile(round_trips, 50), "round_trip_time_p95": percentile(round_trips, 95),
    }  # fmt: skip
    report = summarize(args.planner, run.rows, meta)
    if args.plots:
        report["plots"] = [str(p) for p in write_plots(report, args.plots, run.curves)]
    if run.videos:
        report["videos"] = [str(v) for v in run.videos]
    write_report(args.report, report)
    print(table([report]))
    print(f"report: {args.report} ({report['wall_time_s']:.0f} s)")
    return 0


def _checkpoint(args: argparse.Namespace) -> Path:
    """--checkpoint or the installed default, loaded once here: a bad one is one clear line, not a dead planner."""
    from flow_planner_eval.planner_process import package_share
    from flow_planner_ros.learning.checkpoint import load_checkpoint

    if args.checkpoint:
        checkpoint = Path(args.checkpoint)
    else:
        share = package_share("flow_planner_ros")
        if share is None:
            raise FileNotFoundError("flow_planner_ros is not installed (source install/setup.bash) and no --checkpoint")
        checkpoint = share / "checkpoints" / "default.safetensors"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} not found")
    load_checkpoint(checkpoint)
    return checkpoint


def _run(args: argparse.Namespace, checkpoint: Path | None, episodes: Any) -> Any:
    from flow_planner_eval.harness import EvaluationHarness
    from flow_planner_eval.planner_process import PlannerLaunch
    from flow_planner_eval.runner import EvaluationRunner, EvaluationSettings

    launch = None
    if checkpoint is not None:
        report = Path(args.report)
        launch = PlannerLaunch(
            checkpoint, args.execution_steps, report.with_name(report.stem + "_planner.log"), args.backend,
            use_sim_time=args.real_time_factor != 1.0,
        )  # fmt: skip
    settings = EvaluationSettings(
        args.planner, args.seed, args.execution_steps, args.num_samples, args.integration_steps,
        Path(args.video) if args.video else None, args.video_episodes, args.quiet,
        rrt_time_limit=args.rrt_time_limit,
    )  # fmt: skip
    harness = EvaluationHarness(args.real_time_factor, launch)
    try:
        return EvaluationRunner(harness, settings).run(episodes)
    finally:
        harness.close()


if __name__ == "__main__":
    sys.exit(main())
