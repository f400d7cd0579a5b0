"""Planner latency: PlanTrajectory service round trips over real DDS against the CEM expert on the same requests.

    python benchmarks/bench_planner.py [--checkpoint CKPT] [--calls 200] [--poses 10]

Requests are real reach requests: start at home, goal = IK of the handles for tray poses of the collector's grid.
Prints p50/p95 of the service round trip (client side, over DDS, planner in its own process) for num_samples 1 and
8, the CEM expert's planning time on the same requests (in-process, kinematic CEM), their ratio, and the cost of one
receding-horizon replan (sampling + projection + cross-fade + checks, in-process), then a load run: `--clients`
clients sending `--load-requests` in all (latency, requests/s, busy answers, planner RSS). Numbers, never asserted.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import data_collector_ros  # noqa: F401  (sets MUJOCO_GL before mujoco is imported)
from data_collector_ros.cem import CEMPlanner
from data_collector_ros.grid import GridConfig, grid_pose
from data_collector_ros.ik import IKSolver
from data_collector_ros.plan_cost import PhaseContext
from data_collector_ros.simulation import Simulation
from data_collector_ros.task import handle_targets
from flow_planner_common.robot import (
    DEFAULT_DT,
    HOME_POSITIONS,
    JOINT_POSITION_LIMITS,
    JOINT_VELOCITY_LIMITS,
    PHASE_REACH,
)

WORKSPACE = Path(__file__).resolve().parents[1]
PLANNER = WORKSPACE / "install" / "flow_planner_ros" / "lib" / "flow_planner_ros" / "planner"


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def reach_requests(count: int) -> tuple[list[np.ndarray], list[PhaseContext], Simulation]:
    """IK goals and CEM contexts of `count` grid tray poses, from home at rest."""
    sim = Simulation()
    ik = IKSolver(sim.model)
    grid = GridConfig()
    goals, contexts = [], []
    for index in range(count):
        pose = grid_pose(grid, index)
        start = sim.reset(pose)
        targets, quats = handle_targets(sim.model, sim.index, pose)
        goals.append(ik.solve(targets, quats, seed_positions=start.positions, seed=index).positions)
        contexts.append(PhaseContext(PHASE_REACH, start.positions, start.velocities, pose, targets, DEFAULT_DT))
    return goals, contexts, sim


def bench_cem(goals: list[np.ndarray], contexts: list[PhaseContext], sim: Simulation) -> list[float]:
    planner = CEMPlanner(sim.model)
    times = []
    for i, (goal, context) in enumerate(zip(goals, contexts, strict=True)):
        start = time.perf_counter()
        planner.plan(context, goal, np.random.default_rng(i))
        times.append(time.perf_counter() - start)
    return times


def bench_replan(checkpoint: str, goal: np.ndarray, repeats: int) -> list[float]:
    """One receding-horizon replan (execution_steps = 15) from the middle of a running plan, in-process."""
    from flow_planner_ros.learning.flow_sampler import FlowSampler
    from flow_planner_ros.planning.continuation import commanded_trajectory, running_plan_prefix
    from flow_planner_ros.planning.pipeline import PlanningPipeline
    from flow_planner_ros.planning.request import PlanRequest
    from flow_planner_ros.planning.trajectory_safety import SafetyLimits

    planner = FlowSampler.from_checkpoint(checkpoint, backend="onnx", num_threads=1)
    core = PlanningPipeline(planner, SafetyLimits.from_arrays(JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS))
    first = core.plan(PlanRequest(HOME_POSITIONS, np.zeros(12), goal, 8, 5, 0, True))
    if not first.success:
        print(f"  replan: first plan failed ({first.message()}); skipped")
        return []
    state = PlanRequest(first.positions[14], first.velocities[14], goal, 8, 5, 1, True)
    running = commanded_trajectory(HOME_POSITIONS, np.zeros(12), first.positions, first.velocities, planner.dt)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        core.plan(state, prefix=lambda: running_plan_prefix(running, planner.dt, 0.75, 5))
        times.append(time.perf_counter() - start)
    return times


def bench_service(checkpoint: str, goals: list[np.ndarray], calls: int, domain_id: int) -> dict[int, list[float]]:
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import QoSProfile

    from flow_planner_msgs.srv import PlanTrajectory

    env = {**os.environ, "ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    args = [str(PLANNER), "--ros-args", "-p", f"checkpoint:={checkpoint}", "-p", "backend:=onnx"]
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = Node("bench_planner_client", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    client = node.create_client(PlanTrajectory, "/flow_planner/plan", qos_profile=QoSProfile(depth=10))
    results: dict[int, list[float]] = {}
    try:
        if not client.wait_for_service(timeout_sec=60.0):
            raise RuntimeError(f"planner did not come up: {process.stderr.read() if process.poll() else ''}")
        for num_samples in (1, 8):
            times, failures = [], 0
            for i in range(calls + 5):
                request = PlanTrajectory.Request(
                    start_positions=list(HOME_POSITIONS), goal_positions=list(goals[i % len(goals)]),
                    num_samples=num_samples, seed=i,
                )  # fmt: skip
                start = time.perf_counter()
                future = client.call_async(request)
                executor.spin_until_future_complete(future, timeout_sec=30.0)
                elapsed = time.perf_counter() - start
                if i >= 5:  # warm-up calls excluded
                    times.append(elapsed)
                    failures += not future.result().success
            results[num_samples] = times
            print(f"  service num_samples={num_samples}: {failures}/{calls} requests without a safe candidate")
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    return results


def process_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:")) / 1024


def bench_concurrent(checkpoint: str, goals: list[np.ndarray], clients: int, requests: int, domain_id: int) -> None:
    """`clients` client nodes (one thread each) send `requests` in all, each waiting for its answer before the next:
    latency, throughput, busy answers and the planner's RSS before and after."""
    import threading

    import rclpy
    from rclpy.node import Node
    from rclpy.qos import QoSProfile

    from flow_planner_msgs.srv import PlanTrajectory

    env = {**os.environ, "ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    args = [str(PLANNER), "--ros-args", "-p", f"checkpoint:={checkpoint}", "-p", "backend:=onnx"]
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    latencies: list[float] = []
    answers = {"ok": 0, "busy": 0, "other": 0}
    lock = threading.Lock()

    def run_client(index: int, count: int) -> None:
        node = Node(f"bench_concurrent_{index}", context=context)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        client = node.create_client(PlanTrajectory, "/flow_planner/plan", qos_profile=QoSProfile(depth=100))
        client.wait_for_service(timeout_sec=60.0)
        for i in range(count):
            request = PlanTrajectory.Request(
                start_positions=list(HOME_POSITIONS), goal_positions=list(goals[i % len(goals)]), seed=i
            )
            started = time.perf_counter()
            future = client.call_async(request)
            executor.spin_until_future_complete(future, timeout_sec=60.0)
            elapsed = time.perf_counter() - started
            result = future.result()
            with lock:
                latencies.append(elapsed)
                kind = "ok" if result and result.success else ("busy" if result and result.message.startswith("busy")
                                                                 else "other")  # fmt: skip
                answers[kind] += 1
        node.destroy_node()

    try:
        probe = Node("bench_concurrent_probe", context=context)
        probe.create_client(PlanTrajectory, "/flow_planner/plan").wait_for_service(timeout_sec=60.0)
        probe.destroy_node()
        rss_before = process_rss_mib(process.pid)
        threads = [threading.Thread(target=run_client, args=(k, requests // clients)) for k in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        rss_after = process_rss_mib(process.pid)
    finally:
        rclpy.shutdown(context=context)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    p50, p95 = percentiles(latencies)
    print(f"  {clients} concurrent clients, {len(latencies)} requests (8 samples): p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
          f"{len(latencies) / wall:.1f} requests/s; answers {answers}; planner RSS {rss_before:.0f} -> "
          f"{rss_after:.0f} MiB")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="default: the checkpoint installed with flow_planner_ros")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--poses", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients of the load run (0 = skip it)")
    parser.add_argument("--load-requests", type=int, default=500, help="requests of the load run, in all")
    args = parser.parse_args()
    checkpoint = args.checkpoint
    if checkpoint is None:
        from flow_planner_ros.node.planner_node import default_checkpoint_path

        checkpoint = str(default_checkpoint_path())
    if not Path(checkpoint).is_file():
        print(f"bench_planner: no checkpoint at {checkpoint} (pass --checkpoint)", file=sys.stderr)
        return 2

    goals, contexts, sim = reach_requests(args.poses)
    cem = bench_cem(goals, contexts, sim)
    service = bench_service(checkpoint, goals, args.calls, domain_id=150 + os.getpid() % 80)
    replan = bench_replan(checkpoint, goals[0], repeats=50)
    if args.clients > 0:
        bench_concurrent(checkpoint, goals, args.clients, args.load_requests, domain_id=150 + (os.getpid() + 1) % 80)

    cem_p50, cem_p95 = percentiles(cem)
    print(f"checkpoint {checkpoint}; {args.calls} calls per setting, {args.poses} reach requests")
    print(f"  CEM expert (in-process, kinematic): p50 {cem_p50:.1f} ms, p95 {cem_p95:.1f} ms")
    for num_samples, times in service.items():
        p50, p95 = percentiles(times)
        print(f"  flow service round trip, num_samples={num_samples}: p50 {p50:.1f} ms, p95 {p95:.1f} ms"
              f"  (CEM p50 / flow p50 = {cem_p50 / p50:.1f}x)")
    if replan:
        p50, p95 = percentiles(replan)
        print(f"  replan per chunk (8 samples, projection + cross-fade + checks): p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
