"""Collision checking throughput: the batched numpy checker (flow_planner_common.collision) against the MuJoCo path
the expert's cost uses today (per configuration: mj_kinematics + mj_collision, in the carry phase a second
mj_kinematics after placing the tray, as plan_cost does), on the same candidates in the same scene, in one run.

    python benchmarks/bench_collision.py [--candidates 64] [--repeats 5] [--seed 0]

Candidates are CEM-like: the minimum-jerk line from home to a perturbed goal, bent by smooth random offsets; the
scene has MAX_OBSTACLES boxes around the arms. Prints configurations per second of both paths and their ratio,
for the reach (tray resting) and the carry (tray following the left tool). Numbers, never asserted.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import time

import mujoco
import numpy as np

from data_collector_ros.scene import GROUP_LEFT, GROUP_RIGHT, GROUP_TRAY, SceneIndex, load_model, place_obstacles
from flow_planner_common.collision import CollisionChecker, TrayGrasp
from flow_planner_common.motion import min_jerk_waypoints
from flow_planner_common.obstacles import MAX_OBSTACLES, Box
from flow_planner_common.robot import DEFAULT_DT, HOME_POSITIONS, HORIZON, NUM_JOINTS

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


def scene(rng: np.random.Generator, checker: CollisionChecker) -> list[Box]:
    """MAX_OBSTACLES boxes around the arms, each at least 5 cm from the arms at home and from the resting tray."""
    boxes: list[Box] = []
    while len(boxes) < MAX_OBSTACLES:
        box = Box(
            (rng.uniform(0.2, 0.7), rng.uniform(-0.5, 0.5), rng.uniform(0.85, 1.3)),
            tuple(rng.uniform(0.05, 0.25, 3)),
            rng.uniform(-math.pi, math.pi),
        )
        if checker.clearance(HOME_POSITIONS, [box], tray_pose=TRAY_POSE).as_array()[:5].min() > 0.05:
            boxes.append(box)
    return boxes


def mujoco_model(boxes: list[Box]) -> tuple[mujoco.MjModel, SceneIndex]:
    """plan_cost's private model: arm margins = CLEARANCE, tray colliding with the arms, the scene's boxes placed."""
    model = copy.deepcopy(load_model())
    index = SceneIndex.from_model(model)
    model.geom_margin[np.isin(index.geom_group, (GROUP_LEFT, GROUP_RIGHT))] = CLEARANCE
    model.geom_conaffinity[index.geom_group == GROUP_TRAY] |= 2 | 4
    model.body_conaffinity[index.tray_body] |= 2 | 4
    place_obstacles(model, index, boxes)
    return model, index


def mujoco_rate(model: mujoco.MjModel, index: SceneIndex, positions: np.ndarray, carry: bool) -> float:
    """Configurations per second of the per-configuration MuJoCo path (closest contact distance kept, as plan_cost)."""
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


def checker_rate(checker: CollisionChecker, positions: np.ndarray, boxes: list[Box], repeats: int, **tray) -> float:
    checker.clearance(positions[:2], boxes, **tray)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        checker.clearance(positions, boxes, **tray)
        times.append(time.perf_counter() - start)
    return positions.shape[0] * positions.shape[1] / float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    checker = CollisionChecker(max_distance=0.05)
    boxes = scene(rng, checker)
    positions = candidates(rng, args.candidates)
    model, index = mujoco_model(boxes)
    grasp: TrayGrasp = checker.grasp_from_start(HOME_POSITIONS, TRAY_POSE)
    report = checker.clearance(positions, boxes, tray_pose=TRAY_POSE)
    print(f"{args.candidates} x {HORIZON} configurations, {len(boxes)} boxes, {os.cpu_count()} CPUs; "
          f"{(report.overall <= CLEARANCE).mean():.0%} of waypoints within {CLEARANCE * 1000:.0f} mm")  # fmt: skip
    for phase, carry, tray in (("reach", False, {"tray_pose": TRAY_POSE}), ("carry", True, {"grasp": grasp})):
        ours = checker_rate(checker, positions, boxes, args.repeats, **tray)
        theirs = mujoco_rate(model, index, positions, carry)
        print(f"{phase}: numpy batched {ours:,.0f} configurations/s, MuJoCo per configuration {theirs:,.0f}/s, "
              f"ratio {ours / theirs:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
