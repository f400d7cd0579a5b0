"""OMPL RRTConnect (flow_planner_ros.planning.rrt) on the held-out scenes, offline: per phase the share of plans that
pass the pipeline's final check (limits, continuity, sweep-raised clearance, grip) and the planning time (p50/p95,
everything from the call to the answer), beside the straight minimum-jerk line under the same check. Numbers only,
never asserted.

Each scene of the episodes file (default config/eval_scenes_40.yaml) is validated and its goals found as the
evaluation does (data_collector_ros.scene_validity.check_scene: MuJoCo IK of the handles at the tray's start and
goal); the reach plans from home to the grasp, the carry from the grasp to the carry goal with the tray carried
(its grasp from the start joints and the tray's start pose). Nothing is executed in the physics.

    python benchmarks/bench_rrt.py [--episodes config/eval_scenes_40.yaml] [--time-limit 2.0] [--seeds 1]
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from data_collector_ros.ik import IKSolver
from data_collector_ros.scene_validity import check_scene
from data_collector_ros.simulation import Simulation
from flow_planner_common.kinematics import ArmKinematics
from flow_planner_common.motion import reference_trajectory
from flow_planner_common.plan_scene import PlanScene
from flow_planner_common.robot import DEFAULT_DT, HOME_POSITIONS, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS
from flow_planner_common.scene_safety import SceneSafety
from flow_planner_eval.episodes_file import load_episodes
from flow_planner_ros.planning.rrt import RRTPlanner
from flow_planner_ros.planning.trajectory_safety import SafetyLimits, select_best

WORKSPACE = Path(__file__).resolve().parents[1]
DEFAULT_EPISODES = WORKSPACE / "config" / "eval_scenes_40.yaml"


def cases(path: Path) -> tuple[list[tuple[str, str, np.ndarray, np.ndarray, PlanScene]], list[str]]:
    """(phase, template, start, goal, scene) of every valid scene's reach and carry, and the invalid scenes' reasons."""
    sim = Simulation()
    ik = IKSolver(sim.model)
    kinematics = ArmKinematics()
    episodes = load_episodes(path, (0.42, 0.58), (-0.08, 0.08))
    out, invalid = [], []
    for i, scene in enumerate(episodes.scenes):
        check = check_scene(sim, ik, scene, seed=i)
        if not check.valid:
            invalid.append(f"{i}: {check.reason}")
            continue
        tray = scene.start_pose(float(sim.rest_tray_pose[2]))
        grasp = kinematics.grasp_from_start(check.reach_goal, tray)
        out.append(("reach", scene.template, HOME_POSITIONS.copy(), check.reach_goal,
                    PlanScene.from_boxes(scene.obstacles)))  # fmt: skip
        out.append(("carry", scene.template, check.reach_goal, check.carry_goal,
                    PlanScene.from_boxes(scene.obstacles, grasp)))  # fmt: skip
    return out, invalid


def failure_kind(message: str) -> str:
    """A failed plan's reason, without its numbers."""
    kinds = (("refused: the", "refused: start or goal in collision"), ("before the time limit", "no path in time"),
             ("time limit", "time limit reached after a failed check"), ("does not fit", "path too long"),
             ("extra margin", "final check failed"))  # fmt: skip
    for key, kind in kinds:
        if key in message:
            return kind
    return message[:80]


def percentiles(seconds: list[float]) -> str:
    if not seconds:
        return "-"
    ms = sorted(1e3 * s for s in seconds)
    return f"p50 {statistics.median(ms):.0f} ms, p95 {ms[int(0.95 * (len(ms) - 1))]:.0f} ms, max {ms[-1]:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=Path, default=DEFAULT_EPISODES)
    parser.add_argument("--time-limit", type=float, default=2.0, help="seconds per plan")
    parser.add_argument("--seeds", type=int, default=1, help="plans per phase and scene (OMPL seeds 0..N-1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the planner node uses 1)")
    parser.add_argument("--verbose", action="store_true", help="print every plan's message")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    requests, invalid = cases(args.episodes)
    print(f"{args.episodes.name}: {len(requests) // 2} valid scenes ({len(invalid)} invalid: {invalid}); "
          f"scene set-up {time.perf_counter() - started:.0f} s; time limit {args.time_limit:.2f} s, "
          f"{args.seeds} seed(s), {torch.get_num_threads()} torch thread(s)")  # fmt: skip
    safety = SceneSafety()
    limits = SafetyLimits.from_arrays(JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS)
    planner = RRTPlanner(safety, limits)
    zero = np.zeros_like(HOME_POSITIONS)
    planner.plan(requests[0][2], zero, requests[0][3], requests[0][4], args.time_limit, 0)  # warm-up
    rows: dict[str, dict] = collections.defaultdict(lambda: collections.defaultdict(list))
    for phase, template, start, goal, scene in requests:
        row = rows[phase]
        check = safety.bind(start, goal, scene)
        positions, velocities = reference_trajectory(start, zero, goal, DEFAULT_DT)
        straight = select_best(positions[None], velocities[None], start, goal, DEFAULT_DT, limits,
                               scene_check=lambda idx, p=positions[None], c=check: c.rejections(p, idx))  # fmt: skip
        row["straight"].append(straight.index is not None)
        for seed in range(args.seeds):
            result = planner.plan(start, zero, goal, scene, args.time_limit, seed)
            row["success"].append(result.success)
            row["time"].append(result.planning_time)
            row["attempts"].append(result.attempts)
            row["configurations"].append(result.configurations)
            row[f"template {template}"].append(result.success)
            if result.success:
                row["time ok"].append(result.planning_time)
                row["length"].append(result.path_length)
                row["direct"].append(result.direct)
                if not result.direct:
                    row["time tree"].append(result.planning_time)
            else:
                row["failures"].append(failure_kind(result.message))
            if args.verbose:
                print(f"  {phase} {template:<10} seed {seed}: {result.planning_time * 1e3:6.0f} ms  {result.message}")
    for phase, row in rows.items():
        n = len(row["success"])
        print(f"{phase}: RRTConnect {sum(row['success'])}/{n} pass the final check ({sum(row['direct'])} of them the "
              f"straight motion; the minimum-jerk straight line alone {sum(row['straight'])}/{len(row['straight'])})\n"
              f"  time: all {percentiles(row['time'])}; successful {percentiles(row['time ok'])}; successful with a "
              f"tree ({len(row['time tree'])}) {percentiles(row['time tree'])}\n"
              f"  attempts mean {np.mean(row['attempts']):.2f}, configurations checked p50 "
              f"{np.median(row['configurations']):.0f}, joint path p50 {np.median(row['length'] or [0]):.2f} "
              "rad")  # fmt: skip
        by_template = {k.split()[1]: f"{sum(v)}/{len(v)}" for k, v in sorted(row.items()) if k.startswith("template")}
        print(f"  by template: {by_template}")
        if row["failures"]:
            print(f"  failures: {dict(collections.Counter(row['failures']))}")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
