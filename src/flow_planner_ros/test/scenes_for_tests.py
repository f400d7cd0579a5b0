"""Two held-out scenes (config/eval_scenes.yaml episodes 0 and 3) with their IK goals, computed once with the
collector's IK (data_collector_ros.scene_validity.check_scene) and written here, so the planner tests need no MuJoCo.
The tests that use them assert what they rely on (the straight motion collides, start and goal are clear)."""

from __future__ import annotations

import numpy as np

from flow_planner_common.obstacles import Box
from flow_planner_common.robot import HOME_POSITIONS

#: handle_box (episode 3): a box above the left handle on the straight reach from home; the reach goal grasps.
HANDLE_BOX = Box((0.533654, 0.337972, 0.983851), (0.063168, 0.063168, 0.063168), -0.299734)
HANDLE_BOX_REACH = np.array([-0.67904, -1.295818, 2.135474, -2.410582, -1.570803, -1.950077,
                             -0.361088, -1.740829, 2.618619, -2.448571, -1.570884, -1.632076])  # fmt: skip
HANDLE_BOX_TRAY = np.array([0.381556, -0.084175, 0.76, 0.988791, 0.0, 0.0, -0.149307])

#: barrier (episode 0): a wall just beyond the resting tray; the straight carry drives the tray through it.
BARRIER = Box((0.625714, 0.125656, 0.795076), (0.054438, 0.498277, 0.090151), -0.032548)
BARRIER_REACH = np.array([-0.314121, -1.633632, 2.532834, -2.470103, -1.570934, -2.06452,
                          0.227061, -1.299986, 2.141361, -2.412167, -1.570804, -1.523533])  # fmt: skip
BARRIER_CARRY = np.array([-0.221349, -1.405434, 1.792002, -1.957548, -1.57077, -2.102301,
                          0.144508, -0.95806, 1.153959, -1.766893, -1.570773, -1.736444])  # fmt: skip
BARRIER_TRAY = np.array([0.387709, 0.133405, 0.76, 0.995962, 0.0, 0.0, 0.08978])

HOME = HOME_POSITIONS
