"""Collection on Ray (ROS-free): the shard loop (`collector.ShardCollector`) as Ray tasks over chunks of grid indices.

Every task runs one contiguous chunk [a, a + k) of the requested range with the same `CollectorConfig` (only
start_index and count differ), so the files are exactly those of one `collector` process over the whole range: the
grid pose and the episode seed depend on (seed, grid index) only. The guarantees of the shard loop carry over:
- one atomic .npz per trajectory; a rerun, or Ray's retry of a task whose worker died (`max_retries`), skips the
  indices whose two files exist and validate and redoes the rest;
- failed plans are written with success=false and counted, never fatal; a task that still fails after its retries
  is reported (its finished files stay) and the other chunks go on;
- a task deletes only the temp files of its own chunk's trajectories, never those another task is writing;
- with the scene family (`CollectorConfig.family`), a refused scene leaves invalid_<i>.json as in the shard loop
  and is counted as invalid (finished on a rerun).

Progress: each task reports every finished episode (and its log lines) to a small actor that the driver polls,
so one tqdm bar counts episodes over all tasks with trajectories/min, and the summary has per-worker counts.
The caller initialises Ray (`ray.init`); see collect_ray.py for the console script.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ray
from tqdm import tqdm

from data_collector_ros.collector import CollectorConfig, ShardCollector, invalid_filename, is_finished
from flow_planner_common.atomic_file import TEMP_SUFFIX
from flow_planner_common.robot import PHASE_NAMES
from flow_planner_common.trajectory_schema import remove_partial_files, trajectory_filename

#: Ray retries a task whose worker process died (killed, out of memory, node lost) this many times.
DEFAULT_MAX_RETRIES = 3
#: Seconds between polls of the progress actor.
POLL_S = 0.2


def chunk_ranges(start_index: int, count: int, chunk_size: int) -> list[tuple[int, int]]:
    """Contiguous (start, count) chunks of at most chunk_size covering [start_index, start_index + count) once."""
    if start_index < 0 or count < 0 or chunk_size < 1:
        got = f"{start_index}, {count}, {chunk_size}"
        raise ValueError(f"need start_index >= 0, count >= 0, chunk_size >= 1 (got {got})")
    end = start_index + count
    return [(a, min(chunk_size, end - a)) for a in range(start_index, end, chunk_size)]


def default_chunk_size(count: int, workers: int, reset_every: int) -> int:
    """About four chunks per worker (balance, small loss on a retry), at most one simulation-rebuild period."""
    return max(1, min(reset_every, -(-count // (4 * max(1, workers)))))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ChunkCollector(ShardCollector):
    """The shard loop for one chunk. Unlike ShardCollector.pending, it deletes only the temp files of its own
    chunk's files: other tasks write into the same folder at the same time."""

    def pending(self) -> tuple[list[int], int]:
        output = Path(self.config.output_dir)
        output.mkdir(parents=True, exist_ok=True)
        mine = {trajectory_filename(i, phase) for i in self.config.indices for phase in PHASE_NAMES}
        mine.update(invalid_filename(i) for i in self.config.indices)
        with os.scandir(output) as entries:
            names = [e.name for e in entries if e.name.endswith(TEMP_SUFFIX)]
        # A temp file is <target>.<random, no dot>.partial (atomic_file.atomic_path).
        partial = [name for name in names if name[: -len(TEMP_SUFFIX)].rsplit(".", 1)[0] in mine]
        for name in partial:
            (output / name).unlink(missing_ok=True)
            self.log(f"removed partial file {name}")
        todo = [i for i in self.config.indices if not is_finished(output, i)]
        return todo, self.config.count - len(todo)


class ProgressTracker:
    """Ray actor (no CPU): collects the tasks' events; the driver takes them with drain()."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def report(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def drain(self) -> list[dict[str, Any]]:
        events, self.events = self.events, []
        return events


def collect_chunk(
    config: CollectorConfig, chunk: int, tracker: Any, before_episode: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Ray task body: run one chunk, reporting to `tracker`; the chunk's ShardSummary counters."""
    worker = worker_name()

    def report(event: dict[str, Any]) -> None:
        # Waited for (~1 ms, per episode): calls still queued when a worker is killed would be dropped with it.
        ray.get(tracker.report.remote(event))

    base = {"chunk": chunk, "worker": worker, "pid": os.getpid()}
    report({**base, "kind": "started"})

    # The shard loop calls before_episode for every index it runs and on_episode only for a scene it ran: an index
    # without on_episode by the next before_episode (or the end) was refused by the scene filter (invalid_<i>.json).
    running: list[int] = []

    def refused_check() -> None:
        while running:
            grid_index = running.pop()
            if (Path(config.output_dir) / invalid_filename(grid_index)).is_file():
                report({**base, "kind": "invalid", "grid_index": grid_index})

    def before(grid_index: int) -> None:
        refused_check()
        running.append(grid_index)
        if before_episode is not None:
            before_episode(grid_index)

    def on_episode(grid_index: int, outcomes: list) -> None:
        running.clear()
        ok = [bool(o.result.success) for o in outcomes]
        report({
            **base, "kind": "episode", "grid_index": grid_index, "trajectories": len(ok), "successes": sum(ok),
            "failed": not all(ok),
        })  # fmt: skip

    def log(message: str) -> None:
        report({**base, "kind": "log", "message": message})

    summary = ChunkCollector(config, on_episode=on_episode, log=log, before_episode=before).run(progress=False)
    refused_check()
    counters = {"done": summary.done, "skipped": summary.skipped, "failed": summary.failed, "invalid": summary.invalid,
                "trajectories": summary.trajectories, "seconds": summary.seconds}  # fmt: skip
    report({**base, "kind": "finished", **counters})
    return counters


@dataclass
class WorkerStats:
    episodes: int = 0
    invalid: int = 0
    trajectories: int = 0
    failed: int = 0
    tasks: int = 0


@dataclass
class RaySummary:
    """Counters of one collection over Ray (episodes = grid indices)."""

    count: int = 0  # episodes requested
    done: int = 0  # episodes run now
    skipped: int = 0  # episodes already finished on disk
    failed: int = 0  # episodes run now with at least one failed phase
    invalid: int = 0  # scenes refused by the scene filter now (invalid_<i>.json written; finished on a rerun)
    unfinished: int = 0  # episodes of tasks that failed after their retries
    trajectories: int = 0
    successes: int = 0
    tasks: int = 0
    task_retries: int = 0  # task attempts beyond the first (a worker died)
    failed_tasks: list[str] = field(default_factory=list)
    workers: dict[str, WorkerStats] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def trajectories_per_minute(self) -> float:
        return 60.0 * self.trajectories / self.seconds if self.seconds > 0 else 0.0

    @property
    def success_rate(self) -> float:
        return self.successes / self.trajectories if self.trajectories else float("nan")

    def lines(self) -> list[str]:
        rate = f"{100 * self.success_rate:.1f}%" if self.trajectories else "n/a (nothing run)"
        lines = [
            f"done {self.done}, skipped {self.skipped}, failed {self.failed}, invalid {self.invalid}, unfinished "
            f"{self.unfinished} episodes; {self.trajectories} trajectories, CEM success rate {rate}, "
            f"{self.trajectories_per_minute:.1f} trajectories/min in {self.seconds:.1f} s; {self.tasks} tasks, "
            f"{self.task_retries} retried, {len(self.failed_tasks)} failed; {len(self.workers)} workers"
        ]
        for name, w in sorted(self.workers.items()):
            lines.append(f"  worker {name}: {w.episodes} episodes, {w.trajectories} trajectories, {w.failed} failed, "
                         f"{w.invalid} invalid, {w.tasks} task attempts")  # fmt: skip
        lines += [f"  failed task {message}" for message in self.failed_tasks]
        return lines


def collect_with_ray(
    config: CollectorConfig,
    num_workers: int,
    chunk_size: int | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    progress: bool = True,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    log: Callable[[str], None] | None = None,
    before_episode: Callable[[int], None] | None = None,
) -> RaySummary:
    """Collect config's grid indices as Ray tasks, at most `num_workers` at a time (Ray must be initialised).

    on_event(event) runs in this process for every task event (started, episode, log, finished; each names the
    worker and its pid); before_episode(grid_index) is pickled to the workers and runs there before each episode.
    """
    if num_workers < 1 or max_retries < 0:
        raise ValueError(f"need num_workers >= 1 and max_retries >= 0 (got {num_workers}, {max_retries})")
    chunk_size = chunk_size or default_chunk_size(config.count, num_workers, config.reset_every)
    chunks = chunk_ranges(config.start_index, config.count, chunk_size)
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    log = log or (lambda message: tqdm.write(message, file=sys.stderr))
    for path in remove_partial_files(output):  # left by a killed earlier run; no task of this run writes yet
        log(f"removed partial file {path.name}")

    tracker = ray.remote(num_cpus=0)(ProgressTracker).remote()
    task = ray.remote(num_cpus=1, max_retries=max_retries, retry_exceptions=False)(collect_chunk)
    summary = RaySummary(count=config.count, tasks=len(chunks))
    covered: set[int] = set()  # episodes done now or in completed chunks: the progress bar's position
    done: set[int] = set()
    attempts: dict[int, int] = {}
    bar = tqdm(total=config.count, disable=not progress, unit="episode", file=sys.stderr, dynamic_ncols=True)
    started = time.perf_counter()

    def handle(events: list[dict[str, Any]]) -> None:
        before = len(covered)
        for event in events:
            worker = summary.workers.setdefault(event["worker"], WorkerStats())
            if event["kind"] == "started":
                attempts[event["chunk"]] = attempts.get(event["chunk"], 0) + 1
                worker.tasks += 1
            elif event["kind"] == "episode" and event["grid_index"] not in done:
                done.add(event["grid_index"])
                covered.add(event["grid_index"])
                summary.trajectories += event["trajectories"]
                summary.successes += event["successes"]
                summary.failed += event["failed"]
                worker.episodes += 1
                worker.trajectories += event["trajectories"]
                worker.failed += event["failed"]
            elif event["kind"] == "invalid" and event["grid_index"] not in done:
                done.add(event["grid_index"])
                covered.add(event["grid_index"])
                summary.invalid += 1
                worker.invalid += 1
            elif event["kind"] == "log":
                log(f"{event['worker']}: {event['message']}")
            if on_event is not None:
                on_event(event)
        summary.seconds = time.perf_counter() - started
        bar.update(len(covered) - before)
        rate = summary.success_rate if summary.trajectories else 0.0
        bar.set_postfix(success=f"{100 * rate:.0f}%", traj_min=f"{summary.trajectories_per_minute:.1f}")

    queue = list(enumerate(chunks))
    in_flight: dict[Any, tuple[int, tuple[int, int]]] = {}
    try:
        while queue or in_flight:
            while queue and len(in_flight) < num_workers:
                index, (start, count) = queue.pop(0)
                chunk_config = replace(config, start_index=start, count=count)
                in_flight[task.remote(chunk_config, index, tracker, before_episode)] = (index, (start, count))
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL_S)
            handle(ray.get(tracker.drain.remote()))
            for ref in ready:
                index, (start, count) = in_flight.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.RayError as exc:
                    first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                    summary.failed_tasks.append(f"{index} (grid indices [{start}, {start + count})): {first}")
                    continue
                before = len(covered)
                covered.update(range(start, start + count))
                bar.update(len(covered) - before)
        handle(ray.get(tracker.drain.remote()))
    finally:
        bar.close()
        ray.kill(tracker)
    summary.seconds = time.perf_counter() - started
    summary.done = len(done) - summary.invalid
    summary.unfinished = config.count - len(covered)
    summary.skipped = len(covered) - len(done)
    summary.task_retries = sum(n - 1 for n in attempts.values() if n > 1)
    return summary
