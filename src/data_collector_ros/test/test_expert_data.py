"""Expert data with real MuJoCo: grid, CEM expert, episodes, shard loop memory, merge CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from data_collector_ros.cem import CEMConfig, CEMPlanner
from data_collector_ros.collector import CollectorConfig, ShardCollector, is_finished
from data_collector_ros.episode import EpisodeRunner
from data_collector_ros.episode_sequence import PhaseTask, SimulationScene, run_episode
from data_collector_ros.grid import GridConfig, cell_of, episode_seed, grid_pose
from data_collector_ros.ik import IKSolver
from data_collector_ros.interpolation import HermiteTrajectory
from data_collector_ros.plan_cost import PhaseContext
from data_collector_ros.sharding import shard_ranges
from data_collector_ros.simulation import Simulation
from flow_planner_common.robot import (
    DEFAULT_DT,
    HOME_POSITIONS,
    HORIZON,
    JOINT_POSITION_LIMITS,
    JOINT_VELOCITY_LIMITS,
    NUM_JOINTS,
    PHASE_CARRY,
    PHASE_REACH,
)
from flow_planner_common.trajectory_schema import read_dataset, read_trajectory, trajectory_filename

WORKSPACE = Path(__file__).resolve().parents[3]
MERGE = WORKSPACE / "install" / "data_collector_ros" / "lib" / "data_collector_ros" / "merge"
TINY_CEM = CEMConfig(num_candidates=4, num_elites=2, iterations=1, min_iterations=1)


def test_grid_is_deterministic_stratified_and_shards_cover_it_once() -> None:
    grid = GridConfig(nx=4, ny=3, seed=7)
    cells = [cell_of(grid, i)[1] for i in range(grid.cells)]
    assert sorted(cells) == list(range(grid.cells))  # one pass visits every cell once
    assert cells != sorted(cells)  # shuffled
    second_pass = [cell_of(grid, i)[1] for i in range(grid.cells, 2 * grid.cells)]
    assert sorted(second_pass) == list(range(grid.cells))
    shards = [set(range(start, start + count)) for start, count in shard_ranges(0, grid.cells, 3)]
    assert all(a.isdisjoint(b) for i, a in enumerate(shards) for b in shards[i + 1 :])
    assert {cell_of(grid, i)[1] for shard in shards for i in shard} == set(range(grid.cells))
    poses = np.array([grid_pose(grid, i) for i in range(grid.cells)])
    np.testing.assert_array_equal(poses, [grid_pose(GridConfig(nx=4, ny=3, seed=7), i) for i in range(grid.cells)])
    task = grid.task_box()
    assert all(task.contains(p) for p in poses)
    assert len(np.unique(np.round(poses[:, :2], 6), axis=0)) == grid.cells  # every cell its own position
    assert not np.array_equal(poses, [grid_pose(GridConfig(nx=4, ny=3, seed=8), i) for i in range(grid.cells)])
    assert episode_seed(0, 5) == episode_seed(0, 5) != episode_seed(0, 6)
    with pytest.raises(ValueError, match="nx >= 1"):
        GridConfig(nx=0)


@pytest.fixture(scope="module")
def runner() -> EpisodeRunner:
    sim = Simulation()
    return EpisodeRunner(sim, CEMPlanner(sim.model), IKSolver(sim.model))


def check_trajectory(record, start: np.ndarray) -> None:
    """Shape, limits, and velocities consistent with the positions (Hermite midpoints vs. the plan's own curve)."""
    assert record.positions.shape == record.velocities.shape == (HORIZON, NUM_JOINTS)
    assert np.all(record.positions >= JOINT_POSITION_LIMITS[:, 0]) and np.all(
        record.positions <= JOINT_POSITION_LIMITS[:, 1]
    )
    assert np.all(np.abs(record.velocities) <= JOINT_VELOCITY_LIMITS)
    np.testing.assert_allclose(record.arms_start, start)
    np.testing.assert_allclose(record.positions[-1], record.arms_goal, atol=1e-9)
    np.testing.assert_allclose(record.velocities[-1], 0.0, atol=1e-9)
    # Velocities match the positions: central differences of the positions agree with the velocities.
    central = (record.positions[2:] - record.positions[:-2]) / (2 * record.dt)
    assert np.abs(central - record.velocities[1:-1]).max() < 0.02
    times = record.dt * np.arange(1, HORIZON + 1)
    traj = HermiteTrajectory.from_waypoints(
        record.arms_start, record.arms_start_vel, times, record.positions, record.velocities
    )
    q, _ = traj.sample(np.arange(HORIZON + 1) * record.dt)
    assert np.abs(np.diff(q, n=3, axis=0)).max() < 0.01  # smooth: small third differences per 50 ms


def test_cem_episodes_succeed_on_grid_cells_of_both_phases(runner: EpisodeRunner) -> None:
    grid = GridConfig(nx=10, ny=10)
    for grid_index in (0, 37, 99):
        pose = grid_pose(grid, grid_index)
        outcomes = runner.run(grid_index, pose, episode_seed(0, grid_index))
        assert [o.record.phase for o in outcomes] == [PHASE_REACH, PHASE_CARRY]
        for outcome in outcomes:
            assert outcome.result.success, (grid_index, outcome.record.phase, outcome.result.reasons)
            assert outcome.plan.feasible and np.isfinite(outcome.plan.cost)
            check_trajectory(outcome.record, outcome.record.arms_start)
        assert outcomes[1].result.metrics["tray_angle_error"] < np.radians(5)
        np.testing.assert_allclose(outcomes[0].record.arms_start, HOME_POSITIONS)


def test_the_experts_carries_hold_the_grip_by_construction(runner: EpisodeRunner) -> None:
    """With hold_grip (the default) the right arm follows the left: the carry changes the grip by well under a
    millimetre (the free right arm moves it by centimetres on the same episode), ends where the plan says (its
    goal: the task's goal with the right arm keeping the start's grip) and its velocities match its positions."""
    grid_index = 37
    pose, seed = grid_pose(GridConfig(nx=10, ny=10), grid_index), episode_seed(0, grid_index)
    free = EpisodeRunner(runner.sim, CEMPlanner(runner.sim.model, CEMConfig(hold_grip=False)), runner.ik)
    held_carry = runner.run(grid_index, pose, seed)[1]
    free_carry = free.run(grid_index, pose, seed)[1]
    safety = runner.safety
    start = held_carry.record.arms_start
    held = float(safety.grip_change(held_carry.record.positions[None], start).max())
    loose = float(safety.grip_change(free_carry.record.positions[None], start).max())
    assert held < 5e-4 < 5e-3 < loose, (held, loose)
    assert held_carry.result.success and held_carry.plan.feasible
    np.testing.assert_array_equal(held_carry.record.arms_goal, held_carry.plan.goal)
    check_trajectory(held_carry.record, start)
    # the goal's left arm is the task's; its right arm moved (a little) to where the start's grip puts it
    goal_shift = np.abs(held_carry.plan.goal - free_carry.record.arms_goal)
    assert goal_shift[:6].max() == 0.0 and goal_shift[6:].max() < 0.05


def test_the_shared_sequence_carries_from_a_grasped_reset_when_the_attach_is_skipped(runner: EpisodeRunner) -> None:
    """The one reach -> attach -> carry sequence (used by the collector and `evaluate`) with a step that executes
    nothing: without an attach, the carry starts from the arms at the reach goal with the tray grasped."""
    pose = grid_pose(GridConfig(nx=10, ny=10), 37)
    tasks: list[PhaseTask] = []

    def step(task: PhaseTask) -> int:
        tasks.append(task)
        return task.phase

    scene = SimulationScene(runner.sim, 0.02)
    episode = run_episode(scene, runner.ik, runner.task, pose, 5, step, may_attach=lambda _: False)
    assert not episode.attached and episode.phases == [PHASE_REACH, PHASE_CARRY]
    reach, carry = tasks
    assert reach.ik_success and carry.ik_success and runner.sim.grasped
    np.testing.assert_allclose(reach.start.positions, HOME_POSITIONS)
    np.testing.assert_allclose(carry.start.positions, reach.goal, atol=1e-6)
    np.testing.assert_allclose(carry.tray_start[:3], pose[:3], atol=1e-6)
    np.testing.assert_allclose(carry.tray_goal, runner.task.carry_goal_pose(pose))


def test_cem_is_seeded_and_avoids_a_collision_of_the_straight_line(runner: EpisodeRunner) -> None:
    planner = runner.planner
    goal = np.array(HOME_POSITIONS)
    goal[0] -= 2.4  # left shoulder pan swings through the right arm on the straight joint-space line, ends clear
    tray = runner.sim.rest_tray_pose
    context = PhaseContext(PHASE_REACH, np.array(HOME_POSITIONS), np.zeros(NUM_JOINTS), tray, np.zeros((2, 3)), 0.05)
    straight = planner.basis(DEFAULT_DT).trajectories(
        context.start_positions, context.start_velocities, goal, np.zeros((1, planner.config.num_knots, NUM_JOINTS))
    )
    report = planner.cost.evaluate(*straight, context)
    assert not report.feasible[0] and report.min_distance[0] < 0  # the straight line collides
    plan = planner.plan(context, goal, np.random.default_rng(3))
    assert plan.feasible, plan.terms
    assert planner.cost.evaluate(plan.positions[None], plan.velocities[None], context).min_distance[0] >= 0
    again = planner.plan(context, goal, np.random.default_rng(3))
    np.testing.assert_array_equal(again.positions, plan.positions)


#: Collector episodes of the memory probe.
MEMORY_EPISODES = 100

MEMORY_PROBE = """
import json, os, sys
from pathlib import Path
from data_collector_ros.cem import CEMConfig
from data_collector_ros.collector import CollectorConfig, ShardCollector
from data_collector_ros.grid import GridConfig

def rss_kb():
    # Anonymous resident memory only: file-backed pages (shared libraries) come and go under memory pressure.
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("RssAnon:"))

samples = []
tiny = CEMConfig(num_candidates=4, num_elites=2, iterations=1, min_iterations=1)
config = CollectorConfig(Path(sys.argv[1]), 0, EPISODES, grid=GridConfig(nx=5, ny=5), cem=tiny, reset_every=10)
summary = ShardCollector(config, on_episode=lambda i, o: samples.append(rss_kb())).run(progress=False)
print(json.dumps({"done": summary.done, "trajectories": summary.trajectories, "rss_kb": samples}))
"""


def test_memory_is_flat_over_100_episodes(tmp_path: Path) -> None:
    """RSS of a collector process (a fresh one, so other tests' allocations do not blur it) stays flat. 100 episodes,
    judged from the 20th: over 50 (from the 10th) one CI run read 80 KiB per episode (+2.7 MB from episode 10 to 50)
    where local runs of the same code read 0.5-2.2 and of the code before 0-38, i.e. allocator steps; over more
    episodes a one-off step weighs less, while a steady leak still reads as itself."""
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE.replace("EPISODES", str(MEMORY_EPISODES)), str(tmp_path)],
        capture_output=True, text=True, timeout=300,
        # One BLAS/OpenMP thread: thread pools that start lazily under load would add RSS steps unrelated to leaks.
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["done"] == MEMORY_EPISODES and report["trajectories"] == 2 * MEMORY_EPISODES
    assert len(list(tmp_path.glob("traj_*.npz"))) == 2 * MEMORY_EPISODES
    late = np.array(report["rss_kb"][20:])
    # Theil-Sen slope (median of pairwise slopes): a steady per-episode leak shows, while one-off allocator steps
    # (a simulation rebuild every reset_every episodes) do not swing it.
    i, j = np.triu_indices(len(late), k=1)
    slope = float(np.median((late[j] - late[i]) / (j - i)))
    assert slope < 50.0, f"RSS grows {slope:.1f} KiB per episode (episode 20: {late[0]:.0f} KiB, last: {late[-1]:.0f})"


@pytest.fixture(scope="module")
def small_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("collection")
    ShardCollector(CollectorConfig(output, 0, 3, grid=GridConfig(nx=3, ny=3), cem=TINY_CEM)).run(progress=False)
    return output


def run_merge(*args: str) -> subprocess.CompletedProcess:
    if not MERGE.exists():
        pytest.fail(f"{MERGE} missing: colcon build the workspace first")
    return subprocess.run([str(MERGE), *args], capture_output=True, text=True, timeout=120, env=os.environ)


def test_merge_skips_truncated_and_nan_files_by_name(small_collection: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for path in small_collection.glob("traj_*.npz"):
        (data / path.name).write_bytes(path.read_bytes())
    truncated = data / trajectory_filename(0, PHASE_REACH)
    truncated.write_bytes(truncated.read_bytes()[:1500])
    nan_file = data / trajectory_filename(1, PHASE_CARRY)
    with np.load(nan_file, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    arrays["positions"][10, 3] = np.nan
    np.savez(nan_file, **arrays)
    output = tmp_path / "merged.npz"
    result = run_merge("--input", str(data), "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert f"skipping corrupt file {truncated}" in result.stderr and "unreadable npz" in result.stderr
    assert f"skipping corrupt file {nan_file}: positions: contains NaN" in result.stderr
    assert "reach: 2 trajectories" in result.stdout and "carry: 2 trajectories" in result.stdout
    merged = read_dataset(output)
    assert len(merged["positions"]) == 4
    assert sorted(zip(merged["grid_index"].tolist(), merged["phase"].tolist(), strict=True)) == [
        (0, 1), (1, 0), (2, 0), (2, 1),
    ]  # fmt: skip
    with zipfile.ZipFile(output) as archive:
        assert archive.testzip() is None


def test_merge_exit_codes(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "traj_000000_reach.npz").write_bytes(b"not a zip file")
    result = run_merge("--input", str(empty), "--output", str(tmp_path / "out.npz"))
    assert result.returncode == 1 and "no valid trajectory files" in result.stderr
    assert "skipping corrupt file" in result.stderr
    assert not (tmp_path / "out.npz").exists()
    result = run_merge("--input", str(tmp_path / "missing"), "--output", str(tmp_path / "out.npz"))
    assert result.returncode == 2 and "not found" in result.stderr
    assert run_merge("--output", str(tmp_path / "out.npz")).returncode == 2


def test_resume_skips_finished_and_redoes_invalid(small_collection: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for path in small_collection.glob("traj_*.npz"):
        (data / path.name).write_bytes(path.read_bytes())
    (data / trajectory_filename(1, PHASE_REACH)).write_bytes(b"garbage")
    (data / "traj_000002_carry.npz.abc.partial").write_bytes(b"half")
    collector = ShardCollector(CollectorConfig(data, 0, 3, grid=GridConfig(nx=3, ny=3), cem=TINY_CEM))
    summary = collector.run(progress=False)
    assert (summary.done, summary.skipped) == (1, 2)
    assert not list(data.glob("*.partial"))
    assert all(is_finished(data, i) for i in range(3))
    redone = read_trajectory(data / trajectory_filename(1, PHASE_REACH))
    original = read_trajectory(small_collection / trajectory_filename(1, PHASE_REACH))
    np.testing.assert_array_equal(redone.positions, original.positions)  # deterministic per grid index
