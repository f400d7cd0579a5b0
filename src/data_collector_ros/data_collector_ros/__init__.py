"""MuJoCo dual-arm tray scene, arm-controller bridge, CEM expert and data collection for flow-planner."""
