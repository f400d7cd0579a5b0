"""SceneSafety's motion terms compiled for the CPU (numba): per waypoint of each candidate the sweep, the grip's
change and the carried tray's tilt, from one pass of forward kinematics over the start and the waypoints.

The same quantities as SceneSafety.sweep, tool_frames.grip_change and SceneSafety.tray_tilt compute with torch ops
from SceneSafety.kinematics (the path CUDA takes), in float64:
- step k (from waypoint k - 1, the start before the first, to k): the largest over the arms' bodies (and the carried
  tray) of its origin's motion plus its rotation angle (arccos((trace(R0^T R1) - 1) / 2)) times its reach; the sweep
  at k is half the larger of step k and step k + 1 (0 after the last);
- grip: how far the right tool is from where it is at the start, in the left tool's frame;
- tilt: the carried tray's (sphere_kernel._held_tray: between the tools) angle from level, arccos(R[2, 2]).

A candidate's start and waypoints are one block of lanes (sphere_kernel's layout and forward kinematics); a horizon
longer than LANES - 1 runs in blocks that overlap by one waypoint. Releases the GIL.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from flow_planner_common.sphere_kernel import (
    _BODIES,
    _JIT,
    _TOOL,
    LANES,
    KernelGeometry,
    _chain_lanes,
    _held_tray,
    _trig_lanes,
)


@numba.njit(**_JIT)
def motion_terms(
    geo: KernelGeometry,
    q: np.ndarray,
    start: np.ndarray,
    lo: int,
    hi: int,
    body_reach: np.ndarray,
    carried: bool,
    tray_reach: float,
    grasp_offset: np.ndarray,
    grasp_turn: np.ndarray,
    sweep: np.ndarray,
    grip: np.ndarray,
    tilt: np.ndarray,
) -> None:
    """Fill sweep, grip, tilt (N, H) rows lo..hi from the waypoints q (N, H, 12) and the starts (N or 1, 12).
    body_reach (2, 7): each body's farthest padded point from its origin; with `carried` the tray (reach
    `tray_reach`) is held by the tools, candidate n by grasp n (or 0: one for all): grasp_offset (G, P, 3),
    grasp_turn (G, P, 3, 3) as sphere_kernel.clearances; without, grip and tilt are left as they are."""
    joints, horizon = q.shape[2], q.shape[1]
    lanes = max(2, min(LANES, horizon + 1))  # a run-time count (sphere_kernel.clearances)
    trig = np.empty((2, joints, lanes))
    rot, pos = np.empty((2, _BODIES, 3, 3, lanes)), np.empty((2, _BODIES, 3, lanes))
    tray = np.empty((4, 3, lanes))
    step = np.empty(horizon + 1)  # step[k]: from waypoint k - 1 to k (k >= 1; the start is waypoint 0)
    grip_x, grip_y, grip_z = 0.0, 0.0, 0.0  # the right tool in the left tool's frame at the start
    for n in range(lo, hi):
        s = n if start.shape[0] > 1 else 0
        g = n if grasp_offset.shape[0] > 1 else 0
        first = 0  # the block's first waypoint (0: the start)
        while True:
            count = min(lanes, horizon + 1 - first)
            for lane in range(lanes):
                k = first + min(lane, count - 1)
                for j in range(joints):
                    trig[0, j, lane] = start[s, j] if k == 0 else q[n, k - 1, j]
            _trig_lanes(trig)
            for arm in range(2):
                _chain_lanes(geo, trig, arm, rot, pos)
            if carried:
                _held_tray(rot, pos, grasp_offset, grasp_turn, g, tray)
            for lane in range(count):
                k = first + lane
                if k == 0 and carried:
                    grip_x, grip_y, grip_z = _grip_vector(rot, pos, lane)
                if k == 0 or lane == 0:  # the start, or this block's overlap with the last
                    continue
                largest = 0.0
                for arm in range(2):
                    for b in range(_BODIES):
                        moved = _moved(pos[arm, b], lane) + _turned(rot[arm, b], lane) * body_reach[arm, b]
                        largest = max(largest, moved)
                if carried:
                    largest = max(largest, _moved(tray[3], lane) + _turned(tray[:3], lane) * tray_reach)
                    x, y, z = _grip_vector(rot, pos, lane)
                    grip[n, k - 1] = math.sqrt((x - grip_x) ** 2 + (y - grip_y) ** 2 + (z - grip_z) ** 2)
                    tilt[n, k - 1] = math.acos(min(1.0, max(-1.0, tray[2, 2, lane])))
                step[k] = largest
            if first + count >= horizon + 1:
                break
            first += count - 1
        step_after = 0.0
        for k in range(horizon, 0, -1):
            sweep[n, k - 1] = 0.5 * max(step[k], step_after)
            step_after = step[k]


@numba.njit(**_JIT)
def _moved(p: np.ndarray, lane: int) -> float:
    """How far the point p (3, lanes) moved from lane - 1 to lane."""
    return math.sqrt((p[0, lane] - p[0, lane - 1]) ** 2 + (p[1, lane] - p[1, lane - 1]) ** 2
                     + (p[2, lane] - p[2, lane - 1]) ** 2)  # fmt: skip


@numba.njit(**_JIT)
def _turned(r: np.ndarray, lane: int) -> float:
    """The angle (rad) of the rotation from r (3, 3, lanes) at lane - 1 to lane: arccos((trace(R0^T R1) - 1) / 2)."""
    trace = 0.0
    for i in range(3):
        for j in range(3):
            trace += r[i, j, lane - 1] * r[i, j, lane]
    return math.acos(min(1.0, max(-1.0, 0.5 * (trace - 1.0))))


@numba.njit(**_JIT)
def _grip_vector(rot: np.ndarray, pos: np.ndarray, lane: int) -> tuple[float, float, float]:
    """The right tool's position in the left tool's frame, R_left^T (p_right - p_left)."""
    dx = pos[1, _TOOL, 0, lane] - pos[0, _TOOL, 0, lane]
    dy = pos[1, _TOOL, 1, lane] - pos[0, _TOOL, 1, lane]
    dz = pos[1, _TOOL, 2, lane] - pos[0, _TOOL, 2, lane]
    r = rot[0, _TOOL]
    return (r[0, 0, lane] * dx + r[1, 0, lane] * dy + r[2, 0, lane] * dz,
            r[0, 1, lane] * dx + r[1, 1, lane] * dy + r[2, 1, lane] * dz,
            r[0, 2, lane] * dx + r[1, 2, lane] * dy + r[2, 2, lane] * dz)  # fmt: skip
