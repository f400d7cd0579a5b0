"""Scene obstacles, defined once: boxes in the world frame of the MuJoCo scene (table top at z = 0.75 m, arm bases
at (0, ±0.35, 0.75)), their fixed-size array form (the trajectory schema and the model's conditioning) and their
validation. Used by the scene family, the simulation, the expert, the evaluation and the planner."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Most boxes in one scene (the simulation's obstacle slots, the schema's and the model's fixed set size).
MAX_OBSTACLES = 4
#: Columns of one box in array form: centre (3, m), full edge lengths (3, m), yaw about world z (rad).
BOX_FIELDS: tuple[str, ...] = ("cx", "cy", "cz", "sx", "sy", "sz", "yaw")
BOX_DIM = len(BOX_FIELDS)
#: Sane bounds: a box must be at least this thick and at most this long along any edge (m), its centre this far.
MIN_BOX_SIZE, MAX_BOX_SIZE, MAX_BOX_DISTANCE = 0.005, 2.0, 3.0


class ObstacleError(ValueError):
    """An obstacle the scene cannot hold; the message says why."""


@dataclass(frozen=True)
class Box:
    """An axis-aligned-then-yawed box: centre (m), full edge lengths (m), yaw about world z (rad)."""

    center: tuple[float, float, float]
    size: tuple[float, float, float]
    yaw: float = 0.0

    def __post_init__(self) -> None:
        values = np.array([*self.center, *self.size, self.yaw], dtype=float)
        if values.shape != (BOX_DIM,) or not np.all(np.isfinite(values)):
            raise ObstacleError(f"a box needs a finite center (3), size (3) and yaw, got {values.tolist()}")
        if np.any(np.asarray(self.size) < MIN_BOX_SIZE) or np.any(np.asarray(self.size) > MAX_BOX_SIZE):
            raise ObstacleError(f"box edge lengths must be in [{MIN_BOX_SIZE}, {MAX_BOX_SIZE}] m, got {self.size}")
        if np.linalg.norm(self.center) > MAX_BOX_DISTANCE:
            raise ObstacleError(f"box centre {self.center} is more than {MAX_BOX_DISTANCE} m from the world origin")

    def as_array(self) -> np.ndarray:
        return np.array([*self.center, *self.size, self.yaw], dtype=np.float64)

    @classmethod
    def from_array(cls, row: Sequence[float]) -> Box:
        row = [float(v) for v in row]
        return cls(tuple(row[0:3]), tuple(row[3:6]), row[6])

    def quaternion(self) -> np.ndarray:
        """(w, x, y, z) of the yaw rotation."""
        return np.array([math.cos(self.yaw / 2), 0.0, 0.0, math.sin(self.yaw / 2)])


def boxes_to_array(boxes: Sequence[Box]) -> tuple[np.ndarray, np.ndarray]:
    """(MAX_OBSTACLES, BOX_DIM) float array and (MAX_OBSTACLES,) bool mask; unused rows are zero."""
    if len(boxes) > MAX_OBSTACLES:
        raise ObstacleError(f"{len(boxes)} obstacles, at most {MAX_OBSTACLES} are supported")
    array = np.zeros((MAX_OBSTACLES, BOX_DIM))
    mask = np.zeros(MAX_OBSTACLES, dtype=bool)
    for i, box in enumerate(boxes):
        array[i], mask[i] = box.as_array(), True
    return array, mask


def array_to_boxes(array: np.ndarray, mask: np.ndarray) -> tuple[Box, ...]:
    """The boxes of a fixed-size array and its mask."""
    array, mask = np.asarray(array, dtype=float), np.asarray(mask, dtype=bool)
    if array.shape != (MAX_OBSTACLES, BOX_DIM) or mask.shape != (MAX_OBSTACLES,):
        raise ObstacleError(f"obstacles must be ({MAX_OBSTACLES}, {BOX_DIM}) with a ({MAX_OBSTACLES},) mask")
    return tuple(Box.from_array(row) for row, used in zip(array, mask, strict=True) if used)
