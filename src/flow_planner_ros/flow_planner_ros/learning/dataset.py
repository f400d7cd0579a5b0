"""Training data: reads the one trajectory schema (merged file or directory of per-trajectory files),
builds normalized channels and conditioning, and splits train/validation by episode."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from flow_planner_common.robot import HORIZON, NUM_JOINTS
from flow_planner_common.trajectory_schema import SchemaError, read_dataset, read_trajectory, stack_records
from flow_planner_ros.learning.conditioning import COND_GROUPS, build_cond, reference_from_cond
from flow_planner_ros.learning.normalization import Normalizer


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Stacked schema arrays from a merged dataset file, a per-trajectory file or a directory of traj_*.npz."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("traj_*.npz"))
        if not files:
            raise SchemaError(f"{path}: no traj_*.npz files")
        return stack_records([read_trajectory(f) for f in files])
    if not path.exists():
        raise SchemaError(f"{path}: no such file or directory")
    try:
        return read_dataset(path)
    except SchemaError as merged_error:
        try:
            return stack_records([read_trajectory(path)])
        except SchemaError:
            raise merged_error from None


def data_hash(arrays: dict[str, np.ndarray], obstacles: bool = False) -> str:
    """sha256 over the arrays the model learns from (identifies the training data in checkpoints); the scene
    arrays count for obstacle models only (so a scene-blind model's hash is what it was before they existed)."""
    digest = hashlib.sha256()
    scene = ("obstacles", "obstacle_mask") if obstacles else ()
    for key in ("positions", "velocities", *COND_GROUPS, "phase", "grid_index", "success", *scene):
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    return digest.hexdigest()


def split_by_episode(grid_index: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/val trajectory indices; whole episodes (grid_index) go to one side. Seeded, at least one of each
    when there are ≥ 2 episodes and val_fraction > 0."""
    grid_index = np.asarray(grid_index)
    episodes = np.unique(grid_index)
    rng = np.random.default_rng(seed)
    order = rng.permutation(episodes)
    n_val = round(val_fraction * len(episodes))
    if val_fraction > 0 and len(episodes) >= 2:
        n_val = min(max(n_val, 1), len(episodes) - 1)
    val_episodes = set(order[:n_val].tolist())
    is_val = np.array([g in val_episodes for g in grid_index.tolist()], dtype=bool)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


@dataclass
class TrajectoryData:
    """Physical arrays of a dataset, filtered, in model order."""

    positions: np.ndarray  # (N, H, J)
    velocities: np.ndarray  # (N, H, J)
    cond: np.ndarray  # (N, D)
    grid_index: np.ndarray  # (N,)
    dt: float
    use_phase: bool
    hash: str
    obstacles: bool = False  # cond ends with the scene (conditioning.obstacle_layout)

    @classmethod
    def load(
        cls, path: str | Path, use_phase: bool = False, only_success: bool = True, obstacles: bool = False
    ) -> TrajectoryData:
        """Read and validate `path`; keep successful trajectories only unless told otherwise. With `obstacles`
        the conditioning includes each trajectory's scene (schema-2 `obstacles` and `obstacle_mask`)."""
        arrays = load_arrays(path)
        if obstacles and not {"obstacles", "obstacle_mask"} <= arrays.keys():
            raise SchemaError(f"{path}: no obstacles/obstacle_mask arrays for an obstacle-conditioned model")
        keep = np.asarray(arrays["success"], dtype=bool) if only_success else np.ones(len(arrays["phase"]), bool)
        if not keep.any():
            raise SchemaError(f"{path}: no successful trajectories")
        dts = np.unique(np.asarray(arrays["dt"])[keep])
        if not np.allclose(dts, dts[0]):
            raise SchemaError(f"{path}: mixed dt values {dts.tolist()}")
        arrays_kept = {k: np.asarray(v)[keep] for k, v in arrays.items()}
        return cls(
            positions=arrays_kept["positions"].astype(np.float64),
            velocities=arrays_kept["velocities"].astype(np.float64),
            cond=build_cond(arrays_kept, use_phase, obstacles),
            grid_index=arrays_kept["grid_index"].astype(np.int64),
            dt=float(dts[0]),
            use_phase=use_phase,
            hash=data_hash(arrays, obstacles),
            obstacles=obstacles,
        )

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    def subset(self, indices: np.ndarray) -> TrajectoryData:
        """The trajectories at `indices` (same dt, hash and phase option)."""
        return TrajectoryData(
            self.positions[indices], self.velocities[indices], self.cond[indices], self.grid_index[indices],
            self.dt, self.use_phase, self.hash, self.obstacles,
        )

    def with_suffix_starts(self, offsets: list[int]) -> TrajectoryData:
        """Add, for each trajectory and offset j, its continuation from waypoint j: the motion from the moving
        state (positions[j-1], velocities[j-1]) to the same goal, then holding the goal (zero velocity).

        These are the states a receding-horizon replan starts from; without them the model only ever sees
        starts at rest. The copies keep their grid index, so call this after the split by episode. Only the start
        state of the conditioning changes: the goal, phase and scene entries are carried along unchanged.
        """
        if not offsets:
            return self
        horizon, joints = self.positions.shape[1], self.positions.shape[2]
        if any(not 0 < j < horizon for j in offsets):
            raise ValueError(f"suffix offsets must be in 1..{horizon - 1}, got {offsets}")
        positions, velocities, cond = [self.positions], [self.velocities], [self.cond]
        for j in offsets:
            hold = np.repeat(self.positions[:, -1:], j, axis=1)
            positions.append(np.concatenate([self.positions[:, j:], hold], axis=1))
            velocities.append(np.concatenate([self.velocities[:, j:], np.zeros_like(hold)], axis=1))
            moved = self.cond.copy()
            moved[:, :joints] = self.positions[:, j - 1]
            moved[:, joints : 2 * joints] = self.velocities[:, j - 1]
            cond.append(moved)
        copies = len(offsets) + 1
        return TrajectoryData(
            np.concatenate(positions), np.concatenate(velocities), np.concatenate(cond),
            np.tile(self.grid_index, copies), self.dt, self.use_phase, self.hash, self.obstacles,
        )  # fmt: skip

    def reference(self) -> tuple[np.ndarray, np.ndarray]:
        """Reference motions (N, H, J) from each conditioning's start state to its goal."""
        return reference_from_cond(self.cond, self.dt, self.positions.shape[1])

    def relative_to_reference(self) -> TrajectoryData:
        """The same data with positions and velocities replaced by their residuals to the reference motion."""
        ref_pos, ref_vel = self.reference()
        return replace(self, positions=self.positions - ref_pos, velocities=self.velocities - ref_vel)


class FlowDataset(Dataset):
    """Normalized (x (H, 2J), cond (D)) float32 pairs; tensors held in memory (`x`, `cond`) for fast batching."""

    def __init__(self, data: TrajectoryData, normalizer: Normalizer) -> None:
        if data.positions.shape[1:] != (HORIZON, NUM_JOINTS):
            raise SchemaError(f"trajectories have shape {data.positions.shape[1:]}, expected {(HORIZON, NUM_JOINTS)}")
        self.x = torch.from_numpy(normalizer.normalize_traj(data.positions, data.velocities).astype(np.float32))
        self.cond = torch.from_numpy(normalizer.normalize_cond(data.cond).astype(np.float32))

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index], self.cond[index]
