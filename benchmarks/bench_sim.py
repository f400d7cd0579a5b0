"""Simulation numbers: physics steps/s (raw and with the controller/monitor), the bridge loop's achieved real-time
factor at real_time_factor=0 (as fast as possible, in-process node, joint states at 100 Hz of sim time), and IK
milliseconds per solve. Optionally renders the scene to a PNG (--png PATH). Run inside the workspace environment."""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from data_collector_ros.ik import IKSolver
from data_collector_ros.simulation import Simulation
from data_collector_ros.task import TaskConfig, handle_targets
from flow_planner_common.motion import min_jerk_waypoints
from flow_planner_common.robot import DEFAULT_DT


def physics_steps_per_second(sim: Simulation, steps: int) -> tuple[float, float]:
    import mujoco  # after data_collector_ros, which picks the headless GL backend (MUJOCO_GL) before mujoco loads

    sim.reset()
    start = time.perf_counter()
    for _ in range(steps):
        mujoco.mj_step(sim.model, sim.data)
    raw = steps / (time.perf_counter() - start)
    sim.reset()
    goal = sim.state().positions + 0.3
    positions, velocities = min_jerk_waypoints(sim.state().positions, goal, DEFAULT_DT)
    sim.execute(positions, velocities, DEFAULT_DT)
    start = time.perf_counter()
    sim.step(steps)
    return raw, steps / (time.perf_counter() - start)


def ik_ms_per_solve(sim: Simulation, count: int) -> tuple[float, float]:
    ik, task = IKSolver(sim.model), TaskConfig()
    poses = task.grid(4, 4, 3, float(sim.rest_tray_pose[2]))[:count]
    times = []
    for pose in poses:
        targets, quats = handle_targets(sim.model, sim.index, pose)
        start = time.perf_counter()
        result = ik.solve(targets, quats)
        times.append(time.perf_counter() - start)
        assert result.success
    return 1000 * float(np.median(times)), 1000 * float(np.max(times))


def bridge_real_time_factor(seconds: float) -> float:
    import rclpy

    from data_collector_ros.sim_bridge import SimBridge

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(os.environ.get("ROS_DOMAIN_ID", "77")))
    node = SimBridge(context=context, parameter_overrides=[rclpy.parameter.Parameter("real_time_factor", value=0.0)])
    try:
        sim_start, wall_start = node.sim.time, time.monotonic()
        time.sleep(seconds)
        return (node.sim.time - sim_start) / (time.monotonic() - wall_start)
    finally:
        node.stop()
        node.destroy_node()
        rclpy.shutdown(context=context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--ik-solves", type=int, default=40)
    parser.add_argument("--bridge-seconds", type=float, default=3.0)
    parser.add_argument("--png", default="", help="also render the scene at the IK reach pose to this PNG")
    args = parser.parse_args()
    sim = Simulation()
    raw, controlled = physics_steps_per_second(sim, args.steps)
    print(
        f"physics steps/s: raw mj_step {raw:,.0f}; with trajectory control + monitor {controlled:,.0f}"
        f" (timestep {sim.timestep * 1000:.0f} ms -> {controlled * sim.timestep:.1f}x real time)"
    )
    median, worst = ik_ms_per_solve(sim, args.ik_solves)
    print(f"IK ms/solve (both arms, handle targets): median {median:.2f}, max {worst:.2f}")
    rtf = bridge_real_time_factor(args.bridge_seconds)
    print(f"sim_bridge achieved real-time factor at real_time_factor=0: {rtf:.1f}")
    if args.png:
        from data_collector_ros.render import SceneRenderer, save_png

        pose = sim.rest_tray_pose
        targets, quats = handle_targets(sim.model, sim.index, pose)
        goal = IKSolver(sim.model).solve(targets, quats).positions
        sim.reset(pose)
        positions, velocities = min_jerk_waypoints(sim.state().positions, goal, DEFAULT_DT)
        sim.run_trajectory(positions, velocities, DEFAULT_DT)
        with SceneRenderer(sim.model, 960, 720) as renderer:
            print(f"rendered {save_png(args.png, renderer.frame(sim.data))}")


if __name__ == "__main__":
    main()
