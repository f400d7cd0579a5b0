"""The executed motion's clearance to the scene's boxes, measured by MuJoCo (the judge of executed episodes):
`Clearance.over` the qpos samples the harness records every 10 ms of simulated time."""

from __future__ import annotations

from typing import Any

import numpy as np


class Clearance:
    """Signed distance (m) between the robot (arm and tray geoms) and the placed obstacle boxes, by MuJoCo's
    mj_geomDistance on a scratch MjData (negative: penetration). Distances beyond DISTMAX read as DISTMAX."""

    DISTMAX = 0.5

    def __init__(self, model: Any) -> None:
        import mujoco

        from data_collector_ros.scene import GROUP_LEFT, GROUP_RIGHT, GROUP_TRAY, SceneIndex

        self._mujoco = mujoco
        self.model, self.data = model, mujoco.MjData(model)
        self.index = SceneIndex.from_model(model)
        group = self.index.geom_group
        names = {GROUP_LEFT: "left arm", GROUP_RIGHT: "right arm", GROUP_TRAY: "tray"}
        self.robot = [(int(g), names[int(group[g])]) for g in np.flatnonzero(np.isin(group, list(names)))]
        self._fromto = np.zeros(6)

    def over(self, samples: list[np.ndarray], obstacles: int) -> tuple[float | None, str]:
        """(smallest distance over the qpos `samples`, "what to which box"); (None, "") without obstacles."""
        if obstacles == 0 or not samples:
            return None, ""
        mj, m, d = self._mujoco, self.model, self.data
        best, what = float("inf"), ""
        boxes = [int(g) for g in self.index.obstacle_geoms[:obstacles]]
        for qpos in samples:
            d.qpos[:] = qpos
            mj.mj_kinematics(m, d)
            for box_number, box in enumerate(boxes):
                for geom, name in self.robot:
                    dist = mj.mj_geomDistance(m, d, geom, box, self.DISTMAX, self._fromto)
                    if dist < best:
                        best, what = float(dist), f"{name} - obstacle {box_number}"
        return best, what
