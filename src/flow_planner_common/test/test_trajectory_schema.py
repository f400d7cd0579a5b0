"""The one data schema: round trips, atomic writes, and rejection of corrupt, pickled or malformed files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flow_planner_common.robot import HORIZON, JOINT_NAMES, NUM_JOINTS, PHASE_CARRY, PHASE_REACH
from flow_planner_common.trajectory_schema import (
    SCHEMA_VERSION,
    SchemaError,
    TrajectoryRecord,
    read_dataset,
    read_trajectory,
    remove_partial_files,
    save_npz_atomic,
    stack_records,
    trajectory_filename,
    write_dataset,
    write_trajectory,
)


def make_record(grid_index: int = 3, phase: int = PHASE_REACH, seed: int = 0) -> TrajectoryRecord:
    rng = np.random.default_rng(seed)
    return TrajectoryRecord(
        positions=rng.normal(size=(HORIZON, NUM_JOINTS)),
        velocities=rng.normal(size=(HORIZON, NUM_JOINTS)),
        arms_start=rng.normal(size=NUM_JOINTS),
        arms_start_vel=np.zeros(NUM_JOINTS),
        arms_goal=rng.normal(size=NUM_JOINTS),
        phase=phase,
        tray_start_pose=np.array([0.5, 0.0, 0.8, 1.0, 0.0, 0.0, 0.0]),
        tray_goal_pose=np.array([0.5, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]),
        grid_index=grid_index,
        seed=seed,
        success=False,
        cost=float("inf"),
        dt=0.05,
    )


def test_record_round_trip(tmp_path: Path) -> None:
    record = make_record()
    path = write_trajectory(tmp_path, record)
    assert path.name == trajectory_filename(3, PHASE_REACH) == "traj_000003_reach.npz"
    loaded = read_trajectory(path)
    np.testing.assert_array_equal(loaded.positions, record.positions)
    np.testing.assert_array_equal(loaded.velocities, record.velocities)
    assert loaded.joint_names == JOINT_NAMES
    assert (loaded.phase, loaded.grid_index, loaded.success, loaded.cost) == (PHASE_REACH, 3, False, float("inf"))
    assert not list(tmp_path.glob("*.partial"))


def test_dataset_stacks_and_round_trips(tmp_path: Path) -> None:
    records = [make_record(i, phase, seed=i) for i in range(4) for phase in (PHASE_REACH, PHASE_CARRY)]
    arrays = stack_records(records)
    assert arrays["positions"].shape == (8, HORIZON, NUM_JOINTS)
    path = write_dataset(tmp_path / "merged.npz", arrays)
    loaded = read_dataset(path)
    np.testing.assert_array_equal(loaded["positions"], arrays["positions"])
    np.testing.assert_array_equal(loaded["phase"], [0, 1] * 4)


def test_nan_wrong_shape_and_names_are_rejected(tmp_path: Path) -> None:
    bad = make_record()
    bad.positions[5, 2] = np.nan
    with pytest.raises(SchemaError, match="positions: contains NaN"):
        write_trajectory(tmp_path, bad)
    short = make_record()
    short.velocities = short.velocities[:10]
    with pytest.raises(SchemaError, match="velocities: shape"):
        write_trajectory(tmp_path, short)
    renamed = make_record()
    renamed.joint_names = tuple(reversed(JOINT_NAMES))
    with pytest.raises(SchemaError, match="joint_names"):
        write_trajectory(tmp_path, renamed)
    assert not list(tmp_path.iterdir()), "a rejected record must not leave a file"


def test_truncated_and_pickled_files_are_rejected(tmp_path: Path) -> None:
    path = write_trajectory(tmp_path, make_record())
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(SchemaError, match="unreadable"):
        read_trajectory(truncated)
    pickled = tmp_path / "pickled.npz"
    arrays = make_record().to_arrays()
    arrays["positions"] = np.array([{"evil": "object"}], dtype=object)
    np.savez(pickled, **arrays)
    with pytest.raises(SchemaError):
        read_trajectory(pickled)


def test_kill_during_write_leaves_no_corrupt_file(tmp_path: Path) -> None:
    """A writer killed mid-write leaves at most a *.partial temp file, never a corrupt traj file."""
    script = (
        "import os, signal, numpy as np\n"
        "from flow_planner_common.trajectory_schema import save_npz_atomic\n"
        "real_savez = np.savez\n"
        "def savez_then_die(handle, **arrays):\n"
        "    real_savez(handle, **arrays)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "np.savez = savez_then_die\n"
        f"save_npz_atomic({str(tmp_path / 'traj_000001_reach.npz')!r}, {{'x': np.zeros(1000)}})\n"
    )
    result = subprocess.run([sys.executable, "-c", script], env=os.environ, check=False)
    assert result.returncode == -9
    assert not (tmp_path / "traj_000001_reach.npz").exists()
    removed = remove_partial_files(tmp_path)
    assert len(removed) == 1 and not list(tmp_path.iterdir())


def test_the_planner_check_fields_round_trip_and_schema_2_files_read_as_unchecked(tmp_path: Path) -> None:
    """Schema 3 records the planner's check (check_passed, check_min_margin, check_max_grip: NaN for a reach);
    a schema-2 file (no check fields) is still read, per trajectory and merged, its check fields unknown."""
    checked = make_record(1, PHASE_CARRY)
    checked.check_passed, checked.check_min_margin, checked.check_max_grip = True, 0.004, 0.012
    reach = make_record(1, PHASE_REACH)
    reach.check_passed, reach.check_min_margin = False, -0.002  # check_max_grip stays NaN (a reach)
    for record in (checked, reach):
        loaded = read_trajectory(write_trajectory(tmp_path / "v3", record))
        assert loaded.schema_version == SCHEMA_VERSION == 3
        assert loaded.check_passed == record.check_passed and loaded.check_min_margin == record.check_min_margin
        np.testing.assert_equal(loaded.check_max_grip, record.check_max_grip)
    merged = read_dataset(write_dataset(tmp_path / "v3.npz", stack_records([reach, checked])))
    np.testing.assert_array_equal(merged["check_passed"], [False, True])
    np.testing.assert_array_equal(merged["check_max_grip"], [np.nan, 0.012])
    old = {k: v for k, v in make_record(2).to_arrays().items() if not k.startswith("check_")}
    old["schema_version"] = np.asarray(2)
    save_npz_atomic(tmp_path / "v2" / trajectory_filename(2, PHASE_REACH), old)
    loaded = read_trajectory(tmp_path / "v2" / trajectory_filename(2, PHASE_REACH))
    assert loaded.schema_version == 2 and loaded.check_passed is False and np.isnan(loaded.check_min_margin)
    stacked = {k: np.stack([v, v]) for k, v in old.items()}
    np.savez(tmp_path / "v2.npz", **stacked)
    arrays = read_dataset(tmp_path / "v2.npz")
    assert arrays["check_passed"].shape == (2,) and np.isnan(arrays["check_max_grip"]).all()
    np.testing.assert_array_equal(arrays["schema_version"], [2, 2])
    old["schema_version"] = np.asarray(1)
    save_npz_atomic(tmp_path / "v1" / trajectory_filename(2, PHASE_REACH), old)
    with pytest.raises(SchemaError, match=r"schema_version \[1\], this reader knows 2, 3"):
        read_trajectory(tmp_path / "v1" / trajectory_filename(2, PHASE_REACH))
