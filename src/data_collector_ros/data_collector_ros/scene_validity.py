"""Which scenes of the family can be attempted at all: the tray's start and goal reachable by IK, nothing in
collision at the start, at the grasp and at the goal. A skipped scene keeps its reason, so the collector and the
evaluation report invalid scenes instead of counting them as planner failures."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from data_collector_ros.ik import IKSolver
from data_collector_ros.scene import classify_contacts, obstacle_contacts
from data_collector_ros.scene_family import SceneEpisode
from data_collector_ros.simulation import Simulation
from data_collector_ros.task import handle_targets
from flow_planner_common.motion import reference_trajectory
from flow_planner_common.robot import DEFAULT_DT, HOME_POSITIONS


@dataclass(frozen=True)
class SceneCheck:
    """The verdict on a scene, and the IK goals when it is valid."""

    valid: bool
    reason: str  # empty when valid
    reach_goal: np.ndarray | None = None  # (12,)
    carry_goal: np.ndarray | None = None  # (12,)


class StraightReach:
    """The straight reach's end-effector path for a tray start pose: IK of the handles, the minimum-jerk joint line
    from home, forward kinematics of both tools at every waypoint → (H, 2, 3). Deterministic (seeded IK)."""

    def __init__(self, sim: Simulation, ik: IKSolver, dt: float = DEFAULT_DT) -> None:
        self.model, self.index, self.ik, self.dt = sim.model, sim.index, ik, dt
        self.data = ik.data  # the IK solver's scratch data: used after its solve, never during one

    def __call__(self, tray_start: np.ndarray) -> np.ndarray:
        targets, quats = handle_targets(self.model, self.index, tray_start)
        goal = self.ik.solve(targets, quats, seed_positions=HOME_POSITIONS, seed=0).positions
        positions, _ = reference_trajectory(HOME_POSITIONS, np.zeros_like(goal), goal, self.dt)
        path = np.zeros((len(positions), 2, 3))
        for k, q in enumerate(positions):
            self.data.qpos[self.index.qpos_adr] = q
            mujoco.mj_kinematics(self.model, self.data)
            path[k] = self.data.site_xpos[self.index.ee_sites]
        return path


def _collisions(sim: Simulation) -> list[str]:
    """What touches what in the simulation's current configuration (arms, tray, table, obstacles)."""
    mujoco.mj_forward(sim.model, sim.data)
    pairs = sim.data.contact.geom[: sim.data.ncon]
    arm_arm, arm_env = classify_contacts(sim.index, pairs)
    arm_obstacle, tray_obstacle = obstacle_contacts(sim.index, pairs)
    names = ("arm-arm", "arm-table", "arm-obstacle", "tray-obstacle")
    return [name for name, hit in zip(names, (arm_arm, arm_env, arm_obstacle, tray_obstacle), strict=True) if hit]


def check_scene(sim: Simulation, ik: IKSolver, scene: SceneEpisode, seed: int = 0) -> SceneCheck:
    """Validate a scene in `sim` (leaves the scene's obstacles placed and the simulation reset at its start)."""
    sim.set_obstacles(scene.obstacles)
    start, goal = scene.start_pose(float(sim.rest_tray_pose[2])), scene.goal_pose()
    sim.reset(start)
    hits = _collisions(sim)
    if hits:
        return SceneCheck(False, f"collision at the start: {', '.join(hits)}")
    targets, quats = handle_targets(sim.model, sim.index, start)
    reach = ik.solve(targets, quats, seed_positions=HOME_POSITIONS, seed=seed)
    if not reach.success:
        return SceneCheck(False, f"reach goal unreachable (IK error {reach.position_errors.max() * 1000:.1f} mm)")
    sim.reset(start, positions=reach.positions)
    hits = _collisions(sim)
    if hits:
        return SceneCheck(False, f"collision at the grasp: {', '.join(hits)}")
    targets, quats = handle_targets(sim.model, sim.index, goal)
    carry = ik.solve(targets, quats, seed_positions=reach.positions, seed=seed)
    if not carry.success:
        return SceneCheck(False, f"carry goal unreachable (IK error {carry.position_errors.max() * 1000:.1f} mm)")
    sim.reset(goal, positions=carry.positions)
    hits = _collisions(sim)
    sim.reset(start)
    if hits:
        return SceneCheck(False, f"collision at the goal: {', '.join(hits)}")
    return SceneCheck(True, "", reach.positions, carry.positions)
