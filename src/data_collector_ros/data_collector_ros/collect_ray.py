"""`collect_ray`: expert-data collection as Ray tasks, on this machine or on a Ray cluster.

    collect_ray --output-dir DIR --start-index I --count N [--num-workers W] [--address ADDR] [--seed S]
                [--params-file config/collector.yaml] [--chunk-size K] [--max-retries R] [--no-progress]

Writes exactly the files of `collector -p output_dir:=DIR -p start_index:=I -p count:=N -p seed:=S` (same grid, same
episode seeds, one atomic traj_<grid_index>_<phase>.npz per trajectory; see ray_collection.py). Without --address it
starts a local Ray instance with W CPUs (default: this machine's cores; no dashboard) and stops it at the end; with
--address HOST:PORT (or `auto`) it joins a running cluster (`ray start --head` / `ray start --address`, every node
started from a shell with this workspace sourced) and runs at most W tasks at a time (default: the cluster's CPUs).
On a cluster DIR must be one shared folder (e.g. NFS) mounted at the same path on every node.
--params-file takes the grid and CEM parameters from a collector parameter file (ROS format); output_dir,
start_index, count and seed there are replaced by the options. A rerun resumes; progress bar on stderr; a summary
(done, skipped, failed, per worker) on stdout. Exit codes: 0 done; 1 some task failed after its retries (rerun to
finish); 2 bad arguments (one line on stderr); 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import NoReturn

from flow_planner_common.safe_yaml import YamlInputError

PROG = "collect_ray"
EXIT_OK, EXIT_TASKS_FAILED, EXIT_BAD_ARGUMENTS, EXIT_INTERRUPTED = 0, 1, 2, 130
#: Collector parameters that only mean something to the ROS node (topics, bags, its own progress bar).
ROS_ONLY = {"record_bag", "progress", "joint_states_topic", "tray_pose_topic", "left_trajectory_topic",
            "right_trajectory_topic", "frame_id"}  # fmt: skip
#: Given by the options; a parameter file's values for them are replaced.
FROM_OPTIONS = {"output_dir", "start_index", "count", "seed"}
ADDRESS = re.compile(r"^(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:]+\]):(?P<port>[0-9]{1,5})$")


class ArgumentError(ValueError):
    """A bad option or parameter file: one line, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block): `collect_ray: error: ...`, exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise ArgumentError(message)


def read_params_file(path: Path) -> dict[str, object]:
    """The collector parameters of a ROS parameter file (`/**:` or any node name -> ros__parameters)."""
    from flow_planner_common.safe_yaml import load_yaml_file

    data = load_yaml_file(path)
    if not isinstance(data, dict):
        raise ArgumentError(f"--params-file {path}: expected a mapping of node names to ros__parameters")
    params: dict[str, object] = {}
    for node, section in data.items():
        if not (isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict)):
            raise ArgumentError(f"--params-file {path}: {node!s}: expected ros__parameters")
        params.update(section["ros__parameters"])
    return params


def parse_address(address: str) -> str:
    """`auto` or HOST:PORT that accepts a TCP connection (ray.init would otherwise retry for minutes)."""
    if address == "auto":
        return address
    match = ADDRESS.match(address)
    if not match or not 1 <= int(match["port"]) <= 65535:
        raise ArgumentError(f"--address must be HOST:PORT of a Ray head node (e.g. 10.0.0.1:6379) or auto, "
                            f"got {address!r}")
    host = match["host"].strip("[]")
    try:
        with socket.create_connection((host, int(match["port"])), timeout=3.0):
            pass
    except OSError as exc:
        raise ArgumentError(f"--address {address}: no Ray head node reachable there ({exc.strerror or exc})") from exc
    return address


def build_config(args: argparse.Namespace):
    """The CollectorConfig the collector node would build from the same parameters."""
    from data_collector_ros.collector_parameters import PARAMETERS, config_from_parameters

    params = dict(PARAMETERS)
    if args.params_file is not None:
        given = read_params_file(args.params_file)
        unknown = sorted(set(given) - set(PARAMETERS))
        if unknown:
            names = ", ".join(unknown)
            raise ArgumentError(f"--params-file {args.params_file}: unknown collector parameter(s) {names}")
        if given.get("record_bag"):
            raise ArgumentError(f"--params-file {args.params_file}: record_bag needs the ROS collector node")
        params.update({k: v for k, v in given.items() if k not in FROM_OPTIONS | ROS_ONLY})
    params.update(output_dir=str(args.output_dir), start_index=args.start_index, count=args.count, seed=args.seed)
    if args.scenes is not None:
        params["scenes"] = args.scenes
    try:
        return config_from_parameters(params)
    except (ValueError, TypeError) as exc:
        raise ArgumentError(f"invalid parameters: {exc}") from exc


def check_output_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise ArgumentError(f"--output-dir {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".collect_ray_probe_{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ArgumentError(f"--output-dir {path}: cannot write there ({exc.strerror or exc})") from exc


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", required=True, type=Path, help="folder of traj_*.npz (shared on a cluster)")
    parser.add_argument("--start-index", required=True, type=int, help="first grid index")
    parser.add_argument("--count", required=True, type=int, help="grid indices (episodes) to collect")
    parser.add_argument("--num-workers", type=int, default=None,
                        help="tasks at a time (local default: this machine's cores; cluster: its CPUs)")
    parser.add_argument("--address", default=None, help="join this Ray cluster (HOST:PORT or auto), not a local one")
    parser.add_argument("--seed", type=int, default=0, help="grid and episode seed (the collector's seed)")
    parser.add_argument("--params-file", type=Path, default=None, help="collector parameter file (grid, CEM)")
    parser.add_argument("--scenes", choices=("family", "flat"), default=None,
                        help="the cluttered scene family or the old flat tray grid (default: the params file's)")
    parser.add_argument("--chunk-size", type=int, default=None, help="grid indices per task (default: ~4 per worker)")
    parser.add_argument("--max-retries", type=int, default=3, help="retries of a task whose worker died")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    for name in ("start_index", "count"):
        if getattr(args, name) < 0:
            raise ArgumentError(f"--{name.replace('_', '-')} must be >= 0 (got {getattr(args, name)})")
    for name in ("num_workers", "chunk_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ArgumentError(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(args, name)})")
    if args.max_retries < 0:
        raise ArgumentError(f"--max-retries must be >= 0 (got {args.max_retries})")
    if args.params_file is not None and not args.params_file.is_file():
        raise ArgumentError(f"--params-file {args.params_file}: no such file")
    return args


def start_ray(address: str | None, num_workers: int | None) -> tuple[int, float]:
    """ray.init (local with num_workers CPUs, or joining `address`); (workers to use, seconds it took)."""
    import ray

    started = time.perf_counter()
    common = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a transient local instance: no usage report prompt
        cpus = num_workers or os.cpu_count() or 1
        ray.init(address="local", num_cpus=cpus, **common)
    else:
        try:
            ray.init(address=address, **common)
        except (ConnectionError, RuntimeError, ray.exceptions.RayError) as exc:
            text = " ".join(str(exc).split())
            if "InvalidAuthToken" in f"{text} {exc.__cause__}":
                raise ArgumentError(
                    f"--address {address}: the cluster wants its authentication token: export RAY_AUTH_MODE=token "
                    "here with the head node's token in ~/.ray/auth_token or RAY_AUTH_TOKEN"
                ) from exc
            raise ArgumentError(f"--address {address}: cannot join the Ray cluster ({text[:200]})") from exc
        cpus = num_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    return cpus, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        config = build_config(args)
        check_output_dir(args.output_dir)
        address = parse_address(args.address) if args.address is not None else None
    except (ArgumentError, YamlInputError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_ARGUMENTS
    import ray

    from data_collector_ros.ray_collection import collect_with_ray

    c = config
    try:
        if c.count == 0:
            print(f"{PROG}: nothing to do (count 0)", flush=True)
            return EXIT_OK
        try:
            workers, startup = start_ray(address, args.num_workers)
        except ArgumentError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr, flush=True)
            return EXIT_BAD_ARGUMENTS
        where = f"cluster {address}" if address else "a local Ray instance"
        span = f"[{c.start_index}, {c.start_index + c.count})"
        grid = "the scene family" if c.family is not None else f"a {c.grid.nx}x{c.grid.ny} grid"
        print(f"{PROG}: {where} up in {startup:.1f} s; grid indices {span} of {grid} into {c.output_dir}, "
              f"{workers} workers", file=sys.stderr, flush=True)  # fmt: skip
        summary = collect_with_ray(config, workers, args.chunk_size, args.max_retries, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (finished files are kept; rerun to resume)", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    finally:
        if ray.is_initialized():
            ray.shutdown()
    lines = summary.lines()
    print(f"{PROG}: {lines[0]}", flush=True)
    for line in lines[1:]:
        print(f"{PROG}: {line}", flush=True)
    if summary.failed_tasks:
        failed = len(summary.failed_tasks)
        print(f"{PROG}: error: {failed} task(s) failed after retries; rerun to finish", file=sys.stderr)
        return EXIT_TASKS_FAILED
    return EXIT_OK


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
