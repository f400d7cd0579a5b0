"""Collision safety of candidate trajectories against the scene, the other arm and the table (ROS-free).

`SceneSafety.check` runs the batched sphere checker (flow_planner_common.sphere_checker: compiled on the CPU, torch on
CUDA; conservative against MuJoCo: every clearance is a lower bound of the MJCF geoms' signed distance, shapes padded
by 2 mm) on every waypoint of a batch of candidates, with forward kinematics, sweep, grip and tilt on the same device
(on the CPU one compiled pass, motion_kernel; on CUDA torch ops from `kinematics`), and
says, per candidate, every category whose clearance falls below what is required, e.g. "arm_obstacle: clearance
-3.2 mm < 10.0 mm required at step 41". A candidate with a reason is never selected (trajectory_safety.select_best),
so nothing that collides is published. Only the (N, H, C) clearances and requirements come back to the host.
`SceneSafety.check_many` checks the candidates of several bound checks (concurrent requests, each with its own scene,
start and thresholds) in one checker call per phase, with the numbers each check gives alone.

Checked categories: arm_arm, arm_table (table and floor), arm_obstacle always; with a carried tray (scene.grasp: the
tray held by both tools, at the mean of the poses their grasps give it, the grasps taken at the start state from
the request's tray pose: kinematics.TrayGrasp) also tray_obstacle,
tray_table and arm_tray. arm_tray is meaningful while carrying: the checker leaves the tool-handle pairs out (that is
the grasp), so what remains is a forearm or the other arm's links swinging into the tray, or the right tool drifting
off its handle into the tray (measured at the grasps of the 20 held-out scenes: 56 mm at the carry's start). The
resting tray of a reach is not checked (the grasp at the reach's end touches it by design).

Required clearance per category c and waypoint k:

    required[k, c] = threshold[c] + max(0, sweep[k] - margin)
    threshold[c]   = max(min(margin, endpoint[c] - 1 mm), -3 mm)

- margin (`clearance_margin`, default 10 mm): half the largest motion of any robot (or carried tray) point between
  two waypoints measured on the straight reach and carry motions of the 20 held-out scenes is 5-9 mm (10-18 mm per
  50 ms step), so 10 mm at the waypoints keeps the motion between them clear too; on top of it the checker itself is
  conservative (2 mm padding, lower bounds; README: 0 false "free" and 8.6 % false "colliding" at margin 0 against
  MuJoCo). The CEM expert keeps 15 mm in its cost, so expert-like motions pass; the expert's data goes through this
  very check (data_collector_ros.plan_check: a plan it refuses is recorded as a failure, never as a success).
- sweep[k]: half the largest displacement of any point of the robot's (and the carried tray's) shapes to the
  neighbouring waypoints (the start state before the first), bounded per body by its origin's motion plus its
  rotation angle times its reach: a fast step needs that much room, not just the margin.
- grip (carries): both tools hold the tray (in the physics both are welded to it), so the right tool must keep its
  place relative to the left: its position in the left tool's frame may move at most `max_grip_change` (50 mm; 0 =
  no limit) from where it is at the start. A carry that pulls the grasps apart strains the tray and moves it away
  from where a rigid grasp by either tool puts it: the shipped model's best-of-8 carries moved them up to 235 mm
  (p50 26 mm; the expert's own carries p50 12 mm, max 70 mm), and one that moved them 78 mm kept 10 mm from a bar
  in the check but grazed it in the physics. Within the limit the checker puts the tray between the tools (the
  mean of the two grasps' poses, issue 21): on the flow carries of 160 scenes that pass the check its corners are
  off the physics' by p99 2.6 mm (max 9.9) at the executed joints, where the left tool's rigid grasp was off by up
  to the grip change (p99 13.9 mm, max 18.9; bench_execution_deviation). The category's "clearance" is the grip's
  slack (limit minus change), required >= 0 (no sweep term); the reasons say `grip: the right tool moved ...`.
- tilt (carries): the tray (between the tools, as above) may tilt at most `max_tray_tilt` (5 deg; 0 = no limit) from
  level, so that what it carries stays on it: the physics' success rule allows 10 deg, the CEM expert's own limit is
  3 deg and the model's sampled carries stay within 2.6 deg (40 + 40 held-out scenes), but a refinement that bends
  the left arm's wrist tilted refined carries up to 33 deg (and two of them failed in the physics on it). Its
  "clearance" is the slack (limit minus tilt, rad), required >= 0; the reasons say `tilt: the tray tilts ...`.
- endpoint[c]: the category's clearance (or slack) at the request's start and goal (every candidate starts and ends
  there): a tray lifted off the table (-2 mm: padding), a goal 5 mm from a box, or a start the robot already occupies
  would otherwise make every candidate fail. The floor (-3 mm = padding + 1 mm) never accepts a real penetration: a
  start or goal deeper than that (or a tray tilted beyond the limit) is refused by `endpoint_problem` with its
  reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from flow_planner_common.clearance_rules import CLEARANCE_FLOOR, endpoint_thresholds
from flow_planner_common.kinematics import CATEGORIES, RobotGeometry, TrayGrasp
from flow_planner_common.plan_scene import PlanScene
from flow_planner_common.robot import NUM_JOINTS
from flow_planner_common.sphere_checker import SphereChecker, float64_array, kernel_grasp
from flow_planner_common.tool_frames import grip_change

#: Default clearance margin (m), see the module docstring.
DEFAULT_CLEARANCE_MARGIN = 0.01
#: Default limit (m) on the right tool's motion relative to the left while carrying (0 = no grip check).
DEFAULT_MAX_GRIP_CHANGE = 0.05
#: Default limit (rad) on the carried tray's tilt from level (0 = no tilt check).
DEFAULT_MAX_TRAY_TILT = math.radians(5.0)
WITHOUT_TRAY: tuple[str, ...] = ("arm_arm", "arm_table", "arm_obstacle")
WITH_TRAY: tuple[str, ...] = (*WITHOUT_TRAY, "tray_obstacle", "arm_tray", "tray_table")
#: forward_kinematics of a start and its waypoints (SceneSafety.kinematics, torch), or None to compute it.
Kinematics = tuple[torch.Tensor, torch.Tensor] | None
_CATEGORY_INDEX = {c: i for i, c in enumerate(CATEGORIES)}
GRIP = "grip"  # not a clearance: the slack of the grasps (max_grip_change minus the right tool's motion), >= 0
TILT = "tilt"  # not a clearance: the slack of the tray's tilt (max_tray_tilt minus its tilt from level, rad), >= 0
#: The categories that are a limit's slack, not a clearance: required >= 0, no sweep, their own reasons.
SLACKS: tuple[str, ...] = (GRIP, TILT)


@dataclass(frozen=True)
class ClearanceCheck:
    """Clearances and required clearances (m) of a batch: (N, H, C) each, categories C in `categories` order."""

    categories: tuple[str, ...]
    clearance: np.ndarray
    required: np.ndarray
    margin: float
    max_grip_change: float = 0.0  # m, the grip check's limit (carries)
    max_tray_tilt: float = 0.0  # rad, the tilt check's limit (carries)

    @property
    def grip_change(self) -> np.ndarray | None:
        """(N, H) the right tool's motion from its grasp (m) where the grip is checked, else None."""
        if GRIP not in self.categories:
            return None
        return self.max_grip_change - self.clearance[..., self.categories.index(GRIP)]

    @property
    def shortfall(self) -> np.ndarray:
        """(N, H, C) how far below the required clearance (m, 0 where clear)."""
        return np.maximum(0.0, self.required - self.clearance)

    @property
    def passed(self) -> np.ndarray:
        """(N,) True where every waypoint has every required clearance."""
        return ~np.any(self.clearance < self.required, axis=(1, 2))

    def reasons(self, i: int) -> list[str]:
        """Per failing category of candidate i its worst waypoint (step = waypoint index)."""
        out = []
        for c, name in enumerate(self.categories):
            gap = self.required[i, :, c] - self.clearance[i, :, c]
            k = int(np.argmax(gap))
            if gap[k] > 0 and name == GRIP:
                moved, allowed = self.max_grip_change - np.array([self.clearance[i, k, c], self.required[i, k, c]])
                out.append(
                    f"grip: the right tool moved {moved * 1e3:.1f} mm from its grasp (in the left tool's frame) > "
                    f"{allowed * 1e3:.1f} mm allowed at step {k}"
                )
            elif gap[k] > 0 and name == TILT:
                tilt, allowed = self.max_tray_tilt - np.array([self.clearance[i, k, c], self.required[i, k, c]])
                out.append(
                    f"tilt: the tray tilts {math.degrees(tilt):.1f} deg from level > {math.degrees(allowed):.1f} deg "
                    f"allowed at step {k}"
                )
            elif gap[k] > 0:
                need = self.required[i, k, c]
                what = "margin" if np.isclose(need, self.margin) else "required"
                out.append(
                    f"{name}: clearance {self.clearance[i, k, c] * 1e3:.1f} mm < {need * 1e3:.1f} mm {what} at step {k}"
                )
        return out


@dataclass(frozen=True)
class SceneBatch:
    """The scenes of one batched checker call, per candidate: boxes (N, M, 7) with their mask (N, M) (scenes with
    fewer boxes padded by masked-out rows) and N grasps (all carries) or None (all reaches). Stands in for a PlanScene
    in SceneSafety's clearances and sweep."""

    boxes: np.ndarray
    mask: np.ndarray
    grasp: tuple[TrayGrasp, ...] | None = None

    @classmethod
    def of(cls, scenes: Sequence[PlanScene], counts: Sequence[int]) -> SceneBatch:
        """Scene i repeated for its counts[i] candidates; ValueError when some carry a tray and some do not."""
        if len({s.grasp is None for s in scenes}) > 1:
            raise ValueError("one batch holds either reaches (no grasp) or carries (a grasp), not both")
        tables = [np.asarray(s.boxes, dtype=float).reshape(-1, 7) for s in scenes]
        boxes = np.zeros((len(scenes), max(len(t) for t in tables), 7))
        mask = np.zeros(boxes.shape[:2], dtype=bool)
        for i, (table, scene) in enumerate(zip(tables, scenes, strict=True)):
            boxes[i, : len(table)] = table
            mask[i, : len(table)] = np.asarray(scene.mask, dtype=bool).reshape(-1)
        grasp = None
        if scenes[0].grasp is not None:
            grasp = tuple(s.grasp for s, n in zip(scenes, counts, strict=True) for _ in range(n))
        return cls(np.repeat(boxes, counts, axis=0), np.repeat(mask, counts, axis=0), grasp)


class SceneSafety:
    """Clearance checks of candidates against a PlanScene (see the module docstring), on `device` (or `checker`'s)."""

    def __init__(
        self,
        margin: float = DEFAULT_CLEARANCE_MARGIN,
        checker: SphereChecker | None = None,
        max_grip_change: float = DEFAULT_MAX_GRIP_CHANGE,
        device: str | torch.device = "cpu",
        max_tray_tilt: float = DEFAULT_MAX_TRAY_TILT,
    ) -> None:
        self.margin = float(margin)
        self.max_grip_change = float(max_grip_change)
        self.max_tray_tilt = float(max_tray_tilt)
        self.checker = checker or SphereChecker(device=device)
        self._body_reach = self.checker._tensor(body_reach(self.checker))  # (14,)
        self._tray_reach = tray_reach(self.checker)
        self._motion = None  # the compiled motion terms (motion_kernel), with the compiled checker
        if self.checker.backend == "compiled":
            from flow_planner_common import motion_kernel

            self._motion = motion_kernel
            self._reach_table = np.ascontiguousarray(body_reach(self.checker).reshape(2, -1))  # (2, 7)
            self._motion_terms(np.zeros((1, 2, NUM_JOINTS)), np.zeros(NUM_JOINTS), None)  # compiled (or loaded) now

    @property
    def device(self) -> torch.device:
        return self.checker.device

    def categories(self, scene: PlanScene | SceneBatch) -> tuple[str, ...]:
        if scene.grasp is None:
            return WITHOUT_TRAY
        limits = ((GRIP,) if self.max_grip_change > 0 else ()) + ((TILT,) if self.max_tray_tilt > 0 else ())
        return (*WITH_TRAY, *limits)

    def clearances(
        self, positions: np.ndarray, scene: PlanScene, start: np.ndarray | None = None, kinematics: Kinematics = None
    ) -> np.ndarray:
        """(..., C) clearances (m) of (..., 12) configurations in `categories(scene)` order (numpy, float64); the
        grip's slack is measured from `start` (default: the configurations' own first one), the tilt's (rad) from
        level."""
        return self._clearances(positions, scene, start, kinematics).double().cpu().numpy()

    def _clearances(
        self, positions, scene: PlanScene | SceneBatch, start=None, kinematics: Kinematics = None,
        motion: tuple[torch.Tensor, ...] | None = None,
    ) -> torch.Tensor:
        positions = self.checker._input(positions)
        categories = self.categories(scene)
        values = self.checker.clearance(positions, scene.boxes, scene.mask, grasp=scene.grasp)
        values = [values[..., [_CATEGORY_INDEX[c] for c in categories if c not in SLACKS]]]
        if GRIP in categories or TILT in categories:
            first = positions[..., 0, :] if start is None else self.checker._input(start)
            if motion is None and kinematics is None and self._compiled_motion(positions, scene):
                motion = self._motion_terms(positions, first, scene.grasp)
            if motion is not None:
                grip, tilt = motion[1], motion[2]
            else:
                if kinematics is None:
                    kinematics = self.kinematics(positions, first)
                grip, tilt = self.grip_change(positions, first, kinematics), self.tray_tilt(kinematics, scene)
        if GRIP in categories:
            values.append((self.max_grip_change - grip)[..., None])
        if TILT in categories:
            values.append((self.max_tray_tilt - tilt)[..., None])
        return torch.cat(values, dim=-1) if len(values) > 1 else values[0]

    def _compiled_motion(self, positions: torch.Tensor, scene: PlanScene | SceneBatch) -> bool:
        """Whether the compiled motion terms serve these positions (..., H, 12) and this scene: with the compiled
        checker, and one grasp or one per candidate."""
        if self._motion is None or self.checker.backend != "compiled" or positions.dim() < 2:
            return False  # (a caller may have swapped in a torch checker: bench_planning_devices)
        grasp = scene.grasp
        return grasp is None or isinstance(grasp, TrayGrasp) or len(grasp) == positions[..., 0, 0].numel()

    def _motion_terms(
        self, positions, start, grasp: TrayGrasp | Sequence[TrayGrasp] | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The sweep, grip change and tray tilt (..., H) of positions (..., H, 12) from `start` ((12,) or one per
        candidate) by the compiled kernel (motion_kernel): what sweep, grip_change and tray_tilt give from
        kinematics, in float64 (grip and tilt 0 without a grasp)."""
        q = float64_array(positions)
        batch = q.shape[:-1]
        q = np.ascontiguousarray(q.reshape(-1, *q.shape[-2:]))  # (N, H, 12)
        first = np.ascontiguousarray(float64_array(start).reshape(-1, NUM_JOINTS))
        if first.shape[0] not in (1, q.shape[0]):
            raise ValueError(f"{first.shape[0]} starts for {q.shape[0]} candidates")
        offsets, turns = kernel_grasp(grasp)
        sweep, grip, tilt = np.empty(q.shape[:2]), np.zeros(q.shape[:2]), np.zeros(q.shape[:2])
        geometry, reach = self.checker._kernel_geometry, self._reach_table
        self._motion.motion_terms(geometry, q, first, 0, q.shape[0], reach, grasp is not None, self._tray_reach,
                                  offsets, turns, sweep, grip, tilt)  # fmt: skip
        return tuple(torch.from_numpy(v).to(self.checker.dtype).reshape(batch) for v in (sweep, grip, tilt))

    def kinematics(self, positions, start) -> tuple[torch.Tensor, torch.Tensor]:
        """forward_kinematics of `start` followed by `positions` (..., H, 12): (..., H + 1, 2, 7, 3), (..., 3, 3)."""
        positions, start = self.checker._input(positions), self.checker._input(start)
        first = start.expand(positions[..., :1, :].shape)
        return self.checker.forward_kinematics(torch.cat([first, positions], dim=-2))

    def grip_change(self, positions, start, kinematics: Kinematics = None) -> torch.Tensor:
        """(..., H) how far (m) the right tool is from where it was at `start`, in the left tool's frame."""
        return grip_change(*(kinematics if kinematics is not None else self.kinematics(positions, start)))

    def tray_tilt(self, kinematics: tuple[torch.Tensor, torch.Tensor], scene: PlanScene | SceneBatch) -> torch.Tensor:
        """(..., H) the carried tray's tilt from level (rad) at waypoints 1..H of kinematics (..., H + 1, ...)."""
        pos, rot = kinematics
        _, tray_rot = self.checker.carried_tray(pos[..., 1:, :, :, :], rot[..., 1:, :, :, :, :], scene.grasp)
        return torch.arccos(tray_rot[..., 2, 2].clamp(-1.0, 1.0))

    def thresholds(self, start: np.ndarray, goal: np.ndarray, scene: PlanScene) -> np.ndarray:
        """(C,) per-category threshold: the margin (0 for the grip's and the tilt's slack), lowered to just below the
        start's or goal's own value."""
        return self.bind(start, goal, scene).thresholds

    def endpoint_problem(self, start: np.ndarray, goal: np.ndarray, scene: PlanScene) -> str | None:
        """Why the start or the goal state itself is in collision (no trajectory can be safe), or None."""
        return self.bind(start, goal, scene).problem

    def bind(self, start: np.ndarray, goal: np.ndarray, scene: PlanScene) -> SceneCheck:
        """The check of candidates from `start` to `goal` in `scene`: the start's and goal's own clearances (their
        problem, the thresholds) are computed once; a plan binds once and checks all its candidates and every
        refinement iteration with it."""
        start, goal = np.asarray(start, dtype=float), np.asarray(goal, dtype=float)
        endpoint = self.clearances(np.stack([start, goal]), scene)  # (2, C)
        categories = self.categories(scene)
        nominal = np.array([0.0 if c in SLACKS else self.margin for c in categories])
        thresholds = endpoint_thresholds(nominal, endpoint.min(axis=0))
        return SceneCheck(self, start, goal, scene, thresholds, endpoint_clearance_problem(endpoint, categories, self))

    def check(self, positions: np.ndarray, start: np.ndarray, goal: np.ndarray, scene: PlanScene) -> ClearanceCheck:
        """Clearances and required clearances of candidates (N, H, 12) that start at `start` and end at `goal`."""
        return self.bind(start, goal, scene).check(positions)

    def rejections(
        self, positions: np.ndarray, start: np.ndarray, goal: np.ndarray, scene: PlanScene, indices: np.ndarray
    ) -> dict[int, list[str]]:
        """Reasons (by candidate index) of the candidates `indices` of a batch that are not clear enough."""
        return self.bind(start, goal, scene).rejections(positions, indices)

    def check_many(self, checks: Sequence[SceneCheck], positions: Sequence[np.ndarray]) -> list[ClearanceCheck]:
        """`checks[i].check(positions[i])` for several bound checks (own scene, start and thresholds) and their
        candidates (N_i, H, 12) with one horizon H: one checker call over every candidate of every check, one per
        phase (reaches, carries; two-tool and left-only grasps apart), so the same numbers as one by one."""
        _validate_batch(self, checks, positions)
        results: list[ClearanceCheck | None] = [None] * len(checks)
        for group in _phase_groups(checks):
            checked = self._check_group([checks[i] for i in group], [positions[i] for i in group])
            for i, result in zip(group, checked, strict=True):
                results[i] = result
        return results

    def _check_group(self, checks: Sequence[SceneCheck], positions: Sequence[np.ndarray]) -> list[ClearanceCheck]:
        """check_many of checks of one phase: their candidates concatenated, each with its check's scene, start and
        thresholds (a single check shares its scene with its candidates: SceneCheck.check)."""
        if len(checks) == 1:
            return [checks[0].check(positions[0])]
        counts = [len(p) for p in positions]
        candidates = torch.cat([self.checker._input(p) for p in positions])  # (N, H, 12)
        starts = torch.cat([self.checker._input(c.start).expand(n, 1, -1) for c, n in zip(checks, counts, strict=True)])
        thresholds = torch.cat([self.checker._input(c.thresholds).expand(n, 1, -1)
                                for c, n in zip(checks, counts, strict=True)])  # fmt: skip
        scenes = SceneBatch.of([c.scene for c in checks], counts)
        clearance, required = self._evaluate(candidates, starts, scenes, thresholds)
        bounds = np.cumsum(counts)[:-1]
        categories = self.categories(scenes)
        limits = self.margin, self.max_grip_change, self.max_tray_tilt
        return [ClearanceCheck(categories, c, r, *limits) for c, r in zip(
            np.split(clearance.double().cpu().numpy(), bounds), np.split(required.double().cpu().numpy(), bounds),
            strict=True)]  # fmt: skip

    def _evaluate(
        self, positions: torch.Tensor, start: torch.Tensor, scene: PlanScene | SceneBatch, thresholds: torch.Tensor,
        kinematics: Kinematics = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """(N, H, C) clearances and required clearances (thresholds (C,) or (N, 1, C) plus the sweep beyond the
        margin, not for the slacks: grip, tilt) of candidates (N, H, 12) from `start` ((12,), or (N, 1, 12) per
        candidate)."""
        if kinematics is None and self._compiled_motion(positions, scene):
            motion = self._motion_terms(positions, start, scene.grasp)  # one pass for the grip, tilt and sweep
            clearance, sweep = self._clearances(positions, scene, start, motion=motion), motion[0]
        else:
            if kinematics is None:
                kinematics = self.kinematics(positions, start)  # one pass for the grip and the sweep
            clearance = self._clearances(positions, scene, start, kinematics)
            sweep = self.sweep(positions, start, scene, kinematics)  # (N, H)
        not_slack = clearance.new_tensor([c not in SLACKS for c in self.categories(scene)])
        return clearance, thresholds + (sweep - self.margin).clamp_min(0.0)[..., None] * not_slack

    def sweep(self, positions, start, scene: PlanScene | SceneBatch, kinematics: Kinematics = None) -> torch.Tensor:
        """(N, H) half the largest displacement of any robot (or carried tray) point to the neighbouring waypoints (m).

        Per rigid body, a point u from its origin moves at most |dp| + angle * |u| between two poses (the rotation
        moves it by 2 sin(angle / 2) |u|), so origin motion plus rotation angle times the body's reach bounds all of
        its spheres' points."""
        pos, rot = kinematics if kinematics is not None else self.kinematics(positions, start)  # (N, H + 1, ...)
        batch = pos.shape[:2]  # (N, H + 1)
        reach = self._body_reach
        pos, rot = pos.reshape(*batch, -1, 3), rot.reshape(*batch, -1, 3, 3)
        if scene.grasp is not None:
            tray_p, tray_r = self.checker.carried_tray(*(t.unflatten(2, (2, -1)) for t in (pos, rot)), scene.grasp)
            pos = torch.cat([pos, tray_p[..., None, :]], dim=-2)
            rot = torch.cat([rot, tray_r[..., None, :, :]], dim=-3)
            reach = torch.cat([reach, reach.new_tensor([self._tray_reach])])
        moved = torch.linalg.vector_norm(pos[:, 1:] - pos[:, :-1], dim=-1)  # (N, H, B)
        trace = (rot[:, :-1] * rot[:, 1:]).sum(dim=(-1, -2))  # trace(R0^T R1)
        angle = torch.arccos(((trace - 1.0) / 2.0).clamp(-1.0, 1.0))
        step = (moved + angle * reach).amax(dim=-1)  # (N, H): step k from waypoint k - 1 (the start) to k
        after = torch.cat([step[:, 1:], step.new_zeros((step.shape[0], 1))], dim=1)
        return 0.5 * torch.maximum(step, after)


@dataclass(frozen=True)
class SceneCheck:
    """SceneSafety's check bound to one start, goal and scene, with their per-category thresholds."""

    safety: SceneSafety
    start: np.ndarray
    goal: np.ndarray
    scene: PlanScene
    thresholds: np.ndarray  # (C,) per category: the margin, lowered to just below the start's or goal's own value
    problem: str | None = None  # why the start or the goal itself is in collision (no trajectory can be safe)

    def check(self, positions: np.ndarray, kinematics: Kinematics = None) -> ClearanceCheck:
        """Clearances and required clearances of candidates (N, H, 12) from `start` to `goal`: computed on the
        checker's device, only the (N, H, C) results come back. `kinematics`: SceneSafety.kinematics of these
        positions from `start`, when the caller has it already."""
        safety, checker = self.safety, self.safety.checker
        positions, start, thresholds = (checker._input(v) for v in (positions, self.start, self.thresholds))
        clearance, required = safety._evaluate(positions, start, self.scene, thresholds, kinematics)
        return ClearanceCheck(safety.categories(self.scene), clearance.double().cpu().numpy(),
                              required.double().cpu().numpy(), safety.margin, safety.max_grip_change,
                              safety.max_tray_tilt)  # fmt: skip

    def rejections(self, positions: np.ndarray, indices: np.ndarray) -> dict[int, list[str]]:
        """Reasons (by candidate index) of the candidates `indices` of a batch that are not clear enough."""
        indices = np.asarray(indices, dtype=int)
        if indices.size == 0:
            return {}
        result = self.check(positions[indices])
        return {int(i): result.reasons(n) for n, i in enumerate(indices) if not result.passed[n]}


def _validate_batch(safety: SceneSafety, checks: Sequence[SceneCheck], positions: Sequence[np.ndarray]) -> None:
    """ValueError unless check_many's input is one non-empty (N_i, H, 12) batch, one H, per check of `safety`."""
    if len(checks) == 0:
        raise ValueError("check_many: no checks given")
    if len(checks) != len(positions):
        raise ValueError(f"check_many: {len(checks)} checks but {len(positions)} candidate batches")
    horizons = set()
    for i, (check, batch) in enumerate(zip(checks, positions, strict=True)):
        if not isinstance(check, SceneCheck) or check.safety is not safety:
            raise ValueError(f"check_many: check {i} is not a SceneCheck bound by this SceneSafety")
        shape = tuple(batch.shape)
        if len(shape) != 3 or shape[0] == 0 or shape[2] != len(check.start):
            raise ValueError(f"check_many: candidates {i} must be (N > 0, H, {len(check.start)}), got {shape}")
        horizons.add(shape[1])
    if len(horizons) > 1:
        raise ValueError(f"check_many: candidates of different horizons {sorted(horizons)}")


def _phase_groups(checks: Sequence[SceneCheck]) -> list[list[int]]:
    """Indices of `checks` grouped by what the checker computes for them: no tray, a two-tool or a left-only grasp."""
    groups: dict[object, list[int]] = {}
    for i, check in enumerate(checks):
        grasp = check.scene.grasp
        groups.setdefault(None if grasp is None else grasp.two_tool, []).append(i)
    return list(groups.values())


def endpoint_clearance_problem(endpoint: np.ndarray, categories: tuple[str, ...], safety: SceneSafety) -> str | None:
    """Why the start or goal (rows of `endpoint`, clearances in `categories` order) is in collision, or None."""
    for which, row in zip(("start", "goal"), endpoint, strict=True):
        bad = [f"{c} clearance {v * 1e3:.1f} mm" for c, v in zip(categories, row, strict=True)
               if v < CLEARANCE_FLOOR and c not in SLACKS]  # fmt: skip
        if bad:
            return f"the {which} state is in collision ({', '.join(bad)}; at most {-CLEARANCE_FLOOR * 1e3:.0f} mm)"
        if TILT in categories and row[categories.index(TILT)] < CLEARANCE_FLOOR:
            tilt = math.degrees(safety.max_tray_tilt - row[categories.index(TILT)])
            return (f"the {which} state tilts the tray {tilt:.1f} deg from level (max_tray_tilt "
                    f"{math.degrees(safety.max_tray_tilt):.1f} deg)")  # fmt: skip
    if GRIP in categories and endpoint[1, categories.index(GRIP)] < CLEARANCE_FLOOR:
        moved = (safety.max_grip_change - endpoint[1, categories.index(GRIP)]) * 1e3
        return (
            f"the goal state pulls the grasps apart (the right tool {moved:.1f} mm from its grasp in the left "
            f"tool's frame; max_grip_change {safety.max_grip_change * 1e3:.1f} mm)"
        )
    return None


def body_reach(checker: SphereChecker) -> np.ndarray:
    """(14,) per arm body (left 0..6, right 0..6) the farthest point of its padded spheres from its origin (m)."""
    sp = checker.spheres
    far = np.linalg.norm(sp.center, axis=-1) + sp.radius + checker.padding  # (2, S)
    reach = np.zeros((2, RobotGeometry.TOOL_BODY + 1))
    for arm in range(2):
        np.maximum.at(reach[arm], sp.body[arm], far[arm])
    return reach.reshape(-1)


def tray_reach(checker: SphereChecker) -> float:
    """The farthest point of the padded tray boxes from the tray body's origin (m)."""
    g = checker.geometry
    corner = np.linalg.norm(g.tray_half + checker.padding, axis=-1)
    return float(np.max(np.linalg.norm(g.tray_center, axis=-1) + corner))
