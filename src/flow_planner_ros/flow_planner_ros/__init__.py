"""flow_planner_ros: conditional flow-matching planner for the dual-arm tray task.

The learning core (normalization, dataset, flow, models, checkpoint, training, diagnostics, planner_core)
is ROS-free; only the planner node imports rclpy.
"""
