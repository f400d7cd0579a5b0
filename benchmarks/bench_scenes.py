"""The cluttered scene family in numbers, every planner in one run on the same scenes (executed in the physics):
validity of the generated scenes, straight-line vs CEM-expert episode success per template, CEM time per plan
(p50/p95) and iterations, and collection trajectories/min on the family with 1 and 2 shards.

    python benchmarks/bench_scenes.py                  # 120 grid indices (~100 valid scenes), ~3 min on 2 cores
    python benchmarks/bench_scenes.py --count 300 --shards-count 20
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time

import numpy as np
from tqdm import tqdm

from data_collector_ros.cem import CEMPlanner
from data_collector_ros.episode import cem_plan
from data_collector_ros.episode_sequence import SimulationScene, judge_phase, run_episode
from data_collector_ros.ik import IKSolver
from data_collector_ros.routes import RouteBuilder
from data_collector_ros.scene_family import FamilyConfig, scene_for_index
from data_collector_ros.scene_validity import StraightReach, check_scene
from data_collector_ros.simulation import Simulation
from data_collector_ros.task import TaskConfig
from flow_planner_common.motion import reference_trajectory
from flow_planner_common.robot import DEFAULT_DT

SHARD = """
import json, sys
from pathlib import Path
from data_collector_ros.collector import CollectorConfig, ShardCollector
from data_collector_ros.scene_family import FamilyConfig
out, start, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = ShardCollector(CollectorConfig(Path(out), start, count, family=FamilyConfig(seed=0)), log=lambda m: None).run(
    progress=False)
print(json.dumps({"trajectories": s.trajectories, "invalid": s.invalid, "seconds": s.seconds}))
"""


def compare(count: int, seed: int) -> None:
    sim = Simulation()
    ik = IKSolver(sim.model)
    planner = CEMPlanner(sim.model)
    routes = RouteBuilder(ik, planner.basis(DEFAULT_DT))
    env, task, reach = SimulationScene(sim, 0.02), TaskConfig(), StraightReach(sim, ik)
    config = FamilyConfig(seed=seed)
    rows = collections.defaultdict(lambda: collections.Counter())
    invalid = collections.Counter()
    plan_seconds, plan_iterations = [], []

    def execute(positions, velocities, phase_task):
        sim.reset_stats()
        sim.execute(positions, velocities, DEFAULT_DT)
        sim.advance(sim.trajectory_time_left() + 0.3)
        return judge_phase(sim, phase_task)

    def straight(phase_task):
        p, v = reference_trajectory(phase_task.start.positions, phase_task.start.velocities, phase_task.goal,
                                    DEFAULT_DT)  # fmt: skip
        return execute(p, v, phase_task)

    def expert(phase_task):
        plan = cem_plan(planner, phase_task, phase_task.start, DEFAULT_DT, routes)
        plan_seconds.append(plan.seconds)
        plan_iterations.append(plan.iterations)
        return execute(plan.positions, plan.velocities, phase_task)

    for i in tqdm(range(count), desc="scenes", unit="scene", file=sys.stderr):
        scene = scene_for_index(config, i, reach)
        check = check_scene(sim, ik, scene, seed=i)
        if not check.valid:
            invalid[check.reason.split(" (")[0]] += 1
            continue
        row = rows[scene.template]
        row["valid"] += 1
        for name, step in (("straight", straight), ("cem", expert)):
            episode = run_episode(env, ik, task, scene.start_pose(), i, step, lambda r: r.success,
                                  tray_goal=scene.goal_pose())  # fmt: skip
            row[name] += episode.reach.success and episode.carry.success
            row[f"{name}_collisions"] += any("obstacle collision" in r for p in episode.phases for r in p.reasons)
    total = collections.Counter()
    print(f"\nscene family seed {seed}, grid indices 0..{count - 1}: {sum(r['valid'] for r in rows.values())} valid, "
          f"{sum(invalid.values())} refused: {dict(invalid)}")  # fmt: skip
    print(f"{'template':<12} {'valid':>5} {'straight':>9} {'cem':>9} {'straight coll.':>15} {'cem coll.':>10}")
    for template, row in sorted(rows.items()):
        total.update(row)
        n = row["valid"]
        print(f"{template:<12} {n:>5} {row['straight'] / n:>9.0%} {row['cem'] / n:>9.0%} "
              f"{row['straight_collisions']:>15} {row['cem_collisions']:>10}")  # fmt: skip
    n = total["valid"]
    print(f"{'all':<12} {n:>5} {total['straight'] / n:>9.0%} {total['cem'] / n:>9.0%} "
          f"{total['straight_collisions']:>15} {total['cem_collisions']:>10}")  # fmt: skip
    seconds = np.array(plan_seconds)
    print(f"CEM time per plan: p50 {np.median(seconds) * 1e3:.0f} ms, p95 {np.percentile(seconds, 95) * 1e3:.0f} ms, "
          f"max {seconds.max() * 1e3:.0f} ms; iterations p50 {np.median(plan_iterations):.0f}, "
          f"max {max(plan_iterations)}")  # fmt: skip
    quick = [s for s, t in zip(plan_seconds, plan_iterations, strict=True) if t <= 5]
    if quick:
        print(f"  plans without a route (straight-line search only): {len(quick)}, p50 {np.median(quick) * 1e3:.0f} ms")


def collection_rate(count: int) -> None:
    for shards in (1, 2):
        with tempfile.TemporaryDirectory() as output:
            per_shard = count // shards
            started = time.perf_counter()
            starts = [k * per_shard for k in range(shards)]
            commands = [[sys.executable, "-c", SHARD, output, str(k), str(per_shard)] for k in starts]
            procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for command in commands]
            results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
            wall = time.perf_counter() - started
        trajectories = sum(r["trajectories"] for r in results)
        print(f"collection on the family, {shards} shard(s): {trajectories} trajectories "
              f"({sum(r['invalid'] for r in results)} scenes refused) in {wall:.1f} s wall = "
              f"{60 * trajectories / wall:.1f} trajectories/min")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=120, help="grid indices to try (invalid ones are skipped)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shards-count", type=int, default=16, help="grid indices for the collection rate")
    args = parser.parse_args()
    compare(args.count, args.seed)
    collection_rate(args.shards_count)


if __name__ == "__main__":
    main()
