"""The planning pipeline from a validated request to a checked trajectory, and the execution state machine
(numpy and the model sampler; no ROS)."""
