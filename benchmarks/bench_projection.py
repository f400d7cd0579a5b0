"""How far the planner's smooth projection moves trajectories, and whether it ever undoes obstacle avoidance.

    python benchmarks/bench_projection.py --data runs/heldout/expert.npz [--checkpoint CKPT] [--num-samples 8]
                                          [--knots 4 6 8 12] [--limit 100] [--margin 0.0]

The planner projects each sampled trajectory onto `smoothing_knots` windowed bumps per joint around the request's
reference motion (flow_planner_ros.planning.projection; the CEM expert searches the same basis with 4 knots).
On cluttered held-out scenes (a merged data set: start state, goal and scene per trajectory; collected with a seed
the model was not trained on) this prints, per resolution:

- the expert's own trajectories: the projection's largest change (rad) — ~0 means the basis spans the expert;
- the model's raw samples: the projection's change (p50/p95/max, rad), and the fraction of samples that pass the
  planner's clearance check (flow_planner_common.scene_safety, `clearance_margin`) before and after
  projection, with the number of passing samples the projection made fail ("undone") and failing samples it made pass.

Numbers, never asserted.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from flow_planner_common.motion import reference_trajectory
from flow_planner_common.plan_scene import PlanScene
from flow_planner_common.scene_safety import DEFAULT_CLEARANCE_MARGIN, SceneSafety
from flow_planner_common.trajectory_schema import read_dataset
from flow_planner_ros.learning.flow_sampler import FlowSampler
from flow_planner_ros.planning.projection import SmoothProjection

SHIPPED = Path(__file__).resolve().parents[1] / "src/flow_planner_ros/checkpoints/default.safetensors"


def clear_of_scene(safety: SceneSafety, positions: np.ndarray, row: dict[str, np.ndarray]) -> np.ndarray:
    """(N,) whether each (N, H, 12) trajectory passes the planner's own clearance check
    (flow_planner_common.scene_safety: margin, sweep between waypoints, the carried tray in the carry phase)."""
    checker = safety.checker
    grasp = checker.grasp_from_start(row["arms_start"], row["tray_start_pose"]) if row["phase"] == 1 else None
    scene = PlanScene(np.asarray(row["obstacles"]), np.asarray(row["obstacle_mask"], dtype=bool), grasp)
    return safety.check(positions, row["arms_start"], row["arms_goal"], scene).passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="merged held-out data set (merge --output)")
    parser.add_argument("--checkpoint", default=str(SHIPPED), help="flow checkpoint (default: the shipped one)")
    parser.add_argument("--num-samples", type=int, default=8)
    parser.add_argument("--knots", type=int, nargs="+", default=[4, 6, 8, 12])
    parser.add_argument("--limit", type=int, default=100, help="trajectories (successful ones, in file order)")
    parser.add_argument("--margin", type=float, default=DEFAULT_CLEARANCE_MARGIN, help="clearance_margin (m)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = read_dataset(args.data)
    rows = [
        {k: v[i] for k, v in data.items()} for i in np.flatnonzero(data["success"])[: args.limit]
    ]
    sampler = FlowSampler.from_checkpoint(args.checkpoint, num_threads=1)
    safety = SceneSafety(args.margin)
    dt, horizon = sampler.dt, sampler.horizon
    print(f"{len(rows)} held-out trajectories, {args.num_samples} samples each, checkpoint obstacles="
          f"{sampler.checkpoint.obstacles}, margin {1000 * args.margin:.0f} mm")

    samples, references, expert = [], [], []
    for i, row in enumerate(rows):
        reference = reference_trajectory(row["arms_start"], row["arms_start_vel"], row["arms_goal"], dt, horizon)
        scene = (row["obstacles"], row["obstacle_mask"]) if sampler.checkpoint.obstacles else None
        positions, _ = sampler.plan(
            row["arms_start"], row["arms_start_vel"], row["arms_goal"], args.num_samples, seed=args.seed + i,
            reference=reference, obstacles=scene, phase=int(row["phase"]) if sampler.checkpoint.use_phase else None,
        )
        samples.append(positions)
        references.append(reference)
        expert.append(row["positions"])

    raw_clear = np.stack([clear_of_scene(safety, s, r) for s, r in zip(samples, rows, strict=True)])
    expert_clear = np.array(
        [clear_of_scene(safety, e[None], r)[0] for e, r in zip(expert, rows, strict=True)]
    )
    print(f"expert trajectories clear: {expert_clear.mean():.1%}; raw model samples clear: {raw_clear.mean():.1%}")
    header = "knots | expert change max | sample change p50 / p95 / max (rad) | clear after | undone | made clear | ms"
    print(header)
    print("-" * len(header))
    for knots in args.knots:
        projection = SmoothProjection(knots, dt, horizon)
        expert_change = max(
            float(projection(e[None], ref)[2][0]) for e, ref in zip(expert, references, strict=True)
        )
        changes, cleared, started = [], [], time.perf_counter()
        for s, ref, row in zip(samples, references, rows, strict=True):
            smooth, _, change = projection(s, ref)
            changes.append(change)
            cleared.append(clear_of_scene(safety, smooth, row))
        elapsed_ms = 1000 * (time.perf_counter() - started) / len(rows)
        change, after = np.concatenate(changes), np.stack(cleared)
        undone, made = int(np.sum(raw_clear & ~after)), int(np.sum(~raw_clear & after))
        p50, p95, top = np.percentile(change, 50), np.percentile(change, 95), change.max()
        print(f"{knots:5d} | {expert_change:17.2e} | {p50:.4f} / {p95:.4f} / {top:.4f} | {after.mean():10.1%} | "
              f"{undone:6d} | {made:10d} | {elapsed_ms:.1f}")


if __name__ == "__main__":
    main()
