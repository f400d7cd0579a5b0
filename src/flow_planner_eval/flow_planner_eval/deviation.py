"""How far the executed motion strays from the checked plan (issue 21), ROS-free: execute a phase's plan in the
MuJoCo simulation and, every `sample_steps` physics steps, compare the executed geometry with the geometry the
planner's check reasons about.

The planner checks a plan kinematically at its waypoints (flow_planner_common.sphere_checker, scene_safety): spheres
on the arms, the carried tray as boxes held by both tools with the grasps taken at the start state, its pose the
mean of the poses the two grasps give it (`grasp_from_start`, `carried_tray`; before issue 21 it was held rigidly
by the LEFT tool, which a grasp without the right tool's part still gives), a clearance margin raised by a sweep
term between waypoints, and a limit on the right tool's drift from its grasp (the grip change). The physics
differs: the controllers track the trajectory with some error, and the tray is welded to both tools (it is pulled
between them when the grasps drift apart).

Per sample at time t (s from the moment the plan is sent), with q_plan(t) the plan interpolated like the
controllers do (flow_planner_common.hermite, from the commanded state at the send), q_exec(t) MuJoCo's joints and
k(t) the waypoint nearest to t (0 = the start state):
- `arm`: max over the arm spheres' centres of |c(q_exec(t)) - c(q_plan(t))| (tracking error, in metres of motion);
- `arm_from_waypoint`: max over the spheres of |c(q_exec(t)) - c(q_plan(t_k))|: what the check's cover at waypoint
  k, max(margin, sweep[k]), must cover (the planned motion to mid-step plus the tracking error);
- carries, the tray's box vertices (all tray boxes, 8 corners each): `tray_planned` = max |MuJoCo's tray -
  the checker's model at q_plan(t)| (tracking plus the two-handed grasp), `tray_executed` = the same against the
  model at q_exec(t) (the model's error alone: the weld pulling the tray between the drifting grasps), and
  `tray_from_waypoint` = against the model at q_plan(t_k) (what the cover at waypoint k must cover for the tray);
  `tray_mean_planned` / `tray_mean_executed`: against the tray held by BOTH tools (each grasp taken at the start
  state, the pose their mean: positions averaged, rotations averaged and projected back onto a rotation by SVD), at
  q_plan(t) / q_exec(t): the checker's model since issue 21, computed apart (a check of it; with a left-only grasp,
  as before, the two rows differ);
- carries, the grip change (tool_frames.grip_change: the right tool's motion from its start place in the left
  tool's frame): `grip_planned` (H,) at the plan's waypoints (the checker's figure), `grip_executed` (T,) from the
  executed joints.
The samples run from the send to the plan's end plus `settle` s (the controllers still converge).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from data_collector_ros.simulation import Simulation
from flow_planner_common.hermite import HermiteTrajectory
from flow_planner_common.kinematics import CATEGORIES, TrayGrasp, quat_to_matrix
from flow_planner_common.obstacles import Box
from flow_planner_common.sphere_checker import SphereChecker
from flow_planner_common.tool_frames import grip_change

#: Physics steps between two samples (2 ms steps: 10 ms).
DEFAULT_SAMPLE_STEPS = 5
#: Grip-change bins (m) of the carries' report: < 10 mm, 10-30 mm, > 30 mm.
GRIP_BINS: tuple[float, ...] = (0.01, 0.03)


@dataclass(frozen=True)
class PhaseDeviation:
    """One executed phase's samples (see the module docstring); tray and grip fields are None for a reach."""

    phase: int
    times: np.ndarray  # (T,) s from the send
    waypoint: np.ndarray  # (T,) index of the nearest knot (0 = start state, k = waypoint k - 1 of the plan)
    at_waypoint: np.ndarray  # (T,) bool: the sample is at a waypoint's time (within half a physics step)
    arm: np.ndarray  # (T,) m
    arm_from_waypoint: np.ndarray  # (T,) m
    cover: np.ndarray | None = None  # (T,) m: max(margin, sweep) at the nearest waypoint, when the sweep was given
    tray_planned: np.ndarray | None = None  # (T,) m
    tray_executed: np.ndarray | None = None  # (T,) m
    tray_from_waypoint: np.ndarray | None = None  # (T,) m
    tray_mean_planned: np.ndarray | None = None  # (T,) m, vs the two-tool model (mean_tray_vertices) at q_plan(t)
    tray_mean_executed: np.ndarray | None = None  # (T,) m, the same at q_exec(t)
    grip_planned: np.ndarray | None = None  # (H,) m
    grip_executed: np.ndarray | None = None  # (T,) m
    contacts: dict[str, bool] = field(default_factory=dict)  # the simulation's obstacle contacts in the phase
    #: with the scene's boxes: the checker's arm_obstacle and tray_obstacle clearances (m), (H, 2) at the plan's
    #: waypoints with the carried-tray model (what the check saw) and (T, 2) at the executed joints with the tray
    #: where the physics has it (+inf where a category has no pair)
    clearance_planned: np.ndarray | None = None
    clearance_executed: np.ndarray | None = None

    @property
    def clearance_lost(self) -> np.ndarray | None:
        """(2,) per category the plan's smallest checked clearance minus the executed motion's (m; > 0 = the
        executed motion came closer than the check saw)."""
        if self.clearance_planned is None:
            return None
        with np.errstate(invalid="ignore"):
            return self.clearance_planned.min(axis=0) - self.clearance_executed.min(axis=0)

    @property
    def max_grip_planned(self) -> float:
        return float(self.grip_planned.max()) if self.grip_planned is not None else 0.0


class DeviationMeter:
    """Executes plans in a Simulation and measures them against the checker's geometry (float64 forward
    kinematics of the sphere checker's chain)."""

    def __init__(self, sim: Simulation, checker: SphereChecker | None = None, sample_steps: int = DEFAULT_SAMPLE_STEPS):
        self.sim = sim
        self.checker = checker or SphereChecker(dtype=torch.float64)
        self.sample_steps = int(sample_steps)
        g = self.checker.geometry
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=float)  # (8, 3)
        # every tray box's corners in the tray body frame (the boxes are axis-aligned in it: SphereChecker checks)
        self.tray_vertices = (g.tray_center[:, None, :] + signs[None] * g.tray_half[:, None, :]).reshape(-1, 3)

    # ------------------------------------------------------------------ geometry
    def _kinematics(self, q: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return self.checker.forward_kinematics(torch.as_tensor(q, dtype=torch.float64))

    def spheres(self, q: np.ndarray) -> np.ndarray:
        """(T, 2S, 3) sphere centres of (T, 12) joints."""
        pos, rot = self._kinematics(q)
        return self.checker.sphere_centers(pos, rot).reshape(len(q), -1, 3).numpy()

    def model_tray_vertices(self, q: np.ndarray, grasp: TrayGrasp) -> np.ndarray:
        """(T, V, 3) the checker's carried tray (`carried_tray`: by both tools, or rigid with the left one for a
        left-only grasp) at (T, 12) joints: its box vertices."""
        pos, rot = self._kinematics(q)
        tray_p, tray_r = SphereChecker.carried_tray(pos, rot, grasp)
        return self._vertices(tray_p.numpy(), tray_r.numpy())

    def right_grasp(self, start_positions: np.ndarray, tray_pose: np.ndarray) -> TrayGrasp:
        """The tray pose relative to the RIGHT tool at the start state (grasp_from_start's, for the right tool)."""
        both = self.checker.grasp_from_start(start_positions, tray_pose)
        return TrayGrasp(both.right_position, both.right_rotation)

    def mean_tray_vertices(self, q: np.ndarray, left: TrayGrasp, right: TrayGrasp) -> np.ndarray:
        """(T, V, 3) the tray held by both tools at (T, 12) joints: the mean of the poses the left and the right
        grasp give it (rotation: the mean's nearest rotation, by SVD)."""
        pos, rot = self._kinematics(q)
        poses = []
        for arm, grasp in ((0, left), (1, right)):
            tool_p, tool_r = pos[:, arm, -1].numpy(), rot[:, arm, -1].numpy()
            poses.append((tool_p + tool_r @ grasp.position, tool_r @ grasp.rotation))
        p = 0.5 * (poses[0][0] + poses[1][0])
        u, _, vt = np.linalg.svd(0.5 * (poses[0][1] + poses[1][1]))
        fix = np.ones((len(q), 3))
        fix[:, 2] = np.sign(np.linalg.det(u @ vt))
        return self._vertices(p, (u * fix[:, None, :]) @ vt)

    def _vertices(self, p: np.ndarray, r: np.ndarray) -> np.ndarray:
        return p[:, None, :] + np.einsum("tij,vj->tvi", r, self.tray_vertices)

    def pose_vertices(self, poses: np.ndarray) -> np.ndarray:
        """(T, V, 3) the tray's box vertices at (T, 7) poses (x y z qw qx qy qz)."""
        poses = np.asarray(poses, dtype=float)
        return self._vertices(poses[:, :3], quat_to_matrix(poses[:, 3:7]))

    # ------------------------------------------------------------------ measurement
    def execute(
        self,
        phase: int,
        positions: np.ndarray,
        velocities: np.ndarray,
        dt: float,
        grasp: TrayGrasp | None = None,
        settle: float = 0.25,
        sweep: np.ndarray | None = None,
        margin: float = 0.01,
        boxes: Sequence[Box] = (),
    ) -> PhaseDeviation:
        """Send a (H, 12) plan (waypoint k at (k + 1) dt) from the simulation's current state, step it to its end
        plus `settle` s and measure it. `grasp` (carries): the checker's grasp, taken at the start state.
        `sweep` (H,): the check's sweep term per waypoint (then `cover` = max(margin, sweep) per sample; the start
        state gets its first waypoint's). `boxes`: the scene's, for the clearances (none: not measured)."""
        sim = self.sim
        positions, velocities = np.asarray(positions, dtype=float), np.asarray(velocities, dtype=float)
        sim.reset_stats()
        t0 = sim.time
        plan: HermiteTrajectory = sim.send_trajectory(dt * np.arange(1, len(positions) + 1), positions, velocities)
        steps = round((sim.trajectory_time_left() + settle) / sim.timestep)
        times, q_exec, tray = [], [], []
        done = 0
        while True:
            state = sim.state()
            times.append(state.time - t0)
            q_exec.append(state.positions)
            tray.append(state.tray_pose)
            if done >= steps:
                break
            n = min(self.sample_steps, steps - done)
            sim.step(n)
            done += n
        times, q_exec, tray = np.array(times), np.array(q_exec), np.array(tray)
        q_plan = plan.sample(times)[0]
        knot = np.clip(np.rint(times / dt).astype(int), 0, len(plan.times) - 1)
        at_waypoint = np.abs(times - plan.times[knot]) < 0.5 * sim.timestep
        q_knot = plan.positions[knot]

        exec_spheres = self.spheres(q_exec)
        arm = np.linalg.norm(exec_spheres - self.spheres(q_plan), axis=-1).max(axis=1)
        arm_from_waypoint = np.linalg.norm(exec_spheres - self.spheres(q_knot), axis=-1).max(axis=1)
        cover = None
        if sweep is not None:
            per_knot = np.maximum(margin, np.concatenate([[sweep[0]], np.asarray(sweep, dtype=float)]))
            cover = per_knot[knot]
        stats = sim.stats
        contacts = {"arm_obstacle": bool(stats.arm_obstacle_contact),
                    "tray_obstacle": bool(stats.tray_obstacle_contact)}  # fmt: skip
        result = dict(phase=phase, times=times, waypoint=knot, at_waypoint=at_waypoint, arm=arm,
                      arm_from_waypoint=arm_from_waypoint, cover=cover, contacts=contacts)  # fmt: skip
        if boxes:
            result |= self._clearances(positions, q_exec, tray, grasp, boxes)
        if grasp is None:
            return PhaseDeviation(**result)

        real = self.pose_vertices(tray)

        def off(q: np.ndarray) -> np.ndarray:
            return np.linalg.norm(real - self.model_tray_vertices(q, grasp), axis=-1).max(axis=1)

        right = self.right_grasp(plan.positions[0], tray[0])

        def off_mean(q: np.ndarray) -> np.ndarray:
            return np.linalg.norm(real - self.mean_tray_vertices(q, grasp, right), axis=-1).max(axis=1)

        start = plan.positions[:1]
        pos, rot = self._kinematics(np.concatenate([start, plan.positions[1:]]))
        grip_planned = grip_change(pos, rot).numpy()  # (H,) from the start state, at the waypoints
        pos, rot = self._kinematics(np.concatenate([start, q_exec]))
        grip_executed = grip_change(pos, rot).numpy()
        return PhaseDeviation(
            **result, tray_planned=off(q_plan), tray_executed=off(q_exec), tray_from_waypoint=off(q_knot),
            grip_planned=grip_planned, grip_executed=grip_executed, tray_mean_planned=off_mean(q_plan),
            tray_mean_executed=off_mean(q_exec),
        )  # fmt: skip

    def _clearances(self, planned, q_exec, tray, grasp, boxes) -> dict[str, np.ndarray]:
        checker, arm_obstacle, tray_obstacle = self.checker, CATEGORIES.index("arm_obstacle"), CATEGORIES.index(
            "tray_obstacle")  # fmt: skip
        columns = [arm_obstacle, tray_obstacle]
        with torch.no_grad():
            plan = checker.clearance(planned, boxes, grasp=grasp)[:, columns].numpy()
            executed = checker.clearance(q_exec, boxes)[:, columns].numpy()
            if grasp is not None:  # the tray where the physics has it: one pose per sample
                executed[:, 1] = [float(checker.clearance(q[None], boxes, tray_pose=pose)[0, tray_obstacle])
                                  for q, pose in zip(q_exec, tray, strict=True)]  # fmt: skip
        return {"clearance_planned": plan, "clearance_executed": executed}


# ---------------------------------------------------------------------- summaries
def percentiles(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """p50 / p99 / max (and the count) of a set of values (NaN when empty)."""
    v = np.asarray(values, dtype=float).reshape(-1)
    if v.size == 0:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan"), "n": 0}
    return {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99)), "max": float(v.max()),
            "n": int(v.size)}  # fmt: skip


def grip_bin(change: float, bins: Sequence[float] = GRIP_BINS) -> str:
    """The report's label of a plan's max grip change (m): '< 10 mm', '10-30 mm', '> 30 mm'."""
    edges = [b * 1e3 for b in bins]
    k = int(np.searchsorted(np.asarray(bins), change, side="right"))
    if k == 0:
        return f"< {edges[0]:.0f} mm"
    if k == len(bins):
        return f"> {edges[-1]:.0f} mm"
    return f"{edges[k - 1]:.0f}-{edges[k]:.0f} mm"


METRICS = ("arm", "arm_from_waypoint", "tray_planned", "tray_executed", "tray_from_waypoint", "tray_mean_planned",
           "tray_mean_executed", "grip_executed")  # fmt: skip


def summarize(
    phases: Sequence[PhaseDeviation], waypoints_only: bool = False, near: float = 0.05
) -> dict[str, dict[str, float]]:
    """Per metric the p50 / p99 / max over every sample of `phases` (or only the samples at waypoint times), plus
    `phase_max` (p50 / p99 / max over phases of each phase's max) and the plans' max grip change, and
    `arm_cover_excess` / `tray_cover_excess`: *_from_waypoint minus the check's cover at the nearest waypoint
    (max(margin, sweep)), with `share_over` the share of samples where it is positive; `arm_clearance_lost` /
    `tray_clearance_lost`: per phase (arm_obstacle / tray_obstacle) the plan's smallest checked clearance minus the
    executed motion's (PhaseDeviation.clearance_lost), over the phases whose plan came within `near` (m) of a box
    in that category (elsewhere the boxes are too far for the loss to matter)."""
    out: dict[str, dict[str, float]] = {}
    for name in METRICS:
        chosen = [(getattr(p, name), p.at_waypoint) for p in phases if getattr(p, name) is not None]
        if not chosen:
            continue
        values = np.concatenate([v[w] if waypoints_only else v for v, w in chosen])
        out[name] = percentiles(values)
        out[f"{name}.phase_max"] = percentiles([v.max() for v, _ in chosen])
    grips = [p.max_grip_planned for p in phases if p.grip_planned is not None]
    if grips:
        out["grip_planned.phase_max"] = percentiles(grips)
    tight = [(p.clearance_lost, p.clearance_planned.min(axis=0)) for p in phases if p.clearance_lost is not None]
    for column, name in enumerate(("arm", "tray")):
        values = [lost[column] for lost, planned in tight if planned[column] < near]
        if values:
            out[f"{name}_clearance_lost"] = percentiles(values)
    for name in ("arm", "tray"):
        covered = [getattr(p, f"{name}_from_waypoint") - p.cover for p in phases
                   if p.cover is not None and getattr(p, f"{name}_from_waypoint") is not None]  # fmt: skip
        if covered:
            excess = np.concatenate(covered)
            out[f"{name}_cover_excess"] = percentiles(excess) | {"share_over": float(np.mean(excess > 0))}
    return out
