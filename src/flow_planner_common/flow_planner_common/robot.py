"""The robot, defined once: joint names and order, UR5e limits, trajectory horizon and timing.

Every other module (simulation, schema, learning, planner) imports these; nothing redefines them.
"""

from __future__ import annotations

import math

import numpy as np

ARM_PREFIXES: tuple[str, str] = ("left_", "right_")
ARM_JOINT_SUFFIXES: tuple[str, ...] = (
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
)
LEFT_ARM_JOINTS: tuple[str, ...] = tuple(ARM_PREFIXES[0] + s for s in ARM_JOINT_SUFFIXES)
RIGHT_ARM_JOINTS: tuple[str, ...] = tuple(ARM_PREFIXES[1] + s for s in ARM_JOINT_SUFFIXES)
#: All 12 joints in the planner's order: left arm, then right arm.
JOINT_NAMES: tuple[str, ...] = LEFT_ARM_JOINTS + RIGHT_ARM_JOINTS
NUM_ARM_JOINTS = len(ARM_JOINT_SUFFIXES)
NUM_JOINTS = len(JOINT_NAMES)

# Published UR5e limits: every joint ±360° except the elbow (±180°); every joint 180°/s.
_ARM_POSITION_LIMITS = np.array(
    [
        [-2 * math.pi, 2 * math.pi],
        [-2 * math.pi, 2 * math.pi],
        [-math.pi, math.pi],
        [-2 * math.pi, 2 * math.pi],
        [-2 * math.pi, 2 * math.pi],
        [-2 * math.pi, 2 * math.pi],
    ]
)
#: (12, 2) lower/upper joint position limits, rad, in JOINT_NAMES order.
JOINT_POSITION_LIMITS: np.ndarray = np.vstack([_ARM_POSITION_LIMITS, _ARM_POSITION_LIMITS])
#: (12,) joint speed limits, rad/s, in JOINT_NAMES order.
JOINT_VELOCITY_LIMITS: np.ndarray = np.full(NUM_JOINTS, math.pi)
JOINT_POSITION_LIMITS.setflags(write=False)
JOINT_VELOCITY_LIMITS.setflags(write=False)

#: Home configuration of one arm (upper arm up, forearm forward, tool pointing down), rad.
_ARM_HOME = np.array([0.0, -math.pi / 2, math.pi / 2, -math.pi / 2, -math.pi / 2, 0.0])
#: (12,) home joint positions, rad, in JOINT_NAMES order: where every episode starts.
HOME_POSITIONS: np.ndarray = np.concatenate([_ARM_HOME, _ARM_HOME])
HOME_POSITIONS.setflags(write=False)

#: Waypoints per planned trajectory (one phase of an episode).
HORIZON = 60
#: Default time between waypoints, s; waypoint k is at time_from_start = (k + 1) * dt.
DEFAULT_DT = 0.05

#: Episode phases.
PHASE_REACH = 0
PHASE_CARRY = 1
PHASE_NAMES: dict[int, str] = {PHASE_REACH: "reach", PHASE_CARRY: "carry"}
