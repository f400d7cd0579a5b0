"""The ROS plumbing of `evaluate`: the MuJoCo bridge in this process, the flow planner over DDS, the controller
topics.

- The bridge (data_collector_ros SimBridge) runs *in this process*, so the one success function can read its
  simulation; it is driven only through its ROS interfaces: ~/reset (after setting its `tray_pose` and `obstacles`
  parameters),
  ~/set_grasp, and the two joint_trajectory_controller topics. The harness is an EpisodeScene
  (data_collector_ros.episode_sequence) over those interfaces.
- Flow: the `planner` node runs as its own process (flow_planner_eval.planner_process) and is called over DDS:
  /flow_planner/plan with execute=true, then the harness waits for that request's final /flow_planner/status
  (reached / failed / preempted). The request carries the scene's boxes (`obstacles`, besides the bridge's latched
  /scene/obstacles: the request is what makes the current scene's boxes certain to be known when it is planned) and,
  for the carry, `carrying_tray` with the tray's measured pose. `restart_planner` swaps the planner process (other
  node parameters) under the same bridge.
- A plan computed here (the CEM expert) is published on the two controller topics.
- Everything published on the controller topics is captured, so a phase's executed plans can be measured.
- The scene's boxes go to the bridge with the tray pose: its `obstacles` parameter (7 numbers per box) is set with
  `tray_pose` before ~/reset, which places them and publishes the scene (a bridge without that parameter gets them
  placed in its simulation directly, Simulation.set_obstacles; they stay through its resets).
Waiting is measured in simulated time; while waiting, the simulation's qpos is sampled every FRAME_DT into a
recording (video, plots) and every TRACE_DT (the simulation's monitor interval, 10 ms) into the phase's trace, from
which `Clearance` measures the smallest distance between the robot (arms, tray) and the obstacles.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flow_planner_common import service_calls
from flow_planner_common.robot import JOINT_NAMES
from flow_planner_common.ros_messages import arm_trajectories
from flow_planner_eval.planner_process import PlannerLaunch, PlannerProcess

#: (sim time, qpos) samples of the simulation, appended while the harness waits.
Record = list[tuple[float, np.ndarray]]


@dataclass
class PlanAttempt:
    """What planning one phase took: planning times (s, replans included), service round trips (s), and the
    planner's own account of a problem (`notes`, empty when none)."""

    planning_times: list[float]
    round_trip_times: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class EvaluationHarness:
    """The bridge (in process), the planner (a process, flow only) and a client node, on one executor thread."""

    FRAME_DT = 0.05  # s of sim time between recorded states
    TRACE_DT = 0.01  # s of sim time between traced states (the simulation's monitor interval: 5 steps of 2 ms)
    RESET_SETTLE = 0.1  # s of sim time after a reset: fresh /joint_states of the new scene reach the planner

    def __init__(self, real_time_factor: float, planner: PlannerLaunch | None = None) -> None:
        import rclpy
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.node import Node
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile
        from std_srvs.srv import SetBool, Trigger
        from trajectory_msgs.msg import JointTrajectory

        import data_collector_ros  # noqa: F401  (sets MUJOCO_GL before mujoco is imported)
        from data_collector_ros.sim_bridge import SimBridge
        from flow_planner_msgs.msg import PlannerStatus
        from flow_planner_msgs.srv import PlanTrajectory

        self.real_time_factor = float(real_time_factor)
        sim_clock = self.real_time_factor != 1.0
        self.planner: PlannerProcess | None = None
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.bridge = SimBridge(
            context=self.context,
            parameter_overrides=[
                Parameter("real_time_factor", value=self.real_time_factor),
                Parameter("publish_clock", value=sim_clock),
            ],
        )
        self.sim = self.bridge.sim
        self.node = Node("evaluate", context=self.context)
        self.lock = threading.Lock()
        self.statuses: list[Any] = []
        self.commands: list[tuple[str, np.ndarray, np.ndarray]] = []
        self.grasp_message = ""
        self.obstacles: tuple[Any, ...] = ()  # the boxes `reset` places
        self.trace: list[np.ndarray] = []  # qpos every TRACE_DT since begin_phase
        self._next_trace = 0.0
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
        self._types = {"Trigger": Trigger, "SetBool": SetBool, "PlanTrajectory": PlanTrajectory}
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.bridge)
        self.executor.add_node(self.node)
        self.spin_thread = threading.Thread(target=self._spin, daemon=True)
        self.spin_thread.start()
        self.request_id = 0
        self.send_obstacles = True  # put the scene's boxes in flow requests (see request_plan)
        self.obstacles_refused = False  # the planner refused them: it plans without seeing the boxes
        try:
            self._wait_service(self.reset_client, 10.0, "the bridge's ~/reset")
            if planner is not None:
                self._start_planner(planner)
        except BaseException:
            self.close()
            raise

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
        response = service_calls.call(client, request, timeout)
        if response is None:
            raise RuntimeError(f"service {client.srv_name} did not answer within {timeout:.0f} s")
        return response

    def _wait_service(self, client: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not client.service_is_ready():
            if self.planner is not None and self.planner.exited():
                raise RuntimeError(self.planner.describe_exit())
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")
            time.sleep(0.05)

    def _start_planner(self, launch: PlannerLaunch) -> None:
        self.planner = PlannerProcess(launch)
        self._wait_service(self.plan_client, 90.0, "the planner's /flow_planner/plan")
        planner, empty = self.planner, self._types["PlanTrajectory"].Request()
        exited = lambda: planner.describe_exit() if planner.exited() else None  # noqa: E731
        try:  # the planner refuses an empty request; once one answer arrives, every later one reaches us
            service_calls.call_until_answered(self.plan_client, empty, 60.0, why_not=exited)
        except TimeoutError as exc:
            raise RuntimeError(str(exc)) from None
        deadline = time.monotonic() + 30.0
        while self.bridge.joint_pub.get_subscription_count() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # the planner's /joint_states subscription is matched: it gets the measured state

    def restart_planner(self, launch: PlannerLaunch | None) -> None:
        """Stop the running planner process (if any) and start one with `launch` (None: none)."""
        self.stop_planner()
        if launch is not None:
            self._start_planner(launch)

    def stop_planner(self) -> None:
        if self.planner is not None:
            self.planner.stop()
            self.planner = None
        with self.lock:
            self.statuses.clear()
        self.request_id = 0  # a new planner numbers its requests from 1 again

    def close(self) -> None:
        import rclpy

        if self.planner is not None:
            self.planner.stop()
        self.executor.shutdown(timeout_sec=2.0)
        self.spin_thread.join(timeout=2.0)
        self.bridge.stop()
        self.node.destroy_node()
        self.bridge.destroy_node()
        rclpy.try_shutdown(context=self.context)

    # ----------------------------------------------------------------------------------- scene (EpisodeScene)
    @contextlib.contextmanager
    def locked(self) -> Iterator[Any]:
        """The simulation, with the bridge's stepping paused."""
        with self.bridge.lock:
            yield self.sim

    def state(self) -> Any:
        with self.bridge.lock:
            return self.sim.state()

    def set_obstacles(self, boxes: Any) -> None:
        """The boxes the next `reset` places (a sequence of flow_planner_common.obstacles.Box)."""
        self.obstacles = tuple(boxes)

    def reset(self, tray_pose: np.ndarray) -> Any:
        """Set the bridge's tray_pose and obstacles parameters and call its ~/reset; the state after
        RESET_SETTLE."""
        from rclpy.parameter import Parameter

        parameters = [Parameter("tray_pose", value=[float(a) for a in tray_pose])]
        if self.bridge.has_parameter("obstacles"):
            flat = [float(v) for box in self.obstacles for v in box.as_array()]
            parameters.append(Parameter("obstacles", Parameter.Type.DOUBLE_ARRAY, flat))
        else:  # a bridge that does not take a scene: its resets keep whatever boxes its simulation holds
            with self.bridge.lock:
                self.sim.set_obstacles(self.obstacles)
        for result in self.bridge.set_parameters(parameters):
            if not result.successful:
                raise RuntimeError(f"cannot set the bridge's scene: {result.reason}")
        response = self._call(self.reset_client, self._types["Trigger"].Request(), 10.0)
        if not response.success:
            raise RuntimeError(f"bridge reset failed: {response.message}")
        self.advance(self.RESET_SETTLE)
        return self.state()

    def attach(self) -> bool:
        """~/set_grasp true; its message is kept in `grasp_message`."""
        response = self._call(self.grasp_client, self._types["SetBool"].Request(data=True), 10.0)
        self.grasp_message = response.message
        return bool(response.success)

    def reset_attached(self, tray_pose: np.ndarray, arm_positions: np.ndarray) -> Any:
        """The scene with the arms at `arm_positions` and the tray at `tray_pose`, grasped (bypasses ROS)."""
        with self.bridge.lock:
            self.sim.reset(tray_pose, positions=arm_positions)
            self.sim.attach(self.bridge.grasp_tolerance)
        self.advance(0.1)
        return self.state()

    def begin_phase(self) -> Any:
        """Forget the captured commands, clear the simulation's execution stats; the start state."""
        with self.lock:
            self.commands.clear()
        with self.bridge.lock:
            self.sim.reset_stats()
            self.trace = [self.sim.data.qpos.copy()]
            self._next_trace = self.sim.time + self.TRACE_DT
            return self.sim.state()

    # ---------------------------------------------------------------------------------------------- waiting
    def advance(self, seconds: float, record: Record | None = None) -> None:
        """Wait until `seconds` of sim time have passed."""
        target = self.sim.time + seconds
        self.wait(lambda: self.sim.time >= target, seconds, record)

    def wait(self, condition: Callable[[], bool], sim_seconds: float, record: Record | None = None) -> bool:
        """Poll `condition` until true; give up after about `sim_seconds` of sim time (+ slack). Samples the
        state into `record` every FRAME_DT of sim time."""
        wall_limit = time.monotonic() + 5.0 + 3.0 * sim_seconds / self.real_time_factor
        sim_limit = self.sim.time + sim_seconds
        next_sample = self.sim.time
        while True:
            now = self.sim.time
            if now >= self._next_trace or (record is not None and now >= next_sample):
                with self.bridge.lock:
                    qpos, now = self.sim.data.qpos.copy(), self.sim.time
                if now >= self._next_trace:
                    self.trace.append(qpos)
                    self._next_trace = now + self.TRACE_DT - 1e-9
                if record is not None and now >= next_sample:
                    record.append((now, qpos))
                    next_sample = now + self.FRAME_DT
            if condition():
                return True
            if (now >= sim_limit and sim_seconds > 0) or time.monotonic() > wall_limit:
                return condition()
            time.sleep(0.002)

    def wait_until_executed(self, timeout: float, record: Record | None = None) -> bool:
        """Wait for the controllers to finish the running trajectory."""
        return self.wait(lambda: self.sim.trajectory_time_left() <= 0.0, timeout, record)

    # ----------------------------------------------------------------------------------------------- plans
    def published_plans(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(positions, velocities) of each plan published on the controller topics since `begin_phase`, the left
        and right arm joined (JOINT_NAMES order)."""
        with self.lock:
            commands = list(self.commands)
        lefts = [(p, v) for arm, p, v in commands if arm == "left"]
        rights = [(p, v) for arm, p, v in commands if arm == "right"]
        return [
            (np.hstack([lp, rp]), np.hstack([lv, rv]))
            for (lp, lv), (rp, rv) in zip(lefts, rights, strict=False)
            if lp.shape == rp.shape and lp.ndim == 2
        ]

    def publish_plan(self, positions: np.ndarray, velocities: np.ndarray, dt: float, record: Record | None) -> bool:
        """Publish a (H, 12) plan on the two controller topics; whether the controllers started executing it."""
        for arm, msg in zip(("left", "right"), arm_trajectories(positions, velocities, dt), strict=True):
            self.publishers[arm].publish(msg)
        return self.wait(lambda: self.sim.trajectory_time_left() > 0.0, 2.0, record)

    def request_plan(
        self,
        goal: np.ndarray,
        seed: int,
        num_samples: int,
        integration_steps: int,
        record: Record | None,
        obstacles: Sequence[Any] = (),
        tray_pose: np.ndarray | None = None,
    ) -> PlanAttempt:
        """/flow_planner/plan with execute=true, then wait for that request's final /flow_planner/status.

        `obstacles` (flow_planner_common.obstacles.Box) go in the request's `obstacles` field while
        `send_obstacles` is true; a planner that refuses obstacles ("not supported": a scene-blind planner) turns
        it off for the rest of the run (`obstacles_refused`) and the request is repeated without them (the
        bridge's latched /scene/obstacles still reaches a planner that subscribes to it). `tray_pose` (7: x, y, z,
        qw, qx, qy, qz, the tray's world pose at the start state) marks the request as carrying the tray
        (`carrying_tray`, `tray_pose`; requests of an older PlanTrajectory without these fields go without)."""
        request = self._types["PlanTrajectory"].Request()
        request.joint_names = list(JOINT_NAMES)
        request.goal_positions = [float(a) for a in goal]
        request.num_samples = int(num_samples)
        request.integration_steps = int(integration_steps)
        request.seed = int(seed) % (2**31)
        request.execute = True
        if obstacles and self.send_obstacles:
            from flow_planner_common.ros_messages import obstacle_array

            request.obstacles = list(obstacle_array(tuple(obstacles), "world").obstacles)
        if tray_pose is not None and hasattr(request, "carrying_tray"):
            pose = [float(v) for v in tray_pose]
            request.carrying_tray = True
            request.tray_pose.position.x, request.tray_pose.position.y, request.tray_pose.position.z = pose[:3]
            q = request.tray_pose.orientation
            q.w, q.x, q.y, q.z = pose[3:7]
        for _attempt in range(50):  # the planner may not have a fresh /joint_states yet right after it started
            t0 = time.perf_counter()
            response = self._call(self.plan_client, request, 60.0)
            round_trip = time.perf_counter() - t0
            if not response.success and request.obstacles and "obstacles are not supported" in response.message:
                self.send_obstacles, self.obstacles_refused = False, True
                request.obstacles = []
                continue
            if response.success or "/joint_states" not in response.message:
                break
            time.sleep(0.1)
        if not response.success:
            return PlanAttempt([float(response.planning_time)], [round_trip], [f"planner: {response.message}"])
        self.request_id += 1
        rid = self.request_id

        def final() -> Any:
            with self.lock:
                for msg in self.statuses:
                    if msg.request_id == rid and msg.state in ("reached", "failed", "preempted"):
                        return msg
            return None

        self.wait(lambda: final() is not None, 60.0, record)
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
        return PlanAttempt(times, [round_trip], notes)
