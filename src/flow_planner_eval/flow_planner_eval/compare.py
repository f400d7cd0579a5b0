"""The one-run comparison behind `evaluate_compare`: every planner configuration on the same episodes, under one
bridge, in one process, so that the numbers stand side by side (DESIGN: "every evaluation shows it beside the
straight line and the CEM expert, in one run").

Configurations (`PlannerConfig`, `default_configs`):
- `straight`: the minimum-jerk joint-space line (no search);
- `flow-N`: the planner node with best-of-N (the request's num_samples), its other settings the node's defaults
  (config/planner.yaml); `flow-N-raw`: the same with `refine_iterations` 0 (flow alone, no polish; only if the
  node has that parameter), which needs its own planner process;
- `flow-N+rrt`: best-of-N with the node's RRTConnect fallback (`fallback_planner` rrt; only if the node has it);
- `rrt` (`rrt-Ts` for other time limits): OMPL's RRTConnect with the flow planner's final check
  (flow_planner_ros.planning.rrt), T s per phase;
- `cem-B`: the CEM expert with a search budget B = CEMConfig.iterations (route restarts get
  round(B * route_iterations / iterations) iterations each, at least 1); the expert's default budget is marked
  `default` and is the reference of the ratios.
Order of the runs: the flow configurations first (one planner process per set of node parameters, swapped by
`EvaluationHarness.restart_planner`), then the planner process is stopped and straight, RRT and CEM run (their
times are not shared with an idle planner).

Per configuration the full `evaluation.summarize` report (rows included) is written beside the comparison
(`<stem>_<name>.json`); the comparison report (`compare`) keeps, per configuration, `summary_row` (success overall
and per template, collisions, limit violations of the published plans, jerk, clearance p5 / median, planning time
p50 / p95, wall seconds per episode) and the report without its rows, plus `ratios` and `targets` (the DESIGN's
aims, reported, never asserted). `markdown` prints the table; evaluation_plots.write_comparison_plot the success
vs planning time plot.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flow_planner_eval.metrics import PHASES, percentile, summarize, write_report

PLANNERS = ("straight", "flow", "cem", "rrt")
#: RRTConnect's time limit per phase (s) of the `rrt` configuration.
DEFAULT_RRT_TIME_LIMIT = 2.0
TARGETS = {  # DESIGN "Numbers we aim for", closed loop on held-out cluttered scenes
    "success_vs_cem_points_min": -5.0,  # flow within 5 points of the CEM expert
    "success_vs_straight_points_min": 30.0,  # and at least 30 points above straight
    "planning_p50_speedup_vs_cem_min": 20.0,  # planning p50 at least 20x lower than CEM's, same run
    "collisions_max": 0,
    "published_limit_violations_max": 0,
}


@dataclass(frozen=True)
class PlannerConfig:
    """One column of the comparison."""

    name: str
    planner: str  # straight | flow | cem | rrt
    num_samples: int = 0  # flow: best-of-N (0 = the node's default)
    cem_iterations: int | None = None  # cem: the search budget (None = CEMConfig's)
    cem_route_iterations: int | None = None
    node_parameters: tuple[tuple[str, str], ...] = ()  # flow: planner node overrides (a process of its own)
    default: bool = False  # cem: the expert's default budget; flow: the node's default num_samples
    rrt_time_limit: float | None = None  # rrt: seconds per phase

    def __post_init__(self) -> None:
        if self.planner not in PLANNERS:
            raise ValueError(f"planner must be one of {', '.join(PLANNERS)} (got {self.planner!r})")


def cem_budget(iterations: int, default: Any | None = None) -> tuple[int, int]:
    """(iterations, route_iterations) of a CEM budget, route restarts scaled like the default's (5 -> 4)."""
    from data_collector_ros.cem import CEMConfig

    default = default or CEMConfig()
    if iterations < 1:
        raise ValueError(f"CEM budgets must be >= 1 iteration (got {iterations})")
    return iterations, max(1, round(iterations * default.route_iterations / default.iterations))


def default_configs(
    flow_samples: Sequence[int] = (1, 8, 32),
    cem_budgets: Sequence[int] = (1, 2, 5, 10),
    unrefined_samples: Sequence[int] = (32,),
    straight: bool = True,
    node_has: Callable[[str], bool] | None = None,
    rrt_time_limits: Sequence[float] = (),
    fallback_samples: Sequence[int] = (),
) -> tuple[list[PlannerConfig], list[str]]:
    """(configurations, notes on what was left out). `node_has(name)`: whether the planner node declares that
    parameter (default: flow_planner_ros.node.planner_settings.SPECS)."""
    from data_collector_ros.cem import CEMConfig
    from flow_planner_ros.node.planner_settings import SPECS

    node_has = node_has or (lambda name: name in SPECS)
    node_samples = int(SPECS["num_samples"].default)
    configs: list[PlannerConfig] = []
    notes: list[str] = []
    if straight:
        configs.append(PlannerConfig("straight", "straight"))
    for n in _positive(flow_samples, "flow samples"):
        configs.append(PlannerConfig(f"flow-{n}", "flow", num_samples=n, default=n == node_samples))
    variants = (  # flow-N with one node parameter changed: (values, suffix, parameter, value, what)
        (unrefined_samples, "-raw", "refine_iterations", "0", "unrefined flow samples"),
        (fallback_samples, "+rrt", "fallback_planner", "rrt", "fallback flow samples"),
    )
    for values, suffix, parameter, value, what in variants:
        for n in _positive(values, what):
            if node_has(parameter):
                configs.append(PlannerConfig(f"flow-{n}{suffix}", "flow", num_samples=n,
                                             node_parameters=((parameter, value),)))  # fmt: skip
            else:
                notes.append(f"flow-{n}{suffix} left out: the planner node has no {parameter} parameter")
    for t in rrt_time_limits:
        if not 0.0 < float(t) <= 60.0:
            raise ValueError(f"RRT time limits must be in (0, 60] s (got {t})")
        name = "rrt" if float(t) == DEFAULT_RRT_TIME_LIMIT else f"rrt-{float(t):g}s"
        configs.append(PlannerConfig(name, "rrt", rrt_time_limit=float(t)))
    default_iterations = CEMConfig().iterations
    for b in _positive(cem_budgets, "CEM budgets"):
        iterations, route_iterations = cem_budget(b)
        default = b == default_iterations
        configs.append(PlannerConfig(f"cem-{b}", "cem", cem_iterations=iterations,
                                     cem_route_iterations=route_iterations, default=default))  # fmt: skip
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate planner configurations: {', '.join(names)}")
    return configs, notes


def _positive(values: Sequence[int], what: str) -> list[int]:
    out = [int(v) for v in values]
    if any(v < 1 for v in out):
        raise ValueError(f"{what} must be >= 1 (got {out})")
    return out


@dataclass
class CompareOptions:
    """How the comparison runs (the CLI's arguments)."""

    report: Path
    checkpoint: Path | None = None  # flow: the checkpoint (needed when a flow configuration runs)
    seed: int = 0
    real_time_factor: float = 4.0
    backend: str | None = None
    video_dir: Path | None = None
    video_episodes: int = 0  # MP4 of the first N episodes of straight and the default flow and CEM configurations
    quiet: bool = False
    meta: dict[str, Any] = field(default_factory=dict)  # extra report fields (episodes file, ...)


def run_order(configs: Sequence[PlannerConfig]) -> list[PlannerConfig]:
    """Flow configurations grouped by node parameters (node defaults first), then straight, RRT, CEM by budget."""
    flow = [c for c in configs if c.planner == "flow"]
    groups = sorted({c.node_parameters for c in flow}, key=lambda p: (len(p), p))
    ordered = [c for g in groups for c in flow if c.node_parameters == g]
    ordered += [c for c in configs if c.planner == "straight"]
    ordered += [c for c in configs if c.planner == "rrt"]
    ordered += sorted((c for c in configs if c.planner == "cem"), key=lambda c: c.cem_iterations or 0)
    return ordered


def run_comparison(configs: Sequence[PlannerConfig], episodes: Any, options: CompareOptions) -> dict[str, Any]:
    """Run every configuration on `episodes` (an episodes_file.EpisodeSet) under one harness; write the full
    per-configuration reports; return the comparison report (not yet written)."""
    from flow_planner_eval.harness import EvaluationHarness
    from flow_planner_eval.planner_process import PlannerLaunch
    from flow_planner_eval.runner import EvaluationRunner, EvaluationSettings

    if any(c.planner == "flow" for c in configs) and options.checkpoint is None:
        raise ValueError("a flow configuration needs a checkpoint")
    started = time.perf_counter()
    reports: dict[str, dict[str, Any]] = {}
    files: dict[str, str] = {}
    harness = EvaluationHarness(options.real_time_factor, None)
    if options.quiet:  # no "trajectory accepted" line per plan
        from rclpy.logging import LoggingSeverity

        harness.bridge.get_logger().set_level(LoggingSeverity.WARN)
    try:
        running: tuple[tuple[str, str], ...] | None = None  # node parameters of the running planner process
        for config in run_order(configs):
            wanted = config.node_parameters if config.planner == "flow" else None
            if wanted != running:
                launch = None
                if wanted is not None:
                    suffix = "".join(f"_{k}-{v}" for k, v in wanted)
                    log = options.report.with_name(f"{options.report.stem}_planner{suffix}.log")
                    launch = PlannerLaunch(options.checkpoint, 60, log, options.backend,
                                           use_sim_time=options.real_time_factor != 1.0, parameters=wanted)  # fmt: skip
                harness.restart_planner(launch)
                running = wanted
            if not options.quiet:
                print(f"== {config.name} ({len(episodes)} episodes)", flush=True)
            video = options.video_episodes if config.default or config.planner == "straight" else 0
            settings = EvaluationSettings(
                config.planner, options.seed, 60, config.num_samples, 0, options.video_dir, video, options.quiet,
                config.cem_iterations, config.cem_route_iterations, label=config.name,
                rrt_time_limit=config.rrt_time_limit or DEFAULT_RRT_TIME_LIMIT,
            )  # fmt: skip
            t0 = time.perf_counter()
            run = EvaluationRunner(harness, settings).run(episodes)
            seconds = time.perf_counter() - t0
            round_trips = [t for r in run.rows for p in r.get("phases", {}).values() for t in p["round_trip_times"]]
            meta = {
                "config": asdict(config), "wall_time_s": seconds,
                "seconds_per_episode": seconds / max(1, len(run.rows)),
                "round_trip_time_p50": percentile(round_trips, 50), "round_trip_time_p95": percentile(round_trips, 95),
                "execution_steps": 60, "seed": options.seed, "real_time_factor": options.real_time_factor,
                "planner_sees_obstacles": config.planner in ("cem", "rrt") or (
                    config.planner == "flow" and not run.obstacles_refused),
                "videos": [str(v) for v in run.videos],
                **options.meta,
            }  # fmt: skip
            report = summarize(config.name, run.rows, meta)
            path = options.report.with_name(f"{options.report.stem}_{config.name}.json")
            write_report(path, report)
            reports[config.name], files[config.name] = report, str(path)
    finally:
        harness.close()
    return comparison_report(configs, reports, files, time.perf_counter() - started, options)


def comparison_report(
    configs: Sequence[PlannerConfig],
    reports: dict[str, dict[str, Any]],
    files: dict[str, str],
    wall_time_s: float,
    options: CompareOptions,
) -> dict[str, Any]:
    """The comparison report from the per-configuration reports (ROS-free; see the module docstring)."""
    first = next(iter(reports.values()), {})
    out: dict[str, Any] = {
        "kind": "planner_comparison",
        "episodes": first.get("episodes", 0),
        "valid_episodes": first.get("valid_episodes", 0),
        "invalid_episodes": first.get("invalid_episodes", {"count": 0, "episodes": []}),
        "checkpoint": str(options.checkpoint) if options.checkpoint else None,
        "seed": options.seed,
        "real_time_factor": options.real_time_factor,
        "wall_time_s": wall_time_s,
        "configs": [asdict(c) for c in configs],
        "summary": {c.name: summary_row(reports[c.name]) for c in configs if c.name in reports},
        "reports": {name: {k: v for k, v in r.items() if k != "rows"} for name, r in reports.items()},
        "report_files": files,
        **options.meta,
    }
    out["ratios"], out["targets"] = ratios(configs, out["summary"])
    out["cost_model_s_per_episode"] = {name: s["seconds_per_episode"] for name, s in out["summary"].items()}
    return out


def summary_row(report: dict[str, Any]) -> dict[str, Any]:
    """One configuration's line of the comparison table."""
    rows = [r for r in report.get("rows", []) if r.get("valid", True)]
    clearances = [r["min_clearance"] for r in rows if r.get("min_clearance") is not None]
    phases = report.get("phases", {})
    templates = {
        t: {k: v[k] for k in ("episodes", "successes", "success_rate", "collisions")}
        for t, v in report.get("per_template", {}).items()
        if v["episodes"]
    }
    return {
        "valid_episodes": report.get("valid_episodes"),
        "successes": sum(bool(r["success"]) for r in rows),
        "success_rate": report.get("success_rate"),
        "per_template": templates,
        "collisions": report.get("collisions"),
        "published_limit_violations": report.get("published_limit_violations"),
        "sim_limit_excess_episodes": report.get("sim_limit_excess_episodes"),
        "limit_violations": report.get("limit_violations"),
        "mean_jerk": report.get("mean_jerk"),
        "mean_jerk_by_phase": {p: phases.get(p, {}).get("mean_jerk") for p in PHASES},
        "min_clearance": min(clearances) if clearances else None,
        "min_clearance_p5": percentile(clearances, 5) if clearances else None,
        "min_clearance_median": float(np.median(clearances)) if clearances else None,
        "planning_time_p50": report.get("planning_time_p50"),
        "planning_time_p95": report.get("planning_time_p95"),
        "round_trip_time_p50": report.get("round_trip_time_p50"),
        "planner_sees_obstacles": report.get("planner_sees_obstacles"),
        "seconds_per_episode": report.get("seconds_per_episode"),
    }


def _num(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def ratios(configs: Sequence[PlannerConfig], summary: dict[str, dict[str, Any]]) -> tuple[dict, dict]:
    """Per flow configuration: success minus straight's and the default CEM's (points), CEM p50 / flow p50;
    `targets`: the headline flow configuration (the node's default num_samples, else the first) against TARGETS."""
    flows = [c for c in configs if c.planner == "flow" and c.name in summary]
    cem = next((c for c in configs if c.planner == "cem" and c.default and c.name in summary), None)
    cem = cem or next((c for c in reversed(configs) if c.planner == "cem" and c.name in summary), None)
    straight = next((c for c in configs if c.planner == "straight" and c.name in summary), None)
    rrt = next((c for c in configs if c.planner == "rrt" and c.name in summary), None)
    out: dict[str, Any] = {"cem_reference": cem.name if cem else None,
                           "straight_reference": straight.name if straight else None,
                           "rrt_reference": rrt.name if rrt else None, "flow": {}}  # fmt: skip

    def points(a: Any, b: Any) -> float | None:
        a, b = _num(a), _num(b)
        return None if a is None or b is None else 100.0 * (a - b)

    for c in flows:
        f = summary[c.name]
        entry = {}
        if straight:
            entry["success_vs_straight_points"] = points(f["success_rate"], summary[straight.name]["success_rate"])
        if cem:
            entry["success_vs_cem_points"] = points(f["success_rate"], summary[cem.name]["success_rate"])
            flow_p50, cem_p50 = _num(f["planning_time_p50"]), _num(summary[cem.name]["planning_time_p50"])
            entry["planning_p50_speedup_vs_cem"] = cem_p50 / flow_p50 if flow_p50 and cem_p50 else None
            flow_jerk, cem_jerk = _num(f["mean_jerk"]), _num(summary[cem.name]["mean_jerk"])
            entry["jerk_ratio_vs_cem"] = flow_jerk / cem_jerk if flow_jerk and cem_jerk else None
        if rrt:
            entry["success_vs_rrt_points"] = points(f["success_rate"], summary[rrt.name]["success_rate"])
            flow_p50, rrt_p50 = _num(f["planning_time_p50"]), _num(summary[rrt.name]["planning_time_p50"])
            entry["planning_p50_speedup_vs_rrt"] = rrt_p50 / flow_p50 if flow_p50 and rrt_p50 else None
        out["flow"][c.name] = entry
    targets: dict[str, Any] = {}
    headline = next((c for c in flows if c.default and not c.node_parameters), flows[0] if flows else None)
    if headline is not None:
        e, f = out["flow"][headline.name], summary[headline.name]

        def check(value: Any, ok: Callable[[float], bool]) -> dict[str, Any]:
            value = _num(value)
            return {"value": value, "met": None if value is None else bool(ok(value))}

        targets = {
            "flow": headline.name,
            "success_vs_cem_points": check(e.get("success_vs_cem_points"),
                                           lambda v: v >= TARGETS["success_vs_cem_points_min"]),
            "success_vs_straight_points": check(e.get("success_vs_straight_points"),
                                                lambda v: v >= TARGETS["success_vs_straight_points_min"]),
            "planning_p50_speedup_vs_cem": check(e.get("planning_p50_speedup_vs_cem"),
                                                 lambda v: v >= TARGETS["planning_p50_speedup_vs_cem_min"]),
            "collisions": check(f["collisions"], lambda v: v <= TARGETS["collisions_max"]),
            "published_limit_violations": check(f["published_limit_violations"],
                                                lambda v: v <= TARGETS["published_limit_violations_max"]),
            "aims": dict(TARGETS),
        }  # fmt: skip
    return out, targets


def markdown(comparison: dict[str, Any]) -> str:
    """The comparison as a markdown table (one row per configuration) plus the ratio and target lines."""
    summary = comparison["summary"]
    templates = sorted({t for s in summary.values() for t in s["per_template"]})

    def ms(v: Any) -> str:
        return "n/a" if _num(v) is None else f"{1000 * float(v):.1f}"

    def f2(v: Any) -> str:
        return "n/a" if _num(v) is None else f"{float(v):.2f}"

    head = ["config", "success", *templates, "collisions", "limit viol. (published)", "jerk reach / carry",
            "clearance p5 / median (mm)", "planning p50 / p95 (ms)", "s / episode"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in summary.items():
        cells = [f"**{name}**" if name in (comparison["ratios"].get("cem_reference"),
                                           comparison["targets"].get("flow")) else name]  # fmt: skip
        cells.append(f"{s['successes']}/{s['valid_episodes']} ({100 * (_num(s['success_rate']) or 0):.0f} %)")
        for t in templates:
            p = s["per_template"].get(t)
            cells.append(f"{p['successes']}/{p['episodes']}" if p else "–")
        jerk = s["mean_jerk_by_phase"]
        cells += [
            str(s["collisions"]), str(s["published_limit_violations"]),
            f"{f2(jerk.get('reach'))} / {f2(jerk.get('carry'))}",
            f"{ms(s['min_clearance_p5'])} / {ms(s['min_clearance_median'])}",
            f"{ms(s['planning_time_p50'])} / {ms(s['planning_time_p95'])}",
            f"{s['seconds_per_episode']:.1f}" if _num(s["seconds_per_episode"]) is not None else "n/a",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for name, e in comparison["ratios"].get("flow", {}).items():
        parts = [f"{k} {f2(v)}" for k, v in e.items()]
        lines.append(f"- {name}: " + ", ".join(parts))
    t = comparison.get("targets") or {}
    if t:
        met = [f"{k} {f2(v['value'])} ({'met' if v['met'] else 'not met' if v['met'] is not None else 'n/a'})"
               for k, v in t.items() if isinstance(v, dict) and "met" in v]  # fmt: skip
        lines.append(f"- targets ({t['flow']} vs {comparison['ratios'].get('cem_reference')}): " + ", ".join(met))
    v, n = comparison.get("valid_episodes", 0), comparison.get("episodes", 0)
    lines.append(f"- {v} valid of {n} episodes ({n - v} invalid, not counted); wall time "
                 f"{comparison.get('wall_time_s', 0):.0f} s")  # fmt: skip
    return "\n".join(lines)
