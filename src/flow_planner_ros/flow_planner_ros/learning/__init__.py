"""The learning core: data, flow matching, models, checkpoints, training, the model sampler (torch, no ROS)."""
