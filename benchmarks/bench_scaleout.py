"""Scale-out numbers: collection on Ray with 1 and 2 workers against the single-process shard loop in the same run
(trajectories/min and ratio), Ray start-up overhead, and training samples/s with 1 vs 2 torchrun processes (DDP, gloo
on CPU). Run inside the workspace environment; numbers are printed, never asserted.

    python benchmarks/bench_scaleout.py [--episodes 24] [--train-trajectories 1000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import csv
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray

from data_collector_ros.collector import CollectorConfig, ShardCollector
from data_collector_ros.ray_collection import collect_with_ray

WORKSPACE = Path(__file__).resolve().parents[1]
TRAIN = WORKSPACE / "install" / "flow_planner_ros" / "lib" / "flow_planner_ros" / "train"


@ray.remote(num_cpus=1)
def warm_up() -> int:
    """Start a worker and import the collection stack in it (what the first real task would pay)."""
    import data_collector_ros.collector  # noqa: F401

    return os.getpid()


def single_process(episodes: int) -> float:
    with tempfile.TemporaryDirectory() as output:
        started = time.perf_counter()
        summary = ShardCollector(CollectorConfig(Path(output), 0, episodes)).run(progress=False)
        return 60 * summary.trajectories / (time.perf_counter() - started)


def single_process_in_subprocess(episodes: int, one_thread: bool) -> float:
    """The shard loop in a fresh process, with the default BLAS threads or one (as Ray gives a num_cpus=1 task)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"} if one_thread else {**os.environ}
    if not one_thread:
        env.pop("OMP_NUM_THREADS", None)
    result = subprocess.run([sys.executable, __file__, "--single", str(episodes)], check=True, capture_output=True,
                            text=True, env=env)  # fmt: skip
    return float(result.stdout.strip().splitlines()[-1])


def on_ray(episodes: int, workers: int) -> float:
    with tempfile.TemporaryDirectory() as output:
        started = time.perf_counter()
        summary = collect_with_ray(CollectorConfig(Path(output), 0, episodes), workers, progress=False)
        assert summary.done == episodes and not summary.failed_tasks, summary.lines()
        return 60 * summary.trajectories / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def training(nproc: int, data: Path, out: Path, epochs: int) -> tuple[float, float]:
    """(samples/s of the last epoch as logged, wall seconds of the whole command)."""
    prefix = [sys.executable]
    if nproc > 1:
        prefix += ["-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port", str(free_port())]
    args = [*prefix, str(TRAIN), "--data", str(data), "--config", str(WORKSPACE / "config" / "flow_config.yaml"),
            "--out", str(out), "--epochs", str(epochs), "--no-progress"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - started
    with open(str(out) + ".log.csv") as handle:
        rows = list(csv.DictReader(handle))
    return float(rows[-1]["samples_per_s"]), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=24, help="episodes per collection measurement")
    parser.add_argument("--train-trajectories", type=int, default=1000, help="synthetic trajectories for training")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per measurement")
    parser.add_argument("--single", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        print(single_process(args.single))
        return
    cores = os.cpu_count()
    print(f"machine: {cores} cores (shared with whatever else runs); default collector and flow_config.yaml")

    one_process = single_process_in_subprocess(args.episodes, one_thread=False)
    one_thread = single_process_in_subprocess(args.episodes, one_thread=True)
    started = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    init_s = time.perf_counter() - started
    ray.get([warm_up.remote() for _ in range(2)])
    startup_s = time.perf_counter() - started
    try:
        one_worker = on_ray(args.episodes, 1)
        two_workers = on_ray(args.episodes, 2)
    finally:
        started = time.perf_counter()
        ray.shutdown()
        shutdown_s = time.perf_counter() - started
    print(f"Ray start-up: ray.init {init_s:.1f} s, with 2 workers started and the collection stack imported "
          f"{startup_s:.1f} s; ray.shutdown {shutdown_s:.1f} s")  # fmt: skip
    print(f"collection ({args.episodes} episodes each, trajectories/min, Ray start-up excluded): single process "
          f"{one_process:.0f} (OMP_NUM_THREADS=1: {one_thread:.0f}); Ray 1 worker {one_worker:.0f} "
          f"({one_worker / one_process:.2f}x); Ray 2 workers {two_workers:.0f} ({two_workers / one_process:.2f}x; "
          f"{two_workers / one_thread:.2f}x the one-thread single process)")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        from flow_planner_ros.learning.synthetic import write_synthetic_dataset

        data = write_synthetic_dataset(Path(folder) / "synthetic.npz", args.train_trajectories, seed=0)
        one_sps, one_wall = training(1, data, Path(folder) / "one.safetensors", args.epochs)
        two_sps, two_wall = training(2, data, Path(folder) / "two.safetensors", args.epochs)
    print(f"training ({args.train_trajectories} synthetic trajectories x 5 starts, {args.epochs} epochs, default "
          f"model, 1 thread per process): 1 process {one_sps:.0f} samples/s ({one_wall:.0f} s), 2 processes (torchrun, "
          f"gloo) {two_sps:.0f} samples/s ({two_wall:.0f} s), {two_sps / one_sps:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
