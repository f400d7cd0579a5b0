"""The collector's parameters, defined once (ROS-free): name, default, description, range, and their validation
into a CollectorConfig. The `collector` node declares them from here (with ROS ParameterDescriptors; all are read
at start only), `collect_ray` reads the same ones from a params file, and `config/collector.yaml` is generated from
here (`python -m data_collector_ros.collector_parameters > config/collector.yaml`; a test keeps it current).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from data_collector_ros.cem import CEMConfig
from data_collector_ros.collector import CollectorConfig
from data_collector_ros.episode import EpisodeConfig
from data_collector_ros.grid import GridConfig
from data_collector_ros.scene_family import TEMPLATES, FamilyConfig
from flow_planner_common.parameters import ParameterError, ParameterSpec, checked_value, parameters_yaml
from flow_planner_common.robot import DEFAULT_DT, HORIZON

COLLECTOR_PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec("output_dir", "data/expert", "where the trajectories go: one traj_<grid_index>_<phase>.npz each",
                  read_only=True),
    ParameterSpec("start_index", 0, "first grid index of this shard (in the shuffled grid order)", 0,
                  read_only=True),
    ParameterSpec("count", 100, "grid indices in this shard (each: reach + carry = 2 trajectories); 0 = nothing to "
                  "do", 0, read_only=True),
    ParameterSpec("seed", 0, "shuffles the grid and seeds every episode (seed, grid index)", 0, read_only=True),
    ParameterSpec("scenes", "family", "family = cluttered scenes (scene_family.py); flat = the old tray-pose grid "
                  "(grid_*, workspace_*)", choices=("family", "flat"), read_only=True),
    ParameterSpec("templates", list(TEMPLATES), "family scenes: the templates the grid cycles through (a subset "
                  "collects more of the hard ones, e.g. [bar]; it changes which scene each grid index is, so give "
                  "such a run its own start_index range)", read_only=True),
    ParameterSpec("grid_nx", 10, "flat scenes: a stratified grid of grid_nx x grid_ny cells over the workspace box; "
                  "one pass = grid_nx * grid_ny indices", 1, 1000, read_only=True),
    ParameterSpec("grid_ny", 10, "flat scenes: cells of the grid along y", 1, 1000, read_only=True),
    ParameterSpec("workspace_x", [0.42, 0.58], "m; [min, max] of the tray centre's x over the workspace box",
                  read_only=True),
    ParameterSpec("workspace_y", [-0.08, 0.08], "m; [min, max] of the tray centre's y over the workspace box",
                  read_only=True),
    ParameterSpec("yaw_jitter_deg", 15.0, "deg; tray yaw drawn uniformly in +-this per cell", 0.0, 180.0,
                  read_only=True),
    ParameterSpec("cell_jitter", 0.0, "0 = cell centres; up to 1 = anywhere in the cell", 0.0, 1.0, read_only=True),
    ParameterSpec("lift_height", 0.20, "m; carry goal above the start pose", 0.0, 1.0, read_only=True),
    ParameterSpec("dt", DEFAULT_DT, f"s between waypoints ({HORIZON} waypoints per trajectory)", 0.005, 1.0,
                  read_only=True),
    ParameterSpec("cem_candidates", 24, "CEM expert: candidate plans per iteration", 2, 4096, read_only=True),
    ParameterSpec("cem_elites", 5, "CEM expert: best candidates the next iteration is fitted to (at most "
                  "cem_candidates)", 2, 4096, read_only=True),
    ParameterSpec("cem_iterations", 5, "CEM expert: iterations per search", 1, 1000, read_only=True),
    ParameterSpec("cem_knots", 4, "CEM expert: spline knots per joint", 1, 64, read_only=True),
    ParameterSpec("cem_init_std", 0.10, "rad; CEM expert: initial spread of the knots", 1e-3, math.pi,
                  read_only=True),
    ParameterSpec("reset_every", 20, "episodes between simulation rebuilds", 1, read_only=True),
    ParameterSpec("record_bag", False, "one MCAP rosbag2 per episode under <output_dir>/bags/", read_only=True),
    ParameterSpec("progress", True, "tqdm progress bar on stderr", read_only=True),
    ParameterSpec("joint_states_rate", 50.0, "Hz of simulated time at which it publishes joint states while "
                  "executing; 0 = off", 0.0, 1000.0, read_only=True),
    ParameterSpec("joint_states_topic", "~/joint_states", "sensor_msgs/JointState of what it executes (private "
                  "namespace by default; see collector_node.py)", read_only=True),
    ParameterSpec("tray_pose_topic", "~/tray_pose", "geometry_msgs/PoseStamped of the tray, with each joint state",
                  read_only=True),
    ParameterSpec("left_trajectory_topic", "~/left_arm_controller/joint_trajectory", "left arm JointTrajectory of "
                  "each phase it executes", read_only=True),
    ParameterSpec("right_trajectory_topic", "~/right_arm_controller/joint_trajectory", "right arm JointTrajectory "
                  "of each phase it executes", read_only=True),
    ParameterSpec("frame_id", "world", "frame of the tray pose", read_only=True),
)  # fmt: skip
SPECS: dict[str, ParameterSpec] = {spec.name: spec for spec in COLLECTOR_PARAMETERS}
#: Every parameter with its default (collect.launch.py and collect_ray start from these).
PARAMETERS: dict[str, object] = {spec.name: spec.default for spec in COLLECTOR_PARAMETERS}
SIM_TIMESTEP = 0.002  # s, the MJCF's physics step (only used to turn joint_states_rate into a step count)


def _pair(name: str, value: object) -> tuple[float, float]:
    """[min, max] of a list parameter (a list, or the array.array rclpy gives for a double array)."""
    values = list(value) if isinstance(value, Iterable) and not isinstance(value, str | bytes) else [value]
    if len(values) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise ParameterError(f"{name} must be [min, max] (got {values})")
    return float(values[0]), float(values[1])


def config_from_parameters(values: Mapping[str, object]) -> CollectorConfig:
    """Build and validate the collector configuration from parameter values (missing ones take their defaults):
    each value against its spec (type, range, choices), then the rules across them; ValueError (ParameterError for
    a single value) names the bad parameter."""
    unknown = sorted(set(values) - set(SPECS))
    if unknown:
        raise ParameterError(f"unknown collector parameter(s): {', '.join(unknown)}")
    p = {spec.name: checked_value(spec, values.get(spec.name, spec.default)) for spec in COLLECTOR_PARAMETERS}
    if not str(p["output_dir"]).strip():
        raise ParameterError("output_dir must not be empty")
    grid = GridConfig(
        nx=p["grid_nx"],
        ny=p["grid_ny"],
        x_range=_pair("workspace_x", p["workspace_x"]),
        y_range=_pair("workspace_y", p["workspace_y"]),
        yaw_jitter=math.radians(p["yaw_jitter_deg"]),
        cell_jitter=p["cell_jitter"],
        seed=p["seed"],
    )
    cem = CEMConfig(
        num_candidates=p["cem_candidates"],
        num_elites=p["cem_elites"],
        iterations=p["cem_iterations"],
        min_iterations=min(2, p["cem_iterations"]),
        num_knots=p["cem_knots"],
        init_std=p["cem_init_std"],
    )
    templates = tuple(p["templates"]) if isinstance(p["templates"], list) else ()
    if not templates or not all(isinstance(t, str) and t in TEMPLATES for t in templates):
        raise ParameterError(f"templates must be a non-empty list of {', '.join(TEMPLATES)} (got {p['templates']})")
    rate = p["joint_states_rate"]
    episode = EpisodeConfig(dt=p["dt"], state_every=max(1, round(1.0 / (rate * SIM_TIMESTEP))) if rate > 0 else 10**9)
    return CollectorConfig(
        family=FamilyConfig(seed=p["seed"], templates=templates) if p["scenes"] == "family" else None,
        output_dir=Path(p["output_dir"]),
        start_index=p["start_index"],
        count=p["count"],
        grid=grid,
        cem=cem,
        episode=episode,
        lift_height=p["lift_height"],
        reset_every=p["reset_every"],
    )


def collector_yaml(node_name: str = "/**") -> str:
    """The text of config/collector.yaml: every parameter with its default and description."""
    header = [
        "Parameters of the expert-data collector (data_collector_ros/collector), generated from data_collector_ros/",
        "collector_parameters.py: python -m data_collector_ros.collector_parameters > config/collector.yaml",
        "collect.launch.py passes this file (params_file:=...) to every shard; its output_dir, start_index, count and",
        "record_bag arguments override the values here only when given (the shards split [start_index, start_index +",
        "count)). /** = every collector process (launch names them collector_<shard>).",
        "(*) = read at start only (all of them); [low, inf) = no upper limit.",
    ]
    return parameters_yaml(node_name, COLLECTOR_PARAMETERS, header)


if __name__ == "__main__":
    sys.stdout.write(collector_yaml())
