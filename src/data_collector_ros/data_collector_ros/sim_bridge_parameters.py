"""The MuJoCo bridge's parameters, defined once (ROS-free): name, default, description, range, whether it may change
while the node runs. `sim_bridge` declares them from here (with ROS ParameterDescriptors) and `config/sim_bridge.yaml`
is generated from here (`python -m data_collector_ros.sim_bridge_parameters > config/sim_bridge.yaml`; a test keeps
it current).

Everything is read at start except `tray_pose` and `obstacles`, which `~/reset` reads (set them first with the
standard parameter services); the bridge refuses a bad value of either when it is set.
"""

from __future__ import annotations

import sys

from flow_planner_common.obstacles import BOX_DIM, MAX_OBSTACLES
from flow_planner_common.parameters import ParameterSpec, parameters_yaml

MAX_IMPLIED_SPEED_MARGIN = 1.0  # the most a launch file may loosen the implied-speed check (2x the limits)
#: The packaged scene's rest pose of the tray (x y z qw qx qy qz): the default `tray_pose`. With another
#: scene_path the bridge uses that scene's rest pose instead.
REST_TRAY_POSE = [0.5, 0.0, 0.76, 1.0, 0.0, 0.0, 0.0]

SIM_BRIDGE_PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec("real_time_factor", 1.0, "physics pace against the wall clock: 1 = real time, > 1 faster, 0 = as "
                  "fast as possible", 0.0, 1000.0, read_only=True),
    ParameterSpec("joint_states_rate", 100.0, "Hz of sim time (joint states, tray pose and /clock are published "
                  "together)", 1.0, 1000.0, read_only=True),
    ParameterSpec("publish_clock", False, "publish /clock (and stamp messages with sim time) so other nodes can use "
                  "sim time", read_only=True),
    ParameterSpec("joint_states_topic", "/joint_states", "sensor_msgs/JointState of all 12 joints", read_only=True),
    ParameterSpec("tray_pose_topic", "/tray_pose", "geometry_msgs/PoseStamped of the tray, with each joint state",
                  read_only=True),
    ParameterSpec("left_controller_topic", "/left_arm_controller/joint_trajectory", "left arm JointTrajectory it "
                  "executes", read_only=True),
    ParameterSpec("right_controller_topic", "/right_arm_controller/joint_trajectory", "right arm JointTrajectory it "
                  "executes", read_only=True),
    ParameterSpec("frame_id", "world", "frame of the tray pose and of the scene topics", read_only=True),
    ParameterSpec("implied_speed_margin", 0.05, "fraction above the joint velocity limits tolerated for the speed a "
                  "trajectory's waypoints imply (cubic Hermite from the commanded state through every point); "
                  "faster trajectories are rejected", 0.0, MAX_IMPLIED_SPEED_MARGIN, read_only=True),
    ParameterSpec("grasp_tolerance", 0.02, "m; ~/set_grasp attaches only when both end effectors are this close to "
                  "their handles", 0.0, 0.1, read_only=True),
    ParameterSpec("tray_pose", REST_TRAY_POSE, "tray pose x y z qw qx qy qz (world frame) that ~/reset puts the tray "
                  "at (default: the scene's rest pose; z 0.76 = resting on the table)"),
    ParameterSpec("scene_path", "", "MJCF file; empty = the packaged scene", read_only=True),
    ParameterSpec("obstacles", None, f"scene boxes placed by ~/reset (and at start-up): {BOX_DIM} numbers per box "
                  f"(centre x y z, full edge lengths x y z, yaw about world z; m, rad), at most {MAX_OBSTACLES} "
                  "boxes; empty = no obstacles",
                  dynamic_typing=True),  # an empty list (typed bool by YAML and `ros2 param set`) clears the scene
    ParameterSpec("scene_obstacles_topic", "/scene/obstacles", "flow_planner_msgs/ObstacleArray of the scene, "
                  "latched", read_only=True),
    ParameterSpec("scene_markers_topic", "/scene/markers", "visualization_msgs/MarkerArray of the scene for RViz, "
                  "latched", read_only=True),
)  # fmt: skip
SPECS: dict[str, ParameterSpec] = {spec.name: spec for spec in SIM_BRIDGE_PARAMETERS}


def sim_bridge_yaml(node_name: str = "sim_bridge") -> str:
    """The text of config/sim_bridge.yaml: every parameter with its default and description."""
    header = [
        "Parameters of the MuJoCo bridge (data_collector_ros/sim_bridge) that acts as the arm controllers, generated",
        "from data_collector_ros/sim_bridge_parameters.py:",
        "python -m data_collector_ros.sim_bridge_parameters > config/sim_bridge.yaml",
        "(*) = read at start only; tray_pose and obstacles may be changed while the node runs (ros2 param set),",
        "~/reset applies them.",
        f"obstacles: {BOX_DIM} numbers per box, cx cy cz sx sy sz yaw (write 0.0, not 0: one list holds one type);",
        "[] = no obstacles. Example:",
        "  obstacles: [0.8, 0.0, 0.85, 0.05, 0.6, 0.2, 0.0]   # a 20 cm high wall 15 cm in front of the tray",
    ]
    return parameters_yaml(node_name, SIM_BRIDGE_PARAMETERS, header)


if __name__ == "__main__":
    sys.stdout.write(sim_bridge_yaml())
