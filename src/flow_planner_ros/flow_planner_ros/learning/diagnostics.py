"""Diagnostics of a trained checkpoint on a dataset: normalization round trip, formulation, ground truth, sensitivity.

Report keys: normalization_roundtrip_max_err, formulation_max_err, gt_mae, gt_rmse (positions, rad),
gt_mae_velocity, scale_ratio (generated std / ground-truth std, positions; scale_ratio_velocity too),
sensitivity_goal, sensitivity_start (mean |Δ positions| when the goal / start moves by `perturbation` rad on every
joint), sensitivity_resample (the same for a different noise seed: the floor the others must clear), goal_error.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flow_planner_common.atomic_file import save_figure
from flow_planner_common.robot import JOINT_NAMES, NUM_JOINTS
from flow_planner_ros.learning.dataset import TrajectoryData
from flow_planner_ros.learning.flow import FlowMatching, formulation_error
from flow_planner_ros.learning.flow_sampler import FlowSampler


def held_out(data: TrajectoryData, meta: dict[str, Any]) -> tuple[TrajectoryData, str]:
    """The checkpoint's validation episodes when `data` is its training data, else all of `data`."""
    training = meta.get("training", {})
    if training.get("data_hash") == data.hash and training.get("val_episodes"):
        mask = np.isin(data.grid_index, np.asarray(training["val_episodes"]))
        if mask.any():
            return data.subset(np.flatnonzero(mask)), "validation"
    return data, "all"


def diagnose(
    checkpoint: str | Path, data_path: str | Path, num_trajectories: int = 64, steps: int | None = None,
    seed: int = 0, perturbation: float = 0.1, plots_dir: str | Path | None = None, num_plots: int = 3,
) -> dict[str, Any]:
    """Run every check; returns the JSON-ready report (and writes PNG plots when plots_dir is given)."""
    planner = FlowSampler.from_checkpoint(checkpoint)
    ckpt = planner.checkpoint
    data = TrajectoryData.load(data_path, use_phase=ckpt.use_phase, only_success=True, obstacles=ckpt.obstacles)
    subset, split = held_out(data, ckpt.meta)
    subset = subset.subset(np.arange(min(num_trajectories, len(subset))))
    norm = ckpt.normalizer

    # The model's own targets: the trajectories, or their residuals to the reference motion.
    target = subset.relative_to_reference() if planner.reference == "min_jerk" else subset
    pos_rt, vel_rt = norm.denormalize_traj(norm.normalize_traj(target.positions, target.velocities))
    cond_rt = norm.denormalize_cond(norm.normalize_cond(subset.cond))
    roundtrip = max(np.abs(pos_rt - target.positions).max(), np.abs(vel_rt - target.velocities).max(),
                    np.abs(cond_rt - subset.cond).max())

    x1 = torch.from_numpy(norm.normalize_traj(target.positions, target.velocities))
    formulation = formulation_error(FlowMatching(float(ckpt.meta.get("flow", {}).get("sigma", 0.0))), x1, seed)

    steps = int(steps or planner.default_steps)
    gen_pos, gen_vel = planner.plan_batch(subset.cond, steps, seed)
    err = gen_pos - subset.positions
    j = NUM_JOINTS
    goal_cond = subset.cond.copy()
    goal_cond[:, 2 * j : 3 * j] += perturbation
    start_cond = subset.cond.copy()
    start_cond[:, :j] += perturbation
    goal_pos, _ = planner.plan_batch(goal_cond, steps, seed)
    start_pos, _ = planner.plan_batch(start_cond, steps, seed)
    resample_pos, _ = planner.plan_batch(subset.cond, steps, seed + 1)
    report = {
        "checkpoint": str(checkpoint),
        "data": str(data_path),
        "split": split,
        "num_trajectories": len(subset),
        "integration_steps": steps,
        "method": planner.default_method,
        "normalization_roundtrip_max_err": float(roundtrip),
        "formulation_max_err": float(formulation),
        "gt_mae": float(np.abs(err).mean()),
        "gt_rmse": float(np.sqrt((err**2).mean())),
        "gt_mae_velocity": float(np.abs(gen_vel - subset.velocities).mean()),
        "gt_mean": float(subset.positions.mean()),
        "gen_mean": float(gen_pos.mean()),
        "scale_ratio": float(gen_pos.std() / subset.positions.std()),
        "scale_ratio_velocity": float(gen_vel.std() / max(subset.velocities.std(), 1e-12)),
        "goal_error": float(np.abs(gen_pos[:, -1] - subset.cond[:, 2 * j : 3 * j]).mean()),
        "perturbation_rad": perturbation,
        "sensitivity_goal": float(np.abs(goal_pos - gen_pos).mean()),
        "sensitivity_start": float(np.abs(start_pos - gen_pos).mean()),
        "sensitivity_resample": float(np.abs(resample_pos - gen_pos).mean()),
        "training": ckpt.meta.get("training", {}),
    }
    report["training"] = {k: v for k, v in report["training"].items() if k not in ("val_episodes", "config")}
    non_finite = [k for k, v in report.items() if isinstance(v, float) and not math.isfinite(v)]
    if non_finite:
        raise ValueError(f"{checkpoint}: non-finite diagnostics ({', '.join(non_finite)}): model outputs overflow")
    if plots_dir is not None:
        report["plots"] = plot_trajectories(
            plots_dir, subset, gen_pos, gen_vel, ckpt.dt, min(num_plots, len(subset))
        )
    return report


def plot_trajectories(
    plots_dir: str | Path, data: TrajectoryData, gen_pos: np.ndarray, gen_vel: np.ndarray, dt: float, count: int
) -> list[str]:
    """PNG per trajectory and group: generated (solid) vs ground truth (dashed) for all 12 joints."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(plots_dir)
    out.mkdir(parents=True, exist_ok=True)
    times = (np.arange(data.positions.shape[1]) + 1) * dt
    written = []
    for i in range(count):
        for label, gt, gen, unit in (("positions", data.positions, gen_pos, "rad"),
                                     ("velocities", data.velocities, gen_vel, "rad/s")):
            fig, axes = plt.subplots(3, 4, figsize=(16, 9), sharex=True)
            for k, ax in enumerate(axes.flat):
                ax.plot(times, gt[i, :, k], "k--", label="ground truth")
                ax.plot(times, gen[i, :, k], "C0-", label="generated")
                ax.set_title(JOINT_NAMES[k], fontsize=8)
                ax.set_ylabel(unit, fontsize=7)
            axes.flat[0].legend(fontsize=7)
            fig.suptitle(f"trajectory {int(data.grid_index[i])}: {label}")
            fig.tight_layout()
            path = out / f"traj_{int(data.grid_index[i]):06d}_{label}.png"
            save_figure(fig, path, dpi=80)
            plt.close(fig)
            written.append(str(path))
    return written
