"""How much clearance a motion must keep, given where it starts and ends: one rule for the planner's scene safety
and the CEM expert's cost, so that both mean the same by "clear".

Every motion between a start and a goal is held to a nominal clearance per category (the planner's margin, the
expert's), lowered to just below the start's or goal's own clearance: a tray lifted off the table, a grasp whose
tools sit next to the tray (the sphere cover reads them a few centimetres closer than they are) or a goal 5 mm from a
box would otherwise make every motion fail. The lowering stops at CLEARANCE_FLOOR: a start or goal deeper than that
is in collision.
"""

from __future__ import annotations

import numpy as np

#: A category's threshold is at most this far (m) below its clearance at the start or goal.
ENDPOINT_SLACK = 0.001
#: No threshold is lower than this (m): deeper is a real contact even for the conservative checker.
CLEARANCE_FLOOR = -0.003


def endpoint_thresholds(nominal: np.ndarray | float, endpoint: np.ndarray) -> np.ndarray:
    """Per category the clearance a motion must keep: `nominal`, lowered to just below `endpoint` (the smaller of
    the start's and the goal's own clearances, same shape), never below CLEARANCE_FLOOR."""
    return np.maximum(np.minimum(nominal, np.asarray(endpoint, dtype=float) - ENDPOINT_SLACK), CLEARANCE_FLOOR)
