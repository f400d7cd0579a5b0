"""Tray-pose IK: the planner's numpy IK (flow_planner_common.tray_ik, no MuJoCo) against the collector's MuJoCo IK
(data_collector_ros.ik) on the same family tray poses, in one run.

    python benchmarks/bench_ik.py [--poses 200] [--attempts 8] [--json FILE]

Reach: both end effectors to the handles of the tray at each start and goal pose of the first family scenes, seeded
from home (the numpy IK solves its other seeds in one vectorised run when the first fails; MuJoCo's tries them one
after another). Carry: from the reach solution at the start pose, the tray carried to the scene's goal pose (both
tools keep their pose in the tray frame; MuJoCo's IK gets the same targets). Prints p50/p95 times, how often each
converges, how often both agree on the verdict and, where both converge, on the solution (joints within 0.01 rad)."""

from __future__ import annotations

import argparse
import contextlib
import time

import mujoco
import numpy as np

from data_collector_ros.ik import IKSolver
from data_collector_ros.scene import SceneIndex, load_model
from data_collector_ros.scene_family import FamilyConfig, scene_for_index
from data_collector_ros.task import handle_targets
from flow_planner_common.atomic_file import write_json
from flow_planner_common.robot import HOME_POSITIONS
from flow_planner_common.tray_ik import TrayIK


def family_scenes(count: int) -> list:
    config, scenes, index = FamilyConfig(), [], 0
    while len(scenes) < count:
        with contextlib.suppress(ValueError):  # handle_box scenes need the straight reach path
            scenes.append(scene_for_index(config, index))
        index += 1
    return scenes


def percentiles(times: list[float]) -> str:
    ms = 1000 * np.asarray(times)
    return f"p50 {np.median(ms):6.2f} ms  p95 {np.percentile(ms, 95):6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--poses", type=int, default=200, help="reach poses (start and goal poses of scenes)")
    parser.add_argument("--attempts", type=int, default=8, help="seeds per numpy IK call")
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()
    model = load_model()
    index, mujoco_ik, numpy_ik = SceneIndex.from_model(model), IKSolver(model), TrayIK()
    scenes = family_scenes((args.poses + 1) // 2)
    mj_times, np_times, carry_times = [], [], []
    mj_ok = np_ok = agree = same = both = carry_ok = carry_mj_ok = carries = 0
    for scene in scenes:
        for pose in (scene.start_pose(), scene.goal_pose()):
            targets, quats = handle_targets(model, index, pose)
            t0 = time.perf_counter()
            expected = mujoco_ik.solve(targets, quats, seed_positions=HOME_POSITIONS, seed=0)
            t1 = time.perf_counter()
            got = numpy_ik.solve(*numpy_ik.reach_targets(pose), HOME_POSITIONS, attempts=args.attempts)
            t2 = time.perf_counter()
            mj_times.append(t1 - t0)
            np_times.append(t2 - t1)
            mj_ok += expected.success
            np_ok += got.success
            agree += expected.success == got.success
            if expected.success and got.success:
                both += 1
                same += bool(np.max(np.abs(expected.positions - got.positions)) < 1e-2)
        start = numpy_ik.solve(*numpy_ik.reach_targets(scene.start_pose()), HOME_POSITIONS, attempts=args.attempts)
        if start.success:
            carries += 1
            t0 = time.perf_counter()
            carry_targets = numpy_ik.carry_targets(start.positions, scene.start_pose(), scene.goal_pose())
            carried = numpy_ik.solve(*carry_targets, start.positions, attempts=args.attempts)
            carry_times.append(time.perf_counter() - t0)
            carry_ok += carried.success
            quats = np.zeros((2, 4))
            for arm in range(2):
                mujoco.mju_mat2Quat(quats[arm], carry_targets[1][arm].ravel())
            carry_mj_ok += mujoco_ik.solve(carry_targets[0], quats, seed_positions=start.positions, seed=0).success
    n = len(np_times)
    print(f"reach poses {n}: MuJoCo IK converged {mj_ok}, numpy IK {np_ok}; same verdict {agree}/{n}; "
          f"same solution {same}/{both} where both converged")  # fmt: skip
    print(f"  MuJoCo IK {percentiles(mj_times)}")
    print(f"  numpy IK  {percentiles(np_times)}  ({args.attempts} seeds in one run)")
    print(f"carry from the reach solution: numpy IK converged {carry_ok}/{carries} ({percentiles(carry_times)}), "
          f"MuJoCo IK {carry_mj_ok}/{carries}")  # fmt: skip
    if args.json:
        numbers = {
            "reach_poses": n, "mujoco_converged": mj_ok, "numpy_converged": np_ok, "same_verdict": agree,
            "same_solution": same, "both_converged": both,
            "mujoco_p50_ms": 1000 * float(np.median(mj_times)), "numpy_p50_ms": 1000 * float(np.median(np_times)),
            "numpy_p95_ms": 1000 * float(np.percentile(np_times, 95)),
            "carry_converged": carry_ok, "carry_mujoco_converged": carry_mj_ok, "carries": carries,
            "carry_p50_ms": 1000 * float(np.median(carry_times)),
        }  # fmt: skip
        write_json(args.json, numbers)


if __name__ == "__main__":
    main()
