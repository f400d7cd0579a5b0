"""flow_planner_ros: conditional flow-matching planner for the dual-arm tray task.

Layers (imports only run downwards; only `node` imports rclpy):
- `learning`: conditioning, normalization, dataset, flow, models, checkpoint, training (+ training_config),
  diagnostics, distributed, synthetic data, and the model sampler (flow_sampler); torch.
- `planning`: the ROS-free planning pipeline: request validation, scene, projection, continuation, scene and
  trajectory safety, refinement, execution state machine, stop trajectory; numpy (+ the sampler).
- `node`: the planner node and its parameters, ExecutePlan goal bookkeeping, plan markers, launch arguments.
- `cli`: synthetic_data, train, diagnose.
"""
