"""flow_planner_ros: conditional flow-matching planner for the dual-arm tray task.

Everything but `planner_node`, `evaluation_harness` and `planner_process` is ROS-free: the learning core
(conditioning, normalization, dataset, flow, models, checkpoint, training, diagnostics), the model sampler
(flow_sampler), the planning pipeline (planning_pipeline, projection, continuation, trajectory_safety), request
validation (plan_request), the execution state machine (execution) and the planner settings (planner_settings).
"""
