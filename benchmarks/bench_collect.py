"""Collection numbers: trajectories/min with 1 and 2 shards (separate processes, ROS-free shard loop), CEM success
rate on a grid, seconds per CEM plan, and RSS early vs. late in a long run. Run inside the workspace environment.

    python benchmarks/bench_collect.py                 # short default (~1 min on 2 cores)
    python benchmarks/bench_collect.py --full          # issue numbers: 10x10 grid, RSS at episode 10 vs 200
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from data_collector_ros.collector import CollectorConfig, ShardCollector
from data_collector_ros.grid import GridConfig
from data_collector_ros.sharding import shard_ranges


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_shard(output: str, start: int, count: int, nx: int, ny: int) -> dict:
    """One shard in this process; per-episode RSS and plan times."""
    rss, plan_seconds, successes = [], [], []

    def on_episode(grid_index, outcomes) -> None:
        rss.append(rss_mib())
        plan_seconds.extend(o.plan.seconds for o in outcomes)
        successes.extend(bool(o.result.success) for o in outcomes)

    config = CollectorConfig(Path(output), start, count, grid=GridConfig(nx=nx, ny=ny))
    summary = ShardCollector(config, on_episode=on_episode).run(progress=False)
    return {"trajectories": summary.trajectories, "seconds": summary.seconds, "rss": rss,
            "plan_seconds": plan_seconds, "successes": successes}  # fmt: skip


def sharded(count: int, shards: int, nx: int, ny: int) -> tuple[float, list[dict]]:
    """Trajectories/min of `shards` processes on disjoint shards (wall clock, startup included)."""
    with tempfile.TemporaryDirectory() as output:
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--worker", output, str(s), str(c), str(nx), str(ny)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for s, c in shard_ranges(0, count, shards)
        ]
        results = [json.loads(p.communicate()[0]) for p in procs]
        wall = time.perf_counter() - start
    return 60 * sum(r["trajectories"] for r in results) / wall, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="10x10 grid success rate and RSS over 200 episodes")
    parser.add_argument("--episodes", type=int, default=12, help="episodes per throughput measurement")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        output, start, count, nx, ny = args.worker
        print(json.dumps(run_shard(output, int(start), int(count), int(nx), int(ny))))
        return
    episodes = 100 if args.full else args.episodes
    one, results1 = sharded(episodes, 1, 10, 10)
    two, _ = sharded(episodes, 2, 10, 10)
    successes = results1[0]["successes"]
    plan = np.array(results1[0]["plan_seconds"])
    print(f"trajectories/min: 1 shard {one:.1f}, 2 shards {two:.1f} ({episodes} episodes each, processes on 2 cores)")
    print(f"CEM success rate: {100 * np.mean(successes):.1f}% of {len(successes)} trajectories"
          f" ({episodes} cells of a 10x10 grid, both phases)")  # fmt: skip
    print(f"s per CEM plan: median {np.median(plan):.3f}, max {plan.max():.3f}")
    long_run = 200 if args.full else 30
    with tempfile.TemporaryDirectory() as output:
        rss = run_shard(output, 0, long_run, 10, 10)["rss"]
    print(f"RSS: episode 10 {rss[9]:.1f} MiB, episode {long_run} {rss[-1]:.1f} MiB")


if __name__ == "__main__":
    main()
