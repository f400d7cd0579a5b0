"""Does the checked plan hold for the executed motion? (issue 21) Every phase of the held-out scenes is planned (the
CEM expert in-process; the shipped flow model through the planning pipeline offline, as the planner node plans),
executed in MuJoCo (also the plans that fail the planner's check, reported apart: the planner would not
publish them) and measured every 10 ms against the geometry the planner's check reasons about
(flow_planner_eval.deviation): the arm spheres executed vs planned, the tray in the physics vs the checker's
carried-tray model (held by both tools, the mean of their grasps' poses) at the planned and at the executed joints,
what the check's cover (max(margin, sweep) at the nearest waypoint) must cover, the plans' grip change, and per
phase the clearance to the boxes lost between the check (at the waypoints, the tray model) and the execution (the
tray where the physics has it), where the plan came within 50 mm of a box. Numbers, never asserted.

    python benchmarks/bench_execution_deviation.py                        # cem + flow on config/eval_scenes_40.yaml
    python benchmarks/bench_execution_deviation.py --family-count 120 --json out.json   # + 120 of seed 102, ~2 min
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from data_collector_ros.cem import CEMPlanner
from data_collector_ros.episode import cem_plan
from data_collector_ros.episode_sequence import PhaseTask, SimulationScene, run_episode
from data_collector_ros.ik import IKSolver
from data_collector_ros.routes import RouteBuilder
from data_collector_ros.scene_family import FamilyConfig, scene_for_index
from data_collector_ros.scene_validity import StraightReach, check_scene
from data_collector_ros.simulation import Simulation
from data_collector_ros.task import TaskConfig
from flow_planner_common.atomic_file import write_json
from flow_planner_common.plan_scene import PlanScene
from flow_planner_common.robot import DEFAULT_DT, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, PHASE_CARRY
from flow_planner_common.scene_safety import DEFAULT_CLEARANCE_MARGIN, SceneSafety
from flow_planner_eval.deviation import GRIP_BINS, METRICS, DeviationMeter, PhaseDeviation, grip_bin, summarize
from flow_planner_eval.episodes_file import load_episodes

WORKSPACE = Path(__file__).resolve().parents[1]
DEFAULT_EPISODES = WORKSPACE / "config" / "eval_scenes_40.yaml"
CHECKPOINT = WORKSPACE / "src" / "flow_planner_ros" / "checkpoints" / "default.safetensors"
ROWS = (
    ("arm", "arm: executed vs planned spheres"),
    ("arm_from_waypoint", "arm: executed vs nearest waypoint"),
    ("arm_cover_excess", "arm: that minus cover"),
    ("tray_planned", "tray: physics vs model @ planned q"),
    ("tray_executed", "tray: physics vs model @ executed q"),
    ("tray_from_waypoint", "tray: physics vs model @ waypoint"),
    ("tray_cover_excess", "tray: that minus cover"),
    ("tray_mean_planned", "tray: physics vs 2-tool mean @ plan q"),
    ("tray_mean_executed", "tray: physics vs 2-tool mean @ exec q"),
    ("grip_executed", "grip change, executed"),
    ("grip_planned.phase_max", "grip change, plan max (per phase)"),
    ("arm_clearance_lost", "arm_obstacle clearance lost (<50 mm)"),
    ("tray_clearance_lost", "tray_obstacle clearance lost (<50mm)"),
)


@dataclass(frozen=True)
class Row:
    template: str
    source: str  # cem | flow | fallback
    deviation: PhaseDeviation
    passed: bool  # the plan passes the planner's check (scene_safety, margin + sweep + grip)
    reasons: str  # why not


class Planners:
    """Plans a phase from the simulation's state: the CEM expert or the flow pipeline (None = no plan)."""

    def __init__(self, sim: Simulation, ik: IKSolver, flow_samples: int, fallback: str) -> None:
        self.cem = CEMPlanner(sim.model)
        self.routes = RouteBuilder(ik, self.cem.basis(DEFAULT_DT))
        self.flow_samples, self.fallback = flow_samples, fallback
        self.pipeline = None

    def flow_pipeline(self):
        if self.pipeline is None:
            from flow_planner_ros.learning.flow_sampler import FlowSampler
            from flow_planner_ros.planning.pipeline import PlanningPipeline
            from flow_planner_ros.planning.trajectory_safety import SafetyLimits

            sampler = FlowSampler.from_checkpoint(CHECKPOINT, backend="onnx", num_threads=1)
            limits = SafetyLimits.from_arrays(JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS)
            self.pipeline = PlanningPipeline(sampler, limits, fallback_planner=self.fallback)
        return self.pipeline

    def plan(self, name: str, task: PhaseTask, scene: PlanScene) -> tuple[np.ndarray, np.ndarray, str] | None:
        if name == "cem":
            plan = cem_plan(self.cem, task, task.start, DEFAULT_DT, self.routes)
            return plan.positions, plan.velocities, "cem"
        from flow_planner_ros.planning.request import PlanRequest

        request = PlanRequest(task.start.positions, task.start.velocities, task.goal, self.flow_samples, 0,
                              task.seed * 2 + task.phase, False)  # fmt: skip
        result = self.flow_pipeline().plan(request, scene=scene)
        if not result.success:
            return None
        return result.positions, result.velocities, "fallback" if result.fallback else "flow"


def scenes(args: argparse.Namespace, sim: Simulation, ik: IKSolver) -> list:
    """The held-out episodes file's scenes (its first `limit`), then `family_count` grid indices of
    FamilyConfig(seed=family_seed)."""
    out = list(load_episodes(args.episodes, (0.42, 0.58), (-0.08, 0.08)).scenes) if args.episodes else []
    out = out[: args.limit] if args.limit else out
    family_seed, family_count = args.family_seed, args.family_count
    if family_count:
        config, reach = FamilyConfig(seed=family_seed), StraightReach(sim, ik)
        out += [scene_for_index(config, i, reach) for i in range(family_count)]
    return out


def run(args: argparse.Namespace) -> dict:
    sim = Simulation()
    ik = IKSolver(sim.model)
    meter = DeviationMeter(sim, sample_steps=args.sample_steps)
    safety = SceneSafety(DEFAULT_CLEARANCE_MARGIN, checker=meter.checker)
    planners = Planners(sim, ik, args.flow_samples, args.fallback)
    env, task_config = SimulationScene(sim, 0.02), TaskConfig()
    all_scenes = scenes(args, sim, ik)
    results: dict[str, list[Row]] = {}
    unplanned: dict[str, collections.Counter] = {}
    started = time.perf_counter()
    for name in args.planners:
        rows, missing = [], collections.Counter()
        for i, scene in enumerate(all_scenes):
            sim.set_obstacles(scene.obstacles)
            if not check_scene(sim, ik, scene, seed=i).valid:
                missing["invalid scene"] += 1
                continue

            def step(task: PhaseTask, template=scene.template, obstacles=scene.obstacles, name=name, rows=rows,
                     missing=missing) -> PhaseDeviation | None:  # fmt: skip
                grasp = None
                if task.phase == PHASE_CARRY:
                    grasp = meter.checker.grasp_from_start(task.start.positions, task.tray_start)
                plan_scene = PlanScene.from_boxes(obstacles, grasp)
                plan = planners.plan(name, task, plan_scene)
                if plan is None:
                    missing[f"{'reach' if task.phase != PHASE_CARRY else 'carry'}: no plan"] += 1
                    return None
                positions, velocities, source = plan
                with torch.no_grad():
                    sweep = safety.sweep(positions[None], task.start.positions, plan_scene)[0].double().cpu().numpy()
                deviation = meter.execute(task.phase, positions, velocities, DEFAULT_DT, grasp, sweep=sweep,
                                          margin=safety.margin, boxes=obstacles)  # fmt: skip
                check = safety.check(positions[None], task.start.positions, task.goal, plan_scene)
                rows.append(Row(template, source, deviation, bool(check.passed[0]), "; ".join(check.reasons(0))))
                return deviation

            run_episode(env, ik, task_config, scene.start_pose(float(sim.rest_tray_pose[2])), i, step,
                        lambda d: d is not None, tray_goal=scene.goal_pose())  # fmt: skip
            print(f"\r{name}: scene {i + 1}/{len(all_scenes)} ({time.perf_counter() - started:.0f} s)", end="",
                  file=sys.stderr, flush=True)  # fmt: skip
        print(file=sys.stderr)
        results[name], unplanned[name] = rows, missing
    return report(results, unplanned, len(all_scenes), time.perf_counter() - started)


def report(results, unplanned, scene_count: int, seconds: float) -> dict:
    out: dict = {"scenes": scene_count, "seconds": seconds, "planners": {}}
    for name, rows in results.items():
        mine: dict = {"unplanned": dict(unplanned[name]), "groups": {}}
        groups: dict[str, list[PhaseDeviation]] = collections.defaultdict(list)
        for row in rows:
            d = row.deviation
            phase = "carry" if d.phase == PHASE_CARRY else "reach"
            if not row.passed:  # the planner would not publish it: apart
                groups[f"{phase}, failing the planner's check"].append(d)
                continue
            groups[phase].append(d)
            if phase == "carry":
                groups[f"carry, grip {grip_bin(d.max_grip_planned)}"].append(d)
                groups[f"carry, {row.template}"].append(d)
        sources = collections.Counter(row.source for row in rows)
        passed = sum(row.passed for row in rows)
        print(f"\n=== {name}: {len(rows)} executed phases on {scene_count} scenes ({dict(sources)}), {passed} pass "
              f"the planner's check; not executed: {dict(unplanned[name]) or 'none'}")  # fmt: skip
        mine["phases"] = [phase_row(row) for row in rows]
        mine["contacts"] = []
        for row in rows:
            d = row.deviation
            if any(d.contacts.values()):
                lost = d.clearance_lost
                item = {"phase": "carry" if d.phase == PHASE_CARRY else "reach", "template": row.template,
                        "source": row.source, "passed_check": row.passed, "contacts": d.contacts,
                        "planned_min_clearance_mm": (d.clearance_planned.min(axis=0) * 1e3).tolist(),
                        "executed_min_clearance_mm": (d.clearance_executed.min(axis=0) * 1e3).tolist(),
                        "clearance_lost_mm": (lost * 1e3).tolist(), "max_grip_planned_mm": d.max_grip_planned * 1e3,
                        "tray_planned_max_mm": _max_mm(d.tray_planned), "arm_max_mm": _max_mm(d.arm),
                        "reasons": row.reasons}  # fmt: skip
                mine["contacts"].append(item)
                print(f"  contact: {item}")
        order = ["reach", "carry", *(f"carry, grip {grip_bin(b)}" for b in (0.0, *GRIP_BINS)),
                 "reach, failing the planner's check", "carry, failing the planner's check"]  # fmt: skip
        order += sorted(k for k in groups if k.startswith("carry, ") and k not in order)
        for key in order:
            phases = groups.get(key, [])
            if not phases:
                continue
            summary = summarize(phases)
            contacts = sum(any(d.contacts.values()) for d in phases)
            mine["groups"][key] = {"phases": len(phases), "contact_phases": contacts, "samples": summary,
                                   "waypoints": summarize(phases, waypoints_only=True)}  # fmt: skip
            print(f"\n{key}: {len(phases)} phases, {contacts} with an obstacle contact in the physics")
            print(f"  {'mm (10 ms samples; phase max = over phases of the phase max)':<36} {'p50':>7} {'p99':>7} "
                  f"{'max':>7}   {'phase max p50':>13} {'p99':>7}")  # fmt: skip
            for metric, label in ROWS:
                s = summary.get(metric)
                if s is None:
                    continue
                per_phase = summary.get(f"{metric}.phase_max", {})
                extra = (f"   {per_phase['p50'] * 1e3:>13.2f} {per_phase['p99'] * 1e3:>7.2f}" if per_phase else
                         f"   share > 0: {s['share_over']:.1%}" if "share_over" in s else "")  # fmt: skip
                print(f"  {label:<36} {s['p50'] * 1e3:>7.2f} {s['p99'] * 1e3:>7.2f} {s['max'] * 1e3:>7.2f}{extra}")
        out["planners"][name] = mine
    print(f"\n{seconds:.0f} s")
    return out


def phase_row(row: Row) -> dict:
    """One executed phase in the JSON: its maxima (mm), the plan's max grip change and the clearance lost."""
    d = row.deviation
    item = {"phase": "carry" if d.phase == PHASE_CARRY else "reach", "template": row.template, "source": row.source,
            "passed_check": row.passed, "contact": any(d.contacts.values()),
            "max_grip_planned_mm": d.max_grip_planned * 1e3}  # fmt: skip
    for name in METRICS:
        item[f"{name}_max_mm"] = _max_mm(getattr(d, name))
    if d.clearance_planned is not None:
        for column, name in enumerate(("arm_obstacle", "tray_obstacle")):
            planned, executed = d.clearance_planned[:, column].min(), d.clearance_executed[:, column].min()
            if np.isfinite(planned):
                item[f"{name}_planned_min_mm"] = float(planned * 1e3)
                item[f"{name}_executed_min_mm"] = float(executed * 1e3)
    return item


def _max_mm(values: np.ndarray | None) -> float | None:
    return None if values is None else float(values.max() * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planners", default="cem,flow", help="comma-separated: cem, flow")
    parser.add_argument("--episodes", default=str(DEFAULT_EPISODES), help="held-out episodes file ('' = none)")
    parser.add_argument("--limit", type=int, default=0, help="only the file's first N scenes (0 = all)")
    parser.add_argument("--family-seed", type=int, default=102, help="the extra scenes' family (not the file's 101)")
    parser.add_argument("--family-count", type=int, default=0, help="extra grid indices of the family seed")
    parser.add_argument("--sample-steps", type=int, default=5, help="physics steps (2 ms) between samples")
    parser.add_argument("--flow-samples", type=int, default=8)
    parser.add_argument("--fallback", default="none", help="the flow pipeline's fallback planner: none | rrt")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    args.planners = [p.strip() for p in args.planners.split(",") if p.strip()]
    args.episodes = Path(args.episodes) if args.episodes else None
    out = run(args)
    if args.json:
        write_json(args.json, out)


if __name__ == "__main__":
    main()
