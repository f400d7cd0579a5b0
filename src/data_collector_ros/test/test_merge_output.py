"""merge: an output that cannot be written is one clear line and exit 2, checked before the inputs are read."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from flow_planner_common.robot import HORIZON, NUM_JOINTS, PHASE_REACH
from flow_planner_common.trajectory_schema import TrajectoryRecord, write_trajectory

WORKSPACE = Path(__file__).resolve().parents[3]
MERGE = WORKSPACE / "install" / "data_collector_ros" / "lib" / "data_collector_ros" / "merge"


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """A folder with one valid trajectory file, so merge would get as far as writing."""
    folder = tmp_path / "data"
    rng = np.random.default_rng(0)
    record = TrajectoryRecord(
        positions=rng.normal(size=(HORIZON, NUM_JOINTS)), velocities=rng.normal(size=(HORIZON, NUM_JOINTS)),
        arms_start=np.zeros(NUM_JOINTS), arms_start_vel=np.zeros(NUM_JOINTS), arms_goal=np.ones(NUM_JOINTS),
        phase=PHASE_REACH, tray_start_pose=np.array([0.5, 0.0, 0.8, 1.0, 0.0, 0.0, 0.0]),
        tray_goal_pose=np.array([0.5, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]), grid_index=0, seed=0, success=True,
        cost=1.0, dt=0.05,
    )
    write_trajectory(folder, record)
    return folder


def run_merge(*args: str) -> subprocess.CompletedProcess:
    if not MERGE.exists():
        pytest.fail(f"{MERGE} missing: colcon build the workspace first")
    return subprocess.run([str(MERGE), *args], capture_output=True, text=True, timeout=120, env=os.environ)


def test_unwritable_outputs_are_one_line(inputs: Path, tmp_path: Path) -> None:
    existing_dir = tmp_path / "taken.npz"
    existing_dir.mkdir()
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    cases = {
        "/proc/nope/m.npz": "cannot write in /proc/nope",
        str(existing_dir): "is an existing directory",
        str(not_a_folder / "m.npz"): f"cannot write in {not_a_folder}",
    }
    for output, message in cases.items():
        result = run_merge("--input", str(inputs), "--output", output)
        assert result.returncode == 2, result
        assert result.stdout == "", result.stdout  # refused before reading or printing statistics
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
    good = tmp_path / "new" / "merged.npz"
    result = run_merge("--input", str(inputs), "--output", str(good))
    assert result.returncode == 0 and good.is_file(), result.stderr
