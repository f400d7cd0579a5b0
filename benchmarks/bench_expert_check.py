"""The CEM expert against the planner's own check (data_collector_ros.plan_check: flow_planner_common.scene_safety at
the planner's defaults), per phase on the collector's own episodes: success by the physics alone vs physics + check,
and why the check refuses (the grip limit vs a clearance), with the check's figures (min margin, grip change).

    python benchmarks/bench_expert_check.py                       # scene family seed 0, grid indices 0..59, 4 procs
    python benchmarks/bench_expert_check.py --count 200 --procs 8 --flat   # the flat grid (no obstacles)
    python benchmarks/bench_expert_check.py --count 600 --procs 2 --template bar   # the bar scenes among 0..599

Reports numbers only (no assertion).
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def run_shard(args: tuple[list[int], int, bool]) -> list[dict]:
    indices, seed, flat = args
    from data_collector_ros.collector import CollectorConfig, ShardCollector
    from data_collector_ros.scene_family import FamilyConfig

    rows: list[dict] = []

    def on_episode(grid_index, outcomes) -> None:
        for o in outcomes:
            rows.append({
                "grid_index": grid_index, "phase": o.record.phase, "template": o.record.template,
                "physics": bool(o.physics_success), "passed": bool(o.check.passed),
                "grip": o.check.grip_refused, "clearance": o.check.clearance_refused,
                "min_margin": o.check.min_margin, "max_grip": o.check.max_grip,
                "reasons": [r.split(":")[0] for r in o.check.reasons],
                "plan_s": o.plan.seconds, "feasible": bool(o.plan.feasible),
            })  # fmt: skip

    with tempfile.TemporaryDirectory() as output:
        family = None if flat else FamilyConfig(seed=seed)
        collector = ShardCollector(CollectorConfig(Path(output), 0, 0, family=family), log=lambda _: None)
        for grid_index in indices:  # the collector's own episodes (scene, validity filter, seed), index by index
            outcomes, _ = collector.run_episode(grid_index)
            if outcomes is not None:
                on_episode(grid_index, outcomes)
    return rows


def grid_indices(count: int, seed: int, flat: bool, template: str | None) -> list[int]:
    """Grid indices 0..count-1, only those of `template` when given (the family's template slots)."""
    if template is None:
        return list(range(count))
    from data_collector_ros.scene_family import FamilyConfig, template_of

    config = FamilyConfig(seed=seed)
    if flat or template not in config.template_slots:
        names = sorted(set(config.template_slots))
        raise SystemExit(f"bench_expert_check: --template needs the family and one of {names}")
    return [i for i in range(count) if template_of(config, i) == template]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60, help="grid indices (invalid scenes are skipped)")
    parser.add_argument("--seed", type=int, default=0, help="the scene family's seed")
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--flat", action="store_true", help="the flat grid without obstacles instead of the family")
    parser.add_argument("--template", default=None, help="only the grid indices of this template (e.g. bar)")
    args = parser.parse_args()
    indices = grid_indices(args.count, args.seed, args.flat, args.template)
    jobs = [(indices[p :: args.procs], args.seed, args.flat) for p in range(args.procs)]
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        rows = [r for shard in pool.map(run_shard, jobs) for r in shard]
    wall = time.perf_counter() - started
    episodes = len({r["grid_index"] for r in rows})
    what = "flat grid" if args.flat else f"scene family seed {args.seed}"
    what += f", template {args.template}" if args.template else ""
    print(f"{what}, grid indices 0..{args.count - 1}: {episodes} episodes run ({wall:.0f} s wall, {args.procs} procs)")
    for phase, name in ((0, "reach"), (1, "carry")):
        of = [r for r in rows if r["phase"] == phase]
        if not of:
            continue
        n = len(of)
        physics = sum(r["physics"] for r in of)
        both = sum(r["physics"] and r["passed"] for r in of)
        refused = [r for r in of if r["physics"] and not r["passed"]]
        grip_only = sum(r["grip"] and not r["clearance"] for r in refused)
        clear_only = sum(r["clearance"] and not r["grip"] for r in refused)
        both_kinds = sum(r["grip"] and r["clearance"] for r in refused)
        categories = collections.Counter(c for r in refused for c in r["reasons"])
        margins = np.array([r["min_margin"] for r in of])
        print(f"  {name}: {n} phases; physics {physics}/{n} ({physics / n:.0%}), physics + check {both}/{n} "
              f"({both / n:.0%}); the check refuses {len(refused)} physics successes: grip only {grip_only}, "
              f"clearance only {clear_only}, both {both_kinds} (by reason: {dict(categories)}); "
              f"check refuses overall {sum(not r['passed'] for r in of)}/{n}")  # fmt: skip
        print(f"    min margin (m) p5 {np.percentile(margins, 5) * 1e3:.1f} mm, p50 {np.median(margins) * 1e3:.1f} mm")
        seconds = np.array([r["plan_s"] for r in of])
        feasible = sum(r["feasible"] for r in of)
        print(f"    expert planning time p50 {np.median(seconds) * 1e3:.0f} ms, p95 "
              f"{np.percentile(seconds, 95) * 1e3:.0f} ms, mean {seconds.mean() * 1e3:.0f} ms; "
              f"the expert's own 'feasible' {feasible}/{n}")
        grips = np.array([r["max_grip"] for r in of if np.isfinite(r["max_grip"])])
        if grips.size:
            print(f"    grip change p50 {np.median(grips) * 1e3:.1f} mm, p95 {np.percentile(grips, 95) * 1e3:.1f} mm, "
                  f"max {grips.max() * 1e3:.1f} mm")  # fmt: skip
        by_template = collections.defaultdict(lambda: [0, 0, 0])
        for r in of:
            t = by_template[r["template"]]
            t[0] += 1
            t[1] += r["physics"]
            t[2] += r["physics"] and r["passed"]
        print("    per template (n, physics, physics + check): "
              + ", ".join(f"{k} {v[0]}/{v[1]}/{v[2]}" for k, v in sorted(by_template.items())))  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
