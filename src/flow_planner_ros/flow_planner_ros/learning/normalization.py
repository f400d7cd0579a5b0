"""Per-group normalization: positions, velocities and conditioning each carry their own per-channel stats.

Normalizing velocities with position statistics leaves them near zero (a bug the seed project hit); each group
is fitted and applied separately, and the stats travel inside the checkpoint as plain arrays.

The scene part of an obstacle model's conditioning (conditioning.obstacle_layout) is fitted per box feature over
the used boxes of every slot together (unused, zeroed slots excluded; every slot shares the same stats, so reordering
the boxes reorders their normalized features and nothing else); the mask entries keep mean 0 and std 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from flow_planner_ros.learning.conditioning import OBSTACLE_FEATURES, scene_slices

#: Channels whose std is below this are treated as constant (std 1) so they normalize to 0 without blowing up.
MIN_STD = 1e-6
GROUPS = ("pos", "vel", "cond")
_KEYS = tuple(f"{g}_{s}" for g in GROUPS for s in ("mean", "std"))


def _stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-last-axis mean/std over every other axis, in float64, std floored."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1, values.shape[-1])
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    std = np.where(std < MIN_STD, 1.0, std)
    return mean, std


def _fit_scene(cond: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
    """Overwrite the scene entries of `mean`/`std` in place: shared per-feature stats over used boxes; mask 0/1."""
    boxes_slice, mask_slice = scene_slices(cond.shape[-1])
    features = len(OBSTACLE_FEATURES)
    boxes = cond[:, boxes_slice].reshape(-1, features)
    used = cond[:, mask_slice].reshape(-1) > 0.5
    if used.any():
        box_mean, box_std = _stats(boxes[used])
    else:
        box_mean, box_std = np.zeros(features), np.ones(features)
    slots = (boxes_slice.stop - boxes_slice.start) // features
    mean[boxes_slice], std[boxes_slice] = np.tile(box_mean, slots), np.tile(box_std, slots)
    mean[mask_slice], std[mask_slice] = 0.0, 1.0


@dataclass
class Normalizer:
    """Mean/std per channel for positions (J), velocities (J) and conditioning (D)."""

    pos_mean: np.ndarray
    pos_std: np.ndarray
    vel_mean: np.ndarray
    vel_std: np.ndarray
    cond_mean: np.ndarray
    cond_std: np.ndarray

    @classmethod
    def fit(
        cls, positions: np.ndarray, velocities: np.ndarray, cond: np.ndarray, obstacles: bool = False
    ) -> Normalizer:
        """Fit on (N, H, J) positions, (N, H, J) velocities and (N, D) conditioning (ending with the scene part
        when `obstacles`)."""
        pos_mean, pos_std = _stats(positions)
        vel_mean, vel_std = _stats(velocities)
        cond_mean, cond_std = _stats(cond)
        if obstacles:
            _fit_scene(np.asarray(cond, dtype=np.float64), cond_mean, cond_std)
        return cls(pos_mean, pos_std, vel_mean, vel_std, cond_mean, cond_std)

    def with_noise_scale(self, noise_scale: float) -> Normalizer:
        """These stats with the trajectory stds multiplied by `noise_scale`: normalized trajectories then have std
        1/noise_scale, so the flow's N(0, I) source noise is `noise_scale` times the data's spread (config
        flow.noise_scale). The sampler denormalizes with the stored stds, so nothing else changes."""
        if not (math.isfinite(noise_scale) and noise_scale > 0):
            raise ValueError(f"noise_scale must be a finite number > 0, got {noise_scale!r}")
        return replace(self, pos_std=self.pos_std * noise_scale, vel_std=self.vel_std * noise_scale)

    @property
    def num_joints(self) -> int:
        return int(self.pos_mean.shape[0])

    @property
    def cond_dim(self) -> int:
        return int(self.cond_mean.shape[0])

    def normalize_traj(self, positions: np.ndarray, velocities: np.ndarray) -> np.ndarray:
        """(…, H, J) positions and velocities → (…, H, 2J) normalized channels [positions | velocities]."""
        pos = (np.asarray(positions, dtype=np.float64) - self.pos_mean) / self.pos_std
        vel = (np.asarray(velocities, dtype=np.float64) - self.vel_mean) / self.vel_std
        return np.concatenate([pos, vel], axis=-1)

    def denormalize_traj(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(…, H, 2J) normalized channels → physical (positions, velocities)."""
        x = np.asarray(x, dtype=np.float64)
        j = self.num_joints
        if x.shape[-1] != 2 * j:
            raise ValueError(f"expected {2 * j} channels, got {x.shape[-1]}")
        return x[..., :j] * self.pos_std + self.pos_mean, x[..., j:] * self.vel_std + self.vel_mean

    def normalize_cond(self, cond: np.ndarray) -> np.ndarray:
        """(…, D) physical conditioning → normalized."""
        return (np.asarray(cond, dtype=np.float64) - self.cond_mean) / self.cond_std

    def denormalize_cond(self, cond: np.ndarray) -> np.ndarray:
        """(…, D) normalized conditioning → physical."""
        return np.asarray(cond, dtype=np.float64) * self.cond_std + self.cond_mean

    def to_dict(self) -> dict[str, np.ndarray]:
        """Flat dict of float64 arrays, keys `<group>_mean` / `<group>_std`."""
        return {k: np.asarray(getattr(self, k), dtype=np.float64) for k in _KEYS}

    @classmethod
    def from_dict(cls, arrays: dict[str, np.ndarray]) -> Normalizer:
        """Inverse of to_dict; checks keys, shapes, finiteness and positive std."""
        missing = [k for k in _KEYS if k not in arrays]
        if missing:
            raise ValueError(f"normalization stats missing: {', '.join(missing)}")
        values = {k: np.asarray(arrays[k], dtype=np.float64).reshape(-1) for k in _KEYS}
        for g in GROUPS:
            mean, std = values[f"{g}_mean"], values[f"{g}_std"]
            if mean.shape != std.shape:
                raise ValueError(f"normalization stats {g}: mean {mean.shape} and std {std.shape} differ")
            if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
                raise ValueError(f"normalization stats {g}: non-finite values or non-positive std")
        if values["pos_mean"].shape != values["vel_mean"].shape:
            raise ValueError("normalization stats: positions and velocities have different joint counts")
        return cls(**values)
