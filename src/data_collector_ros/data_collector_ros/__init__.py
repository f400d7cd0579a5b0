"""MuJoCo dual-arm tray scene, arm-controller bridge, CEM expert and data collection for flow-planner."""

import os as _os

# Headless offscreen rendering: MuJoCo picks its GL backend from MUJOCO_GL when first imported.
if "MUJOCO_GL" not in _os.environ and not _os.environ.get("DISPLAY"):
    _os.environ["MUJOCO_GL"] = "egl"
