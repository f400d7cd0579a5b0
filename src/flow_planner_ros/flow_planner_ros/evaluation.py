"""Closed-loop evaluation, the ROS-free part: the episodes file, trajectory metrics, the report and its plots.

Episodes file (YAML)::

    tray_poses:            # [u, v, yaw]: u, v in [0, 1] across the collector's tray workspace box, yaw in rad
      - [0.2, 0.3, 0.1]
    workspace_x: [0.42, 0.58]   # optional; default: the collector's configured workspace (config/collector.yaml)
    workspace_y: [-0.08, 0.08]

u = 0 is the box's low x edge, u = 1 its high x edge (v likewise for y). The collector's grid puts tray centres at
cell centres u = (i + 0.5) / grid_nx, so poses on cell borders (u = i / grid_nx) are off the training grid.

Metrics of one executed phase (`phase_metrics`), from the trajectories the planner published (every plan sent to
the controllers, each cut where the next one took over) and the simulation's judgement:
- `mean_jerk`: mean over waypoints and joints of |third time difference| of the waypoint positions (rad/s^3), the
  start state included (its velocity gives the waypoint before it), so a jump at the start counts;
- `path_length`: summed joint-space distance between consecutive waypoints (rad, 12-D Euclidean), start included;
- `limit_violations`: waypoints of the published trajectories outside the joint position or velocity limits, plus
  one if the simulation measured a limit excess (the success function's position/velocity checks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from flow_planner_common.atomic_file import save_figure, write_json
from flow_planner_common.robot import JOINT_NAMES, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, PHASE_NAMES

PHASES = tuple(PHASE_NAMES.values())  # ("reach", "carry")
#: Phase-level numbers aggregated into the report (means over the episodes that ran the phase).
PHASE_KEYS = (
    "success_rate", "ee_error_mean", "tray_error_mean", "tray_angle_error_mean", "mean_jerk", "path_length",
    "limit_violations", "planning_time_p50", "planning_time_p95", "planning_time_mean",
)  # fmt: skip


class EpisodesError(ValueError):
    """The episodes file is missing or malformed."""


@dataclass(frozen=True)
class EpisodeSet:
    """Tray poses (N, 3) as [u, v, yaw] and the workspace box they map into."""

    uvyaw: np.ndarray
    x_range: tuple[float, float]
    y_range: tuple[float, float]

    def xy_yaw(self, i: int) -> tuple[float, float, float]:
        u, v, yaw = (float(a) for a in self.uvyaw[i])
        x = self.x_range[0] + u * (self.x_range[1] - self.x_range[0])
        y = self.y_range[0] + v * (self.y_range[1] - self.y_range[0])
        return x, y, yaw

    def __len__(self) -> int:
        return len(self.uvyaw)


def _range(value: Any, name: str, path: Path) -> tuple[float, float]:
    try:
        low, high = (float(a) for a in value)
    except (TypeError, ValueError):
        raise EpisodesError(f"{path}: {name} must be [min, max] (got {value!r})") from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise EpisodesError(f"{path}: {name} must be finite with min <= max (got {value!r})")
    return low, high


def load_episodes(
    path: str | Path, default_x: tuple[float, float], default_y: tuple[float, float], limit: int | None = None
) -> EpisodeSet:
    """Read and validate an episodes file (see the module docstring); the first `limit` poses if given."""
    path = Path(path)
    if not path.is_file():
        raise EpisodesError(f"episodes file {path} not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise EpisodesError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or "tray_poses" not in data:
        raise EpisodesError(f"{path}: expected a mapping with a 'tray_poses' list of [u, v, yaw]")
    unknown = set(data) - {"tray_poses", "workspace_x", "workspace_y"}
    if unknown:
        raise EpisodesError(f"{path}: unknown keys {sorted(unknown)}")
    poses = data["tray_poses"]
    if not isinstance(poses, list) or not poses:
        raise EpisodesError(f"{path}: tray_poses must be a non-empty list of [u, v, yaw]")
    rows = []
    for i, pose in enumerate(poses):
        try:
            row = [float(a) for a in pose]
        except (TypeError, ValueError):
            row = []
        if len(row) != 3 or not all(math.isfinite(a) for a in row):
            raise EpisodesError(f"{path}: tray_poses[{i}] must be 3 finite numbers [u, v, yaw] (got {pose!r})")
        if not (0.0 <= row[0] <= 1.0 and 0.0 <= row[1] <= 1.0):
            raise EpisodesError(f"{path}: tray_poses[{i}]: u and v must be in [0, 1] (got {row[0]}, {row[1]})")
        if abs(row[2]) > math.pi:
            raise EpisodesError(f"{path}: tray_poses[{i}]: yaw must be in [-pi, pi] rad (got {row[2]})")
        rows.append(row)
    x_range = _range(data.get("workspace_x", default_x), "workspace_x", path)
    y_range = _range(data.get("workspace_y", default_y), "workspace_y", path)
    uvyaw = np.array(rows, dtype=float)
    if limit is not None:
        uvyaw = uvyaw[: max(1, int(limit))]
    return EpisodeSet(uvyaw, x_range, y_range)


def collector_workspace(collector_yaml: str | Path | None) -> tuple[tuple[float, float], tuple[float, float]]:
    """(workspace_x, workspace_y) from a collector parameter file; the GridConfig defaults if absent."""
    from data_collector_ros.grid import GridConfig

    defaults = GridConfig()
    x_range, y_range = defaults.x_range, defaults.y_range
    if collector_yaml is None or not Path(collector_yaml).is_file():
        return x_range, y_range
    data = yaml.safe_load(Path(collector_yaml).read_text()) or {}
    for section in data.values():
        params = (section or {}).get("ros__parameters", {}) if isinstance(section, dict) else {}
        x_range = tuple(float(a) for a in params.get("workspace_x", x_range))
        y_range = tuple(float(a) for a in params.get("workspace_y", y_range))
    return x_range, y_range


# ---------------------------------------------------------------------------------------------------- metrics
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


def percentile(values: list[float], q: float) -> float:
    values = [v for v in values if math.isfinite(v)]
    return float(np.percentile(values, q)) if values else float("nan")


def _mean(values: list[float]) -> float:
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(values)) if values else float("nan")


def summarize(planner: str, rows: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The report: overall and per-phase aggregates over the per-episode rows, plus `meta`."""
    report: dict[str, Any] = {"planner": planner, "episodes": len(rows)}
    report["success_rate"] = _mean([float(r["success"]) for r in rows])
    all_times: list[float] = []
    all_violations = 0
    phases: dict[str, Any] = {}
    for name in PHASES:
        ran = [r["phases"][name] for r in rows if name in r["phases"]]
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
            "planning_time_p50": percentile(times, 50),
            "planning_time_p95": percentile(times, 95),
            "planning_time_mean": _mean(times),
            "failure_reasons": sorted({reason for p in ran for reason in p["reasons"]}),
        }
    report["phases"] = phases
    report["mean_jerk"] = _mean([phases[n]["mean_jerk"] for n in PHASES])
    report["path_length"] = _mean([phases[n]["path_length"] for n in PHASES])
    report["limit_violations"] = all_violations
    report["planning_time_p50"] = percentile(all_times, 50)
    report["planning_time_p95"] = percentile(all_times, 95)
    report["rows"] = rows
    report |= meta
    return report


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

    row("episodes", [r["episodes"] for r in reports], "d")
    row("success rate (episode)", [r["success_rate"] for r in reports], ".2f")
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


# ------------------------------------------------------------------------------------------------------ plots
def write_plots(report: dict[str, Any], folder: str | Path, curves: dict[str, Any] | None = None) -> list[Path]:
    """success_per_episode.png (success and end-effector / tray error per episode and phase) and, given `curves`
    ({"dt": s, "phases": {name: {"planned": (60, 12), "measured_t": (M,), "measured": (M, 12)}}}),
    joint_curves.png of one episode."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    rows = report["rows"]
    idx = np.arange(len(rows))
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    for k, phase in enumerate(PHASES):
        ok = [float(r["phases"].get(phase, {}).get("success", 0.0)) for r in rows]
        axes[0].bar(idx + (k - 0.5) * 0.4, ok, width=0.4, label=phase)
        ee = [1000 * (r["phases"].get(phase, {}).get("ee_error") or np.nan) for r in rows]
        axes[1].plot(idx, ee, "o-", label=phase)
    tray = [1000 * (r["phases"].get("carry", {}).get("tray_error") or np.nan) for r in rows]
    axes[2].plot(idx, tray, "s-", color="C2", label="carry tray position error")
    for ax, label in zip(axes, ("success", "ee error (mm)", "tray error (mm)"), strict=True):
        ax.set_ylabel(label)
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)
    axes[1].axhline(20, color="k", lw=0.8, ls="--")
    axes[2].axhline(20, color="k", lw=0.8, ls="--")
    axes[2].set_xlabel("episode")
    axes[2].xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    fig.suptitle(f"{report['planner']}: success {100 * report['success_rate']:.0f}% over {len(rows)} episodes")
    fig.tight_layout()
    written.append(save_figure(fig, folder / "success_per_episode.png", dpi=90))
    plt.close(fig)
    if curves:
        dt = float(curves["dt"])
        fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharex="col")
        for col, phase in enumerate(PHASES):
            data = curves["phases"].get(phase)
            if data is None:
                continue
            for arm in range(2):
                ax = axes[arm, col]
                planned = np.asarray(data["planned"], dtype=float).reshape(-1, 12)  # (0, 12): nothing published
                t_plan = dt * np.arange(1, len(planned) + 1)
                for j in range(6):
                    c = f"C{j}"
                    if len(planned):
                        ax.plot(t_plan, planned[:, arm * 6 + j], "--", color=c, lw=1)
                    if len(data.get("measured", [])):
                        ax.plot(data["measured_t"], np.asarray(data["measured"])[:, arm * 6 + j], "-", color=c, lw=1.2)
                ax.set_title(f"{phase}, {('left', 'right')[arm]} arm (dashed: published, solid: measured)", fontsize=9)
                ax.set_ylabel("rad")
                ax.grid(alpha=0.3)
            axes[1, col].set_xlabel("time (s)")
        fig.suptitle(f"{report['planner']}: joint curves, episode {curves.get('episode', 0)}")
        fig.tight_layout()
        written.append(save_figure(fig, folder / "joint_curves.png", dpi=90))
        plt.close(fig)
    return written
