"""`sim_bridge`: a ROS 2 node that runs the MuJoCo simulation and acts as the two arm controllers.

Publishes `/joint_states` (JOINT_NAMES, positions + velocities) and the tray pose (PoseStamped) every
1 / joint_states_rate seconds of sim time, and `/clock` when `publish_clock` is true. Subscribes the two
joint_trajectory_controller topics; every trajectory is checked against the JTC contract (`jtc_contract`, including
the speed its waypoints imply from the arm's commanded state, within `implied_speed_margin` of the velocity limits),
a rejected one is logged with its reason and changes nothing, an accepted one replaces the arm's running trajectory
from the last commanded state (no jump). Like joint_trajectory_controller, time_from_start counts from the
trajectory's header.stamp (zero: from its receipt), so a sender that splices a new trajectory into a running one
decides when the splice happens, not the receive time nor the physics loop's 1 / joint_states_rate steps: the
stamp is sim time with `publish_clock`, else the node's clock, mapped onto sim time through the real-time pacing
(with real_time_factor 0 there is no such mapping and a trajectory starts on receipt). Services: `~/reset`
(std_srvs/Trigger: home pose, tray at the `tray_pose` parameter, the boxes of the `obstacles` parameter placed; set
both first with the standard parameter services) and `~/set_grasp` (std_srvs/SetBool: attach when both end effectors
are within `grasp_tolerance` of their handles / detach).

Scene: `obstacles` holds 7 numbers per box (centre x y z, full edge lengths x y z, yaw about world z; m, rad; empty =
none; at most MAX_OBSTACLES boxes). Bad values (non-finite, not 7 per box, too many boxes, sizes or distance out of
range) are refused when set: the parameter service answers with the reason and nothing changes; so is a bad
`tray_pose`. A reset whose scene has an arm or the tray touching a box at the start is refused with the reason and
changes nothing. After every successful reset, and once at start-up, the scene is published latched (reliable,
transient local, depth 1) in `frame_id`: `scene_obstacles_topic` (flow_planner_msgs/ObstacleArray, ids box_<i>) and
`scene_markers_topic` (visualization_msgs/MarkerArray: a DELETEALL, then one CUBE per box, marker id i = box_<i>).

Threading: the physics runs in its own thread, paced against the wall clock by `real_time_factor` (1 real time,
> 1 faster, 0 as fast as possible) — a ROS timer cannot express "as fast as possible" and would tie physics
pacing to executor load. ROS callbacks run in a SingleThreadedExecutor in the main thread; one lock guards the
simulation, so a callback never sees a half-stepped state. mj_step releases the GIL, so both threads progress.
If the physics diverges, the node logs it and resets the scene (the last reset's tray pose and boxes).

Parameters: `sim_bridge_parameters` (descriptions, ranges, read-only flags, as `ros2 param describe` shows them;
config/sim_bridge.yaml is generated from it).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import replace

import mujoco
import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from data_collector_ros.jtc_contract import TrajectoryRejected, validate_trajectory
from data_collector_ros.scene import obstacle_contacts
from data_collector_ros.sim_bridge_parameters import SIM_BRIDGE_PARAMETERS, SPECS
from data_collector_ros.simulation import Simulation, SimulationUnstable
from flow_planner_common.node_main import spin_node_main
from flow_planner_common.obstacles import BOX_DIM, MAX_OBSTACLES, Box, ObstacleError
from flow_planner_common.parameters import declare_parameters
from flow_planner_common.robot import JOINT_NAMES, LEFT_ARM_JOINTS, RIGHT_ARM_JOINTS
from flow_planner_common.ros_messages import (
    duration_seconds,
    joint_state,
    obstacle_array,
    obstacle_markers,
    pose_stamped,
    time_msg,
)
from flow_planner_msgs.msg import ObstacleArray

#: QoS of the scene topics: a subscriber that joins later still gets the current scene.
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


def obstacles_from_parameter(value: object) -> tuple[Box, ...]:
    """The boxes of an `obstacles` parameter value: 7 numbers per box (cx cy cz sx sy sz yaw); None or empty = none.
    ObstacleError with one clear reason otherwise."""
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise ObstacleError(f"obstacles must be a list of numbers (7 per box: cx cy cz sx sy sz yaw), got {value!r}")
    values = list(value)
    if not values:
        return ()
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ObstacleError(f"obstacles must be numbers (7 per box: cx cy cz sx sy sz yaw), got {values}")
    if len(values) % BOX_DIM:
        raise ObstacleError(
            f"obstacles needs {BOX_DIM} values per box (cx cy cz sx sy sz yaw), got {len(values)} values"
        )
    if len(values) // BOX_DIM > MAX_OBSTACLES:
        raise ObstacleError(f"obstacles has {len(values) // BOX_DIM} boxes, at most {MAX_OBSTACLES} are supported")
    rows = np.asarray(values, dtype=float).reshape(-1, BOX_DIM)
    boxes = []
    for i, row in enumerate(rows):
        if not np.all(np.isfinite(row)):
            raise ObstacleError(f"obstacles box {i}: non-finite value in {row.tolist()}")
        try:
            boxes.append(Box.from_array(row))
        except ObstacleError as exc:
            raise ObstacleError(f"obstacles box {i}: {exc}") from None
    return tuple(boxes)


def tray_pose_from_parameter(value: object) -> np.ndarray:
    """The (7,) tray pose of a `tray_pose` parameter value (x y z qw qx qy qz); ValueError with the reason."""
    pose = np.asarray(value, dtype=float)
    if pose.shape != (7,):
        raise ValueError(f"tray_pose must have 7 values (x y z qw qx qy qz), got {pose.tolist()}")
    if not np.all(np.isfinite(pose)):
        raise ValueError(f"tray_pose must be finite, got {pose.tolist()}")
    if np.linalg.norm(pose[3:]) < 1e-9:
        raise ValueError("tray_pose quaternion (qw qx qy qz) has zero norm")
    return pose


class SimBridge(Node):
    """The simulation behind standard controller interfaces."""

    def __init__(self, **kwargs) -> None:
        super().__init__("sim_bridge", **kwargs)
        # Declared from SIM_BRIDGE_PARAMETERS, scene_path first: the scene's rest pose is tray_pose's default
        scene_path = declare_parameters(self, [SPECS["scene_path"]])["scene_path"]
        self.sim = Simulation(scene_path or None)
        rest = replace(SPECS["tray_pose"], default=self.sim.rest_tray_pose.tolist())
        values = declare_parameters(
            self, [rest if s.name == "tray_pose" else s for s in SIM_BRIDGE_PARAMETERS if s.name != "scene_path"]
        )
        self.real_time_factor = float(values["real_time_factor"])
        rate = float(values["joint_states_rate"])
        self.publish_clock = bool(values["publish_clock"])
        self.frame_id = values["frame_id"]
        self.grasp_tolerance = float(values["grasp_tolerance"])
        self.implied_speed_margin = float(values["implied_speed_margin"])
        self.steps_per_publish = max(1, round(1.0 / (rate * self.sim.timestep)))
        self.lock = threading.Lock()
        self.reset_pose = tray_pose_from_parameter(self.get_parameter("tray_pose").value)
        boxes = obstacles_from_parameter(self.get_parameter("obstacles").value)
        self._checker = Simulation(scene_path or None)  # a scratch copy of the scene: start poses checked there
        self._check_scene(self.reset_pose, boxes)
        self.sim.set_obstacles(boxes)
        self.sim.reset(self.reset_pose)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.joint_pub = self.create_publisher(JointState, values["joint_states_topic"], 10)
        self.obstacles_pub = self.create_publisher(ObstacleArray, values["scene_obstacles_topic"], LATCHED)
        self.markers_pub = self.create_publisher(MarkerArray, values["scene_markers_topic"], LATCHED)
        self._publish_scene(boxes)
        self.tray_pub = self.create_publisher(PoseStamped, values["tray_pose_topic"], 10)
        self.clock_pub = self.create_publisher(Clock, "/clock", 10) if self.publish_clock else None
        for arm, joints, topic in (
            (0, LEFT_ARM_JOINTS, "left_controller_topic"),
            (1, RIGHT_ARM_JOINTS, "right_controller_topic"),
        ):
            self.create_subscription(
                JointTrajectory, values[topic], lambda msg, a=arm, j=joints: self._on_trajectory(a, j, msg), 10
            )
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_service(SetBool, "~/set_grasp", self._on_set_grasp)
        self._stop = threading.Event()
        self._pacing_origin = (time.monotonic(), self.sim.time)
        self.steps_done = 0
        self._thread = threading.Thread(target=self._run, name="sim_loop", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"sim_bridge running: rtf={self.real_time_factor},"
            f" {1.0 / (self.steps_per_publish * self.sim.timestep):.0f} Hz joint states, dt={self.sim.timestep} s,"
            f" {len(boxes)} obstacles"
        )

    # ----------------------------------------------------------------- scene
    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Refuse a bad `obstacles` or `tray_pose` when it is set (nothing changes), with the reason."""
        for parameter in parameters:
            try:
                if parameter.name == "obstacles":
                    obstacles_from_parameter(parameter.value)
                elif parameter.name == "tray_pose":
                    tray_pose_from_parameter(parameter.value)
            except ValueError as exc:
                self.get_logger().error(f"parameter {parameter.name} refused: {exc}")
                return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _check_scene(self, pose: np.ndarray, boxes: tuple[Box, ...]) -> None:
        """ObstacleError if, with the arms at home and the tray at `pose`, an arm or the tray touches a box (checked
        in the scratch simulation, so the running one is untouched)."""
        checker = self._checker
        checker.set_obstacles(boxes)
        checker.reset(pose)
        data = checker.data
        for g1, g2 in data.contact.geom[: data.ncon]:
            if any(obstacle_contacts(checker.index, np.array([[g1, g2]]))):
                names = " / ".join(
                    mujoco.mj_id2name(checker.model, mujoco.mjtObj.mjOBJ_GEOM, int(g)) or f"geom {g}" for g in (g1, g2)
                )
                raise ObstacleError(f"the scene starts in collision ({names}): move the boxes or the tray")

    def _scene_stamp(self) -> Time:
        return time_msg(self.sim.time) if self.publish_clock else self.get_clock().now().to_msg()

    def _publish_scene(self, boxes: tuple[Box, ...]) -> None:
        self.obstacles_pub.publish(obstacle_array(boxes, self.frame_id, self._scene_stamp()))
        self.markers_pub.publish(obstacle_markers(boxes, self.frame_id))

    # ------------------------------------------------------------------ loop
    def _run(self) -> None:
        while not self._stop.is_set():
            with self.lock:
                try:
                    self.sim.step(self.steps_per_publish)
                    self.steps_done += self.steps_per_publish
                except SimulationUnstable as exc:
                    self.get_logger().error(f"physics diverged ({exc}); resetting the scene")
                    self.sim.reset(self.reset_pose)
                    self._pacing_origin = (time.monotonic(), self.sim.time)
                state = self.sim.state()
            try:
                self._publish(state)
            except Exception:
                if self.context.ok():
                    raise
                return  # shutdown began (Ctrl-C invalidates the context before stop() ends this loop)
            if self.real_time_factor > 0:
                wall0, sim0 = self._pacing_origin
                delay = wall0 + (state.time - sim0) / self.real_time_factor - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -0.5:  # fell far behind (slow machine): do not try to catch up in a burst
                    self._pacing_origin = (time.monotonic(), state.time)

    def _publish(self, state) -> None:
        stamp = time_msg(state.time) if self.publish_clock else self.get_clock().now().to_msg()
        if self.clock_pub is not None:
            self.clock_pub.publish(Clock(clock=stamp))
        self.joint_pub.publish(joint_state(state.positions, state.velocities, stamp=stamp))
        self.tray_pub.publish(pose_stamped(state.tray_pose, self.frame_id, stamp))

    # ------------------------------------------------------------- callbacks
    def _on_trajectory(self, arm: int, joints: tuple[str, ...], msg: JointTrajectory) -> None:
        side = ("left", "right")[arm]
        cols = [JOINT_NAMES.index(j) for j in joints]
        with self.lock:  # validate against the commanded state the new trajectory will start from
            q_now, v_now = self.sim.command()
            try:
                start_time = self._seconds_until(duration_seconds(msg.header.stamp))
                valid = validate_trajectory(
                    joints,
                    msg.joint_names,
                    [pt.positions for pt in msg.points],
                    [pt.velocities for pt in msg.points],
                    [duration_seconds(pt.time_from_start) for pt in msg.points],
                    start_positions=q_now[cols],
                    start_velocities=v_now[cols],
                    speed_margin=self.implied_speed_margin,
                    start_time=start_time,
                )
            except TrajectoryRejected as exc:
                valid = None
                reason = str(exc)
            else:
                self.sim.send_trajectory(valid.times, valid.positions, valid.velocities, arm=arm)
        if valid is None:
            self.get_logger().error(f"{side} arm trajectory rejected: {reason}")
            return
        self.get_logger().info(f"{side} arm trajectory accepted: {len(valid.times)} points, {valid.times[-1]:.2f} s")

    def _seconds_until(self, stamp: float) -> float:
        """Sim seconds from now (the physics' time) to a trajectory's header.stamp (s; 0 = now). Call under the lock."""
        if stamp == 0.0:
            return 0.0
        if self.publish_clock:  # stamps are sim time
            return stamp - self.sim.time
        if self.real_time_factor <= 0:  # as fast as possible: sim time has no relation to the node's clock
            return 0.0
        wall0, sim0 = self._pacing_origin  # sim time sim0 + rtf * (monotonic - wall0) while the loop keeps pace
        stamp_monotonic = time.monotonic() + stamp - self.get_clock().now().nanoseconds * 1e-9
        return sim0 + self.real_time_factor * (stamp_monotonic - wall0) - self.sim.time

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            pose = tray_pose_from_parameter(self.get_parameter("tray_pose").value)
            boxes = obstacles_from_parameter(self.get_parameter("obstacles").value)
            self._check_scene(pose, boxes)
            with self.lock:
                self.sim.set_obstacles(boxes)
                self.sim.reset(pose)
                self.reset_pose = pose
                self._pacing_origin = (time.monotonic(), self.sim.time)
        except ValueError as exc:
            response.success, response.message = False, f"reset refused, nothing changed: {exc}"
            self.get_logger().error(response.message)
            return response
        self._publish_scene(boxes)
        response.success = True
        response.message = f"reset: tray at {np.round(pose, 4).tolist()}, {len(boxes)} obstacles"
        return response

    def _on_set_grasp(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        with self.lock:
            if request.data:
                result = self.sim.attach(self.grasp_tolerance)
                response.success, response.message = result.attached, result.message
            else:
                self.sim.detach()
                response.success, response.message = True, "detached"
        return response

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


def main(args: list[str] | None = None) -> int:
    return spin_node_main("sim_bridge", SimBridge, args=args)


if __name__ == "__main__":
    sys.exit(main())
