"""The evaluation report's plots: success and errors per episode, and one episode's joint curves (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from flow_planner_common.atomic_file import save_figure
from flow_planner_ros.evaluation import PHASES


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
