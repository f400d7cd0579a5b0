"""evaluate --planner flow|cem --episodes FILE.yaml --report OUT.json [--checkpoint CKPT] [--video DIR]
[--execution-steps K] [--plots DIR]: closed-loop evaluation of a planner on tray episodes in the physics sim.

For each tray pose of the episodes file (see flow_planner_ros.evaluation) it runs a full episode through the same
ROS 2 interfaces a real robot gets:
- the MuJoCo bridge (data_collector_ros SimBridge) runs *in this process*, so the one success function can read
  its simulation; it is driven only through its ROS interfaces: ~/reset (after setting its `tray_pose` parameter),
  ~/set_grasp, and the two joint_trajectory_controller topics;
- reach: IK goal for the two handles, plan + execute, judge; attach (~/set_grasp); carry: IK goal at the carry
  goal, plan + execute, judge. If the grasp fails, the scene is reset with the arms at the reach goal and the tray
  attached, so the carry phase is still evaluated (row flag `carry_from_reset`; the episode counts as failed);
- flow: the `planner` node runs as its own process (checkpoint, `execution_steps`, config/planner.yaml) and is
  called over DDS: /flow_planner/plan with execute=true, then the harness waits for that request's final
  /flow_planner/status (reached / failed), for the controllers to finish the trajectory, and 0.25 s settle;
- cem: the CEM expert plans in this process from the measured state and the harness publishes its trajectory on
  the two controller topics, then waits for its end + 0.25 s settle.
Waiting and settling are measured in simulated time. Planning time: flow = the node's own planning time per plan
(replans included), cem = the CEM's wall time; the flow service round trip is reported too.

Bad input (missing files, bad YAML, u/v outside [0, 1], a bad checkpoint) gives one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from flow_planner_ros.cli.common import run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--planner", required=True, choices=("flow", "cem"))
    parser.add_argument("--episodes", required=True, help="episodes YAML (tray_poses: [[u, v, yaw], ...])")
    parser.add_argument("--report", required=True, help="report JSON to write")
    parser.add_argument("--checkpoint", default=None, help="flow checkpoint (default: the installed default)")
    parser.add_argument("--video", default=None, help="folder for an MP4 of the first --video-episodes episodes")
    parser.add_argument("--video-episodes", type=int, default=3)
    parser.add_argument("--plots", default=None, help="folder for PNG plots (success/error per episode, joints)")
    parser.add_argument("--execution-steps", type=int, default=60, help="flow: planner execution_steps (1..60)")
    parser.add_argument("--num-samples", type=int, default=0, help="flow: best-of-N (0 = the planner's default)")
    parser.add_argument("--integration-steps", type=int, default=0, help="flow: Euler steps (0 = default)")
    parser.add_argument("--backend", choices=("onnx", "torch"), default=None, help="flow: planner backend")
    parser.add_argument("--limit", type=int, default=None, help="only the first N episodes")
    parser.add_argument("--seed", type=int, default=0, help="seeds IK restarts, CEM and flow sampling")
    parser.add_argument(
        "--real-time-factor", type=float, default=1.0,
        help="bridge speed (1 = real time). != 1: the bridge publishes /clock and the planner uses sim time",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no per-episode lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_cli("evaluate", lambda: _body(args))
    except RuntimeError as exc:  # the bridge or the planner failed at run time (not bad input)
        print(f"evaluate: failed: {exc}", file=sys.stderr)
        return 1


def _body(args: argparse.Namespace) -> int:
    from flow_planner_ros.evaluation import (
        collector_workspace,
        load_episodes,
        summarize,
        table,
        write_plots,
        write_report,
    )

    if not 1 <= args.execution_steps <= 60:
        raise ValueError(f"--execution-steps must be in 1..60 (got {args.execution_steps})")
    if args.real_time_factor <= 0 or not math.isfinite(args.real_time_factor):
        raise ValueError("--real-time-factor must be > 0")
    if args.video_episodes < 0:
        raise ValueError("--video-episodes must be >= 0")
    share = _share("data_collector_ros")
    x_range, y_range = collector_workspace(share / "config" / "collector.yaml" if share else None)
    episodes = load_episodes(args.episodes, x_range, y_range, args.limit)
    checkpoint = None
    if args.planner == "flow":
        checkpoint = Path(args.checkpoint) if args.checkpoint else _default_checkpoint()
        if not checkpoint.is_file():
            raise FileNotFoundError(f"checkpoint {checkpoint} not found")
        from flow_planner_ros.checkpoint import load_checkpoint

        load_checkpoint(checkpoint)  # a bad checkpoint is one clear line here, not a dead planner process
    started = time.perf_counter()
    harness = Harness(args, checkpoint)
    try:
        rows, curves, videos = harness.run(episodes)
    finally:
        harness.close()
    meta = {
        "episodes_file": str(args.episodes), "checkpoint": str(checkpoint) if checkpoint else None,
        "execution_steps": args.execution_steps if args.planner == "flow" else 60,
        "real_time_factor": args.real_time_factor, "seed": args.seed,
        "workspace_x": list(episodes.x_range), "workspace_y": list(episodes.y_range),
        "wall_time_s": time.perf_counter() - started,
        "round_trip_time_p50": _p([t for r in rows for p in r["phases"].values() for t in p["round_trip_times"]], 50),
        "round_trip_time_p95": _p([t for r in rows for p in r["phases"].values() for t in p["round_trip_times"]], 95),
    }  # fmt: skip
    report = summarize(args.planner, rows, meta)
    if args.plots:
        report["plots"] = [str(p) for p in write_plots(report, args.plots, curves)]
    if videos:
        report["videos"] = [str(v) for v in videos]
    write_report(args.report, report)
    print(table([report]))
    print(f"report: {args.report} ({report['wall_time_s']:.0f} s)")
    return 0


def _p(values: list[float], q: float) -> float:
    from flow_planner_ros.evaluation import percentile

    return percentile(values, q)


def _share(package: str) -> Path | None:
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return Path(get_package_share_directory(package))
    except PackageNotFoundError:
        return None


def _default_checkpoint() -> Path:
    share = _share("flow_planner_ros")
    if share is None:
        raise FileNotFoundError("flow_planner_ros is not installed (source install/setup.bash) and no --checkpoint")
    return share / "checkpoints" / "default.safetensors"


class Harness:
    """The bridge (in process), the planner (a process, flow only) and a client node, on one executor thread."""

    SETTLE = 0.25  # s of sim time after a trajectory ends, before judging (as the collector does)
    FRAME_DT = 0.05  # s of sim time between recorded states (joint curves; every VIDEO_STRIDE-th is a video frame)
    VIDEO_STRIDE = 2  # 10 frames per second of sim time: software rendering costs ~0.1 s per frame here
    VIDEO_SIZE = (384, 288)  # multiples of 8 (H.264 macro blocks)

    def __init__(self, args: argparse.Namespace, checkpoint: Path | None) -> None:
        import rclpy
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.node import Node
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile
        from std_srvs.srv import SetBool, Trigger
        from trajectory_msgs.msg import JointTrajectory

        import data_collector_ros  # noqa: F401  (sets MUJOCO_GL before mujoco is imported)
        from data_collector_ros.cem import CEMConfig, CEMPlanner
        from data_collector_ros.grid import GridConfig
        from data_collector_ros.ik import IKSolver
        from data_collector_ros.sim_bridge import SimBridge
        from data_collector_ros.task import TaskConfig
        from flow_planner_msgs.msg import PlannerStatus
        from flow_planner_msgs.srv import PlanTrajectory

        self.args = args
        self.sim_clock = args.real_time_factor != 1.0
        self.planner_process: subprocess.Popen | None = None
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.bridge = SimBridge(
            context=self.context,
            parameter_overrides=[
                Parameter("real_time_factor", value=float(args.real_time_factor)),
                Parameter("publish_clock", value=self.sim_clock),
            ],
        )
        self.sim = self.bridge.sim
        self.node = Node("evaluate", context=self.context)
        self.lock = threading.Lock()
        self.statuses: list[Any] = []
        self.commands: list[tuple[str, Any]] = []
        self.node.create_subscription(PlannerStatus, "/flow_planner/status", self._on_status, 100)
        self.publishers = {}
        for arm in ("left", "right"):
            topic = f"/{arm}_arm_controller/joint_trajectory"
            self.publishers[arm] = self.node.create_publisher(JointTrajectory, topic, 10)
            self.node.create_subscription(JointTrajectory, topic, lambda m, a=arm: self._on_command(a, m), 10)
        self.reset_client = self.node.create_client(Trigger, "/sim_bridge/reset")
        self.grasp_client = self.node.create_client(SetBool, "/sim_bridge/set_grasp")
        self.plan_client = self.node.create_client(
            PlanTrajectory, "/flow_planner/plan", qos_profile=QoSProfile(depth=10)
        )
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.bridge)
        self.executor.add_node(self.node)
        self.spin_thread = threading.Thread(target=self._spin, daemon=True)
        self.spin_thread.start()
        self.task = GridConfig().task_box(TaskConfig())
        self.ik = IKSolver(self.sim.model)
        self.cem = CEMPlanner(self.sim.model, CEMConfig()) if args.planner == "cem" else None
        self.dt = 0.05
        self.request_id = 0
        self._types = {"Trigger": Trigger, "SetBool": SetBool, "PlanTrajectory": PlanTrajectory}
        self._wait_service(self.reset_client, 10.0, "the bridge's ~/reset")
        if args.planner == "flow":
            self._start_planner(checkpoint)

    # ---------------------------------------------------------------------------------------------- plumbing
    def _spin(self) -> None:
        with contextlib.suppress(Exception):  # shutdown races (ExternalShutdownException, ...) end the thread quietly
            self.executor.spin()

    def _on_status(self, msg: Any) -> None:
        with self.lock:
            self.statuses.append(msg)

    def _on_command(self, arm: str, msg: Any) -> None:
        positions = np.array([p.positions for p in msg.points], dtype=float)
        velocities = np.array([p.velocities for p in msg.points], dtype=float)
        with self.lock:
            self.commands.append((arm, positions, velocities))

    def _call(self, client: Any, request: Any, timeout: float) -> Any:
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout):
            raise RuntimeError(f"service {client.srv_name} did not answer within {timeout:.0f} s")
        return future.result()

    def _wait_service(self, client: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not client.service_is_ready():
            if self.planner_process is not None and self.planner_process.poll() is not None:
                raise RuntimeError(
                    f"the planner exited ({self.planner_process.returncode}): {self._planner_log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")
            time.sleep(0.05)

    def _start_planner(self, checkpoint: Path) -> None:
        from ament_index_python.packages import get_package_prefix

        executable = Path(get_package_prefix("flow_planner_ros")) / "lib" / "flow_planner_ros" / "planner"
        if not executable.exists():
            raise FileNotFoundError(f"{executable} missing: colcon build the workspace")
        params = ["-p", f"checkpoint:={checkpoint}", "-p", f"execution_steps:={self.args.execution_steps}"]
        share = _share("flow_planner_ros")
        if share is not None and (share / "config" / "planner.yaml").is_file():
            params = ["--params-file", str(share / "config" / "planner.yaml"), *params]
        if self.args.backend:
            params += ["-p", f"backend:={self.args.backend}"]
        if self.sim_clock:
            params += ["-p", "use_sim_time:=true"]
        report = Path(self.args.report)
        report.parent.mkdir(parents=True, exist_ok=True)
        self.planner_log_path = report.with_name(report.stem + "_planner.log")
        self._planner_log = open(self.planner_log_path, "w")  # noqa: SIM115 - closed in close()
        self.planner_process = subprocess.Popen(
            [str(executable), "--ros-args", *params], stdout=self._planner_log, stderr=subprocess.STDOUT,
            env=os.environ,
        )  # fmt: skip
        self._wait_service(self.plan_client, 90.0, "the planner's /flow_planner/plan")
        deadline = time.monotonic() + 30.0
        while self.bridge.joint_pub.get_subscription_count() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # the planner's /joint_states subscription is matched: it gets the measured state

    def _planner_log_tail(self) -> str:
        try:
            return " | ".join(self.planner_log_path.read_text().strip().splitlines()[-3:])
        except OSError:
            return ""

    def close(self) -> None:
        import rclpy

        if self.planner_process is not None:
            if self.planner_process.poll() is None:
                self.planner_process.send_signal(signal.SIGINT)
                try:
                    self.planner_process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.planner_process.kill()
                    self.planner_process.wait()
            self._planner_log.close()
        self.executor.shutdown(timeout_sec=2.0)
        self.spin_thread.join(timeout=2.0)
        self.bridge.stop()
        self.node.destroy_node()
        self.bridge.destroy_node()
        rclpy.try_shutdown(context=self.context)

    # ------------------------------------------------------------------------------------------------ scene
    def reset(self, tray_pose: np.ndarray) -> None:
        from rclpy.parameter import Parameter

        result = self.bridge.set_parameters([Parameter("tray_pose", value=[float(a) for a in tray_pose])])
        if not result[0].successful:
            raise RuntimeError(f"cannot set the bridge's tray_pose: {result[0].reason}")
        response = self._call(self.reset_client, self._types["Trigger"].Request(), 10.0)
        if not response.success:
            raise RuntimeError(f"bridge reset failed: {response.message}")
        self._advance(0.1)  # fresh /joint_states of the new scene reach the planner

    def _advance(self, seconds: float, record: list | None = None) -> None:
        """Wait until `seconds` of sim time have passed."""
        target = self.sim.time + seconds
        self._wait(lambda: self.sim.time >= target, seconds, record)

    def _wait(self, condition: Any, sim_seconds: float, record: list | None = None) -> bool:
        """Poll `condition` until true; give up after about `sim_seconds` of sim time (+ slack). Samples the
        state into `record` every FRAME_DT of sim time."""
        wall_limit = time.monotonic() + 5.0 + 3.0 * sim_seconds / self.args.real_time_factor
        sim_limit = self.sim.time + sim_seconds
        next_sample = self.sim.time
        while True:
            now = self.sim.time
            if record is not None and now >= next_sample:
                with self.bridge.lock:
                    record.append((self.sim.time, self.sim.data.qpos.copy()))
                next_sample = now + self.FRAME_DT
            if condition():
                return True
            if (now >= sim_limit and sim_seconds > 0) or time.monotonic() > wall_limit:
                return condition()
            time.sleep(0.002)

    # ------------------------------------------------------------------------------------------------ episode
    def run(self, episodes: Any) -> tuple[list[dict[str, Any]], dict[str, Any] | None, list[Path]]:
        from data_collector_ros.grid import DEFAULT_REST_Z
        from data_collector_ros.task import tray_pose

        rows, curves, frames = [], None, []
        record_video = self.args.video is not None and self.args.video_episodes > 0
        for i in range(len(episodes)):
            x, y, yaw = episodes.xy_yaw(i)
            pose = tray_pose(x, y, yaw, float(self.sim.rest_tray_pose[2]) if self.sim else DEFAULT_REST_Z)
            want_record = i == 0 or (record_video and i < self.args.video_episodes)
            row, records = self.episode(i, pose, want_record)
            rows.append(row)
            planned = {name: p.pop("planned") for name, p in row["phases"].items()}
            if i == 0:
                curves = self._curves(records, planned)
            if record_video and i < self.args.video_episodes:
                frames.append(records)
            if not self.args.quiet:
                phases = " ".join(
                    f"{name}={'ok' if p['success'] else 'FAIL'}(ee {1000 * p['ee_error']:.1f} mm)"
                    for name, p in row["phases"].items()
                )
                reasons = "; ".join(r for p in row["phases"].values() for r in p["reasons"][:1])
                print(f"[{i + 1}/{len(episodes)}] u={episodes.uvyaw[i][0]:.2f} v={episodes.uvyaw[i][1]:.2f} "
                      f"yaw={yaw:+.2f}: {phases}" + (f"  ({reasons})" if reasons else ""), flush=True)  # fmt: skip
        videos = self._write_video(frames) if frames else []
        return rows, curves, videos

    def episode(self, index: int, pose: np.ndarray, want_record: bool) -> tuple[dict[str, Any], dict[str, list]]:
        from data_collector_ros.task import handle_targets
        from flow_planner_common.robot import PHASE_CARRY, PHASE_REACH

        seed = int(self.args.seed) * 100_003 + index
        records: dict[str, list] = {}
        row: dict[str, Any] = {
            "index": index, "tray_pose": pose.tolist(), "phases": {}, "carry_from_reset": False,
        }  # fmt: skip
        self.reset(pose)
        start = self.sim.state()
        targets, quats = handle_targets(self.sim.model, self.sim.index, pose)
        reach_ik = self.ik.solve(targets, quats, seed_positions=start.positions, seed=seed)
        rec: list | None = [] if want_record else None
        row["phases"]["reach"] = self.phase(PHASE_REACH, reach_ik, targets, pose, pose, seed, rec)
        records["reach"] = rec or []
        response = self._call(self.grasp_client, self._types["SetBool"].Request(data=True), 10.0)
        row["grasp"] = response.message
        if not response.success:
            with self.bridge.lock:
                self.sim.reset(pose, positions=reach_ik.positions)
                self.sim.attach(self.bridge.grasp_tolerance)
            row["carry_from_reset"] = True
            self._advance(0.1)
        carry_start = self.sim.state()
        tray_goal = self.task.carry_goal_pose(pose)
        targets, quats = handle_targets(self.sim.model, self.sim.index, tray_goal)
        carry_ik = self.ik.solve(targets, quats, seed_positions=carry_start.positions, seed=seed)
        rec = [] if want_record else None
        row["phases"]["carry"] = self.phase(PHASE_CARRY, carry_ik, targets, carry_start.tray_pose, tray_goal, seed, rec)
        records["carry"] = rec or []
        row["success"] = bool(
            row["phases"]["reach"]["success"] and row["phases"]["carry"]["success"] and not row["carry_from_reset"]
        )
        return row, records

    def phase(
        self, phase: int, ik: Any, ee_targets: np.ndarray, tray_start: np.ndarray, tray_goal: np.ndarray, seed: int,
        record: list | None,
    ) -> dict[str, Any]:  # fmt: skip
        from data_collector_ros.success import SuccessResult, evaluate_simulation
        from data_collector_ros.task import pose_error
        from flow_planner_common.robot import PHASE_REACH

        with self.lock:
            self.commands.clear()
        with self.bridge.lock:
            self.sim.reset_stats()
            start = self.sim.state()
        if self.args.planner == "flow":
            planning_times, round_trips, notes = self._run_flow(ik.positions, seed + 7919 * phase, record)
        else:
            planning_times, round_trips, notes = self._run_cem(phase, start, ik.positions, ee_targets, tray_start,
                                                               seed, record)  # fmt: skip
        self._wait(lambda: self.sim.trajectory_time_left() <= 0.0, 30.0, record)
        self._advance(self.SETTLE, record)
        with self.bridge.lock:
            try:
                result = evaluate_simulation(self.sim, phase, ee_targets, tray_start, tray_goal)
            except ValueError as exc:
                result = SuccessResult(False, (str(exc),))
            state = self.sim.state()
            stats = self.sim.stats
        # Success is the simulation's judgement (the one success function). The planner's own view (a refused
        # request, a "failed" status) is kept in `planner_notes` and explains a failure, but does not override it.
        success = bool(result.success and ik.success)
        reasons = ([] if success else list(notes)) + list(result.reasons)
        if not ik.success:
            reasons.insert(0, "IK did not converge")
        metrics = result.metrics
        ee_error = max(metrics.get("ee_error_left", math.nan), metrics.get("ee_error_right", math.nan))
        if phase == PHASE_REACH:
            tray_error, tray_angle = pose_error(state.tray_pose, tray_start)
        else:
            tray_error, tray_angle = metrics.get("tray_position_error", math.nan), metrics.get("tray_angle_error")
        plans, cuts, violations = self._published()
        executed = _executed(plans, cuts)
        sim_violation = int(stats.max_position_excess > 1e-3 or stats.max_command_velocity_ratio > 1.0
                            or stats.max_velocity_ratio > 1.10)  # fmt: skip
        return {
            "success": success,
            "reasons": reasons,
            "planner_notes": list(notes),
            "ee_error": float(ee_error),
            "tray_error": float(tray_error),
            "tray_angle_error": float(tray_angle) if tray_angle is not None else math.nan,
            "mean_jerk": _jerk(start, executed, self.dt),
            "path_length": _path(start, executed),
            "limit_violations": violations + sim_violation,
            "planning_times": planning_times,
            "round_trip_times": round_trips,
            "plans_published": len(plans),
            "max_velocity_ratio": float(stats.max_velocity_ratio),
            "goal": ik.positions.tolist(),
            "ik_success": bool(ik.success),
            "planned": plans[0].tolist() if plans else [],
        }

    def _published(self) -> tuple[list[np.ndarray], list[int | None], int]:
        """The plans published on the controller topics this phase (left + right joined) and their waypoint
        limit violations; every plan but the last is cut after execution_steps waypoints."""
        from flow_planner_ros.evaluation import waypoint_limit_violations

        with self.lock:
            commands = list(self.commands)
        lefts = [(p, v) for arm, p, v in commands if arm == "left"]
        rights = [(p, v) for arm, p, v in commands if arm == "right"]
        plans, violations = [], 0
        for (lp, lv), (rp, rv) in zip(lefts, rights, strict=False):
            if lp.shape == rp.shape and lp.ndim == 2:
                plans.append(np.hstack([lp, rp]))
                violations += waypoint_limit_violations(plans[-1], np.hstack([lv, rv]))
        k = self.args.execution_steps if self.args.planner == "flow" else None
        cuts: list[int | None] = [k] * (len(plans) - 1) + [None] if plans else []
        return plans, cuts, violations

    def _run_flow(self, goal: np.ndarray, seed: int, record: list | None) -> tuple[list[float], list[float], list]:
        from flow_planner_common.robot import JOINT_NAMES

        request = self._types["PlanTrajectory"].Request()
        request.joint_names = list(JOINT_NAMES)
        request.goal_positions = [float(a) for a in goal]
        request.num_samples = int(self.args.num_samples)
        request.integration_steps = int(self.args.integration_steps)
        request.seed = int(seed) % (2**31)
        request.execute = True
        for _attempt in range(50):  # the planner may not have a fresh /joint_states yet right after it started
            t0 = time.perf_counter()
            response = self._call(self.plan_client, request, 60.0)
            round_trip = time.perf_counter() - t0
            if response.success or "/joint_states" not in response.message:
                break
            time.sleep(0.1)
        if not response.success:
            return [float(response.planning_time)], [round_trip], [f"planner: {response.message}"]
        self.request_id += 1
        rid = self.request_id

        def final() -> Any:
            with self.lock:
                for msg in self.statuses:
                    if msg.request_id == rid and msg.state in ("reached", "failed", "preempted"):
                        return msg
            return None

        self._wait(lambda: final() is not None, 60.0, record)
        with self.lock:
            mine = [m for m in self.statuses if m.request_id == rid]
            self.statuses = [m for m in self.statuses if m.request_id > rid]
        times = [float(response.planning_time)]
        times += [
            float(m.last_planning_time) for m in mine if m.state == "executing" and m.message.startswith("replan")
        ]
        final_msg = next((m for m in mine if m.state != "executing"), None)
        notes = []
        if final_msg is None:
            notes.append("planner: no final status within 60 s")
        elif final_msg.state != "reached":
            notes.append(f"planner: {final_msg.state}: {final_msg.message}")
        return times, [round_trip], notes

    def _run_cem(
        self, phase: int, start: Any, goal: np.ndarray, ee_targets: np.ndarray, tray_start: np.ndarray, seed: int,
        record: list | None,
    ) -> tuple[list[float], list[float], list]:  # fmt: skip
        from builtin_interfaces.msg import Duration
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        from data_collector_ros.plan_cost import PhaseContext
        from flow_planner_common.robot import LEFT_ARM_JOINTS, RIGHT_ARM_JOINTS

        context = PhaseContext(phase, start.positions, start.velocities, tray_start, ee_targets, self.dt)
        plan = self.cem.plan(context, goal, np.random.default_rng([seed, phase]))
        for arm, joints in (("left", LEFT_ARM_JOINTS), ("right", RIGHT_ARM_JOINTS)):
            cols = slice(0, 6) if arm == "left" else slice(6, 12)
            msg = JointTrajectory(joint_names=list(joints))
            for k in range(len(plan.positions)):
                sec, nanosec = divmod(round((k + 1) * self.dt * 1e9), 1_000_000_000)
                msg.points.append(JointTrajectoryPoint(
                    positions=plan.positions[k, cols].tolist(), velocities=plan.velocities[k, cols].tolist(),
                    time_from_start=Duration(sec=sec, nanosec=nanosec),
                ))  # fmt: skip
            self.publishers[arm].publish(msg)
        accepted = self._wait(lambda: self.sim.trajectory_time_left() > 0.0, 2.0, record)
        notes = [] if accepted else ["controllers did not accept the CEM trajectory"]
        return [plan.seconds], [], notes

    # ---------------------------------------------------------------------------------------- curves, video
    def _curves(self, records: dict[str, list], planned: dict[str, list]) -> dict[str, Any]:
        phases = {}
        q = np.asarray(self.sim.index.qpos_adr)  # the arm joints' qpos addresses, JOINT_NAMES order
        for name, rec in records.items():
            if not rec:
                continue
            t0 = rec[0][0]
            phases[name] = {
                "measured_t": [t - t0 for t, _ in rec],
                "measured": [qpos[q].tolist() for _, qpos in rec],
                "planned": planned.get(name, []),
            }
        return {"dt": self.dt, "episode": 0, "phases": phases}

    def _write_video(self, episodes: list[dict[str, list]]) -> list[Path]:
        import mujoco  # after data_collector_ros (Harness.__init__) set MUJOCO_GL

        from data_collector_ros.render import SceneRenderer, save_mp4

        data = mujoco.MjData(self.sim.model)
        frames = []
        width, height = self.VIDEO_SIZE
        with SceneRenderer(self.sim.model, width=width, height=height) as renderer:
            for records in episodes:
                for name in ("reach", "carry"):
                    for _, qpos in records.get(name, [])[:: self.VIDEO_STRIDE]:
                        data.qpos[:] = qpos
                        mujoco.mj_forward(self.sim.model, data)
                        frames.append(renderer.frame(data))
        if not frames:
            return []
        path = Path(self.args.video) / f"evaluate_{self.args.planner}.mp4"
        save_mp4(path, frames, fps=1.0 / (self.FRAME_DT * self.VIDEO_STRIDE))
        path.chmod(0o644)
        return [path]


def _jerk(start: Any, executed: np.ndarray, dt: float) -> float:
    from flow_planner_ros.evaluation import mean_jerk

    return mean_jerk(start.positions, start.velocities, executed, dt) if len(executed) else math.nan


def _path(start: Any, executed: np.ndarray) -> float:
    from flow_planner_ros.evaluation import path_length

    return path_length(start.positions, executed) if len(executed) else math.nan


def _executed(plans: list[np.ndarray], cuts: list[int | None]) -> np.ndarray:
    from flow_planner_ros.evaluation import executed_waypoints

    return executed_waypoints(plans, cuts)


if __name__ == "__main__":
    sys.exit(main())
