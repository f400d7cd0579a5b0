"""The shard loop (ROS-free): run the episodes of grid indices [start_index, start_index + count) and write one
.npz per trajectory, crash-safe and resumable.

- Scenes: with `family`, grid index i is the scene family's scene i (data_collector_ros.scene_family); a scene
  that fails the validity filter is not run: `invalid_<i>.json` records why (atomically) and counts as finished.
  Without `family`, the old flat tray-pose grid (`grid`) with an empty scene.
- Resume: temp files of a killed writer of this shard's indices are deleted (other shards may share the folder); an
  index whose two trajectory files exist and validate (or whose invalid record exists) is skipped; anything missing
  or invalid is redone (files are overwritten atomically).
- Failed plans are written with success=false and never stop the run.
- SimulationUnstable: reset and one retry of the episode; a second instability records the phase as failed.
- The simulation, IK solver and planner are rebuilt every `reset_every` episodes (no numerical drift carried over).
- Nothing accumulates per episode: records go to disk and are dropped; the summary holds counters only.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from data_collector_ros.cem import CEMConfig, CEMPlanner
from data_collector_ros.episode import EpisodeConfig, EpisodeObserver, EpisodeRunner, PhaseOutcome
from data_collector_ros.grid import GridConfig, episode_seed, grid_pose
from data_collector_ros.ik import IKSolver
from data_collector_ros.scene_family import FamilyConfig, scene_for_index
from data_collector_ros.scene_validity import StraightReach, check_scene
from data_collector_ros.simulation import Simulation, SimulationUnstable
from data_collector_ros.task import TaskConfig
from flow_planner_common.atomic_file import write_json
from flow_planner_common.robot import PHASE_NAMES
from flow_planner_common.trajectory_schema import (
    SCHEMA_VERSION,
    SchemaError,
    read_trajectory,
    remove_partial_files,
    trajectory_filename,
    write_trajectory,
)


@dataclass(frozen=True)
class CollectorConfig:
    output_dir: Path
    start_index: int = 0
    count: int = 100
    grid: GridConfig = field(default_factory=GridConfig)  # grid.seed is the global seed
    family: FamilyConfig | None = None  # the cluttered scene family (its own seed); None = the flat grid
    cem: CEMConfig = field(default_factory=CEMConfig)
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)
    lift_height: float = 0.20  # m
    reset_every: int = 20  # episodes between simulation rebuilds

    def __post_init__(self) -> None:
        if self.start_index < 0 or self.count < 0:
            raise ValueError(f"need start_index >= 0 and count >= 0 (got {self.start_index}, {self.count})")
        if self.reset_every < 1:
            raise ValueError(f"reset_every must be >= 1 (got {self.reset_every})")
        if not str(self.output_dir):
            raise ValueError("output_dir must not be empty")
        if not (self.episode.dt > 0 and self.lift_height >= 0):
            raise ValueError("need dt > 0 and lift_height >= 0")

    @property
    def indices(self) -> range:
        return range(self.start_index, self.start_index + self.count)


@dataclass
class ShardSummary:
    """Counters of one run of a shard."""

    done: int = 0  # episodes run now
    skipped: int = 0  # episodes already finished on disk
    invalid: int = 0  # scenes refused by the validity filter now
    failed: int = 0  # episodes with at least one failed phase
    trajectories: int = 0  # written now
    successes: int = 0  # of those, successful
    retries: int = 0  # episodes retried after an instability
    seconds: float = 0.0
    plan_seconds: float = 0.0

    @property
    def success_rate(self) -> float:
        """Fraction of the trajectories written now that succeeded; NaN when none was written."""
        return self.successes / self.trajectories if self.trajectories else float("nan")

    @property
    def trajectories_per_minute(self) -> float:
        return 60.0 * self.trajectories / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        rate = f"{100 * self.success_rate:.1f}%" if self.trajectories else "n/a (nothing run)"
        return (
            f"done {self.done}, skipped {self.skipped}, failed {self.failed}, invalid {self.invalid} episodes; "
            f"{self.trajectories} trajectories, CEM success rate {rate}, "
            f"{self.trajectories_per_minute:.1f} trajectories/min, {self.retries} instability retries"
        )


def invalid_filename(grid_index: int) -> str:
    """The record of a scene the validity filter refused: invalid_<grid_index:06d>.json."""
    return f"invalid_{grid_index:06d}.json"


def is_finished(output_dir: Path, grid_index: int) -> bool:
    """Both trajectory files of an index exist, validate, are of this schema and belong to it, or its scene was
    refused."""
    if (Path(output_dir) / invalid_filename(grid_index)).is_file():
        return True
    for phase in PHASE_NAMES:
        path = Path(output_dir) / trajectory_filename(grid_index, phase)
        if not path.is_file():
            return False
        try:
            record = read_trajectory(path)
        except SchemaError:
            return False
        if record.grid_index != grid_index or record.phase != phase or record.schema_version != SCHEMA_VERSION:
            return False  # an older schema's file (readable, unchecked) is collected again
    return True


class ShardCollector:
    """Runs one shard. `before_episode(grid_index)` and `on_episode(grid_index, outcomes)` are called around each
    episode (bag recording, progress, metrics)."""

    def __init__(
        self,
        config: CollectorConfig,
        observer: EpisodeObserver | None = None,
        on_episode: Callable[[int, list[PhaseOutcome]], None] | None = None,
        log: Callable[[str], None] | None = None,
        before_episode: Callable[[int], None] | None = None,
    ) -> None:
        self.before_episode = before_episode
        self.config = config
        self.observer = observer
        self.on_episode = on_episode
        self.log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        self.task = config.grid.task_box(TaskConfig(lift_height=config.lift_height))
        self.runner: EpisodeRunner | None = None
        self._episodes_since_build = 0

    def pending(self) -> tuple[list[int], int]:
        """Delete temp files, then (indices to run, number already finished)."""
        output = Path(self.config.output_dir)
        output.mkdir(parents=True, exist_ok=True)
        mine = {trajectory_filename(i, phase) for i in self.config.indices for phase in PHASE_NAMES}
        mine |= {invalid_filename(i) for i in self.config.indices}
        for path in remove_partial_files(output, mine):  # only this shard's: others may share the folder
            self.log(f"removed partial file {path.name}")
        todo = [i for i in self.config.indices if not is_finished(output, i)]
        return todo, self.config.count - len(todo)

    def build(self) -> EpisodeRunner:
        """A fresh simulation, IK solver and planner."""
        sim = Simulation()
        planner = CEMPlanner(sim.model, self.config.cem)
        runner = EpisodeRunner(sim, planner, IKSolver(sim.model), self.task, self.config.episode, self.observer)
        self._episodes_since_build = 0
        return runner

    def run(self, progress: bool = True) -> ShardSummary:
        todo, skipped = self.pending()
        summary = ShardSummary(skipped=skipped)
        started = time.perf_counter()
        bar = tqdm(total=len(todo), disable=not progress, unit="episode", file=sys.stderr, dynamic_ncols=True)
        try:
            for grid_index in todo:
                if self.before_episode is not None:
                    self.before_episode(grid_index)
                outcomes, retried = self.run_episode(grid_index)
                if outcomes is None:
                    summary.invalid += 1
                    bar.update(1)
                    continue
                summary.done += 1
                summary.retries += retried
                summary.trajectories += len(outcomes)
                summary.successes += sum(o.result.success for o in outcomes)
                summary.failed += not all(o.result.success for o in outcomes)
                summary.plan_seconds += sum(o.plan.seconds for o in outcomes)
                summary.seconds = time.perf_counter() - started
                if self.on_episode is not None:
                    self.on_episode(grid_index, outcomes)
                bar.update(1)
                rate = summary.success_rate if summary.trajectories else 0.0
                per_minute = summary.trajectories_per_minute
                bar.set_postfix(success=f"{100 * rate:.0f}%", traj_min=f"{per_minute:.1f}")
                del outcomes
        finally:
            bar.close()
        summary.seconds = time.perf_counter() - started
        return summary

    def run_episode(self, grid_index: int) -> tuple[list[PhaseOutcome] | None, bool]:
        """Run and write one episode; (outcomes, whether it was retried after an instability). Outcomes are None
        for a scene the validity filter refused (its invalid record is written instead)."""
        if self.runner is None or self._episodes_since_build >= self.config.reset_every:
            self.runner = None  # drop the old simulation before building the new one
            self.runner = self.build()
        self._episodes_since_build += 1
        output = Path(self.config.output_dir)
        family, scene = self.config.family, None
        if family is not None:
            runner = self.runner
            scene = scene_for_index(family, grid_index, StraightReach(runner.sim, runner.ik))
            check = check_scene(runner.sim, runner.ik, scene, seed=grid_index)
            if not check.valid:
                write_json(output / invalid_filename(grid_index), {
                    "grid_index": grid_index, "template": scene.template, "reason": check.reason,
                })  # fmt: skip
                return None, False
            pose = scene.start_pose()
            seed = episode_seed(family.seed, grid_index)
        else:
            pose = grid_pose(self.config.grid, grid_index)
            seed = episode_seed(self.config.grid.seed, grid_index)

        def write(record) -> None:
            write_trajectory(output, record)

        try:
            return self.runner.run(grid_index, pose, seed, on_record=write, scene=scene), False
        except SimulationUnstable as exc:
            self.log(f"grid index {grid_index}: {exc}; resetting the simulation and retrying once")
            self.runner.sim.reset()
            outcomes = self.runner.run(grid_index, pose, seed, tolerate_unstable=True, on_record=write, scene=scene)
            return outcomes, True
