"""The planner node (rclpy) and what only it needs: parameters, ExecutePlan goal bookkeeping, markers, launch
arguments."""
