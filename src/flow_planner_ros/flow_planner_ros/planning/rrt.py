"""OMPL RRTConnect as a baseline planner (ROS-free): the classical planner the flow planner is compared with, checked
by the pipeline's own checks.

Reach (no carried tray): RRTConnect in the 12-D joint space, inside the joint limits and a box JOINT_PAD around start
and goal. Carry: RRTConnect over level tray poses (x, y, z, yaw; yaw scaled by YAW_SCALE m/rad), each pose turned
into joints by the tray IK (flow_planner_common.tray_ik: both tools keep their grasp, so the grip never changes),
seeded by the configuration of the tree state it is reached from; a motion whose IK does not converge or jumps
(IK_JUMP) between neighbouring poses is invalid.

Validity is the sphere checker's clearance with scene safety's per-category thresholds (SceneCheck: the margin,
lowered to just below the start's and goal's own clearance) plus an extra margin that ramps in over RAMP (m) of
motion away from start and goal (a bound of any robot point's motion; the carry: the tray's), where the timed motion
is slow and the check needs no more than the threshold.
Every motion is checked in one batched call: its states RESOLUTION apart in the largest motion of any robot point
(joint_levers: metres per radian of each joint), so the motion between checked states is clear by the threshold.
While RRTConnect grows its trees, a new state's own check is deferred to the motion that follows it (its first
state is checked with the motion): one torch call per extension instead of two.

The path is shortened (PathSimplifier: vertex reduction, shortcuts, B-spline smoothing, each while time is left), timed
onto the fixed horizon (planning.time_law) and checked exactly as the flow planner's candidates are
(trajectory_safety.select_best with the SceneCheck: limits, continuity, sweep-raised clearance, grip). When that
check fails, planning is repeated with the extra margin raised by the shortfall, while the time limit allows. An
unsafe trajectory is never returned: positions None and the reason instead.
"""

from __future__ import annotations

import itertools
import math
import time
import weakref
from dataclasses import dataclass

import numpy as np
from ompl import base as ob
from ompl import geometric as og
from ompl import util as ou

from flow_planner_common.kinematics import CATEGORIES, ArmKinematics
from flow_planner_common.plan_scene import EMPTY_SCENE, PlanScene
from flow_planner_common.robot import DEFAULT_DT, HORIZON, NUM_ARM_JOINTS, NUM_JOINTS
from flow_planner_common.scene_safety import SLACKS, SceneCheck, SceneSafety, body_reach, tray_reach
from flow_planner_common.sphere_checker import SphereChecker
from flow_planner_common.tray_ik import TrayIK
from flow_planner_ros.planning.time_law import time_path
from flow_planner_ros.planning.trajectory_safety import SafetyLimits, Selection, select_best

#: RRTConnect's range: the longest tree edge (rad in joint space; m in the tray space).
JOINT_RANGE, TRAY_RANGE = 1.0, 0.1
#: Sampling box around start and goal: joints (rad); tray x/y (m), above the higher end (m), yaw (rad).
JOINT_PAD, TRAY_PAD, TRAY_LIFT, YAW_PAD = 1.0, 0.15, 0.1, 0.6
YAW_SCALE = 0.2  # m per rad of tray yaw in the tray space's distance
RESOLUTION = 0.005  # m: largest motion of any robot point between checked states of a joint motion
TRAY_RESOLUTION = 0.01  # tray space: distance between IK'd, checked poses
RAMP = 0.05  # m of motion from start / goal over which the extra margin ramps in
EXTRA_MARGIN = 0.006  # m, first attempt; raised by the final check's shortfall (+ EXTRA_STEP) on each retry
EXTRA_STEP = 0.003
IK_JUMP = 0.25  # rad: largest joint change between neighbouring poses of a carry motion
IK_ITERATIONS = 30  # per IK run (poses at most TRAY_RANGE from their seed converge in ~5; the rest is given up)
SMOOTHING_STEPS = 2  # PathSimplifier.smoothBSpline's steps
SOLVE_SHARE = 0.8  # share of the time left that one RRTConnect query may take (the rest: simplify, time, check)
MAX_TILT = 0.05  # rad: the carry's goal must hold the tray this level


@dataclass(frozen=True)
class RRTResult:
    """A plan (H, 12) positions and velocities, or None and why; `message` says what happened either way."""

    positions: np.ndarray | None
    velocities: np.ndarray | None
    planning_time: float  # s, everything from the call to the answer
    message: str
    phase: str  # "reach" or "carry"
    attempts: int = 0  # RRTConnect queries (extra margins tried)
    states: int = 0  # states in both trees of the last query (0: the straight motion was clear)
    path_length: float = 0.0  # rad, the last timed joint path's 12-D length
    configurations: int = 0  # configurations checked for collision, all attempts
    direct: bool = False  # the plan follows the straight motion (no tree was grown)

    @property
    def success(self) -> bool:
        return self.positions is not None


def joint_levers(checker: SphereChecker, grasp=None) -> np.ndarray:
    """(12,) an upper bound (m/rad) of how far any padded sphere (and a carried tray) moves per radian of each joint:
    chain length from the joint to the body plus the body's reach."""
    g = checker.geometry
    reach = body_reach(checker).reshape(2, NUM_ARM_JOINTS + 1)  # per body the farthest padded sphere point
    if grasp is not None:  # the tray moves with the left tool, and with the right one for a two-tool grasp (by half
        # its motion there: the mean of the two tools' poses, bounded here by the whole)
        tray = tray_reach(checker)
        reach[0, -1] = max(reach[0, -1], float(np.linalg.norm(grasp.position)) + tray)
        if grasp.two_tool:
            reach[1, -1] = max(reach[1, -1], float(np.linalg.norm(grasp.right_position)) + tray)
    links = np.concatenate([np.linalg.norm(g.link_pos, axis=-1), np.linalg.norm(g.tool_pos, axis=-1)[:, None]], 1)
    levers = np.zeros((2, NUM_ARM_JOINTS))
    for j in range(NUM_ARM_JOINTS):
        chain = np.concatenate([np.zeros((2, 1)), np.cumsum(links[:, j + 1 :], axis=1)], axis=1)  # to bodies j..6
        levers[:, j] = np.max(chain + reach[:, j:], axis=1)
    return levers.reshape(-1)


class _Motions(ob.MotionValidator):
    """OMPL's motion check, answered by a _Query in one batched call."""

    def __init__(self, si: ob.SpaceInformation, query: _Query) -> None:
        super().__init__(si)
        self.query = weakref.proxy(query)  # OMPL keeps this validator alive; it must not keep the query alive

    def checkMotion(self, a: ob.State, b: ob.State) -> bool:
        return self.query.chain(self.query.read(a), self.query.read(b)) is not None


class _Query:
    """One RRTConnect query: the state space, batched validity and, per known-valid state, its joints."""

    def __init__(self, planner: RRTPlanner, check: SceneCheck, extra: float, low, high, start, goal) -> None:
        self.planner, self.check, self.extra = planner, check, extra
        # grip and tilt are not checked here: the IK keeps both grasps on a level tray (carry_targets), the final
        # check measures them
        categories = planner.safety.categories(check.scene)
        self.columns = [CATEGORIES.index(c) for c in categories if c not in SLACKS]
        self.thresholds = np.asarray(check.thresholds)[[categories.index(c) for c in categories if c not in SLACKS]]
        self.levers = joint_levers(planner.safety.checker, check.scene.grasp)
        self.dim, self.ends = len(low), (np.asarray(start, dtype=float), np.asarray(goal, dtype=float))
        self.known: dict[bytes, np.ndarray] = {start.tobytes(): check.start, goal.tobytes(): check.goal}
        self.defer = False  # while the trees grow: a new state is checked with the motion that follows it
        self.configurations = 0
        space = ob.RealVectorStateSpace(self.dim)
        bounds = ob.RealVectorBounds(self.dim)
        bounds.low, bounds.high = [float(v) for v in low], [float(v) for v in high]
        space.setBounds(bounds)
        self.si = ob.SpaceInformation(space)
        proxy = weakref.proxy(self)
        self.si.setStateValidityChecker(lambda state: proxy.is_valid(state))
        self.motions = _Motions(self.si, self)  # kept referenced: OMPL holds it by pointer
        self.si.setMotionValidator(self.motions)
        self.si.setup()
        self.pdef = ob.ProblemDefinition(self.si)
        self.pdef.setStartAndGoalStates(self.state(start), self.state(goal))

    def state(self, values: np.ndarray) -> ob.State:
        state = self.si.allocState()
        state[0 : self.dim] = [float(v) for v in values]
        return state

    def read(self, state: ob.State) -> np.ndarray:
        return np.array(state[0 : self.dim])

    def valid(self, joints: np.ndarray, moved: np.ndarray) -> np.ndarray:
        """(N,) whether configurations (N, 12), `moved` (N,) m from the nearer of start and goal, keep the thresholds
        plus the ramped extra margin."""
        self.configurations += len(joints)
        c = self.check
        clearance = self.planner.safety.checker.clearance(joints, c.scene.boxes, c.scene.mask, grasp=c.scene.grasp)
        clearance = clearance[:, self.columns].double().cpu().numpy()  # (N, C)
        need = self.thresholds + self.extra * np.clip(moved / RAMP, 0.0, 1.0)[:, None]
        return np.all(clearance >= need, axis=1)

    def reach(self, delta: np.ndarray) -> np.ndarray:
        """(N,) a bound (m) of how far any robot point moves for joint changes (N, 12) (the larger arm's)."""
        delta = np.abs(np.asarray(delta, dtype=float)).reshape(-1, 2, NUM_ARM_JOINTS)
        return np.max(np.sum(delta * self.levers.reshape(2, NUM_ARM_JOINTS), axis=-1), axis=-1)

    def is_valid(self, state: ob.State) -> bool:
        if self.defer:
            return True
        x = self.read(state)
        return x.tobytes() in self.known or self.chain(x, x) is not None

    def chain(self, a: np.ndarray, b: np.ndarray, clearance: bool = True) -> np.ndarray | None:
        """Joints (n + 1, 12) of the states from a to b (a first), or None where the motion is invalid (its IK fails
        or, with `clearance`, a state is not clear enough)."""
        raise NotImplementedError

    def path(self, states: list[np.ndarray]) -> np.ndarray | None:
        """The joint path through the states of a solution, or None where a motion is invalid."""
        parts = [self.chain(a, b, clearance=False) for a, b in itertools.pairwise(states)]  # the final check decides
        if any(p is None for p in parts):
            return None
        return np.concatenate([parts[0][:1], *(p[1:] for p in parts)])


class _JointQuery(_Query):
    def chain(self, a: np.ndarray, b: np.ndarray, clearance: bool = True) -> np.ndarray | None:
        steps = max(1, math.ceil(float(self.reach(b - a)[0]) / RESOLUTION))
        joints = a + (b - a) * (np.arange(steps + 1) / steps)[:, None]
        # OMPL's contract: a is valid; while deferred, a new state is checked here
        checked = joints[0 if self.defer and a.tobytes() not in self.known else 1 :]
        moved = np.minimum(self.reach(checked - self.check.start), self.reach(checked - self.check.goal))
        if clearance and not np.all(self.valid(checked, moved)):
            return None
        self.known[b.tobytes()] = b
        return joints


class _TrayQuery(_Query):
    """States (x, y, z, YAW_SCALE * yaw) of a level tray; joints by IK from the start's grasp."""

    def __init__(self, planner: RRTPlanner, check: SceneCheck, extra: float, low, high, start, goal, start_pose):
        super().__init__(planner, check, extra, low, high, start, goal)
        self.start_pose = start_pose

    def chain(self, a: np.ndarray, b: np.ndarray, clearance: bool = True) -> np.ndarray | None:
        known_a, known_b = self.known.get(a.tobytes()), self.known.get(b.tobytes())
        if known_a is None and known_b is not None:
            joints = self.chain(b, a, clearance) if np.any(a != b) else known_b[None]
            return None if joints is None else joints[::-1]
        seed = known_a if known_a is not None else self._nearest(a)
        steps = max(1, math.ceil(float(np.linalg.norm(b - a)) / TRAY_RESOLUTION))
        states = a + (b - a) * (np.arange(steps + 1) / steps)[:, None]
        yaw = states[:, 3] / YAW_SCALE
        poses = np.column_stack([states[:, :3], np.cos(yaw / 2), np.zeros((len(yaw), 2)), np.sin(yaw / 2)])
        target_pos, target_rot = self.planner.ik.carry_targets(self.check.start, self.start_pose, poses)
        joints, converged = self.planner.ik.solve_batch(target_pos, target_rot, np.broadcast_to(seed, (len(poses), 12)))
        if known_a is not None:
            joints[0] = known_a
        jumps = np.max(np.abs(np.diff(joints, axis=0)), axis=1)
        if not np.all(converged[1:]) or np.any(jumps > IK_JUMP) or (known_a is None and not converged[0]):
            return None
        if known_b is not None:
            if np.max(np.abs(joints[-1] - known_b)) > IK_JUMP:
                return None
            joints[-1] = known_b
        first = 0 if known_a is None else 1
        moved = np.minimum(*(np.linalg.norm(states[first:] - end, axis=1) for end in self.ends))  # the tray's motion
        if clearance and not np.all(self.valid(joints[first:], moved)):
            return None
        self.known.setdefault(a.tobytes(), joints[0])
        self.known.setdefault(b.tobytes(), joints[-1])
        return joints

    def _nearest(self, x: np.ndarray) -> np.ndarray:
        keys = list(self.known)
        states = np.frombuffer(b"".join(keys), dtype=float).reshape(len(keys), self.dim)
        return self.known[keys[int(np.argmin(np.linalg.norm(states - x, axis=1)))]]


class RRTPlanner:
    """RRTConnect + simplification + time law + the pipeline's final check (see the module docstring)."""

    def __init__(
        self,
        safety: SceneSafety,
        limits: SafetyLimits,
        dt: float = DEFAULT_DT,
        horizon: int = HORIZON,
        ik: TrayIK | None = None,
        joint_range: float = JOINT_RANGE,
        tray_range: float = TRAY_RANGE,
        max_attempts: int = 4,
    ) -> None:
        self.safety, self.limits, self.dt, self.horizon = safety, limits, dt, horizon
        self.ik = ik or TrayIK(ArmKinematics(safety.checker.geometry), max_iterations=IK_ITERATIONS)
        self.joint_range, self.tray_range, self.max_attempts = joint_range, tray_range, max_attempts
        ou.setLogLevel(ou.LOG_WARN)

    def plan(
        self,
        start: np.ndarray,
        start_velocities: np.ndarray,
        goal: np.ndarray,
        scene: PlanScene = EMPTY_SCENE,
        time_limit: float = 1.0,
        seed: int | None = None,
        check: SceneCheck | None = None,
    ) -> RRTResult:
        """A checked plan from `start` (moving at `start_velocities`) to `goal` in `scene` within `time_limit` s
        (or the reason there is none). `check`: the request's SceneCheck if already bound. `seed`: OMPL's sampling
        seed (process-wide: plans with the same seed are repeatable when none runs concurrently)."""
        started = time.perf_counter()
        deadline = started + time_limit
        phase = "reach" if scene.grasp is None else "carry"
        start, goal = np.asarray(start, dtype=float), np.asarray(goal, dtype=float)
        check = check or self.safety.bind(start, goal, scene)
        if check.problem is not None:
            return RRTResult(None, None, time.perf_counter() - started, f"refused: {check.problem}", phase)
        if seed is not None:
            level = ou.getLogLevel()
            ou.setLogLevel(ou.LOG_NONE)  # OMPL complains about reseeding once its generator is in use; it reseeds
            ou.RNG.setSeed(int(seed) % (2**31 - 2) + 1)
            ou.setLogLevel(level)
        extra, reasons, totals = EXTRA_MARGIN, [], {"attempts": 0, "states": 0, "path_length": 0.0, "configurations": 0}
        while totals["attempts"] < self.max_attempts:
            if time.perf_counter() >= deadline:
                reasons.append(f"time limit {time_limit:.2f} s reached")
                break
            totals["attempts"] += 1
            query, why = self._query(check, extra)
            if query is None:
                reasons.append(why)
                break
            joints, totals["states"], why = self._solve(query, deadline)
            totals["configurations"] += query.configurations
            if joints is None:
                reasons.append(why)
                break
            totals["path_length"] = float(np.linalg.norm(np.diff(joints, axis=0), axis=1).sum())
            for flat in (False, True):  # quintic; if it passes too close at speed, the lowest peak speed
                timed = time_path(joints, self.dt, self.horizon, self.limits.velocity, start_velocities, flat)
                if timed.positions is None:
                    break
                selection, shortfall = self._final_check(timed.positions, timed.velocities, check)
                if selection.index is not None or shortfall <= 0.0:
                    break
            if timed.positions is None:
                reasons.append(timed.reason)
                break
            if selection.index is not None:
                how = "the straight motion is clear" if totals["states"] == 0 else f"{totals['states']} tree states"
                message = (
                    f"ok: {phase} by RRTConnect, attempt {totals['attempts']} ({how}, extra margin "
                    f"{extra * 1e3:.0f} mm), path {totals['path_length']:.2f} rad, {timed.profile} timing"
                )
                return RRTResult(timed.positions, timed.velocities, time.perf_counter() - started, message, phase,
                                 direct=totals["states"] == 0, **totals)  # fmt: skip
            reasons.append(f"extra margin {extra * 1e3:.0f} mm: {selection.summary()}")
            if shortfall <= 0.0:
                break  # not a clearance problem: a larger margin does not help
            extra += shortfall + EXTRA_STEP
        message = f"no {phase} plan: " + "; ".join(reasons)
        return RRTResult(None, None, time.perf_counter() - started, message, phase, **totals)

    def _final_check(self, positions: np.ndarray, velocities: np.ndarray, check: SceneCheck) -> tuple[Selection, float]:
        """select_best on the one candidate, as the pipeline checks its candidates, and the clearance shortfall (m)."""
        shortfall = [0.0]

        def scene_check(indices: np.ndarray) -> dict[int, list[str]]:
            result = check.check(positions[None][indices])
            shortfall[0] = float(result.shortfall.max())
            return {int(i): result.reasons(n) for n, i in enumerate(indices) if not result.passed[n]}

        selection = select_best(positions[None], velocities[None], check.start, check.goal, self.dt, self.limits,
                                scene_check=scene_check)  # fmt: skip
        return selection, shortfall[0]

    def _query(self, check: SceneCheck, extra: float) -> tuple[_Query | None, str]:
        start, goal, grasp = check.start, check.goal, check.scene.grasp
        if grasp is None:
            lower, upper = self.limits.position_lower, self.limits.position_upper
            low = np.maximum(lower, np.minimum(start, goal) - JOINT_PAD)
            high = np.minimum(upper, np.maximum(start, goal) + JOINT_PAD)
            return _JointQuery(self, check, extra, low, high, start, goal), ""
        kinematics = self.ik.kinematics
        position, rotation = kinematics.tray_poses(np.stack([start, goal]), grasp)
        tilt = np.arccos(np.clip(rotation[:, 2, 2], -1.0, 1.0))
        if np.max(tilt) > MAX_TILT:
            which = "start" if tilt[0] > MAX_TILT else "goal"
            return None, f"the {which} holds the tray tilted by {np.degrees(tilt.max()):.1f} deg; RRT carries it level"
        yaw = np.arctan2(rotation[:, 1, 0], rotation[:, 0, 0])
        yaw[1] = yaw[0] + (yaw[1] - yaw[0] + np.pi) % (2 * np.pi) - np.pi
        ends = np.column_stack([position, YAW_SCALE * yaw])  # (2, 4)
        pad = np.array([TRAY_PAD, TRAY_PAD, 0.0, YAW_SCALE * YAW_PAD])
        low, high = ends.min(axis=0) - pad, ends.max(axis=0) + pad
        high[2] += TRAY_LIFT
        start_pose = np.concatenate([position[0], [np.cos(yaw[0] / 2), 0.0, 0.0, np.sin(yaw[0] / 2)]])
        return _TrayQuery(self, check, extra, low, high, ends[0], ends[1], start_pose), ""

    def _solve(self, query: _Query, deadline: float) -> tuple[np.ndarray | None, int, str]:
        """The simplified joint path of one query, the number of tree states, and why there is none."""
        si, pdef = query.si, query.pdef
        query.defer = True
        direct = query.chain(*query.ends)  # the straight motion, if it is valid (RRTConnect would find it too)
        if direct is not None:
            query.defer = False
            return direct, 0, ""
        planner = og.RRTConnect(si)
        planner.setRange(self.joint_range if query.dim == NUM_JOINTS else self.tray_range)
        planner.setProblemDefinition(pdef)
        planner.setup()
        began = time.perf_counter()
        planner.solve(max(1e-3, SOLVE_SHARE * (deadline - began)))
        query.defer = False
        data = ob.PlannerData(si)
        planner.getPlannerData(data)
        states = data.numVertices()
        if not pdef.hasExactSolution():
            spent = time.perf_counter() - began
            return None, states, f"RRTConnect found no path before the time limit ({states} states in {spent:.2f} s)"
        path = pdef.getSolutionPath()
        self._simplify(si, path, deadline)
        joints = query.path([query.read(s) for s in path.getStates()])
        if joints is None:
            return None, states, "the simplified path is no longer valid"
        return joints, states, ""

    @staticmethod
    def _simplify(si: ob.SpaceInformation, path: og.PathGeometric, deadline: float) -> None:
        """Vertex reduction, partial shortcuts, B-spline smoothing: each step only while time is left."""
        simplifier = og.PathSimplifier(si)
        steps = (simplifier.reduceVertices, simplifier.partialShortcutPath,
                 lambda p: simplifier.smoothBSpline(p, SMOOTHING_STEPS))  # fmt: skip
        for step in steps:
            if time.perf_counter() >= deadline:
                break
            step(path)
