"""Closed-loop evaluation metrics and the report: one home for every number `evaluate` reports.

Metrics of one executed phase (`phase_metrics`), from the trajectories the planner published (every plan sent to
the controllers, each cut where the next one took over) and the simulation's judgement:
- `mean_jerk`: mean over waypoints and joints of |third time difference| of the waypoint positions (rad/s^3), the
  start state included (its velocity gives the waypoint before it), so a jump at the start counts;
- `path_length`: summed joint-space distance between consecutive waypoints (rad, 12-D Euclidean), start included;
- `limit_violations`: waypoints of the published trajectories outside the joint position or velocity limits, plus
  one if the simulation measured a limit excess (the success function's position/velocity checks); the two parts
  are also kept apart: `published_limit_violations` (every waypoint of every published plan, whole plans even where
  a replan cut them) and `sim_limit_excess`.
`summarize` aggregates the per-episode rows into the report, `write_report` writes it as strict JSON and `table`
compares reports side by side. Scenes (obstacles) add, over the valid episodes:
- `collisions`: episodes with any arm or tray contact with an obstacle (the simulation's contact monitor, every
  10 ms), in either phase;
- `min_clearance` / `min_clearance_median`: per episode, the smallest signed distance (m, negative = penetration)
  between any arm or tray geom and any obstacle box over the executed motion (MuJoCo's mj_geomDistance on states
  every 10 ms of sim time, settling included); the report gives its minimum and median over episodes with boxes;
- `per_template`: episodes, success rate, collisions, invalid episodes and median clearance per template label;
- `invalid_episodes`: the episodes the scene validity check refused ({count, episodes: [{index, template,
  reason}]}); they are in `rows` but left out of every rate and mean (`episodes` counts all rows,
  `valid_episodes` the ones that ran). The episodes file is flow_planner_eval.episodes_file, the plots
flow_planner_eval.plots.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from flow_planner_common.atomic_file import write_json
from flow_planner_common.robot import JOINT_NAMES, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, PHASE_NAMES

PHASES = tuple(PHASE_NAMES.values())  # ("reach", "carry")
#: Phase-level numbers aggregated into the report (means over the episodes that ran the phase).
PHASE_KEYS = (
    "success_rate", "ee_error_mean", "tray_error_mean", "tray_angle_error_mean", "mean_jerk", "path_length",
    "limit_violations", "planning_time_p50", "planning_time_p95", "planning_time_mean",
)  # fmt: skip


def executed_waypoints(plans: list[np.ndarray], cut_after: list[int | None]) -> np.ndarray:
    """Concatenate published plans (each (60, 12)), each cut to its first `cut_after[i]` waypoints (None = all)."""
    parts = [p if n is None else p[: max(1, int(n))] for p, n in zip(plans, cut_after, strict=True)]
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, len(JOINT_NAMES)))


def mean_jerk(start_pos: np.ndarray, start_vel: np.ndarray, positions: np.ndarray, dt: float) -> float:
    """Mean |third difference| / dt^3 (rad/s^3) over waypoints and joints, the start state prepended."""
    if len(positions) == 0:
        return float("nan")
    start_pos, start_vel = np.asarray(start_pos, float), np.asarray(start_vel, float)
    q = np.vstack([start_pos - start_vel * dt, start_pos, np.asarray(positions, float)])
    return float(np.mean(np.abs(np.diff(q, n=3, axis=0))) / dt**3)


def path_length(start_pos: np.ndarray, positions: np.ndarray) -> float:
    """Summed 12-D joint-space distance between consecutive waypoints (rad), start included."""
    q = np.vstack([np.asarray(start_pos, float), np.asarray(positions, float)])
    return float(np.sum(np.linalg.norm(np.diff(q, axis=0), axis=1)))


def waypoint_limit_violations(positions: np.ndarray, velocities: np.ndarray) -> int:
    """Waypoints outside the joint position limits or above the joint speed limits."""
    positions, velocities = np.asarray(positions, float), np.asarray(velocities, float)
    bad_pos = np.any((positions < JOINT_POSITION_LIMITS[:, 0]) | (positions > JOINT_POSITION_LIMITS[:, 1]), axis=1)
    bad_vel = np.any(np.abs(velocities) > JOINT_VELOCITY_LIMITS * (1 + 1e-9), axis=1)
    return int(np.sum(bad_pos | bad_vel))


def phase_metrics(
    success: bool,
    reasons: Sequence[str],
    notes: Sequence[str],
    judged: Mapping[str, float],
    tray_error: tuple[float, float | None],
    start: tuple[np.ndarray, np.ndarray],
    published: Sequence[tuple[np.ndarray, np.ndarray]],
    execution_steps: int | None,
    sim_limit_excess: bool,
    dt: float,
) -> dict[str, Any]:
    """The metrics of one executed phase (see the module docstring).

    `judged`: the success function's metrics; `tray_error`: (position m, angle rad or None); `start`: the start
    positions and velocities; `published`: the plans sent to the controllers as (positions, velocities), each but
    the last cut after `execution_steps` waypoints (None: never cut); `sim_limit_excess`: the simulation measured a
    position or velocity limit excess."""
    plans = [positions for positions, _ in published]
    violations = sum(waypoint_limit_violations(p, v) for p, v in published)  # every published waypoint
    cuts: list[int | None] = [execution_steps] * (len(plans) - 1) + [None] if plans else []
    executed = executed_waypoints(plans, cuts)
    ee_error = max(judged.get("ee_error_left", math.nan), judged.get("ee_error_right", math.nan))
    position_error, angle_error = tray_error
    return {
        "success": bool(success),
        "reasons": list(reasons),
        "planner_notes": list(notes),
        "ee_error": float(ee_error),
        "tray_error": float(position_error),
        "tray_angle_error": float(angle_error) if angle_error is not None else math.nan,
        "mean_jerk": mean_jerk(start[0], start[1], executed, dt) if len(executed) else math.nan,
        "path_length": path_length(start[0], executed) if len(executed) else math.nan,
        "limit_violations": int(violations) + int(sim_limit_excess),
        "published_limit_violations": int(violations),
        "sim_limit_excess": bool(sim_limit_excess),
        "plans_published": len(plans),
    }


def percentile(values: list[float], q: float) -> float:
    values = [v for v in values if math.isfinite(v)]
    return float(np.percentile(values, q)) if values else float("nan")


def _mean(values: list[float]) -> float:
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(values)) if values else float("nan")


def summarize(planner: str, rows: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The report: overall and per-phase aggregates over the valid episodes' rows, per template, plus `meta`."""
    valid = [r for r in rows if r.get("valid", True)]
    invalid = [r for r in rows if not r.get("valid", True)]
    report: dict[str, Any] = {"planner": planner, "episodes": len(rows), "valid_episodes": len(valid)}
    report["success_rate"] = _mean([float(r["success"]) for r in valid])
    all_times: list[float] = []
    all_violations = 0
    phases: dict[str, Any] = {}
    for name in PHASES:
        ran = [r["phases"][name] for r in valid if name in r["phases"]]
        times = [t for p in ran for t in p["planning_times"]]
        all_times += times
        violations = int(sum(p["limit_violations"] for p in ran))
        all_violations += violations
        phases[name] = {
            "episodes": len(ran),
            "success_rate": _mean([float(p["success"]) for p in ran]),
            "ee_error_mean": _mean([p["ee_error"] for p in ran]),
            "tray_error_mean": _mean([p["tray_error"] for p in ran]),
            "tray_angle_error_mean": _mean([p["tray_angle_error"] for p in ran]),
            "mean_jerk": _mean([p["mean_jerk"] for p in ran]),
            "path_length": _mean([p["path_length"] for p in ran]),
            "limit_violations": violations,
            "collisions": sum(bool(p.get("arm_obstacle_contact") or p.get("tray_obstacle_contact")) for p in ran),
            "planning_time_p50": percentile(times, 50),
            "planning_time_p95": percentile(times, 95),
            "planning_time_mean": _mean(times),
            "failure_reasons": sorted({reason for p in ran for reason in p["reasons"]}),
        }
    report["phases"] = phases
    report["mean_jerk"] = _mean([phases[n]["mean_jerk"] for n in PHASES])
    report["path_length"] = _mean([phases[n]["path_length"] for n in PHASES])
    report["limit_violations"] = all_violations
    report["published_limit_violations"] = int(sum(
        p.get("published_limit_violations", 0) for r in valid for p in r["phases"].values()
    ))  # fmt: skip
    report["sim_limit_excess_episodes"] = sum(
        any(p.get("sim_limit_excess", False) for p in r["phases"].values()) for r in valid
    )
    report["planning_time_p50"] = percentile(all_times, 50)
    report["planning_time_p95"] = percentile(all_times, 95)
    report["collisions"] = sum(bool(r.get("collision")) for r in valid)
    clearances = [r["min_clearance"] for r in valid if r.get("min_clearance") is not None]
    report["min_clearance"] = min(clearances) if clearances else None
    report["min_clearance_median"] = float(np.median(clearances)) if clearances else None
    report["invalid_episodes"] = {
        "count": len(invalid),
        "episodes": [{"index": r["index"], "template": r.get("template"), "reason": r.get("invalid_reason", "")}
                     for r in invalid],
    }  # fmt: skip
    report["per_template"] = per_template(rows)
    report["rows"] = rows
    report |= meta
    return report


def per_template(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{template: {episodes (valid), success_rate, successes, collisions, invalid, min_clearance_median}}."""
    out: dict[str, dict[str, Any]] = {}
    for name in sorted({str(r.get("template", "empty")) for r in rows}):
        mine = [r for r in rows if str(r.get("template", "empty")) == name]
        valid = [r for r in mine if r.get("valid", True)]
        clearances = [r["min_clearance"] for r in valid if r.get("min_clearance") is not None]
        out[name] = {
            "episodes": len(valid),
            "successes": sum(bool(r["success"]) for r in valid),
            "success_rate": _mean([float(r["success"]) for r in valid]),
            "collisions": sum(bool(r.get("collision")) for r in valid),
            "invalid": len(mine) - len(valid),
            "min_clearance_median": float(np.median(clearances)) if clearances else None,
        }
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON: NaN/Inf become null
    return value


def write_report(path: str | Path, report: dict[str, Any]) -> Path:
    """The report as strict JSON (NaN/Inf -> null), written atomically."""
    return write_json(path, _jsonable(report))


def table(reports: list[dict[str, Any]]) -> str:
    """A fixed-width text table comparing reports (one column per report)."""
    lines = []
    names = [r["planner"] for r in reports]
    lines.append(f"{'metric':34s}" + "".join(f"{n:>14s}" for n in names))

    def row(label: str, values: list[Any], fmt: str) -> None:
        cells = "".join(f"{'n/a':>14s}" if v is None or (isinstance(v, float) and not math.isfinite(v))
                        else f"{format(v, fmt):>14s}" for v in values)  # fmt: skip
        lines.append(f"{label:34s}{cells}")

    def mm(value: Any) -> Any:
        return None if value is None else 1000 * value

    row("episodes (valid)", [r.get("valid_episodes", r["episodes"]) for r in reports], "d")
    row("invalid episodes (not counted)", [r.get("invalid_episodes", {}).get("count", 0) for r in reports], "d")
    row("success rate (episode)", [r["success_rate"] for r in reports], ".2f")
    templates = sorted({t for r in reports for t in r.get("per_template", {})})
    for name in templates:
        cells = [r.get("per_template", {}).get(name) for r in reports]
        row(f"  {name}: success", [f"{c['successes']}/{c['episodes']}" if c else None for c in cells], "s")
    row("collisions (episodes)", [r.get("collisions") for r in reports], "d")
    row("min clearance (mm)", [mm(r.get("min_clearance")) for r in reports], ".1f")
    row("median episode min clearance (mm)", [mm(r.get("min_clearance_median")) for r in reports], ".1f")
    for phase in PHASES:
        p = [r["phases"][phase] for r in reports]
        row(f"{phase}: success rate", [x["success_rate"] for x in p], ".2f")
        row(f"{phase}: ee error mean (mm)", [1000 * x["ee_error_mean"] for x in p], ".1f")
        if phase == "carry":
            row(f"{phase}: tray error mean (mm)", [1000 * x["tray_error_mean"] for x in p], ".1f")
        row(f"{phase}: mean jerk (rad/s^3)", [x["mean_jerk"] for x in p], ".2f")
        row(f"{phase}: path length (rad)", [x["path_length"] for x in p], ".2f")
        row(f"{phase}: limit violations", [x["limit_violations"] for x in p], "d")
    row("planning time p50 (ms)", [1000 * r["planning_time_p50"] for r in reports], ".1f")
    row("planning time p95 (ms)", [1000 * r["planning_time_p95"] for r in reports], ".1f")
    return "\n".join(lines)
