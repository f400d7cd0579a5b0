"""Collection on real Ray (a local 2-CPU instance): the same files as the single-process shard loop, a worker killed
with SIGKILL mid-task loses nothing and its task is retried, and the `collect_ray` console script (arguments, a run)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import ray

from data_collector_ros.cem import CEMConfig
from data_collector_ros.collect_ray import main as collect_ray_main
from data_collector_ros.collector import CollectorConfig, ShardCollector
from data_collector_ros.grid import GridConfig
from data_collector_ros.ray_collection import chunk_ranges, collect_with_ray
from data_collector_ros.scene_family import FamilyConfig
from flow_planner_common.trajectory_schema import load_npz, read_trajectory

WORKSPACE = Path(__file__).resolve().parents[3]
COLLECT_RAY = WORKSPACE / "install" / "data_collector_ros" / "lib" / "data_collector_ros" / "collect_ray"
TINY_CEM = CEMConfig(num_candidates=4, num_elites=2, iterations=1, min_iterations=1)
GRID = GridConfig(nx=3, ny=2, seed=7)
EPISODES = 6
TINY_PARAMS = """/**:
  ros__parameters:
    scenes: flat
    grid_nx: 3
    grid_ny: 2
    cem_candidates: 4
    cem_elites: 2
    cem_iterations: 1
"""


def config(output: Path, start: int = 0, count: int = EPISODES, family: FamilyConfig | None = None) -> CollectorConfig:
    return CollectorConfig(output, start, count, grid=GRID, cem=TINY_CEM, family=family)


def arrays_by_file(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    return {p.name: load_npz(p) for p in sorted(folder.glob("traj_*.npz"))}


def assert_same_files(a: Path, b: Path) -> None:
    """The same trajectory files with the same arrays, and the same refused-scene records."""
    invalid_a = {p.name: p.read_text() for p in sorted(a.glob("invalid_*.json"))}
    assert invalid_a == {p.name: p.read_text() for p in sorted(b.glob("invalid_*.json"))}
    files_a, files_b = arrays_by_file(a), arrays_by_file(b)
    assert files_a.keys() == files_b.keys()
    for name, arrays in files_a.items():
        assert arrays.keys() == files_b[name].keys(), name
        for key, value in arrays.items():
            np.testing.assert_array_equal(value, files_b[name][key], err_msg=f"{name}: {key}")


def test_chunks_cover_the_range_once() -> None:
    assert chunk_ranges(5, 7, 3) == [(5, 3), (8, 3), (11, 1)]
    assert chunk_ranges(0, 0, 4) == []
    with pytest.raises(ValueError):
        chunk_ranges(0, 4, 0)


def test_bad_arguments_give_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("/**:\n  ros__parameters:\n    grid_nz: 3\n")
    a_file = tmp_path / "file"
    a_file.write_text("")
    base = ["--output-dir", str(tmp_path / "out"), "--start-index", "0"]
    cases = [
        ([*base], "required: --count"),
        ([*base, "--count", "-1"], "--count must be >= 0"),
        ([*base, "--count", "2", "--num-workers", "0"], "--num-workers must be >= 1"),
        ([*base, "--count", "x"], "invalid int value"),
        ([*base, "--count", "2", "--address", "nohost"], "--address must be HOST:PORT"),
        ([*base, "--count", "2", "--address", "127.0.0.1:1"], "no Ray head node reachable"),
        ([*base, "--count", "2", "--params-file", str(tmp_path / "missing.yaml")], "no such file"),
        ([*base, "--count", "2", "--params-file", str(bad_yaml)], "unknown collector parameter(s) grid_nz"),
        (["--output-dir", str(a_file), "--start-index", "0", "--count", "2"], "is not a directory"),
    ]
    for argv, expected in cases:
        assert collect_ray_main(argv) == 2, argv
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and err[0].startswith("collect_ray: error:") and expected in err[0], (argv, err)


def test_console_script_writes_the_files_of_the_shard_loop(tmp_path: Path) -> None:
    if not COLLECT_RAY.exists():
        pytest.fail(f"{COLLECT_RAY} missing: colcon build the workspace first")
    params = tmp_path / "tiny.yaml"
    params.write_text(TINY_PARAMS)
    args = [str(COLLECT_RAY), "--output-dir", str(tmp_path / "out"), "--start-index", "2", "--count", "2",
            "--num-workers", "2", "--seed", "7", "--params-file", str(params), "--no-progress"]  # fmt: skip
    first = subprocess.run(args, capture_output=True, text=True, timeout=120, env=os.environ)
    assert first.returncode == 0, first.stderr
    assert "collect_ray: done 2, skipped 0, failed 0, invalid 0, unfinished 0 episodes; 4 trajectories" in first.stdout
    assert sorted(p.name for p in (tmp_path / "out").glob("traj_*.npz")) == [
        "traj_000002_carry.npz", "traj_000002_reach.npz", "traj_000003_carry.npz", "traj_000003_reach.npz",
    ]  # fmt: skip
    ShardCollector(config(tmp_path / "single", 2, 2)).run(progress=False)  # the same grid seed and CEM
    assert_same_files(tmp_path / "out", tmp_path / "single")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def single_process(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("single")
    summary = ShardCollector(config(output)).run(progress=False)
    assert summary.done == EPISODES
    return output


def test_ray_writes_the_files_of_the_single_process_collector(local_ray, single_process: Path, tmp_path: Path) -> None:
    summary = collect_with_ray(config(tmp_path), num_workers=2, chunk_size=2, progress=False)
    assert (summary.done, summary.skipped, summary.unfinished, summary.failed_tasks) == (EPISODES, 0, 0, [])
    assert summary.trajectories == 2 * EPISODES and summary.tasks == 3
    assert sum(w.episodes for w in summary.workers.values()) == EPISODES
    assert_same_files(tmp_path, single_process)
    rerun = collect_with_ray(config(tmp_path), num_workers=2, chunk_size=2, progress=False)
    assert (rerun.done, rerun.skipped, rerun.trajectories) == (0, EPISODES, 0)


def test_ray_on_the_scene_family_writes_the_same_files_and_invalid_records(local_ray, tmp_path: Path) -> None:
    family = FamilyConfig(seed=0)
    single = ShardCollector(config(tmp_path / "single", 0, 8, family)).run(progress=False)
    summary = collect_with_ray(config(tmp_path / "ray", 0, 8, family), num_workers=2, chunk_size=2, progress=False)
    assert (summary.done, summary.invalid, summary.failed) == (single.done, single.invalid, single.failed)
    assert summary.skipped == summary.unfinished == 0 and summary.trajectories == single.trajectories
    assert_same_files(tmp_path / "ray", tmp_path / "single")
    rerun = collect_with_ray(config(tmp_path / "ray", 0, 8, family), num_workers=2, chunk_size=2, progress=False)
    assert (rerun.done, rerun.invalid, rerun.skipped) == (0, 0, 8)


def test_a_worker_killed_mid_task_loses_nothing_and_its_task_is_retried(
    local_ray, single_process: Path, tmp_path: Path
) -> None:
    output, marker = tmp_path / "out", tmp_path / "blocked"

    def block_once(grid_index: int) -> None:  # runs in the worker: the first attempt at index 1 waits to be killed
        if grid_index == 1 and not marker.exists():
            marker.with_suffix(".tmp").write_text(str(os.getpid()))
            os.replace(marker.with_suffix(".tmp"), marker)
            time.sleep(120)

    killed: dict[str, object] = {}

    def killer() -> None:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        killed["files"] = {p.name: p.read_bytes() for p in output.glob("traj_*.npz")}
        killed["pid"] = int(marker.read_text())
        os.kill(killed["pid"], signal.SIGKILL)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    # Chunks of 3: the worker of [0, 3) is killed after index 0, with indices 1 and 2 to go.
    summary = collect_with_ray(config(output), num_workers=2, chunk_size=3, progress=False, before_episode=block_once)
    thread.join(timeout=5)
    assert "pid" in killed, "nothing was killed"
    assert summary.failed_tasks == [] and summary.unfinished == 0, summary.lines()
    assert summary.task_retries == 1, summary.lines()
    assert str(killed["pid"]) in " ".join(summary.workers), summary.lines()
    assert {"traj_000000_reach.npz", "traj_000000_carry.npz"} <= killed["files"].keys()
    assert not list(output.glob("*.partial")), "partial files left"
    after = {p.name: p.read_bytes() for p in output.glob("traj_*.npz")}
    for name, content in killed["files"].items():  # finished before the kill: still there, valid, unchanged
        read_trajectory(output / name)
        pair = {name.replace("_carry", "_reach"), name.replace("_reach", "_carry")}
        if pair <= killed["files"].keys():
            assert after[name] == content, f"{name} finished before the kill was rewritten"
    assert_same_files(output, single_process)
