"""`evaluate`'s episodes: the shared reach -> attach -> carry sequence (data_collector_ros.episode_sequence) run
through the evaluation harness, one report row per episode.

Each phase: the planner plans and the plan executes through the controller topics (flow: the planner node over
DDS, /flow_planner/plan with execute=true, until its final status; cem: the CEM expert plans here from the measured
state and the harness publishes its plan), then the harness waits for the controllers to finish, settles SETTLE s
of sim time and the one success function judges the simulation. If the grasp fails, the carry phase runs from a
reset with the arms at the reach goal and the tray attached (row flag `carry_from_reset`; the episode counts as
failed). Planning time: flow = the node's own planning time per plan (replans included), cem = the CEM's wall
time; the flow service round trip is reported too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data_collector_ros.episode_sequence import PhaseTask, judge_phase, phase_verdict, run_episode
from flow_planner_common.robot import DEFAULT_DT, PHASE_NAMES, PHASE_REACH
from flow_planner_ros.episodes_file import EpisodeSet
from flow_planner_ros.evaluation import phase_metrics
from flow_planner_ros.evaluation_harness import EvaluationHarness, PlanAttempt, Record
from flow_planner_ros.evaluation_media import joint_curves, write_video


@dataclass(frozen=True)
class EvaluationSettings:
    """The planner under evaluation and how it is asked."""

    planner: str  # "flow" | "cem"
    seed: int = 0  # seeds IK restarts, CEM and flow sampling
    execution_steps: int = 60  # flow: the planner's execution_steps (plans are cut after it but the last)
    num_samples: int = 0  # flow: 0 = the planner's default
    integration_steps: int = 0  # flow: 0 = the planner's default
    video_dir: Path | None = None
    video_episodes: int = 0  # the first N episodes go into the video
    quiet: bool = False


@dataclass
class EvaluationRun:
    rows: list[dict[str, Any]]
    curves: dict[str, Any] | None  # joint curves of episode 0
    videos: list[Path]


class EvaluationRunner:
    """Runs episodes through an EvaluationHarness with the flow planner (over DDS) or the CEM expert (here)."""

    SETTLE = 0.25  # s of sim time after a trajectory ends, before judging (as the collector does)

    def __init__(self, harness: EvaluationHarness, settings: EvaluationSettings) -> None:
        from data_collector_ros.cem import CEMConfig, CEMPlanner
        from data_collector_ros.grid import GridConfig
        from data_collector_ros.ik import IKSolver
        from data_collector_ros.task import TaskConfig

        self.harness, self.settings = harness, settings
        self.task = GridConfig().task_box(TaskConfig())
        self.ik = IKSolver(harness.sim.model)
        self.cem = CEMPlanner(harness.sim.model, CEMConfig()) if settings.planner == "cem" else None
        self.dt = DEFAULT_DT
        self._records: dict[str, Record] | None = None

    def run(self, episodes: EpisodeSet) -> EvaluationRun:
        from data_collector_ros.task import tray_pose

        s = self.settings
        rows, curves, recordings = [], None, []
        record_video = s.video_dir is not None and s.video_episodes > 0
        for i in range(len(episodes)):
            x, y, yaw = episodes.xy_yaw(i)
            pose = tray_pose(x, y, yaw, float(self.harness.sim.rest_tray_pose[2]))
            in_video = record_video and i < s.video_episodes
            row, records = self.episode(i, pose, i == 0 or in_video)
            rows.append(row)
            planned = {name: p.pop("planned") for name, p in row["phases"].items()}
            if i == 0:
                curves = joint_curves(records, planned, self.harness.sim.index.qpos_adr, self.dt)
            if in_video:
                recordings.append(records)
            if not s.quiet:
                print(_progress_line(i, episodes, row), flush=True)
        videos: list[Path] = []
        if recordings:
            path = Path(s.video_dir) / f"evaluate_{s.planner}.mp4"
            videos = write_video(self.harness.sim.model, recordings, path, self.harness.FRAME_DT)
        return EvaluationRun(rows, curves, videos)

    def episode(self, index: int, pose: np.ndarray, record: bool) -> tuple[dict[str, Any], dict[str, Record]]:
        """One episode's report row (phases still carrying their first published plan, `planned`) and, if
        `record`, the states sampled per phase."""
        self._records = {} if record else None
        seed = int(self.settings.seed) * 100_003 + index
        episode = run_episode(self.harness, self.ik, self.task, pose, seed, self.phase)
        row: dict[str, Any] = {
            "index": index, "tray_pose": pose.tolist(),
            "phases": {"reach": episode.reach, "carry": episode.carry},
            "carry_from_reset": not episode.attached, "grasp": self.harness.grasp_message,
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
            attempt = self._plan_flow(task, record)
        else:
            attempt = self._plan_cem(task, start, record)
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
        }
        return row

    def _plan_flow(self, task: PhaseTask, record: Record | None) -> PlanAttempt:
        s = self.settings
        seed = task.seed + 7919 * task.phase
        return self.harness.request_plan(task.goal, seed, s.num_samples, s.integration_steps, record)

    def _plan_cem(self, task: PhaseTask, start: Any, record: Record | None) -> PlanAttempt:
        from data_collector_ros.episode import cem_plan

        plan = cem_plan(self.cem, task, start, self.dt)
        accepted = self.harness.publish_plan(plan.positions, plan.velocities, self.dt, record)
        notes = [] if accepted else ["controllers did not accept the CEM trajectory"]
        return PlanAttempt([plan.seconds], [], notes)


def _progress_line(i: int, episodes: EpisodeSet, row: dict[str, Any]) -> str:
    phases = " ".join(
        f"{name}={'ok' if p['success'] else 'FAIL'}(ee {1000 * p['ee_error']:.1f} mm)"
        for name, p in row["phases"].items()
    )
    reasons = "; ".join(r for p in row["phases"].values() for r in p["reasons"][:1])
    u, v, yaw = episodes.uvyaw[i]
    return f"[{i + 1}/{len(episodes)}] u={u:.2f} v={v:.2f} yaw={yaw:+.2f}: {phases}" + (
        f"  ({reasons})" if reasons else ""
    )
