"""The episodes file of `evaluate` (YAML)::

    tray_poses:            # [u, v, yaw]: u, v in [0, 1] across the collector's tray workspace box, yaw in rad
      - [0.2, 0.3, 0.1]
    workspace_x: [0.42, 0.58]   # optional; default: the collector's configured workspace (config/collector.yaml)
    workspace_y: [-0.08, 0.08]

u = 0 is the box's low x edge, u = 1 its high x edge (v likewise for y). The collector's grid puts tray centres at
cell centres u = (i + 0.5) / grid_nx, so poses on cell borders (u = i / grid_nx) are off the training grid.

The file is read with flow_planner_common.safe_yaml (at most 1 MB, no anchors/aliases) and every error message
echoes at most a short rendering of the offending value. The workspace box must lie within `WORKSPACE_LIMITS_X` /
`WORKSPACE_LIMITS_Y` (m, the tray centre on the table top in front of the arms in the MJCF scene).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flow_planner_common.safe_yaml import YamlInputError, load_yaml_file, short_repr

#: Sane bounds of the tray-centre workspace box (m): the table top spans x in [-0.3, 0.9], the arm bases sit at
#: x = 0, the tray is 0.32 m long.
WORKSPACE_LIMITS_X = (0.25, 0.75)
WORKSPACE_LIMITS_Y = (-0.5, 0.5)
MAX_TRAY_POSES = 10_000


class EpisodesError(ValueError):
    """The episodes file is missing or malformed."""


@dataclass(frozen=True)
class EpisodeSet:
    """Tray poses (N, 3) as [u, v, yaw] and the workspace box they map into."""

    uvyaw: np.ndarray
    x_range: tuple[float, float]
    y_range: tuple[float, float]

    def xy_yaw(self, i: int) -> tuple[float, float, float]:
        u, v, yaw = (float(a) for a in self.uvyaw[i])
        x = self.x_range[0] + u * (self.x_range[1] - self.x_range[0])
        y = self.y_range[0] + v * (self.y_range[1] - self.y_range[0])
        return x, y, yaw

    def __len__(self) -> int:
        return len(self.uvyaw)


def _range(value: Any, name: str, path: Path, limits: tuple[float, float]) -> tuple[float, float]:
    try:
        low, high = (float(a) for a in value)
    except (TypeError, ValueError):
        raise EpisodesError(f"{path}: {name} must be [min, max] (got {short_repr(value)})") from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise EpisodesError(f"{path}: {name} must be finite with min <= max (got {short_repr(value)})")
    if low < limits[0] or high > limits[1]:
        raise EpisodesError(
            f"{path}: {name} must lie within [{limits[0]}, {limits[1]}] m (got [{low:g}, {high:g}])"
        )
    return low, high


def _pose(pose: Any, i: int, path: Path) -> list[float]:
    row: list[float] = []
    if isinstance(pose, list | tuple) and len(pose) == 3:
        try:
            row = [float(a) for a in pose]
        except (TypeError, ValueError):
            row = []
    if len(row) != 3 or not all(math.isfinite(a) for a in row):
        raise EpisodesError(f"{path}: tray_poses[{i}] must be 3 finite numbers [u, v, yaw] (got {short_repr(pose)})")
    if not (0.0 <= row[0] <= 1.0 and 0.0 <= row[1] <= 1.0):
        raise EpisodesError(f"{path}: tray_poses[{i}]: u and v must be in [0, 1] (got {row[0]}, {row[1]})")
    if abs(row[2]) > math.pi:
        raise EpisodesError(f"{path}: tray_poses[{i}]: yaw must be in [-pi, pi] rad (got {row[2]})")
    return row


def load_episodes(
    path: str | Path, default_x: tuple[float, float], default_y: tuple[float, float], limit: int | None = None
) -> EpisodeSet:
    """Read and validate an episodes file (see the module docstring); the first `limit` poses if given."""
    path = Path(path)
    if not path.is_file():
        raise EpisodesError(f"episodes file {path} not found")
    try:
        data = load_yaml_file(path)
    except YamlInputError as exc:
        raise EpisodesError(str(exc)) from None
    if not isinstance(data, dict) or "tray_poses" not in data:
        raise EpisodesError(f"{path}: expected a mapping with a 'tray_poses' list of [u, v, yaw]")
    unknown = set(data) - {"tray_poses", "workspace_x", "workspace_y"}
    if unknown:
        raise EpisodesError(f"{path}: unknown keys {short_repr(sorted(map(str, unknown)))}")
    poses = data["tray_poses"]
    if not isinstance(poses, list) or not poses:
        raise EpisodesError(f"{path}: tray_poses must be a non-empty list of [u, v, yaw]")
    if len(poses) > MAX_TRAY_POSES:
        raise EpisodesError(f"{path}: at most {MAX_TRAY_POSES} tray_poses (got {len(poses)})")
    rows = [_pose(pose, i, path) for i, pose in enumerate(poses)]
    x_range = _range(data.get("workspace_x", default_x), "workspace_x", path, WORKSPACE_LIMITS_X)
    y_range = _range(data.get("workspace_y", default_y), "workspace_y", path, WORKSPACE_LIMITS_Y)
    uvyaw = np.array(rows, dtype=float)
    if limit is not None:
        uvyaw = uvyaw[: max(1, int(limit))]
    return EpisodeSet(uvyaw, x_range, y_range)


def collector_workspace(collector_yaml: str | Path | None) -> tuple[tuple[float, float], tuple[float, float]]:
    """(workspace_x, workspace_y) from a collector parameter file; the GridConfig defaults if absent."""
    from data_collector_ros.grid import GridConfig

    defaults = GridConfig()
    x_range, y_range = defaults.x_range, defaults.y_range
    if collector_yaml is None or not Path(collector_yaml).is_file():
        return x_range, y_range
    data = load_yaml_file(collector_yaml) or {}
    for section in data.values() if isinstance(data, dict) else ():
        params = (section or {}).get("ros__parameters", {}) if isinstance(section, dict) else {}
        x_range = tuple(float(a) for a in params.get("workspace_x", x_range))
        y_range = tuple(float(a) for a in params.get("workspace_y", y_range))
    return x_range, y_range
