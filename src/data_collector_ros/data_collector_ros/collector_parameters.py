"""The collector's parameters (ROS-free): every parameter with its default, and their validation into a
CollectorConfig. The `collector` node declares them; `collect_ray` reads the same ones from a params file."""

from __future__ import annotations

import math
from pathlib import Path

from data_collector_ros.cem import CEMConfig
from data_collector_ros.collector import CollectorConfig
from data_collector_ros.episode import EpisodeConfig
from data_collector_ros.grid import GridConfig
from data_collector_ros.scene_family import FamilyConfig
from flow_planner_common.robot import DEFAULT_DT

#: Every parameter with its default (config/collector.yaml lists the same).
PARAMETERS: dict[str, object] = {
    "output_dir": "data/expert",
    "start_index": 0,
    "count": 100,
    "seed": 0,
    "scenes": "family",  # family = the cluttered scene family (scene_family.py); flat = the old tray-pose grid
    "grid_nx": 10,
    "grid_ny": 10,
    "workspace_x": [0.42, 0.58],
    "workspace_y": [-0.08, 0.08],
    "yaw_jitter_deg": 15.0,
    "cell_jitter": 0.0,
    "lift_height": 0.20,
    "dt": DEFAULT_DT,
    "cem_candidates": 24,
    "cem_elites": 5,
    "cem_iterations": 5,
    "cem_knots": 4,
    "cem_init_std": 0.10,
    "reset_every": 20,
    "record_bag": False,
    "progress": True,
    "joint_states_rate": 50.0,
    "joint_states_topic": "~/joint_states",
    "tray_pose_topic": "~/tray_pose",
    "left_trajectory_topic": "~/left_arm_controller/joint_trajectory",
    "right_trajectory_topic": "~/right_arm_controller/joint_trajectory",
    "frame_id": "world",
}
SIM_TIMESTEP = 0.002  # s, the MJCF's physics step (only used to turn joint_states_rate into a step count)


def _pair(name: str, value: list[float]) -> tuple[float, float]:
    if len(value) != 2:
        raise ValueError(f"{name} must be [min, max] (got {list(value)})")
    return float(value[0]), float(value[1])


def config_from_parameters(p: dict[str, object]) -> CollectorConfig:
    """Build and validate the collector configuration; ValueError names the bad parameter."""
    if not str(p["output_dir"]).strip():
        raise ValueError("output_dir must not be empty")
    if float(p["joint_states_rate"]) < 0:
        raise ValueError("joint_states_rate must be >= 0")
    grid = GridConfig(
        nx=int(p["grid_nx"]),
        ny=int(p["grid_ny"]),
        x_range=_pair("workspace_x", p["workspace_x"]),
        y_range=_pair("workspace_y", p["workspace_y"]),
        yaw_jitter=math.radians(float(p["yaw_jitter_deg"])),
        cell_jitter=float(p["cell_jitter"]),
        seed=int(p["seed"]),
    )
    cem = CEMConfig(
        num_candidates=int(p["cem_candidates"]),
        num_elites=int(p["cem_elites"]),
        iterations=int(p["cem_iterations"]),
        min_iterations=min(2, int(p["cem_iterations"])) or 1,
        num_knots=int(p["cem_knots"]),
        init_std=float(p["cem_init_std"]),
    )
    rate = float(p["joint_states_rate"])
    episode = EpisodeConfig(
        dt=float(p["dt"]), state_every=max(1, round(1.0 / (rate * SIM_TIMESTEP))) if rate > 0 else 10**9
    )
    scenes = str(p["scenes"])
    if scenes not in ("family", "flat"):
        raise ValueError(f"scenes must be family or flat (got {scenes[:40]!r})")
    return CollectorConfig(
        family=FamilyConfig(seed=int(p["seed"])) if scenes == "family" else None,
        output_dir=Path(str(p["output_dir"])),
        start_index=int(p["start_index"]),
        count=int(p["count"]),
        grid=grid,
        cem=cem,
        episode=episode,
        lift_height=float(p["lift_height"]),
        reset_every=int(p["reset_every"]),
    )
