"""Dataset reading (merged file and per-trajectory directory), conditioning layout and episode split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flow_planner_common.robot import HORIZON, NUM_JOINTS
from flow_planner_common.trajectory_schema import SchemaError, read_dataset, write_trajectory
from flow_planner_ros.learning.conditioning import cond_layout
from flow_planner_ros.learning.dataset import FlowDataset, TrajectoryData, split_by_episode
from flow_planner_ros.learning.normalization import Normalizer
from flow_planner_ros.learning.synthetic import linear_trajectory, synthetic_records


def test_synthetic_set_follows_schema_and_is_linear(synthetic_path: Path) -> None:
    arrays = read_dataset(synthetic_path)  # validates against the one schema
    assert arrays["positions"].shape == (1000, HORIZON, NUM_JOINTS)
    np.testing.assert_allclose(arrays["positions"][:, -1], arrays["arms_goal"])
    np.testing.assert_array_equal(arrays["grid_index"], np.arange(1000))
    assert arrays["success"].all() and (arrays["phase"] == 0).all()
    dt = float(arrays["dt"][0])
    # constant velocity whose integral from the start is the trajectory: p_k = start + (k+1)·dt·v
    k = np.arange(1, HORIZON + 1)[None, :, None]
    np.testing.assert_allclose(arrays["arms_start"][:, None] + k * dt * arrays["velocities"], arrays["positions"])
    pos, vel = linear_trajectory(np.zeros(12), np.ones(12), dt=0.05)
    np.testing.assert_allclose(np.diff(pos, axis=0), 1 / 60)
    np.testing.assert_allclose(vel, 1 / 3)


def test_directory_and_merged_file_give_the_same_data(tmp_path: Path) -> None:
    records = synthetic_records(6, seed=3)
    records[2].success = False
    for r in records:
        write_trajectory(tmp_path / "dir", r)
    from flow_planner_common.trajectory_schema import stack_records, write_dataset

    write_dataset(tmp_path / "merged.npz", stack_records(records))
    a = TrajectoryData.load(tmp_path / "dir")
    b = TrajectoryData.load(tmp_path / "merged.npz")
    assert len(a) == len(b) == 5  # the failed trajectory is left out
    np.testing.assert_array_equal(a.positions, b.positions)
    assert a.hash == b.hash
    assert len(TrajectoryData.load(tmp_path / "merged.npz", only_success=False)) == 6


def test_conditioning_layout_and_phase_option(synthetic_path: Path) -> None:
    plain = TrajectoryData.load(synthetic_path)
    phased = TrajectoryData.load(synthetic_path, use_phase=True)
    assert plain.cond.shape == (1000, 36) and len(cond_layout(False)) == 36
    assert phased.cond.shape == (1000, 37) and cond_layout(True)[-1] == "phase"
    arrays = read_dataset(synthetic_path)
    np.testing.assert_array_equal(plain.cond[:, :12], arrays["arms_start"])
    np.testing.assert_array_equal(plain.cond[:, 12:24], arrays["arms_start_vel"])
    np.testing.assert_array_equal(plain.cond[:, 24:36], arrays["arms_goal"])
    ds = FlowDataset(plain, Normalizer.fit(plain.positions, plain.velocities, plain.cond))
    x, c = ds[0]
    assert x.shape == (HORIZON, 2 * NUM_JOINTS) and c.shape == (36,)


def test_split_is_by_episode_and_seeded() -> None:
    grid = np.repeat(np.arange(20), 2)  # two phases per episode
    tr, va = split_by_episode(grid, 0.25, seed=1)
    assert set(grid[tr]).isdisjoint(grid[va])
    assert len(set(grid[va])) == 5 and len(tr) + len(va) == 40
    _, va2 = split_by_episode(grid, 0.25, seed=1)
    np.testing.assert_array_equal(va, va2)
    _, va3 = split_by_episode(grid, 0.25, seed=2)
    assert set(grid[va]) != set(grid[va3])
    _, none = split_by_episode(grid, 0.0, seed=1)
    assert len(none) == 0


def test_bad_inputs_raise_schema_errors(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="no such file"):
        TrajectoryData.load(tmp_path / "missing.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SchemaError, match="no traj_"):
        TrajectoryData.load(tmp_path / "empty")
    np.savez(tmp_path / "wrong.npz", trajectories=np.zeros((3, 60, 12)))
    with pytest.raises(SchemaError, match="missing keys"):
        TrajectoryData.load(tmp_path / "wrong.npz")


def test_suffix_starts_continue_from_moving_states(tmp_path: Path) -> None:
    """Each continuation starts at the state just before its first waypoint, keeps the goal, then holds."""
    from flow_planner_ros.learning.synthetic import write_synthetic_dataset

    data = TrajectoryData.load(write_synthetic_dataset(tmp_path / "s.npz", 3, seed=1))
    augmented = data.with_suffix_starts([10, 40])
    assert len(augmented) == 9
    np.testing.assert_array_equal(augmented.grid_index, np.tile(data.grid_index, 3))
    copy = augmented.subset(np.array([3]))  # trajectory 0 from waypoint 10
    np.testing.assert_array_equal(copy.positions[0, :50], data.positions[0, 10:])
    np.testing.assert_array_equal(copy.positions[0, 50:], np.repeat(data.positions[0, -1:], 10, axis=0))
    np.testing.assert_array_equal(copy.velocities[0, 50:], 0.0)
    np.testing.assert_array_equal(copy.cond[0, :12], data.positions[0, 9])
    np.testing.assert_array_equal(copy.cond[0, 12:24], data.velocities[0, 9])
    np.testing.assert_array_equal(copy.cond[0, 24:], data.cond[0, 24:])
    with pytest.raises(ValueError, match="suffix offsets"):
        data.with_suffix_starts([60])
