"""The evaluation report's plots: success and errors per episode, and one episode's joint curves (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from flow_planner_common.atomic_file import save_figure
from flow_planner_eval.metrics import PHASES


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
        # Invalid episodes (nothing ran) have no bar.
        ok = [float(r["phases"][phase]["success"]) if phase in r["phases"] else np.nan for r in rows]
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
    valid = report.get("valid_episodes", len(rows))
    rate = report["success_rate"]
    rate_text = f"{100 * rate:.0f}%" if rate is not None and np.isfinite(rate) else "n/a"
    fig.suptitle(f"{report['planner']}: success {rate_text} over {valid} valid episodes"
                 + (f" ({len(rows) - valid} invalid, not counted)" if valid != len(rows) else ""))  # fmt: skip
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


def write_comparison_plot(comparison: dict[str, Any], path: str | Path) -> Path:
    """Success rate against planning time p50 (log x; a thin line to p95) of a comparison report
    (evaluation_compare): the CEM budgets as one curve, each flow configuration and the straight line as points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = comparison["summary"]
    configs = {c["name"]: c for c in comparison["configs"]}

    def point(name: str) -> tuple[float, float, float] | None:
        s = summary[name]
        p50, p95, rate = s.get("planning_time_p50"), s.get("planning_time_p95"), s.get("success_rate")
        if p50 is None or rate is None or not (np.isfinite(p50) and np.isfinite(rate)):
            return None
        p50 = max(1000 * float(p50), 1e-3)  # ms; the straight line's formula is ~0.1 ms
        p95 = max(1000 * float(p95), p50) if p95 is not None and np.isfinite(p95) else p50
        return p50, p95, 100 * float(rate)

    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    cem = sorted((n for n in summary if configs.get(n, {}).get("planner") == "cem"),
                 key=lambda n: configs[n].get("cem_iterations") or 0)  # fmt: skip
    cem_points = [(n, point(n)) for n in cem if point(n) is not None]
    if cem_points:
        xs, ys = [p[0] for _, p in cem_points], [p[2] for _, p in cem_points]
        ax.plot(xs, ys, "o-", color="C0", lw=1.8, label="CEM expert, increasing iteration budget")
        for k, (name, (p50, p95, rate)) in enumerate(cem_points):
            ax.plot([p50, p95], [rate, rate], "-", color="C0", lw=0.6, alpha=0.6)
            default = " (default)" if configs[name].get("default") else ""
            ax.annotate(f"{configs[name].get('cem_iterations')} it{default}", (p50, rate), textcoords="offset points",
                        xytext=(-4, (-12, 6)[k % 2]), fontsize=8, color="C0")  # fmt: skip (labels alternate)
    markers = {"flow": ("s", "C3"), "straight": ("D", "C7"), "rrt": ("^", "C2")}
    for name in summary:
        planner = configs.get(name, {}).get("planner")
        if planner not in markers or point(name) is None:
            continue
        p50, p95, rate = point(name)
        marker, color = markers[planner]
        raw = planner == "flow" and ["refine_iterations", "0"] in [list(p) for p in configs[name]["node_parameters"]]
        ax.plot([p50, p95], [rate, rate], "-", color=color, lw=0.6, alpha=0.6)
        ax.plot([p50], [rate], marker, color=color, mfc="white" if raw else color, ms=8, ls="none")
        ax.annotate(name, (p50, rate), textcoords="offset points", xytext=(5, 4), fontsize=8, color=color)
    ax.plot([], [], "s", color="C3", label="flow planner (best-of-N; hollow: no refinement)")
    ax.plot([], [], "D", color="C7", label="straight min-jerk line")
    if any(configs.get(name, {}).get("planner") == "rrt" for name in summary):
        ax.plot([], [], "^", color="C2", label="OMPL RRTConnect (+ the planner's final check)")
    ax.set_xscale("log")
    ax.set_xlabel("planning time per plan, p50 (ms; thin line to p95)")
    ax.set_ylabel("episode success (%)")
    ax.set_ylim(-5, 105)
    ax.grid(alpha=0.3)
    ax.grid(alpha=0.1, which="minor")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    n, valid = comparison.get("episodes", 0), comparison.get("valid_episodes", 0)
    source = Path(str(comparison.get("episodes_file") or "")).name
    ax.set_title(f"success vs planning time: {valid} valid episodes{' of ' + source if source else ''}"
                 + (f" ({n - valid} invalid)" if n != valid else ""), fontsize=10)  # fmt: skip
    fig.tight_layout()
    out = save_figure(fig, path, dpi=100)
    plt.close(fig)
    return out
