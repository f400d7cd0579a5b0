"""The episodes file of `evaluate` (YAML), in one of two forms.

Scenes (the cluttered scene family's form; `make_scenes` writes it), in the world frame of the MuJoCo scene: table
top at z = 0.75 m, arm bases at (0, ±0.35, 0.75), x away from the arms, z up::

    episodes:
      - tray_start: [x, y, yaw]        # tray centre resting on the table (m, m, rad)
        tray_goal: [x, y, z, yaw]      # tray centre at the end of the carry, level (m, m, m, rad)
        obstacles:                     # [] (or absent) for none; at most MAX_OBSTACLES boxes
          - {center: [x, y, z], size: [sx, sy, sz], yaw: 0.0}   # box centre, full edge lengths (m), yaw (rad)
        template: barrier              # optional label for per-template reporting
        grid_index: 17                 # optional: where in the family's grid it came from

Tray poses (the old form, still read): an empty scene, the carry goal is the task's (lift and offset)::

    tray_poses:            # [u, v, yaw]: u, v in [0, 1] across the collector's tray workspace box, yaw in rad
      - [0.2, 0.3, 0.1]
    workspace_x: [0.42, 0.58]   # optional; default: the collector's configured workspace (config/collector.yaml)
    workspace_y: [-0.08, 0.08]

u = 0 is the box's low x edge, u = 1 its high x edge (v likewise for y). The collector's grid puts tray centres at
cell centres u = (i + 0.5) / grid_nx, so poses on cell borders (u = i / grid_nx) are off the training grid.

The file is read with flow_planner_common.safe_yaml (at most 1 MB, no anchors/aliases) and every error message
echoes at most a short rendering of the offending value. Tray centres must lie over the table top (x in
TABLE_X, y in TABLE_Y), carry goals at most GOAL_MAX_HEIGHT above it; boxes are checked by
flow_planner_common.obstacles.Box (finite, edges in [MIN_BOX_SIZE, MAX_BOX_SIZE] m). Whether an episode can be
attempted at all (reachable, nothing in collision at the start, the grasp and the goal) is decided when it runs
(data_collector_ros.scene_validity): an invalid one is reported as such, not refused here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data_collector_ros.scene_family import TABLE_TOP_Z, TRAY_REST_Z, SceneEpisode
from flow_planner_common.obstacles import MAX_OBSTACLES, Box, ObstacleError
from flow_planner_common.safe_yaml import YamlInputError, load_yaml_file, short_repr

#: Sane bounds of the tray-centre workspace box (m): the table top spans x in [-0.3, 0.9], the arm bases sit at
#: x = 0, the tray is 0.32 m long.
WORKSPACE_LIMITS_X = (0.25, 0.75)
WORKSPACE_LIMITS_Y = (-0.5, 0.5)
#: Where a scene's tray centre may be (m, world frame): over the table top (the MJCF's table_top box).
TABLE_X, TABLE_Y = (-0.3, 0.9), (-0.9, 0.9)
GOAL_MAX_HEIGHT = 1.0  # m above the table top
MAX_TRAY_POSES = 10_000
MAX_EPISODES = 10_000
#: Template labels: short names (the family's templates, or your own).
TEMPLATE_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,40}")
#: The label of an episode without one (and of every old tray-pose episode: an empty scene).
DEFAULT_TEMPLATE = "empty"
EPISODE_KEYS = ("tray_start", "tray_goal", "obstacles", "template", "grid_index")
BOX_KEYS = ("center", "size", "yaw")


class EpisodesError(ValueError):
    """The episodes file is missing or malformed."""


@dataclass(frozen=True)
class EpisodeSet:
    """The episodes to run, as scenes. Old tray-pose files: `uvyaw` (N, 3) as [u, v, yaw] and the workspace box
    they map into, scenes with no boxes and the task's carry goal (data_collector_ros.task.TaskConfig: lifted by
    lift_height, same yaw); scene files: `uvyaw` None."""

    scenes: tuple[SceneEpisode, ...]
    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None
    uvyaw: np.ndarray | None = None

    @property
    def legacy(self) -> bool:
        """True for an old tray-pose file (empty scenes, the task's carry goal)."""
        return self.uvyaw is not None

    def xy_yaw(self, i: int) -> tuple[float, float, float]:
        """The tray's start (x, y, yaw) of episode i (m, m, rad, world frame)."""
        x, y, yaw = self.scenes[i].tray_start
        return float(x), float(y), float(yaw)

    def __len__(self) -> int:
        return len(self.scenes)


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


def _numbers(value: Any, count: int, where: str, what: str) -> list[float]:
    """`count` finite numbers (booleans and strings refused), else one clear line."""
    row: list[float] = []
    numbers = isinstance(value, list | tuple) and len(value) == count
    if numbers and all(isinstance(a, int | float) and not isinstance(a, bool) for a in value):
        row = [float(a) for a in value]
    if len(row) != count or not all(math.isfinite(a) for a in row):
        raise EpisodesError(f"{where} must be {count} finite numbers {what} (got {short_repr(value)})")
    return row


def _within(value: float, bounds: tuple[float, float], where: str, name: str) -> None:
    if not bounds[0] <= value <= bounds[1]:
        raise EpisodesError(f"{where}: {name} must be in [{bounds[0]:g}, {bounds[1]:g}] (got {value:g})")


def _box(value: Any, where: str) -> Box:
    if not isinstance(value, dict):
        raise EpisodesError(f"{where} must be a mapping {{center: [x, y, z], size: [sx, sy, sz], yaw: rad}} "
                            f"(got {short_repr(value)})")  # fmt: skip
    unknown = sorted(str(k) for k in value if k not in BOX_KEYS)
    if unknown:
        raise EpisodesError(f"{where}: unknown keys {short_repr(unknown)} (known: {', '.join(BOX_KEYS)})")
    for key in ("center", "size"):
        if key not in value:
            raise EpisodesError(f"{where}: '{key}' is missing")
    center = _numbers(value["center"], 3, f"{where}.center", "[x, y, z] (m)")
    size = _numbers(value["size"], 3, f"{where}.size", "[sx, sy, sz] (full edge lengths, m)")
    yaw = _numbers([value.get("yaw", 0.0)], 1, f"{where}.yaw", "(rad)")[0]
    if min(size) <= 0:
        raise EpisodesError(f"{where}.size must be positive edge lengths (got {short_repr(value['size'])})")
    try:
        return Box(tuple(center), tuple(size), yaw)
    except ObstacleError as exc:
        raise EpisodesError(f"{where}: {short_repr(str(exc))}") from None


def _scene(value: Any, i: int, path: Path) -> SceneEpisode:
    where = f"{path}: episodes[{i}]"
    if not isinstance(value, dict):
        raise EpisodesError(
            f"{where} must be a mapping with tray_start, tray_goal, obstacles (got {short_repr(value)})"
        )
    unknown = sorted(str(k) for k in value if k not in EPISODE_KEYS)
    if unknown:
        raise EpisodesError(f"{where}: unknown keys {short_repr(unknown)} (known: {', '.join(EPISODE_KEYS)})")
    for key in ("tray_start", "tray_goal"):
        if key not in value:
            raise EpisodesError(f"{where}: '{key}' is missing")
    x, y, yaw = _numbers(value["tray_start"], 3, f"{where}.tray_start", "[x, y, yaw] (m, m, rad)")
    gx, gy, gz, gyaw = _numbers(value["tray_goal"], 4, f"{where}.tray_goal", "[x, y, z, yaw] (m, m, m, rad)")
    heights = (TABLE_TOP_Z, TABLE_TOP_Z + GOAL_MAX_HEIGHT)
    for name, v, bounds in (("tray_start x", x, TABLE_X), ("tray_start y", y, TABLE_Y),
                            ("tray_start yaw", yaw, (-math.pi, math.pi)), ("tray_goal x", gx, TABLE_X),
                            ("tray_goal y", gy, TABLE_Y), ("tray_goal z", gz, heights),
                            ("tray_goal yaw", gyaw, (-math.pi, math.pi))):  # fmt: skip
        _within(v, bounds, where, name)
    boxes = value.get("obstacles", [])
    if boxes is None:
        boxes = []
    if not isinstance(boxes, list):
        raise EpisodesError(f"{where}.obstacles must be a list of boxes ([] for none) (got {short_repr(boxes)})")
    if len(boxes) > MAX_OBSTACLES:
        raise EpisodesError(f"{where}.obstacles: at most {MAX_OBSTACLES} boxes (got {len(boxes)})")
    obstacles = tuple(_box(box, f"{where}.obstacles[{j}]") for j, box in enumerate(boxes))
    template = value.get("template", DEFAULT_TEMPLATE)
    if not isinstance(template, str) or not TEMPLATE_PATTERN.fullmatch(template):
        raise EpisodesError(f"{where}.template must be a name of 1-40 letters, digits, '_', '-' or '.' "
                            f"(got {short_repr(template)})")  # fmt: skip
    grid_index = value.get("grid_index", -1)
    if isinstance(grid_index, bool) or not isinstance(grid_index, int) or grid_index < -1:
        raise EpisodesError(f"{where}.grid_index must be an integer >= 0 (got {short_repr(grid_index)})")
    return SceneEpisode((x, y, yaw), (gx, gy, gz, gyaw), obstacles, template, grid_index)


def _legacy(data: dict, path: Path, default_x: tuple[float, float], default_y: tuple[float, float]) -> EpisodeSet:
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
    from data_collector_ros.task import TaskConfig

    task = TaskConfig()  # the old task's carry goal: lifted by lift_height, shifted by carry_offset, same yaw
    uvyaw = np.array(rows, dtype=float)
    scenes = []
    for u, v, yaw in uvyaw:
        x = float(x_range[0] + u * (x_range[1] - x_range[0]))
        y = float(y_range[0] + v * (y_range[1] - y_range[0]))
        goal = (x + task.carry_offset[0], y + task.carry_offset[1], TRAY_REST_Z + task.lift_height, float(yaw))
        scenes.append(SceneEpisode((x, y, float(yaw)), goal, (), DEFAULT_TEMPLATE))
    return EpisodeSet(tuple(scenes), x_range, y_range, uvyaw)


def load_episodes(
    path: str | Path, default_x: tuple[float, float], default_y: tuple[float, float], limit: int | None = None
) -> EpisodeSet:
    """Read and validate an episodes file (see the module docstring); the first `limit` episodes if given.
    `default_x`, `default_y`: the workspace box of an old tray-pose file that names none."""
    path = Path(path)
    if not path.is_file():
        raise EpisodesError(f"episodes file {path} not found")
    try:
        data = load_yaml_file(path)
    except YamlInputError as exc:
        raise EpisodesError(str(exc)) from None
    if isinstance(data, dict) and "tray_poses" in data and "episodes" in data:
        raise EpisodesError(f"{path}: either 'episodes' (scenes) or 'tray_poses' (the old form), not both")
    if isinstance(data, dict) and "tray_poses" in data:
        episodes = _legacy(data, path, default_x, default_y)
    elif isinstance(data, dict) and "episodes" in data:
        unknown = set(data) - {"episodes"}
        if unknown:
            raise EpisodesError(f"{path}: unknown keys {short_repr(sorted(map(str, unknown)))} (known: episodes)")
        items = data["episodes"]
        if not isinstance(items, list) or not items:
            raise EpisodesError(f"{path}: episodes must be a non-empty list of scenes")
        if len(items) > MAX_EPISODES:
            raise EpisodesError(f"{path}: at most {MAX_EPISODES} episodes (got {len(items)})")
        episodes = EpisodeSet(tuple(_scene(item, i, path) for i, item in enumerate(items)))
    else:
        raise EpisodesError(
            f"{path}: expected a mapping with an 'episodes' list of scenes (or the old 'tray_poses' list of "
            "[u, v, yaw])"
        )
    if limit is not None:
        n = max(1, int(limit))
        uvyaw = episodes.uvyaw[:n] if episodes.uvyaw is not None else None
        episodes = EpisodeSet(episodes.scenes[:n], episodes.x_range, episodes.y_range, uvyaw)
    return episodes


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

