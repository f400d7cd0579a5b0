"""A geometric joint path onto the planner's fixed horizon (ROS-free, numpy): timing of a classical planner's path.

The path (M, 12) is followed by arc length s (the 12-D Euclidean length of its segments) with a smooth time law s(t)
over T = horizon * dt, sampled at the waypoints t_k = (k + 1) dt:

- quintic (minimum jerk): s = L (10 u^3 - 15 u^4 + 6 u^5), u = t / T; rest to rest, peak speed 1.875 L / T;
- where that is too fast for the joint speed limits, a smooth trapezoid: the speed ramps up over tau with the quintic
  smoothstep h(x) = 10 x^3 - 15 x^4 + 6 x^5, cruises at V = L / (T - tau), ramps down over tau (continuous
  acceleration); the longest tau that keeps every joint within its limit, at least MIN_RAMP * T;
- `flat`: the smooth trapezoid with the shortest ramps, MIN_RAMP * T: the lowest peak speed (1.25 L / T), so the
  least sweep where a motion passes close to something mid-way (the scene check asks more clearance of fast steps).

Joint j moves at ds/dt * |dq_j / ds|, so the path fits when the peak ds/dt times the largest |dq_j / ds| of any segment
is within joint j's limit; a path that does not fit even with the shortest ramp is refused with the reason. The
velocities are the exact time derivatives (ds/dt times the direction of the segment the waypoint lies on), so they
agree with the positions' finite differences wherever the path is straight.

A non-zero start velocity v0 is carried away by adding v0 tau0 p(t / tau0) over the first tau0 = START_DECAY s
(p(x) = x - 6 x^3 + 8 x^4 - 3 x^5: p(0) = 0, p'(0) = 1, zero value, slope and curvature at x = 1), as the
reference motion (flow_planner_common.motion) does over the whole horizon: the motion starts with v0 and leaves the
path by at most 0.19 |v0| tau0 (rad).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flow_planner_common.motion import min_jerk_blend, velocity_carry

#: Shortest ramp of the smooth trapezoid, as a share of the horizon's duration.
MIN_RAMP = 0.2
#: Speed limits are used up to this share (round-off and the finite differences' slack).
SPEED_SHARE = 0.995
#: Seconds over which a non-zero start velocity decays (see the module docstring).
START_DECAY = 0.5


@dataclass(frozen=True)
class TimedPath:
    """Positions and velocities (H, 12) at (k + 1) dt, or None with the reason; `profile` names the time law."""

    positions: np.ndarray | None
    velocities: np.ndarray | None
    profile: str
    reason: str = ""


def arc_lengths(path: np.ndarray) -> np.ndarray:
    """(M,) cumulative 12-D Euclidean length of a path (M, 12), 0 at its first point."""
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])


def along(path: np.ndarray, lengths: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, 12) at arc lengths s (N,) of a piecewise-linear path and their unit directions dq/ds (N, 12)."""
    segment = np.clip(np.searchsorted(lengths, s, side="right") - 1, 0, len(path) - 2)
    size = lengths[segment + 1] - lengths[segment]
    fraction = np.clip((s - lengths[segment]) / np.maximum(size, 1e-12), 0.0, 1.0)
    delta = path[segment + 1] - path[segment]
    points = path[segment] + fraction[:, None] * delta
    return points, delta / np.maximum(size, 1e-12)[:, None]


def quintic(t: np.ndarray, total: float, length: float) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-jerk arc length and speed at times t over `total` seconds."""
    blend, dblend = min_jerk_blend(np.clip(t / total, 0.0, 1.0))
    return length * blend, length / total * dblend


def smooth_trapezoid(t: np.ndarray, total: float, length: float, ramp: float) -> tuple[np.ndarray, np.ndarray]:
    """Arc length and speed of the smooth trapezoid (see the module docstring) with ramps of `ramp` seconds."""
    speed = length / (total - ramp)

    def rise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # integral of h (ramp units), h (the min-jerk blend)
        return 2.5 * x**4 - 3 * x**5 + x**6, min_jerk_blend(x)[0]

    t = np.clip(t, 0.0, total)
    up, dup = rise(np.clip(t / ramp, 0.0, 1.0))
    down, ddown = rise(np.clip((total - t) / ramp, 0.0, 1.0))
    s = np.where(t < ramp, speed * ramp * up, np.where(t > total - ramp, length - speed * ramp * down,
                                                         speed * (t - ramp / 2)))  # fmt: skip
    v = np.where(t < ramp, speed * dup, np.where(t > total - ramp, speed * ddown, speed))
    return s, v


def start_decay(t: np.ndarray, start_velocity: np.ndarray, decay: float) -> tuple[np.ndarray, np.ndarray]:
    """(N, 12) offsets and their velocities that carry a start velocity away within `decay` seconds."""
    p, dp = velocity_carry(np.clip(t / decay, 0.0, 1.0)[:, None])
    return decay * p * start_velocity, dp * start_velocity


def time_path(
    path: np.ndarray,
    dt: float,
    horizon: int,
    velocity_limits: np.ndarray,
    start_velocity: np.ndarray | None = None,
    flat: bool = False,
) -> TimedPath:
    """The path (M, 12), from the start state to the goal, timed onto `horizon` waypoints (see the module docstring;
    `flat`: the smooth trapezoid with the shortest ramps). The last waypoint is the path's end at rest."""
    path = np.asarray(path, dtype=float)
    total = horizon * dt
    t = dt * np.arange(1, horizon + 1)
    lengths = arc_lengths(path)
    length = float(lengths[-1])
    if len(path) < 2 or length < 1e-9:
        positions, velocities = np.repeat(path[-1:], horizon, axis=0), np.zeros((horizon, path.shape[1]))
        profile = "at rest"
    else:
        steepest = np.max(np.abs(np.diff(path, axis=0)) / np.maximum(np.diff(lengths), 1e-12)[:, None], axis=0)
        allowed = float(np.min(SPEED_SHARE * np.asarray(velocity_limits) / np.maximum(steepest, 1e-12)))  # ds/dt
        if 1.875 * length / total <= allowed and not flat:
            s, speed = quintic(t, total, length)
            profile = "quintic"
        else:
            ramp = MIN_RAMP * total if flat else total - length / allowed
            if length / (total * (1 - MIN_RAMP)) > allowed:  # even the shortest ramps are too slow
                needed = length / (total * (1 - MIN_RAMP))
                return TimedPath(None, None, "too long", (
                    f"the path ({length:.2f} rad) does not fit {total:.1f} s at the joint speed limits: it needs "
                    f"{needed / allowed:.2f}x the allowed speed"))  # fmt: skip
            s, speed = smooth_trapezoid(t, total, length, ramp)
            profile = f"trapezoid (ramps {ramp:.2f} s)"
        positions, direction = along(path, lengths, s)
        velocities = speed[:, None] * direction
        positions[-1], velocities[-1] = path[-1], 0.0
    if start_velocity is not None and np.any(start_velocity != 0.0):
        offset, rate = start_decay(t, np.asarray(start_velocity, dtype=float), min(START_DECAY, total))
        positions, velocities = positions + offset, velocities + rate
        profile += " + start velocity"
    return TimedPath(positions, velocities, profile)
