"""Separate normalization per group."""

from __future__ import annotations

import numpy as np
import pytest

from flow_planner_ros.learning.dataset import TrajectoryData
from flow_planner_ros.learning.normalization import Normalizer


def _real_scale(synthetic_path) -> TrajectoryData:
    return TrajectoryData.load(synthetic_path)


def test_round_trip_below_1e5(synthetic_path) -> None:
    data = _real_scale(synthetic_path)
    norm = Normalizer.fit(data.positions, data.velocities, data.cond)
    pos, vel = norm.denormalize_traj(norm.normalize_traj(data.positions, data.velocities))
    assert np.abs(pos - data.positions).max() < 1e-5
    assert np.abs(vel - data.velocities).max() < 1e-5
    assert np.abs(norm.denormalize_cond(norm.normalize_cond(data.cond)) - data.cond).max() < 1e-5
    # float32 (the model's dtype) still round-trips to < 1e-5 rad.
    x32 = norm.normalize_traj(data.positions, data.velocities).astype(np.float32)
    pos32, _ = norm.denormalize_traj(x32)
    assert np.abs(pos32 - data.positions).max() < 1e-5


def test_position_and_velocity_stats_differ_and_apply_to_own_channels(synthetic_path) -> None:
    data = _real_scale(synthetic_path)
    norm = Normalizer.fit(data.positions, data.velocities, data.cond)
    # On real-scale data positions (rad) and velocities (rad/s) have clearly different spreads.
    assert np.all(norm.pos_std / norm.vel_std > 1.5)
    x = norm.normalize_traj(data.positions, data.velocities)
    j = norm.num_joints
    np.testing.assert_allclose(x[..., :j], (data.positions - norm.pos_mean) / norm.pos_std)
    np.testing.assert_allclose(x[..., j:], (data.velocities - norm.vel_mean) / norm.vel_std)
    # Each group is standardized by its own stats: unit std per channel, for both groups.
    np.testing.assert_allclose(x.reshape(-1, 2 * j).std(axis=0), 1.0, atol=1e-6)
    np.testing.assert_allclose(x.reshape(-1, 2 * j).mean(axis=0), 0.0, atol=1e-6)
    # The seed's bug (velocities with position stats) would leave the velocity channels far from unit std.
    shared = (data.velocities - norm.pos_mean) / norm.pos_std
    assert shared.reshape(-1, j).std(axis=0).max() < 0.7


def test_constant_channel_and_dict_round_trip() -> None:
    rng = np.random.default_rng(0)
    pos, vel = rng.normal(size=(5, 60, 12)), np.zeros((5, 60, 12))
    cond = rng.normal(size=(5, 36))
    norm = Normalizer.fit(pos, vel, cond)
    assert np.all(norm.vel_std == 1.0)  # constant channel: no division by ~0
    again = Normalizer.from_dict(norm.to_dict())
    for key, value in norm.to_dict().items():
        np.testing.assert_array_equal(value, again.to_dict()[key])
    bad = norm.to_dict()
    bad["vel_std"] = np.zeros(12)
    with pytest.raises(ValueError, match="non-positive std"):
        Normalizer.from_dict(bad)
