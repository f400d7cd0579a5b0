"""The task family of cluttered tray scenes (ROS-free): a stratified grid over template × start cell × goal cell ×
size × placement, `grid_index` → scene deterministic, with seeded jitter inside each cell.

A scene is a tray start (x, y, yaw: resting on the table), a carry goal (x, y, z, yaw: the tray's centre at the end
of the carry, level) and 0..MAX_OBSTACLES boxes, in the world frame of the MuJoCo scene (table top at z = 0.75 m,
arm bases at (0, ±0.35, 0.75)). Templates put boxes against the straight path from start to goal:

- ``empty``: no box (the old task, kept covered);
- ``barrier``: a wall on the table just beyond the start tray's leading edge, across the path; the goal is above
  and beyond it: lift before moving;
- ``platform``: a box under the goal, its top just below the tray: the tray's edge must clear its side first;
- ``bar``: an overhead bar just above the resting tray, between the arms: slide out from under it, then rise;
- ``handle_box``: a box on one tool's straight approach to its handle, above the handle: approach differently.

Which cells are valid (IK reachable, nothing in collision at start and goal) is decided by `scene_validity`
(data_collector_ros.scene_validity), which needs the simulation; this module is pure geometry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from flow_planner_common.obstacles import MAX_OBSTACLES, Box

#: Table top height (m) and the tray centre's height when it rests on the table (the MJCF's values).
TABLE_TOP_Z = 0.75
TRAY_REST_Z = 0.76
#: Tray footprint half extents in its own frame (m): base 0.16 × 0.22, handles out to ±0.28 in y.
TRAY_HALF_X, TRAY_HALF_Y, TRAY_HANDLE_HALF_Y = 0.16, 0.22, 0.28
#: Tray height above its centre (rims, handles) and below (base), m.
TRAY_TOP, TRAY_BOTTOM = 0.04, 0.01

TEMPLATES: tuple[str, ...] = ("empty", "barrier", "platform", "bar", "handle_box")


@dataclass(frozen=True)
class SceneEpisode:
    """One scene: tray start (x, y, yaw) on the table, tray goal (x, y, z, yaw), boxes and the template's name."""

    tray_start: tuple[float, float, float]
    tray_goal: tuple[float, float, float, float]
    obstacles: tuple[Box, ...] = ()
    template: str = "empty"
    grid_index: int = -1

    def __post_init__(self) -> None:
        values = np.array([*self.tray_start, *self.tray_goal], dtype=float)
        if values.shape != (7,) or not np.all(np.isfinite(values)):
            raise ValueError("tray_start needs 3 and tray_goal 4 finite values")
        if len(self.obstacles) > MAX_OBSTACLES:
            raise ValueError(f"{len(self.obstacles)} obstacles, at most {MAX_OBSTACLES}")

    def start_pose(self, rest_z: float = TRAY_REST_Z) -> np.ndarray:
        """(7,) tray pose resting on the table."""
        x, y, yaw = self.tray_start
        return tray_pose(x, y, yaw, rest_z)

    def goal_pose(self) -> np.ndarray:
        """(7,) tray pose at the end of the carry (level)."""
        x, y, z, yaw = self.tray_goal
        return tray_pose(x, y, yaw, z)


@dataclass(frozen=True)
class FamilyConfig:
    """The family's ranges and the grid's resolution (cells per axis); `seed` shuffles and jitters."""

    x_range: tuple[float, float] = (0.35, 0.75)  # m, tray start centre (a 40 × 40 cm area)
    y_range: tuple[float, float] = (-0.20, 0.20)
    yaw_range: tuple[float, float] = (-math.radians(45), math.radians(45))
    max_translation: float = 0.35  # m, goal centre from start centre in the table plane
    goal_x_range: tuple[float, float] = (0.35, 0.72)  # m, where goal centres may lie (the arms' reach)
    goal_y_range: tuple[float, float] = (-0.22, 0.22)
    goal_height_range: tuple[float, float] = (0.05, 0.30)  # m, tray centre above its resting height
    max_yaw_change: float = math.radians(60)
    templates: tuple[str, ...] = TEMPLATES
    start_cells: tuple[int, int] = (3, 3)
    goal_directions: int = 4
    size_bins: int = 2
    placement_bins: int = 2
    seed: int = 0
    template_weights: dict[str, int] = field(default_factory=lambda: {"empty": 1})

    def __post_init__(self) -> None:
        unknown = [t for t in self.templates if t not in TEMPLATES]
        if unknown:
            raise ValueError(f"unknown template(s) {unknown}; known: {', '.join(TEMPLATES)}")
        if min(self.start_cells) < 1 or self.goal_directions < 1 or self.size_bins < 1 or self.placement_bins < 1:
            raise ValueError("every grid axis needs at least one cell")

    @property
    def template_slots(self) -> tuple[str, ...]:
        """Templates as grid slots: each once (empty scenes come out at 1 / len(templates) ≈ 15-20 %)."""
        return tuple(t for t in self.templates for _ in range(self.template_weights.get(t, 1)))

    @property
    def cells(self) -> int:
        sx, sy = self.start_cells
        return len(self.template_slots) * sx * sy * self.goal_directions * self.size_bins * self.placement_bins


def tray_pose(x: float, y: float, yaw: float, z: float) -> np.ndarray:
    """A level tray pose (7,) [x y z qw qx qy qz] with the given yaw about world z."""
    return np.array([x, y, z, math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def cell_of(config: FamilyConfig, grid_index: int) -> tuple[int, tuple[int, ...]]:
    """(pass, (template slot, start ix, start iy, goal direction, size bin, placement bin)) of a grid index."""
    if grid_index < 0:
        raise ValueError(f"grid index must be >= 0 (got {grid_index})")
    pass_number, slot = divmod(int(grid_index), config.cells)
    cell = int(np.random.default_rng([config.seed, 7, pass_number]).permutation(config.cells)[slot])
    sx, sy = config.start_cells
    dims = (len(config.template_slots), sx, sy, config.goal_directions, config.size_bins, config.placement_bins)
    return pass_number, tuple(int(v) for v in np.unravel_index(cell, dims))


def template_of(config: FamilyConfig, grid_index: int) -> str:
    """The template of a grid index's scene (without building the scene)."""
    return config.template_slots[cell_of(config, grid_index)[1][0]]


#: The straight reach's end-effector path for a tray start pose: (H, 2, 3) positions of the left and right tool
#: (data_collector_ros.scene_validity.StraightReach computes it with IK and forward kinematics).
ReachPath = Callable[[np.ndarray], np.ndarray]


def scene_for_index(config: FamilyConfig, grid_index: int, reach_path: ReachPath | None = None) -> SceneEpisode:
    """The scene of a grid index (deterministic from the configuration and `reach_path`).

    `reach_path` is needed by the templates placed against the straight reach (handle_box)."""
    pass_number, (slot, ix, iy, direction, size_bin, placement_bin) = cell_of(config, grid_index)
    rng = np.random.default_rng([config.seed, 11, pass_number, grid_index])
    template = config.template_slots[slot]
    sx, sy = config.start_cells
    x = _in_cell(config.x_range, ix, sx, rng.uniform())
    y = _in_cell(config.y_range, iy, sy, rng.uniform())
    yaw = rng.uniform(*config.yaw_range)
    heading = 2 * math.pi * (direction + rng.uniform()) / config.goal_directions
    size = (size_bin + rng.uniform()) / config.size_bins  # 0..1 within the template's size range
    placement = (placement_bin + rng.uniform()) / config.placement_bins
    builder = _TEMPLATE_BUILDERS[template]
    if template in ("barrier", "platform", "bar"):  # along the tray's short axis, the way with more room
        heading = yaw + rng.uniform(-1, 1) * math.radians(20)
        if _room(config, (x, y), heading + math.pi) > _room(config, (x, y), heading):
            heading += math.pi
    if template == "handle_box":
        if reach_path is None:
            raise ValueError("the handle_box template needs the straight reach path (reach_path)")
        placement = (placement, reach_path(tray_pose(x, y, yaw, TRAY_REST_Z)))
    goal, boxes = builder(config, (x, y, yaw), heading, size, placement, rng)
    return SceneEpisode((x, y, yaw), goal, tuple(boxes), template, int(grid_index))


def _in_cell(bounds: tuple[float, float], index: int, count: int, u: float) -> float:
    width = (bounds[1] - bounds[0]) / count
    return bounds[0] + (index + u) * width


def _room(config: FamilyConfig, start_xy: tuple[float, float], heading: float) -> float:
    """How far (m, at most max_translation) the goal centre may go from the start along `heading`."""
    room = config.max_translation
    for value, step, (low, high) in zip(start_xy, (math.cos(heading), math.sin(heading)),
                                         (config.goal_x_range, config.goal_y_range), strict=True):  # fmt: skip
        if step > 1e-9:
            room = min(room, (high - value) / step)
        elif step < -1e-9:
            room = min(room, (low - value) / step)
    return max(room, 0.0)


def _goal(
    config: FamilyConfig, start: tuple[float, float, float], heading: float, distance: float, height: float,
    rng: np.random.Generator, keep_heading: bool = False,
) -> tuple[float, float, float, float]:
    """The goal at `distance` along `heading` (or the first quarter turn of it that stays in reach; with
    keep_heading, the distance shrinks to the room along `heading` instead)."""
    x, y, yaw = start
    distance = min(distance, config.max_translation)
    if keep_heading:
        distance = min(distance, _room(config, (x, y), heading))
    (x_low, x_high), (y_low, y_high) = config.goal_x_range, config.goal_y_range
    for turn in (0.0, math.pi, math.pi / 2, -math.pi / 2):  # the heading, or the first turn of it in reach
        gx, gy = x + distance * math.cos(heading + turn), y + distance * math.sin(heading + turn)
        if x_low <= gx <= x_high and y_low <= gy <= y_high:
            break
    else:
        gx = float(np.clip(gx, *config.goal_x_range))
        gy = float(np.clip(gy, *config.goal_y_range))
    yaw_goal = yaw + rng.uniform(-config.max_yaw_change, config.max_yaw_change)
    yaw_goal = float(np.clip(yaw_goal, -math.radians(75), math.radians(75)))
    return (gx, gy, TRAY_REST_Z + height, yaw_goal)


def _half_extent(yaw: float, heading: float) -> float:
    """Half length of the tray's footprint (handles included) along the direction `heading`."""
    c, s = abs(math.cos(heading - yaw)), abs(math.sin(heading - yaw))
    return TRAY_HALF_X * c + TRAY_HANDLE_HALF_Y * s


def _direction(start: tuple[float, float, float], goal: tuple[float, float, float, float]) -> tuple[float, float]:
    """(heading, distance) of the goal centre from the start centre in the table plane."""
    dx, dy = goal[0] - start[0], goal[1] - start[1]
    return math.atan2(dy, dx), math.hypot(dx, dy)


def _empty(config, start, heading, size, placement, rng):
    distance = rng.uniform(0.05, config.max_translation)
    height = rng.uniform(*config.goal_height_range)
    return _goal(config, start, heading, distance, height, rng), []


def _barrier(config, start, heading, size, placement, rng):
    wall_height = 0.05 + 0.08 * size
    thickness = rng.uniform(0.03, 0.06)
    height = min(config.goal_height_range[1], wall_height + TRAY_BOTTOM + 0.05 + rng.uniform(0.0, 0.1))
    goal = _goal(config, start, heading, rng.uniform(0.18, config.max_translation), height, rng, keep_heading=True)
    heading, distance = _direction(start, goal)
    gap = 0.02 + 0.04 * placement  # between the start tray's leading edge and the wall
    along = min(_half_extent(start[2], heading) + gap + thickness / 2, distance)
    centre = (start[0] + along * math.cos(heading), start[1] + along * math.sin(heading))
    length = rng.uniform(0.45, 0.65)
    wall = Box((centre[0], centre[1], TABLE_TOP_Z + wall_height / 2), (thickness, length, wall_height), heading)
    return goal, [wall]


def _platform(config, start, heading, size, placement, rng):
    height = 0.08 + 0.14 * size
    goal = _goal(config, start, heading, 0.25 + (config.max_translation - 0.25) * placement, height, rng,
                 keep_heading=True)  # fmt: skip
    heading, distance = _direction(start, goal)
    top = goal[2] - TRAY_BOTTOM - 0.015  # hovering 1.5 cm above: the goal pose itself is contact-free
    half_x, half_y = TRAY_HALF_X * rng.uniform(0.5, 0.8), TRAY_HALF_Y * rng.uniform(0.5, 0.8)
    # Shrink the platform along the path until it clears the start tray's footprint by 2 cm.
    room = distance - _half_extent(start[2], heading) - 0.02
    c, s = abs(math.cos(heading - goal[3])), abs(math.sin(heading - goal[3]))
    scale = min(1.0, max(0.3, room / max(half_x * c + half_y * s, 1e-6)))
    box = Box((goal[0], goal[1], (TABLE_TOP_Z + top) / 2), (2 * half_x * scale, 2 * half_y * scale, top - TABLE_TOP_Z),
              goal[3])  # fmt: skip
    return goal, [box]


def _bar(config, start, heading, size, placement, rng):
    goal = _goal(config, start, heading, rng.uniform(0.26, config.max_translation),
                 rng.uniform(0.14, config.goal_height_range[1]), rng, keep_heading=True)  # fmt: skip
    heading, _ = _direction(start, goal)
    depth = 0.05 + 0.04 * size  # along the path
    gap = 0.04 + 0.04 * placement  # between the resting tray's top and the bar
    shift = rng.uniform(0.0, 0.05)  # towards the goal
    centre = (start[0] + shift * math.cos(heading), start[1] + shift * math.sin(heading))
    z = TRAY_REST_Z + TRAY_TOP + gap + 0.015
    bar = Box((centre[0], centre[1], z), (depth, rng.uniform(0.20, 0.30), 0.03), heading)
    return goal, [bar]


def _handle_box(config, start, heading, size, placement, rng):
    placement, path = placement
    goal = _goal(config, start, heading, rng.uniform(0.05, config.max_translation),
                 rng.uniform(*config.goal_height_range), rng)  # fmt: skip
    arm = 0 if placement < 0.5 else 1  # the left or the right tool's approach
    s = 0.30 + 0.15 * rng.uniform()  # where on the straight approach (0 = home, 1 = at the handle)
    centre = path[round(s * (len(path) - 1)), arm]
    edge = 0.05 + 0.03 * size
    return goal, [Box(tuple(float(v) for v in centre), (edge, edge, edge), start[2])]


_TEMPLATE_BUILDERS = {
    "empty": _empty,
    "barrier": _barrier,
    "platform": _platform,
    "bar": _bar,
    "handle_box": _handle_box,
}
