"""A separate process that serves flow_planner_msgs/srv/PlanTrajectory by echoing the request into the
response, so a test in another process can check that every field survives DDS both ways."""

from __future__ import annotations

import sys

import rclpy
from builtin_interfaces.msg import Duration
from rclpy.node import Node
from trajectory_msgs.msg import JointTrajectoryPoint

from flow_planner_msgs.srv import PlanTrajectory


class PlanEchoServer(Node):
    def __init__(self) -> None:
        super().__init__("plan_echo_server")
        self.create_service(PlanTrajectory, "/flow_planner/plan", self._serve)

    def _serve(self, request: PlanTrajectory.Request, response: PlanTrajectory.Response) -> PlanTrajectory.Response:
        response.success = request.execute
        response.message = f"seed={request.seed} samples={request.num_samples} steps={request.integration_steps}"
        response.trajectory.joint_names = list(request.joint_names)
        start = JointTrajectoryPoint(
            positions=list(request.start_positions),
            velocities=list(request.start_velocities),
            time_from_start=Duration(sec=0, nanosec=50_000_000),
        )
        goal = JointTrajectoryPoint(positions=list(request.goal_positions), time_from_start=Duration(sec=3))
        response.trajectory.points = [start, goal]
        response.planning_time = 0.001 * request.integration_steps
        response.num_valid_candidates = request.num_samples
        return response


def main() -> int:
    rclpy.init()
    node = PlanEchoServer()
    print("ready", flush=True)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
