"""evaluate_compare --episodes FILE.yaml --report OUT.json [--plot OUT.png] [--markdown OUT.md] [--checkpoint CKPT]
[--flow-samples 1,8,32] [--flow-unrefined 32] [--flow-fallback 8] [--rrt-time-limits 2] [--cem-budgets 1,2,5,10]
[--no-straight] [--limit N]: every planner configuration on the same episodes in one run (flow_planner_eval.compare).

Straight, the flow planner node with best-of-N for each --flow-samples (its other settings the node's defaults;
--flow-unrefined N adds best-of-N with refine_iterations 0 when the node has it, --flow-fallback N best-of-N with
the node's RRTConnect fallback), OMPL's RRTConnect for each --rrt-time-limits time limit (s per phase) and the CEM
expert for each --cem-budgets iteration budget (its default budget is the ratios' reference) run closed loop
through one in-process MuJoCo bridge over DDS, like `evaluate`. Writes the comparison report (JSON: per
configuration the success overall and per template, collisions, limit violations of the published plans, jerk,
clearance, planning time p50/p95, seconds per episode; ratios flow vs straight, CEM and RRT; the DESIGN's targets),
each configuration's full report beside it (OUT_<name>.json), a success vs planning time plot (--plot, default
OUT.png) and a markdown table (--markdown, default OUT.md, also printed). Bad input: one line, exit code 2; a
run-time failure of the bridge or the planner: one line, exit code 1.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from flow_planner_common.safe_yaml import truncate
from flow_planner_ros.cli.common import check_output_file, run_cli


def _ints(text: str) -> list[int]:
    text = text.strip()
    if not text:
        return []
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers (got {text[:40]!r})") from None


def _floats(text: str) -> list[float]:
    text = text.strip()
    if not text:
        return []
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers (got {text[:40]!r})") from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers (got {text[:40]!r})")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluate_compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", required=True, help="episodes YAML (as for evaluate)")
    parser.add_argument("--report", required=True, help="comparison report JSON to write")
    parser.add_argument("--plot", default=None, help="success vs planning time PNG (default: the report's .png)")
    parser.add_argument("--markdown", default=None, help="markdown table (default: the report's .md)")
    parser.add_argument("--checkpoint", default=None, help="flow checkpoint (default: the installed default)")
    parser.add_argument("--flow-samples", type=_ints, default=[1, 8, 32], help="flow best-of-N values ('' = none)")
    parser.add_argument("--flow-unrefined", type=_ints, default=[32],
                        help="flow best-of-N values also run with refine_iterations 0 ('' = none)")  # fmt: skip
    parser.add_argument("--flow-fallback", type=_ints, default=[8],
                        help="flow best-of-N values also run with fallback_planner rrt ('' = none)")  # fmt: skip
    parser.add_argument("--rrt-time-limits", type=_floats, default=[2.0],
                        help="RRTConnect time limits per phase, s ('' = no RRT)")  # fmt: skip
    parser.add_argument("--cem-budgets", type=_ints, default=[1, 2, 5, 10],
                        help="CEM iteration budgets (CEMConfig.iterations; '' = none)")  # fmt: skip
    parser.add_argument("--no-straight", action="store_true", help="leave out the straight line")
    parser.add_argument("--backend", choices=("onnx", "torch"), default=None, help="flow: planner backend")
    parser.add_argument("--limit", type=int, default=None, help="only the first N episodes")
    parser.add_argument("--seed", type=int, default=0, help="seeds IK restarts, CEM and flow sampling")
    parser.add_argument("--real-time-factor", type=float, default=4.0,
                        help="bridge speed (default 4: the physics is the same, the run shorter)")  # fmt: skip
    parser.add_argument("--video", default=None, help="folder for one MP4 per configuration")
    parser.add_argument("--video-episodes", type=int, default=2)
    parser.add_argument("--quiet", action="store_true", help="no per-episode lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_cli("evaluate_compare", lambda: _body(args))
    except RuntimeError as exc:  # the bridge or the planner failed at run time (not bad input)
        print(f"evaluate_compare: failed: {truncate(str(exc), 2000)}", file=sys.stderr)
        return 1


def _body(args: argparse.Namespace) -> int:
    from flow_planner_eval.cli.evaluate import _checkpoint
    from flow_planner_eval.compare import CompareOptions, default_configs, markdown, run_comparison
    from flow_planner_eval.episodes_file import collector_workspace, load_episodes
    from flow_planner_eval.metrics import write_report
    from flow_planner_eval.planner_process import package_share
    from flow_planner_eval.plots import write_comparison_plot

    if args.real_time_factor <= 0 or not math.isfinite(args.real_time_factor):
        raise ValueError("--real-time-factor must be > 0")
    if args.video_episodes < 0:
        raise ValueError("--video-episodes must be >= 0")
    configs, notes = default_configs(
        args.flow_samples, args.cem_budgets, args.flow_unrefined, not args.no_straight,
        rrt_time_limits=args.rrt_time_limits, fallback_samples=args.flow_fallback,
    )  # fmt: skip
    if not configs:
        raise ValueError("no planner configuration to run")
    report = check_output_file(args.report, "report")
    plot = check_output_file(args.plot or report.with_suffix(".png"), "plot")
    table_path = check_output_file(args.markdown or report.with_suffix(".md"), "markdown")
    share = package_share("data_collector_ros")
    x_range, y_range = collector_workspace(share / "config" / "collector.yaml" if share else None)
    episodes = load_episodes(args.episodes, x_range, y_range, args.limit)
    checkpoint = _checkpoint(args) if any(c.planner == "flow" for c in configs) else None
    options = CompareOptions(
        report, checkpoint, args.seed, args.real_time_factor, args.backend,
        Path(args.video) if args.video else None, args.video_episodes if args.video else 0, args.quiet,
        meta={"episodes_file": str(args.episodes), "episodes_form": "tray_poses" if episodes.legacy else "scenes",
              "limit": args.limit, "notes": notes},
    )  # fmt: skip
    comparison = run_comparison(configs, episodes, options)
    comparison["plot"] = str(write_comparison_plot(comparison, plot))
    text = markdown(comparison)
    comparison["markdown"] = text
    table_path.write_text(text + "\n")
    write_report(report, comparison)
    print(text)
    print(f"report: {report}, plot: {plot}, table: {table_path} ({comparison['wall_time_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
