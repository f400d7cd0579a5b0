"""The one success function of the project (see the README), for an executed trajectory of either phase.

Success = end effectors within `ee_tolerance` of their targets at the end (carry: tray within `tray_position_tolerance`
and `tray_angle_tolerance` of its goal pose, tilted at most `max_tray_tilt` from level throughout), no arm-arm,
arm-table, arm-obstacle or tray-obstacle contact, no joint position or velocity limit
exceeded (commanded velocities must be within the limits; measured ones may exceed them by `velocity_tolerance`
for PD tracking overshoot), tray not dropped (never below its start height minus `drop_margin`; in the carry phase
also still grasped at the end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from data_collector_ros.simulation import ExecutionStats, Simulation
from data_collector_ros.task import pose_error
from flow_planner_common.robot import PHASE_CARRY, PHASE_NAMES, PHASE_REACH


@dataclass(frozen=True)
class SuccessCriteria:
    ee_tolerance: float = 0.02  # m
    tray_position_tolerance: float = 0.02  # m
    tray_angle_tolerance: float = math.radians(5.0)  # rad
    position_tolerance: float = 1e-3  # rad beyond a position limit (joint-limit constraint softness)
    velocity_tolerance: float = 0.10  # fraction above a velocity limit allowed for the measured velocity
    drop_margin: float = 0.03  # m
    max_tray_tilt: float = math.radians(10.0)  # rad from level, at any time of the carry


@dataclass(frozen=True)
class SuccessResult:
    success: bool
    reasons: tuple[str, ...]  # empty when successful
    metrics: dict[str, float] = field(default_factory=dict)


def evaluate_success(
    phase: int,
    ee_positions: np.ndarray,
    ee_targets: np.ndarray,
    tray_pose: np.ndarray,
    tray_goal_pose: np.ndarray | None,
    tray_start_z: float,
    grasped: bool,
    stats: ExecutionStats,
    criteria: SuccessCriteria | None = None,
) -> SuccessResult:
    """Judge one executed phase from its final state and its ExecutionStats (pure function)."""
    c = criteria or SuccessCriteria()
    if phase not in PHASE_NAMES:
        raise ValueError(f"unknown phase {phase}")
    reasons: list[str] = []
    ee_err = np.linalg.norm(np.asarray(ee_positions) - np.asarray(ee_targets), axis=1)
    metrics = {"ee_error_left": float(ee_err[0]), "ee_error_right": float(ee_err[1])}
    if np.any(ee_err > c.ee_tolerance):
        reasons.append(f"end effector off target: {ee_err.max() * 1000:.1f} mm > {c.ee_tolerance * 1000:.0f} mm")
    if phase == PHASE_CARRY:
        if tray_goal_pose is None:
            raise ValueError("carry phase needs tray_goal_pose")
        pos_err, ang_err = pose_error(tray_pose, tray_goal_pose)
        metrics |= {"tray_position_error": pos_err, "tray_angle_error": ang_err}
        if pos_err > c.tray_position_tolerance:
            reasons.append(f"tray off goal: {pos_err * 1000:.1f} mm > {c.tray_position_tolerance * 1000:.0f} mm")
        if ang_err > c.tray_angle_tolerance:
            reasons.append(
                f"tray rotated: {math.degrees(ang_err):.1f} deg > {math.degrees(c.tray_angle_tolerance):.0f} deg"
            )
        if not grasped:
            reasons.append("tray dropped: not grasped at the end")
        metrics["max_tray_tilt"] = stats.max_tray_tilt
        if stats.max_tray_tilt > c.max_tray_tilt:
            reasons.append(
                f"tray tilted {math.degrees(stats.max_tray_tilt):.1f} deg > {math.degrees(c.max_tray_tilt):.0f} deg"
            )
    if stats.arm_arm_contact:
        reasons.append(f"arm-arm collision ({stats.first_collision})")
    if stats.arm_env_contact:
        reasons.append(f"arm-table collision ({stats.first_collision})")
    if stats.arm_obstacle_contact:
        reasons.append(f"arm-obstacle collision ({stats.first_collision})")
    if stats.tray_obstacle_contact:
        reasons.append(f"tray-obstacle collision ({stats.first_collision})")
    if stats.max_position_excess > c.position_tolerance:
        reasons.append(f"joint position limit exceeded by {stats.max_position_excess:.4f} rad")
    if stats.max_command_velocity_ratio > 1.0:
        reasons.append(f"commanded joint velocity at {stats.max_command_velocity_ratio:.2f}x the limit")
    if stats.max_velocity_ratio > 1.0 + c.velocity_tolerance:
        reasons.append(f"joint velocity at {stats.max_velocity_ratio:.2f}x the limit")
    if stats.min_tray_z < tray_start_z - c.drop_margin:
        reasons.append(f"tray dropped: fell to z={stats.min_tray_z:.3f} m")
    metrics |= {"max_velocity_ratio": stats.max_velocity_ratio, "max_position_excess": stats.max_position_excess}
    return SuccessResult(not reasons, tuple(reasons), metrics)


def evaluate_simulation(
    sim: Simulation,
    phase: int,
    ee_targets: np.ndarray,
    tray_start_pose: np.ndarray,
    tray_goal_pose: np.ndarray | None = None,
    criteria: SuccessCriteria | None = None,
) -> SuccessResult:
    """`evaluate_success` on a simulation's current state and stats (after `run_trajectory`)."""
    state = sim.state()
    ee_positions, _ = sim.ee_poses()
    if phase == PHASE_REACH:
        tray_goal_pose = None
    return evaluate_success(
        phase,
        ee_positions,
        ee_targets,
        state.tray_pose,
        tray_goal_pose,
        float(tray_start_pose[2]),
        all(state.grasped),
        sim.stats,
        criteria,
    )
