"""The stratified, shuffled tray grid: grid index -> tray start pose, deterministic from the configuration alone.

The workspace box is cut into nx x ny equal cells. One *pass* visits every cell once, in an order shuffled with
the seed; grid index i belongs to pass i // (nx * ny). Within its cell a pose sits at the cell centre, moved by
up to `cell_jitter` of the cell size (0 = centre) and rotated by a yaw drawn uniformly from +-yaw_jitter, both drawn
from a generator seeded by (seed, pass, cell). So any index can be recomputed anywhere (any shard, any machine),
every contiguous run of nx * ny indices starting at a pass boundary covers the box evenly, and no random walk of
tray positions can occur.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from data_collector_ros.task import TaskConfig, tray_pose

#: The MJCF's tray resting height on the table (m); also read from a model by callers that have one.
DEFAULT_REST_Z = 0.76


@dataclass(frozen=True)
class GridConfig:
    """Workspace box (tray centre, m), cell counts, yaw jitter (rad), in-cell jitter (fraction) and seed."""

    nx: int = 10
    ny: int = 10
    x_range: tuple[float, float] = (0.42, 0.58)
    y_range: tuple[float, float] = (-0.08, 0.08)
    yaw_jitter: float = math.radians(15.0)
    cell_jitter: float = 0.0
    seed: int = 0
    rest_z: float = DEFAULT_REST_Z

    def __post_init__(self) -> None:
        problems = []
        if self.nx < 1 or self.ny < 1:
            problems.append(f"grid needs nx >= 1 and ny >= 1 (got {self.nx}, {self.ny})")
        for name, (low, high) in (("x", self.x_range), ("y", self.y_range)):
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                problems.append(f"workspace {name} range must be finite with min <= max (got {low}, {high})")
        if not (0.0 <= self.yaw_jitter <= math.pi):
            problems.append(f"yaw_jitter must be in [0, pi] rad (got {self.yaw_jitter})")
        if not (0.0 <= self.cell_jitter <= 1.0):
            problems.append(f"cell_jitter must be in [0, 1] (got {self.cell_jitter})")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def cells(self) -> int:
        return self.nx * self.ny

    def task_box(self, base: TaskConfig | None = None) -> TaskConfig:
        """A TaskConfig whose start box is this grid's box (carry parameters taken from `base`)."""
        base = base or TaskConfig()
        return TaskConfig(
            x_range=self.x_range,
            y_range=self.y_range,
            yaw_range=(-self.yaw_jitter, self.yaw_jitter),
            lift_height=base.lift_height,
            carry_offset=base.carry_offset,
        )


def cell_of(config: GridConfig, grid_index: int) -> tuple[int, int]:
    """(pass number, cell number) of a grid index; cell = ix * ny + iy."""
    if grid_index < 0:
        raise ValueError(f"grid index must be >= 0 (got {grid_index})")
    pass_number, slot = divmod(int(grid_index), config.cells)
    order = np.random.default_rng([config.seed, pass_number]).permutation(config.cells)
    return pass_number, int(order[slot])


def grid_pose(config: GridConfig, grid_index: int) -> np.ndarray:
    """The tray start pose (7,) of a grid index."""
    pass_number, cell = cell_of(config, grid_index)
    ix, iy = divmod(cell, config.ny)
    rng = np.random.default_rng([config.seed, pass_number, cell, 1])
    jitter = rng.uniform(-0.5, 0.5, size=2) * config.cell_jitter
    yaw = rng.uniform(-config.yaw_jitter, config.yaw_jitter) if config.yaw_jitter > 0 else 0.0
    size_x = (config.x_range[1] - config.x_range[0]) / config.nx
    size_y = (config.y_range[1] - config.y_range[0]) / config.ny
    x = config.x_range[0] + (ix + 0.5 + jitter[0]) * size_x
    y = config.y_range[0] + (iy + 0.5 + jitter[1]) * size_y
    return tray_pose(x, y, yaw, config.rest_z)


def episode_seed(global_seed: int, grid_index: int) -> int:
    """A per-episode seed (non-negative int63) derived from the global seed and the grid index."""
    state = np.random.SeedSequence([int(global_seed), int(grid_index)]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)
