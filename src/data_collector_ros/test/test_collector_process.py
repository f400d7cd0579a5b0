"""The `collector` console script as real processes over real DDS: two shards, kill -9 and resume, bad parameters.
The flat tray-pose grid keeps the file count fixed (every index valid); the family path is tested in
test_scene_family.py (invalid records, resume)."""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from flow_planner_common.trajectory_schema import read_trajectory

WORKSPACE = Path(__file__).resolve().parents[3]
COLLECTOR = WORKSPACE / "install" / "data_collector_ros" / "lib" / "data_collector_ros" / "collector"
GRID = ["-p", "scenes:=flat", "-p", "grid_nx:=3", "-p", "grid_ny:=2", "-p", "cem_candidates:=6", "-p", "cem_elites:=2"]
GRID += ["-p", "cem_iterations:=1", "-p", "progress:=false"]


def collector(output: Path, start: int, count: int, log: Path) -> subprocess.Popen:
    if not COLLECTOR.exists():
        pytest.fail(f"{COLLECTOR} missing: colcon build the workspace first")
    args = [str(COLLECTOR), "--ros-args", "-p", f"output_dir:={output}", "-p", f"start_index:={start}"]
    args += ["-p", f"count:={count}", *GRID]
    return subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, env=os.environ)


def trajectory_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("traj_*.npz"))}


def test_kill_9_then_rerun_matches_a_clean_two_shard_run(ros_domain_id: int, tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    shards = [collector(clean, 0, 3, tmp_path / "shard0.log"), collector(clean, 3, 3, tmp_path / "shard1.log")]
    for shard, process in enumerate(shards):
        assert process.wait(timeout=120) == 0, (tmp_path / f"shard{shard}.log").read_text()
    clean_files = trajectory_files(clean)
    assert len(clean_files) == 12  # 6 grid indices x 2 phases: the shards are disjoint and cover the grid
    assert "done 3, skipped 0" in (tmp_path / "shard1.log").read_text()

    killed = tmp_path / "killed"
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    # A random moment: after a random number of finished files (of 12), plus a random fraction of an episode.
    files_before_kill, delay = rng.randint(1, 8), rng.uniform(0.0, 0.15)
    process = collector(killed, 0, 6, tmp_path / "killed.log")
    deadline = time.monotonic() + 60
    while len(list(killed.glob("traj_*.npz"))) < files_before_kill and time.monotonic() < deadline:
        assert process.poll() is None, (tmp_path / "killed.log").read_text()
        time.sleep(0.002)
    time.sleep(delay)
    process.kill()  # SIGKILL
    process.wait(timeout=10)
    before = trajectory_files(killed)
    for name in before:  # every finished file is intact
        read_trajectory(killed / name)
    assert len(before) < 12, f"collector finished before the kill (seed {seed}); nothing was tested"

    rerun = collector(killed, 0, 6, tmp_path / "rerun.log")
    assert rerun.wait(timeout=120) == 0, (tmp_path / "rerun.log").read_text()
    assert not list(killed.glob("*.partial")), f"partial files left (seed {seed})"
    after = trajectory_files(killed)
    assert after.keys() == clean_files.keys(), f"seed {seed}"
    for name, content in before.items():
        if name.replace("_carry", "_reach") in before and name.replace("_reach", "_carry") in before:
            assert after[name] == content, f"{name} finished before the kill was rewritten (seed {seed})"
    for name in after:  # the same trajectories as the clean sharded run, whatever the shard layout
        a, b = read_trajectory(killed / name), read_trajectory(clean / name)
        np.testing.assert_array_equal(a.positions, b.positions)
        assert (a.success, a.seed, a.grid_index) == (b.success, b.seed, b.grid_index)


def test_invalid_parameters_fail_with_one_clear_line(ros_domain_id: int, tmp_path: Path) -> None:
    for bad, expected in (("count:=-1", "count >= 0"), ("workspace_x:=[0.6, 0.4]", "workspace x range")):
        result = subprocess.run(
            [str(COLLECTOR), "--ros-args", "-p", f"output_dir:={tmp_path}", "-p", bad],
            capture_output=True, text=True, timeout=60, env=os.environ,
        )  # fmt: skip
        assert result.returncode == 2
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("collector: invalid parameters:") and expected in lines[0]


def test_ctrl_c_mid_collection_exits_cleanly_and_keeps_finished_files(ros_domain_id: int, tmp_path: Path) -> None:
    """SIGINT at random moments of an episode (also while a trajectory is being published, when the context is
    already invalid but the KeyboardInterrupt has not arrived yet): exit 0, one closing line, no traceback."""
    import signal

    rng = random.Random(7)
    for attempt in range(3):
        output, log = tmp_path / f"run{attempt}", tmp_path / f"run{attempt}.log"
        process = collector(output, 0, 6, log)
        deadline = time.monotonic() + 120
        while not list(output.glob("traj_*.npz")) and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.5))
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0, log.read_text()
        text = log.read_text()
        assert "Traceback" not in text, text
        if "interrupted" not in text:  # it finished before the signal: nothing was tested this time
            assert "collector: done" in text, text
        for path in output.glob("traj_*.npz"):
            read_trajectory(path)
        assert not list(output.glob("*.partial"))
