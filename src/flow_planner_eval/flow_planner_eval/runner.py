"""`evaluate`'s episodes: the shared reach -> attach -> carry sequence (data_collector_ros.episode_sequence) run
through the evaluation harness, one report row per episode.

Before each episode its scene's boxes are placed in the bridge's simulation and the scene is validated
(data_collector_ros.scene_validity.check_scene: IK reach and carry, nothing in collision at the start, the grasp and
the goal); an invalid episode gets a row with `valid: false` and the reason, runs no phase and is left out of the
rates (evaluation.summarize).

Each phase: the planner plans and the plan executes through the controller topics, then the harness waits for the
controllers to finish, settles SETTLE s of sim time and the one success function judges the simulation:
- flow: the planner node over DDS, /flow_planner/plan with execute=true, until its final status. The request
  carries the scene's boxes and, for the carry, `carrying_tray` with the tray's pose measured at the phase start
  (a planner that refuses obstacles, a scene-blind one, is asked again without them; evaluation_harness);
- cem: the CEM expert plans here from the measured state, with the scene's boxes in its cost and restarts from
  bent routes (data_collector_ros.routes.RouteBuilder), and the harness publishes its plan if it passes the flow
  planner's own final check (as rrt's; the collector's `plan_check.check_plan`: a planner does not execute what its
  check calls unsafe); its budget (iterations, route_iterations) may be set (`EvaluationSettings`, the comparison's
  CEM curve);
- straight: the minimum-jerk joint-space line from the measured state to the IK goal
  (flow_planner_common.motion.reference_trajectory), no search, published like the CEM plan;
- rrt: OMPL's RRTConnect (flow_planner_ros.planning.rrt: joint space for the reach, level tray poses with the tray
  IK for the carry) from the measured state, with the scene's boxes and the carried tray, checked by the flow
  planner's own final check (same margin and grip limit as the node's defaults) and published like the CEM plan;
  a failure (no path within `rrt_time_limit`, or none that passes the check) publishes nothing.
If the grasp fails, the carry phase runs from a reset with the arms at the reach goal and the tray attached (row
flag `carry_from_reset`; the episode counts as failed). Planning time: flow = the node's own planning time per plan
(replans included), cem, rrt and straight = their wall time here; the flow service round trip is reported too. Per phase
the row also has the simulation's obstacle contacts (arm, tray) and the minimum clearance between the robot and the
boxes over the executed motion (clearance.Clearance on states every 10 ms of sim time).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from data_collector_ros.episode_sequence import PhaseTask, judge_phase, phase_verdict, run_episode
from data_collector_ros.plan_check import check_plan
from data_collector_ros.scene_family import SceneEpisode
from flow_planner_common.robot import DEFAULT_DT, PHASE_NAMES, PHASE_REACH
from flow_planner_eval.clearance import Clearance
from flow_planner_eval.episodes_file import EpisodeSet
from flow_planner_eval.harness import EvaluationHarness, PlanAttempt, Record
from flow_planner_eval.media import joint_curves, write_video
from flow_planner_eval.metrics import phase_metrics


@dataclass(frozen=True)
class EvaluationSettings:
    """The planner under evaluation and how it is asked."""

    planner: str  # "flow" | "cem" | "straight" | "rrt"
    seed: int = 0  # seeds IK restarts, CEM and flow sampling
    execution_steps: int = 60  # flow: the planner's execution_steps (plans are cut after it but the last)
    num_samples: int = 0  # flow: 0 = the planner's default
    integration_steps: int = 0  # flow: 0 = the planner's default
    video_dir: Path | None = None
    video_episodes: int = 0  # the first N episodes go into the video
    quiet: bool = False
    cem_iterations: int | None = None  # cem: CEMConfig.iterations (the budget of the search; None = default)
    cem_route_iterations: int | None = None  # cem: CEMConfig.route_iterations per route restart (None = default)
    label: str = ""  # the planner configuration's name (video file name; default: `planner`)
    rrt_time_limit: float = 2.0  # rrt: seconds per phase


@dataclass
class EvaluationRun:
    rows: list[dict[str, Any]]
    curves: dict[str, Any] | None  # joint curves of episode 0
    videos: list[Path]
    obstacles_refused: bool = False  # flow: the planner refused the scene's boxes in its requests (scene-blind)


class EvaluationRunner:
    """Runs episodes through an EvaluationHarness with the flow planner (over DDS), the CEM expert, RRTConnect or
    the straight line (these three here)."""

    PLANNERS = ("flow", "cem", "straight", "rrt")

    SETTLE = 0.25  # s of sim time after a trajectory ends, before judging (as the collector does)

    def __init__(self, harness: EvaluationHarness, settings: EvaluationSettings) -> None:
        from data_collector_ros.cem import CEMPlanner
        from data_collector_ros.grid import GridConfig
        from data_collector_ros.ik import IKSolver
        from data_collector_ros.routes import RouteBuilder
        from data_collector_ros.task import TaskConfig
        from flow_planner_common.scene_safety import SceneSafety

        if settings.planner not in self.PLANNERS:
            raise ValueError(f"planner must be one of {', '.join(self.PLANNERS)} (got {settings.planner!r})")
        self.harness, self.settings = harness, settings
        self.task = GridConfig().task_box(TaskConfig())
        self.ik = IKSolver(harness.sim.model)
        self.dt = DEFAULT_DT
        self.cem = CEMPlanner(harness.sim.model, cem_config(settings)) if settings.planner == "cem" else None
        self.routes = RouteBuilder(self.ik, self.cem.basis(self.dt)) if self.cem is not None else None
        self.rrt = rrt_planner(self.dt) if settings.planner == "rrt" else None
        self.safety = SceneSafety() if settings.planner == "cem" else None  # the node's default margin and limits
        self.clearance = Clearance(harness.sim.model)
        self._records: dict[str, Record] | None = None

    def run(self, episodes: EpisodeSet) -> EvaluationRun:
        s = self.settings
        rows, curves, recordings = [], None, []
        record_video = s.video_dir is not None and s.video_episodes > 0
        for i in range(len(episodes)):
            in_video = record_video and i < s.video_episodes
            row, records = self.episode(i, episodes.scenes[i], curves is None or in_video, episodes.legacy)
            rows.append(row)
            if row["valid"]:
                planned = {name: p.pop("planned") for name, p in row["phases"].items()}
                if curves is None:
                    curves = joint_curves(records, planned, self.harness.sim.index.qpos_adr, self.dt, i)
                if in_video:
                    recordings.append(records)
            if not s.quiet:
                print(_progress_line(i, len(episodes), row), flush=True)
        videos: list[Path] = []
        if recordings:
            path = Path(s.video_dir) / f"evaluate_{s.label or s.planner}.mp4"
            videos = write_video(self.harness.sim.model, recordings, path, self.harness.FRAME_DT)
        return EvaluationRun(rows, curves, videos, self.harness.obstacles_refused)

    def episode(
        self, index: int, scene: SceneEpisode, record: bool, legacy: bool = False
    ) -> tuple[dict[str, Any], dict[str, Record]]:
        """One episode's report row (phases still carrying their first published plan, `planned`) and, if
        `record`, the states sampled per phase. The scene's boxes are placed and the scene validated first; an
        invalid scene runs nothing (`valid` false, `invalid_reason`). `legacy`: an old tray-pose episode, whose
        carry goal is the task's (run_episode's default)."""
        from data_collector_ros.scene_validity import check_scene

        seed = int(self.settings.seed) * 100_003 + index
        self.harness.set_obstacles(scene.obstacles)
        with self.harness.locked() as sim:
            pose = scene.start_pose(float(sim.rest_tray_pose[2]))
            check = check_scene(sim, self.ik, scene, seed=seed)
        row: dict[str, Any] = {
            "index": index, "template": scene.template, "grid_index": scene.grid_index, "tray_pose": pose.tolist(),
            "tray_goal": list(scene.tray_goal), "obstacles": [b.as_array().tolist() for b in scene.obstacles],
            "valid": bool(check.valid),
        }  # fmt: skip
        if not check.valid:
            row |= {"invalid_reason": check.reason, "success": False, "phases": {}}
            return row, {}
        self._records = {} if record else None
        tray_goal = None if legacy else scene.goal_pose()
        episode = run_episode(self.harness, self.ik, self.task, pose, seed, self.phase, tray_goal=tray_goal)
        phases = {"reach": episode.reach, "carry": episode.carry}
        clearances = [p["min_clearance"] for p in phases.values() if p["min_clearance"] is not None]
        row |= {
            "phases": phases, "carry_from_reset": not episode.attached, "grasp": self.harness.grasp_message,
            "collision": any(p["arm_obstacle_contact"] or p["tray_obstacle_contact"] for p in phases.values()),
            "min_clearance": min(clearances) if clearances else None,
        }  # fmt: skip
        row["success"] = bool(episode.reach["success"] and episode.carry["success"] and episode.attached)
        records, self._records = self._records or {}, None
        return row, {name: records.get(name, []) for name in ("reach", "carry")}

    def phase(self, task: PhaseTask) -> dict[str, Any]:
        """Plan and execute one phase through the harness, judge it, and measure it (evaluation.phase_metrics)."""
        from data_collector_ros.success import SuccessResult
        from data_collector_ros.task import pose_error

        harness = self.harness
        record: Record | None = None
        if self._records is not None:
            record = self._records.setdefault(PHASE_NAMES[task.phase], [])
        start = harness.begin_phase()
        if self.settings.planner == "flow":
            attempt = self._plan_flow(task, start, record)
        elif self.settings.planner == "cem":
            attempt = self._plan_cem(task, start, record)
        elif self.settings.planner == "rrt":
            attempt = self._plan_rrt(task, start, record)
        else:
            attempt = self._plan_straight(task, start, record)
        harness.wait_until_executed(30.0, record)
        harness.advance(self.SETTLE, record)
        with harness.locked() as sim:
            try:
                verdict = judge_phase(sim, task, attempt.notes)
            except ValueError as exc:
                verdict = phase_verdict(SuccessResult(False, (str(exc),)), task.ik_success, attempt.notes)
            state = sim.state()
            stats = sim.stats
        # Success is the simulation's judgement (the one success function). The planner's own view (a refused
        # request, a "failed" status) is kept in `planner_notes` and explains a failure, but does not override it.
        if task.phase == PHASE_REACH:
            tray_error = pose_error(state.tray_pose, task.tray_start)
        else:
            tray_error = (
                verdict.metrics.get("tray_position_error", math.nan), verdict.metrics.get("tray_angle_error")
            )
        published = harness.published_plans()
        sim_excess = bool(stats.max_position_excess > 1e-3 or stats.max_command_velocity_ratio > 1.0
                          or stats.max_velocity_ratio > 1.10)  # fmt: skip
        cut = self.settings.execution_steps if self.settings.planner == "flow" else None
        row = phase_metrics(
            verdict.success, verdict.reasons, attempt.notes, verdict.metrics, tray_error,
            (start.positions, start.velocities), published, cut, sim_excess, self.dt,
        )  # fmt: skip
        row |= {
            "planning_times": attempt.planning_times,
            "round_trip_times": attempt.round_trip_times,
            "max_velocity_ratio": float(stats.max_velocity_ratio),
            "goal": task.goal.tolist(),
            "ik_success": bool(task.ik_success),
            "planned": published[0][0].tolist() if published else [],
            "arm_obstacle_contact": bool(stats.arm_obstacle_contact),
            "tray_obstacle_contact": bool(stats.tray_obstacle_contact),
            "first_collision": stats.first_collision,
        }
        clearance, where = self.clearance.over(harness.trace, len(task.obstacles))
        row |= {"min_clearance": clearance, "min_clearance_at": where, "clearance_samples": len(harness.trace)}
        return row

    def _plan_flow(self, task: PhaseTask, start: Any, record: Record | None) -> PlanAttempt:
        s = self.settings
        seed = task.seed + 7919 * task.phase
        tray_pose = None if task.phase == PHASE_REACH else start.tray_pose  # carrying: the measured tray pose
        return self.harness.request_plan(
            task.goal, seed, s.num_samples, s.integration_steps, record, task.obstacles, tray_pose
        )

    def _plan_cem(self, task: PhaseTask, start: Any, record: Record | None) -> PlanAttempt:
        from data_collector_ros.episode import cem_plan

        plan = cem_plan(self.cem, task, start, self.dt, self.routes)
        # the collector's check of the expert's data (clearance with the sweep, grip, tilt), from the measured state
        check = check_plan(self.safety, replace(task, start=start, tray_start=start.tray_pose), plan.positions)
        if not check.passed:
            reasons = "; ".join(check.reasons)
            return PlanAttempt([plan.seconds], [], [f"cem: its plan fails the planner's check: {reasons}"])
        accepted = self.harness.publish_plan(plan.positions, plan.velocities, self.dt, record)
        notes = [] if accepted else ["controllers did not accept the CEM trajectory"]
        return PlanAttempt([plan.seconds], [], notes)

    def _plan_rrt(self, task: PhaseTask, start: Any, record: Record | None) -> PlanAttempt:
        """RRTConnect from the measured state, the carry with the tray where it is measured at the phase start."""
        from flow_planner_common.plan_scene import PlanScene

        grasp = None
        if task.phase != PHASE_REACH:
            grasp = self.rrt.ik.kinematics.grasp_from_start(start.positions, start.tray_pose)
        scene = PlanScene.from_boxes(task.obstacles, grasp)
        seed = task.seed + 7919 * task.phase
        result = self.rrt.plan(start.positions, start.velocities, task.goal, scene, self.settings.rrt_time_limit, seed)
        if not result.success:
            return PlanAttempt([result.planning_time], [], [f"rrt: {result.message}"])
        accepted = self.harness.publish_plan(result.positions, result.velocities, self.dt, record)
        notes = [] if accepted else ["controllers did not accept the RRT trajectory"]
        return PlanAttempt([result.planning_time], [], notes)

    def _plan_straight(self, task: PhaseTask, start: Any, record: Record | None) -> PlanAttempt:
        """The minimum-jerk joint-space line from the measured start state to the IK goal: no search."""
        from flow_planner_common.motion import reference_trajectory

        t0 = time.perf_counter()
        positions, velocities = reference_trajectory(start.positions, start.velocities, task.goal, self.dt)
        seconds = time.perf_counter() - t0
        accepted = self.harness.publish_plan(positions, velocities, self.dt, record)
        notes = [] if accepted else ["controllers did not accept the straight trajectory"]
        return PlanAttempt([seconds], [], notes)


def rrt_planner(dt: float) -> Any:
    """RRTConnect with the flow planner's final check at the node's default margin and grip limit (on the CPU)."""
    from flow_planner_common.robot import JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS
    from flow_planner_common.scene_safety import SceneSafety
    from flow_planner_ros.planning.rrt import RRTPlanner
    from flow_planner_ros.planning.trajectory_safety import SafetyLimits

    limits = SafetyLimits.from_arrays(JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS)
    return RRTPlanner(SceneSafety(), limits, dt)


def cem_config(settings: EvaluationSettings) -> Any:
    """The expert's CEMConfig with the settings' budget (iterations, route_iterations) where given."""
    from data_collector_ros.cem import CEMConfig

    budget = {"iterations": settings.cem_iterations, "route_iterations": settings.cem_route_iterations}
    return CEMConfig(**{k: int(v) for k, v in budget.items() if v is not None})


def _progress_line(i: int, count: int, row: dict[str, Any]) -> str:
    x, y, yaw = row["tray_pose"][0], row["tray_pose"][1], 2 * math.atan2(row["tray_pose"][6], row["tray_pose"][3])
    head = f"[{i + 1}/{count}] {row['template']} x={x:.3f} y={y:+.3f} yaw={yaw:+.2f}"
    if not row["valid"]:
        return f"{head}: INVALID ({row['invalid_reason']})"
    phases = " ".join(
        f"{name}={'ok' if p['success'] else 'FAIL'}(ee {1000 * p['ee_error']:.1f} mm)"
        for name, p in row["phases"].items()
    )
    extra = []
    if row["min_clearance"] is not None:
        extra.append(f"clearance {1000 * row['min_clearance']:.0f} mm")
    if row["collision"]:
        extra.append("COLLISION")
    reasons = "; ".join(r for p in row["phases"].values() for r in p["reasons"][:1])
    return f"{head}: {phases}" + (f" [{', '.join(extra)}]" if extra else "") + (f"  ({reasons})" if reasons else "")
