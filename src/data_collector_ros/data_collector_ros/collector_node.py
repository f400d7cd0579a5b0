"""`collector`: a thin ROS 2 node around the ROS-free shard loop (`collector.ShardCollector`).

    collector --ros-args -p output_dir:=DIR -p start_index:=I -p count:=N [--params-file config/collector.yaml]

Collects grid indices [start_index, start_index + count), prints a progress bar (stderr) and one summary line
(stdout), and exits 0 when done; invalid parameters give one error line and exit code 2. `count:=0` collects
nothing and says so ("collector: nothing to do: count is 0") with exit code 0. Ctrl-C (or SIGINT from a process
manager, even twice) stops it cleanly with exit code 0: finished episodes are kept and a rerun resumes after them.

It publishes what it executes, by default in its own namespace (`~/...`, i.e. /collector_<shard>/... under the
launch file) so that several shards never interleave on one topic and a sim_bridge on the same domain does not
execute the collector's trajectories (set the topic parameters to /joint_states, /left_arm_controller/... to
publish globally):
- `~/joint_states` (sensor_msgs/JointState, all 12 joints) every 1 / joint_states_rate s of *simulated* time
  while a trajectory executes (0 disables); collection runs faster than real time, so they come in bursts;
- `~/tray_pose` (geometry_msgs/PoseStamped) with each joint state;
- `~/left_arm_controller/joint_trajectory`, `~/right_arm_controller/joint_trajectory`
  (trajectory_msgs/JointTrajectory, 6 joints each, positions + velocities, point k at (k + 1) * dt) when a phase
  starts executing.
Stamps are the node's clock. With record_bag, the same messages go into one MCAP rosbag2 per episode under
`<output_dir>/bags/episode_<grid_index>/`.
"""

from __future__ import annotations

import sys

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import InvalidParameterValueException, ParameterException
from rclpy.node import Node
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from data_collector_ros.bag_recorder import EpisodeBag, remove_inflight_bags
from data_collector_ros.collector import ShardCollector, ShardSummary
from data_collector_ros.collector_parameters import COLLECTOR_PARAMETERS, config_from_parameters
from data_collector_ros.simulation import SimState
from flow_planner_common.launch_arguments import LaunchArgument
from flow_planner_common.node_main import ignore_further_interrupts, init_quietly, one_line
from flow_planner_common.parameters import checked_value, declare_parameters
from flow_planner_common.ros_messages import arm_trajectories, joint_state, pose_stamped

#: Arguments of collect.launch.py; the parameter ones override the params file only when given.
COLLECT_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument("output_dir", str, "where the .npz files go"),
    LaunchArgument("start_index", int, "first grid index", low=0),
    LaunchArgument("count", int, "grid indices to collect in all (0 = nothing to do)", low=0),
    LaunchArgument("record_bag", bool, "record one MCAP rosbag2 per episode (true or false)"),
    LaunchArgument("shards", int, "collector processes (disjoint shards of the indices)", "2", low=1,
                   parameter=False),
)  # fmt: skip
class CollectorNode(Node):
    """Declares the parameters, publishes what the episodes execute, records bags, runs the shard."""

    def __init__(self, **kwargs) -> None:
        super().__init__("collector", **kwargs)
        self.params = self._declare_parameters()
        self.config = config_from_parameters(self.params)
        self.publish_states = float(self.params["joint_states_rate"]) > 0
        topics = self.params
        self.joint_pub = self.create_publisher(JointState, topics["joint_states_topic"], 50)
        self.tray_pub = self.create_publisher(PoseStamped, topics["tray_pose_topic"], 50)
        self.traj_pubs = [
            self.create_publisher(JointTrajectory, topics[name], 10)
            for name in ("left_trajectory_topic", "right_trajectory_topic")
        ]
        self.bag_dir = self.config.output_dir / "bags"
        self.bag: EpisodeBag | None = None
        self.bag_topics = {
            self.joint_pub.topic_name: "sensor_msgs/msg/JointState",
            self.tray_pub.topic_name: "geometry_msgs/msg/PoseStamped",
            self.traj_pubs[0].topic_name: "trajectory_msgs/msg/JointTrajectory",
            self.traj_pubs[1].topic_name: "trajectory_msgs/msg/JointTrajectory",
        }

    def _declare_parameters(self) -> dict[str, object]:
        """Every parameter declared from its spec (description, range, read-only). A start value that its range
        refuses is reported with the spec's one-line reason (`need count >= 0 (got -1)`), not rclpy's."""
        try:
            return declare_parameters(self, COLLECTOR_PARAMETERS)
        except InvalidParameterValueException:
            spec = next(spec for spec in COLLECTOR_PARAMETERS if not self.has_parameter(spec.name))
            given = self.declare_parameter(spec.name, spec.default, ParameterDescriptor(dynamic_typing=True)).value
            checked_value(spec, given)  # raises ParameterError naming the parameter
            raise

    # ------------------------------------------------------------ observer
    def on_trajectory(self, phase: int, positions: np.ndarray, velocities: np.ndarray, dt: float) -> None:
        stamp = self.get_clock().now()
        for msg, pub in zip(arm_trajectories(positions, velocities, dt), self.traj_pubs, strict=True):
            pub.publish(msg)
            self._record(pub.topic_name, msg, stamp.nanoseconds)

    def on_state(self, state: SimState) -> None:
        if not self.publish_states:
            return
        stamp = self.get_clock().now()
        msg = joint_state(state.positions, state.velocities, stamp=stamp.to_msg())
        self.joint_pub.publish(msg)
        pose = pose_stamped(state.tray_pose, str(self.params["frame_id"]), msg.header.stamp)
        self.tray_pub.publish(pose)
        self._record(self.joint_pub.topic_name, msg, stamp.nanoseconds)
        self._record(self.tray_pub.topic_name, pose, stamp.nanoseconds)

    def _record(self, topic: str, msg: object, stamp_ns: int) -> None:
        if self.bag is not None:
            self.bag.write(topic, msg, stamp_ns)

    # ------------------------------------------------------------- episodes
    def _before_episode(self, grid_index: int) -> None:
        if self.params["record_bag"]:
            self.bag = EpisodeBag(self.bag_dir, f"episode_{grid_index:06d}", self.bag_topics)

    def _after_episode(self, grid_index: int, outcomes) -> None:
        if self.bag is not None:
            self.bag.close()
            self.bag = None
        for outcome in outcomes:
            if not outcome.result.success:
                phase = outcome.record.phase
                self.get_logger().warning(f"grid index {grid_index} phase {phase}: {'; '.join(outcome.result.reasons)}")

    def collect(self) -> ShardSummary:
        if self.params["record_bag"] and self.bag_dir.is_dir():
            for path in remove_inflight_bags(self.bag_dir):
                self.get_logger().info(f"removed unfinished bag {path.name}")
        collector = ShardCollector(
            self.config,
            observer=self,
            on_episode=self._after_episode,
            log=lambda message: self.get_logger().info(message),
            before_episode=self._before_episode,
        )
        c = self.config
        self.get_logger().info(
            f"collecting grid indices [{c.start_index}, {c.start_index + c.count}) of a {c.grid.nx}x{c.grid.ny} grid"
            f" into {c.output_dir}"
        )
        return collector.run(progress=bool(self.params["progress"]))


def summary_line(summary: ShardSummary) -> str:
    """The closing line; a run that wrote nothing (everything already finished) has no success rate to show."""
    if summary.trajectories == 0:
        return (
            f"nothing new: done {summary.done}, skipped {summary.skipped} episodes already finished,"
            f" failed {summary.failed}; 0 trajectories written"
        )
    return summary.line()


INTERRUPTED = "collector: interrupted; finished episodes are kept, a rerun resumes after them"


def main(args: list[str] | None = None) -> None:
    try:
        init_quietly(args)
    except Exception as exc:  # a params file that is not valid YAML, a malformed override (rcl's RCLError)
        print(f"collector: invalid parameters: {one_line(str(exc))}", file=sys.stderr, flush=True)
        sys.exit(2)
    try:
        node = CollectorNode()
    except (ValueError, TypeError, ParameterException) as exc:
        print(f"collector: invalid parameters: {one_line(str(exc))}", file=sys.stderr, flush=True)
        rclpy.try_shutdown()
        sys.exit(2)
    except KeyboardInterrupt:
        ignore_further_interrupts()
        rclpy.try_shutdown()
        sys.exit(0)
    summary = None
    try:
        if node.config.count == 0:
            print("collector: nothing to do: count is 0", flush=True)
        else:
            summary = node.collect()
    except KeyboardInterrupt:
        ignore_further_interrupts()  # a second SIGINT must not interrupt the cleanup below
        print(INTERRUPTED, flush=True)
    except Exception:
        ignore_further_interrupts()
        if node.context.ok():  # a real failure
            raise
        # Ctrl-C invalidates the context before its KeyboardInterrupt arrives: a publish in between fails
        print(INTERRUPTED, flush=True)
    finally:
        ignore_further_interrupts()
        node.destroy_node()
        rclpy.try_shutdown()
    if summary is not None:
        print(f"collector: {summary_line(summary)}", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
