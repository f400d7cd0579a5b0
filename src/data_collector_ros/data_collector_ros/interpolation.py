"""Cubic Hermite joint trajectories, sampled like ros2_control's joint_trajectory_controller: defined in
flow_planner_common.hermite (the planner models the controllers with the same interpolation); kept importable here."""

from flow_planner_common.hermite import HermiteTrajectory

__all__ = ["HermiteTrajectory"]
