"""One rule for every orientation the planner is given, a scene box's pose and a carried tray's alike (ROS-free): a
quaternion (w, x, y, z) must be finite with a norm within QUATERNION_NORM_TOLERANCE of 1, and is then normalised. A
norm like 2 or 1e-9 is refused, not normalised: the sender did not write a rotation (rounding leaves far less)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: How far from 1 a given quaternion's norm may be (rounded or float32 values stay far within it).
QUATERNION_NORM_TOLERANCE = 0.01


class QuaternionError(ValueError):
    """Not an orientation; the message says why."""


def unit_quaternion(values: Sequence[float], what: str = "orientation") -> np.ndarray:
    """`values` (w, x, y, z) normalised; QuaternionError (naming `what`) unless finite with norm 1 ± tolerance."""
    quat = np.asarray(values, dtype=np.float64)
    if quat.shape != (4,) or not np.all(np.isfinite(quat)):
        raise QuaternionError(f"{what} must be 4 finite numbers (w x y z), got {quat.ravel()[:8].tolist()}")
    norm = float(np.linalg.norm(quat))
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE + 1e-12:  # the slack: 1.01 itself is within the tolerance
        raise QuaternionError(
            f"{what} must be a unit quaternion (norm within {QUATERNION_NORM_TOLERANCE} of 1), got norm {norm:.4g}"
        )
    return quat / norm
