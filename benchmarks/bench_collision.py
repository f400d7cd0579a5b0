"""Collision checking throughput and accuracy: the torch sphere checker (flow_planner_common.sphere_checker) against the
MuJoCo path the expert's cost (plan_cost) used before it took the sphere checker (per configuration: mj_kinematics +
mj_collision, in the carry phase a second mj_kinematics after placing the tray) on the same candidates in the same
scene, in one run.

    python benchmarks/bench_collision.py [--candidates 32] [--repeats 20] [--threads 2] [--device cpu|cuda]
                                         [--scenes 500] [--configs-per-scene 20] [--json FILE]
    python benchmarks/bench_collision.py --batched-requests 4 --candidates 8 [--repeats 20] [--threads 1]

Throughput: CEM-like candidates (the minimum-jerk line from home to a perturbed goal, bent by smooth random offsets),
a scene of MAX_OBSTACLES boxes around the arms, configurations per second of each path for the reach (tray resting)
and the carry (tray following the left tool), the best of back-to-back runs (medians in the JSON too: other load on a
2-CPU machine stalls multi-threaded torch ops badly); the JSON's headline numbers are the carry's.

Accuracy: the sphere checker's clearances at margin 0 against MuJoCo's contacts on the cases of
data_collector_ros.collision_judge (family scenes, tray resting and carried, configurations near home / the scene's IK
solutions and anywhere): false "free" (MuJoCo has a contact the checker misses; must be 0) and the false-positive rate
(MuJoCo free, the checker colliding).

--batched-requests R (only this, then exit): the planner's scene check (SceneSafety) of R concurrent requests,
`--candidates` each, every request with its own scene, checked one request at a time (SceneCheck.check) and in one
call (SceneSafety.check_many), reaches and carries: ms per round (best and median of `--repeats`), numbers only.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import time
from collections.abc import Callable

import mujoco
import numpy as np
import torch

from data_collector_ros.collision_judge import Verdicts, judge_cases
from data_collector_ros.scene import GROUP_LEFT, GROUP_RIGHT, GROUP_TRAY, SceneIndex, load_model, place_obstacles
from flow_planner_common.atomic_file import write_json
from flow_planner_common.kinematics import CATEGORIES, TrayGrasp
from flow_planner_common.motion import min_jerk_waypoints
from flow_planner_common.obstacles import MAX_OBSTACLES, Box
from flow_planner_common.plan_scene import PlanScene
from flow_planner_common.robot import DEFAULT_DT, HOME_POSITIONS, HORIZON, NUM_JOINTS
from flow_planner_common.scene_safety import SceneSafety
from flow_planner_common.sphere_checker import SphereChecker

TRAY_POSE = np.array([0.5, 0.0, 0.76, 1.0, 0.0, 0.0, 0.0])
CLEARANCE = 0.015  # plan_cost's default contact margin


def candidates(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, HORIZON, 12): min-jerk lines to perturbed goals plus smooth (4-knot) offsets."""
    goal = HOME_POSITIONS + rng.normal(0.0, 0.4, NUM_JOINTS)
    line, _ = min_jerk_waypoints(HOME_POSITIONS, goal, DEFAULT_DT)
    knots = rng.normal(0.0, 0.3, (count, 4, NUM_JOINTS))
    s = np.linspace(0.0, 1.0, HORIZON)
    bumps = np.exp(-((s[:, None] - np.linspace(0.2, 0.8, 4)[None]) ** 2) / 0.02) * np.sin(math.pi * s)[:, None]
    return line[None] + np.einsum("hk,nkj->nhj", bumps, knots)


def scene(rng: np.random.Generator, checker: SphereChecker) -> list[Box]:
    """MAX_OBSTACLES boxes around the arms, each at least 5 cm from the arms at home and from the resting tray."""
    boxes: list[Box] = []
    while len(boxes) < MAX_OBSTACLES:
        box = Box(
            (rng.uniform(0.2, 0.7), rng.uniform(-0.5, 0.5), rng.uniform(0.85, 1.3)),
            tuple(rng.uniform(0.05, 0.25, 3)),
            rng.uniform(-math.pi, math.pi),
        )
        if float(checker.clearance(HOME_POSITIONS, [box], tray_pose=TRAY_POSE)[:5].min()) > 0.05:
            boxes.append(box)
    return boxes


def mujoco_model(boxes: list[Box]) -> tuple[mujoco.MjModel, SceneIndex]:
    """plan_cost's former model: arm margins = CLEARANCE, tray colliding with the arms, the scene's boxes placed."""
    model = copy.deepcopy(load_model())
    index = SceneIndex.from_model(model)
    model.geom_margin[np.isin(index.geom_group, (GROUP_LEFT, GROUP_RIGHT))] = CLEARANCE
    model.geom_conaffinity[index.geom_group == GROUP_TRAY] |= 2 | 4
    model.body_conaffinity[index.tray_body] |= 2 | 4
    place_obstacles(model, index, boxes)
    return model, index


def mujoco_rate(model: mujoco.MjModel, index: SceneIndex, positions: np.ndarray, carry: bool) -> float:
    """Configurations per second of the per-configuration MuJoCo path (closest contact kept, as plan_cost did)."""
    data = mujoco.MjData(model)
    q_adr, tray = index.qpos_adr, index.tray_qpos_adr
    data.qpos[tray : tray + 7] = TRAY_POSE
    tool = int(index.tool_bodies[0])
    rel_pos, rel_mat = np.zeros(3), np.eye(3)
    if carry:
        data.qpos[q_adr] = HOME_POSITIONS
        mujoco.mj_kinematics(model, data)
        tool_mat = data.xmat[tool].reshape(3, 3)
        rel_pos = tool_mat.T @ (TRAY_POSE[:3] - data.xpos[tool])
    quat = np.zeros(4)
    flat = positions.reshape(-1, NUM_JOINTS)
    start = time.perf_counter()
    closest = np.inf
    for q in flat:
        data.qpos[q_adr] = q
        mujoco.mj_kinematics(model, data)
        if carry:
            tool_mat = data.xmat[tool].reshape(3, 3)
            mujoco.mju_mat2Quat(quat, (tool_mat @ rel_mat).ravel())
            data.qpos[tray : tray + 3] = data.xpos[tool] + tool_mat @ rel_pos
            data.qpos[tray + 3 : tray + 7] = quat
            mujoco.mj_kinematics(model, data)
        mujoco.mj_collision(model, data)
        if data.ncon:
            closest = min(closest, float(data.contact.dist[: data.ncon].min()))
    return len(flat) / (time.perf_counter() - start)


def timed(call: Callable[[], object], sync: Callable[[], None] = lambda: None) -> float:
    """Seconds of one call."""
    start = time.perf_counter()
    call()
    sync()
    return time.perf_counter() - start


#: Seconds each path runs untimed before its timed runs: on this 2-vCPU machine a path timed right after a pause or
#: another path's work ran up to 30 % slower for its first runs (clocks and the thread pool's wake-ups).
WARM_UP_S = 0.5


def rates(paths: dict[str, Callable[[], float]], rounds: int) -> dict[str, dict[str, float]]:
    """Configurations per second of each path, `rounds` back-to-back runs after running it for WARM_UP_S: the best
    run (the least disturbed by other load on the machine) and the median."""
    out = {}
    for name, run in paths.items():
        started = time.perf_counter()
        while time.perf_counter() - started < WARM_UP_S:
            run()
        seen = [run() for _ in range(rounds)]
        out[name] = {"best": max(seen), "median": float(np.median(seen))}
    return out


def verdicts(cases: list, checkers: dict[str, Callable[..., np.ndarray]]) -> dict[str, Verdicts]:
    """Each checker's clearances (margin 0) on the judge's cases against MuJoCo's contacts."""
    return {
        name: Verdicts.of(cases, [clearance(c.positions, c.boxes, tray_pose=c.tray_pose, grasp=c.grasp)
                                  for c in cases])
        for name, clearance in checkers.items()
    }  # fmt: skip


def bench_batched(requests: int, count: int, repeats: int, seed: int) -> None:
    """ms of the scene check of `requests` requests (own scene, `count` candidates each): one by one vs one call."""
    rng = np.random.default_rng(seed)
    safety = SceneSafety()
    grasp = safety.checker.grasp_from_start(HOME_POSITIONS, TRAY_POSE)
    for phase, held in (("reach", None), ("carry", grasp)):
        checks, batches = [], []
        for _ in range(requests):
            positions = candidates(rng, count)
            checks.append(safety.bind(HOME_POSITIONS, positions[0, -1], PlanScene.from_boxes(scene(rng, safety.checker),
                                                                                              held)))  # fmt: skip
            batches.append(positions)
        paths = {
            "one by one": lambda checks=checks, batches=batches: [
                c.check(p) for c, p in zip(checks, batches, strict=True)
            ],
            "one call": lambda checks=checks, batches=batches: safety.check_many(checks, batches),
        }
        seen: dict[str, list[float]] = {name: [] for name in paths}
        for run in paths.values():
            run()
        for _ in range(repeats):  # alternating, so that other load on the machine slows both alike
            for name, run in paths.items():
                seen[name].append(timed(run) * 1e3)
        for name, times in seen.items():
            print(f"{phase} {requests} x {count} x {HORIZON} {name}: best {min(times):.2f} ms, "
                  f"median {np.median(times):.2f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="also time the sphere checker on this device (cuda)")
    parser.add_argument("--scenes", type=int, default=500, help="family scenes for the accuracy comparison")
    parser.add_argument("--configs-per-scene", type=int, default=20)
    parser.add_argument("--json", help="write the numbers to this file")
    parser.add_argument("--batched-requests", type=int, default=0, help="only time the planner's batched check")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.batched_requests > 0:
        bench_batched(args.batched_requests, args.candidates, args.repeats, args.seed)
        return
    rng = np.random.default_rng(args.seed)
    spheres = SphereChecker()  # the compiled kernel where numba is installed (sphere_kernel)
    reference = SphereChecker(backend="torch")  # the same bounds in torch ops: the path CUDA takes
    boxes = scene(rng, spheres)
    box_array = np.array([b.as_array() for b in boxes])
    positions = candidates(rng, args.candidates)
    count = positions.shape[0] * positions.shape[1]
    model, index = mujoco_model(boxes)
    grasp: TrayGrasp = spheres.grasp_from_start(HOME_POSITIONS, TRAY_POSE)
    q_cpu, boxes_cpu = torch.as_tensor(positions, dtype=torch.float32), torch.as_tensor(box_array, dtype=torch.float32)
    gpu = None
    if args.device != "cpu":
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            print(f"--device {args.device}: no CUDA device here, timing the CPU only")
        else:
            gpu = SphereChecker(device=args.device)
            q_gpu, boxes_gpu = q_cpu.to(args.device), boxes_cpu.to(args.device)

    phases = {}
    for phase, carry, tray in (("reach", False, {"tray_pose": TRAY_POSE}), ("carry", True, {"grasp": grasp})):
        paths = {
            "mujoco": lambda carry=carry: mujoco_rate(model, index, positions, carry),
            "sphere": lambda tray=tray: count / timed(lambda: spheres.clearance(q_cpu, boxes_cpu, **tray)),
            "sphere_torch": lambda tray=tray: count / timed(lambda: reference.clearance(q_cpu, boxes_cpu, **tray)),
        }
        if gpu is not None:
            sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
            paths["sphere_" + args.device] = lambda tray=tray, sync=sync: (
                count / timed(lambda: gpu.clearance(q_gpu, boxes_gpu, **tray), sync)
            )
        phases[phase] = rates(paths, args.repeats)

    start = time.perf_counter()
    cases = judge_cases(args.scenes, args.configs_per_scene, seed=args.seed)
    judged = time.perf_counter() - start
    scores = verdicts(cases, {"sphere": lambda *a, **k: spheres.clearance(*a, **k).numpy(),
                              "sphere_torch": lambda *a, **k: reference.clearance(*a, **k).numpy()})  # fmt: skip
    configs = len(scores["sphere"].contacts)

    dtype = str(spheres.dtype).removeprefix("torch.")
    print(f"{args.candidates} x {HORIZON} configurations, {len(boxes)} boxes, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads; checkers in {dtype}")  # fmt: skip
    header = (
        f"{'checker':14s} {'reach /s':>12s} {'carry /s':>12s} {'x MuJoCo':>9s} {'false free':>10s} {'false pos':>9s}"
    )
    print(header)
    for name in phases["carry"]:
        reach, carry = phases["reach"][name]["best"], phases["carry"][name]["best"]
        score = scores.get(name, scores["sphere_torch"]) if name != "mujoco" else None  # a device: the torch ops
        accuracy = f"{int(score.false_free.sum()):10d} {score.false_positive_rate:9.1%}" if score else ""
        ratio = carry / phases["carry"]["mujoco"]["best"]
        print(f"{name:14s} {reach:12,.0f} {carry:12,.0f} {ratio:9.2f} {accuracy}")
    medians = phases["carry"]["sphere"]["median"] / phases["carry"]["mujoco"]["median"]
    print(f"(best of {args.repeats} runs each; the carry's medians: ratio {medians:.2f})")
    print(f"accuracy on {configs} configurations of {len(cases)} family scenes (judged by MuJoCo in {judged:.1f} s):")
    print(scores["sphere"].table())

    if args.json:
        carry = {name: v["best"] for name, v in phases["carry"].items()}
        result = {
            "configs_per_s": carry["sphere"],
            "backend": spheres.backend,
            "dtype": dtype,
            "torch_configs_per_s": carry["sphere_torch"],
            "mujoco_configs_per_s": carry["mujoco"],
            "ratio": carry["sphere"] / carry["mujoco"],
            "ratio_of_medians": medians,
            "false_free": int(scores["sphere"].false_free.sum()),
            "false_free_per_category": dict(zip(CATEGORIES, scores["sphere"].false_free.tolist(), strict=True)),
            "false_positive_rate": scores["sphere"].false_positive_rate,
            "false_positives_per_category": dict(
                zip(CATEGORIES, scores["sphere"].category_false_positives().tolist(), strict=True)
            ),
            "configs": configs,
            "scenes": len(cases),
            "reach": phases["reach"],
            "batch": [args.candidates, HORIZON],
            "boxes": len(boxes),
            "threads": torch.get_num_threads(),
        }
        if gpu is not None:
            result[f"{args.device}_configs_per_s"] = carry["sphere_" + args.device]
        write_json(args.json, result)


if __name__ == "__main__":
    main()
