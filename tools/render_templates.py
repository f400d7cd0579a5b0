"""Render one picture per scene template (docs/images/template_<name>.png): the first valid scene of each template
of the family (seed 0), with the tray at its start, the arms at the grasp and the carry goal drawn as a ghost of the
tray's outline, so a reader sees what each template asks of the planner.

    python tools/render_templates.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # headless: MuJoCo reads it when first imported

import mujoco
import numpy as np

from data_collector_ros.ik import IKSolver
from data_collector_ros.render import SceneRenderer, save_png
from data_collector_ros.scene_family import TEMPLATES, TRAY_HALF_X, TRAY_HALF_Y, FamilyConfig, scene_for_index
from data_collector_ros.scene_validity import StraightReach, check_scene
from data_collector_ros.simulation import Simulation


def goal_outline(scene: mujoco.MjvScene, goal: np.ndarray) -> None:
    """Add a translucent box where the tray should end up."""
    if scene.ngeom >= scene.maxgeom:
        return
    rotation = np.zeros(9)
    mujoco.mju_quat2Mat(rotation, goal[3:7])
    mujoco.mjv_initGeom(
        scene.geoms[scene.ngeom], mujoco.mjtGeom.mjGEOM_BOX, np.array([TRAY_HALF_X, TRAY_HALF_Y, 0.01]),
        goal[:3], rotation, np.array([0.1, 0.8, 0.2, 0.45], dtype=np.float32),
    )  # fmt: skip
    scene.ngeom += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    sim = Simulation()
    ik = IKSolver(sim.model)
    reach, config = StraightReach(sim, ik), FamilyConfig(seed=0)
    wanted = {t: None for t in TEMPLATES}
    for index in range(400):
        scene = scene_for_index(config, index, reach)
        if wanted[scene.template] is None and check_scene(sim, ik, scene, seed=index).valid:
            wanted[scene.template] = (index, scene)
        if all(wanted.values()):
            break
    camera = mujoco.MjvCamera()  # close up on the tray's workspace, seen from the front left
    camera.lookat[:] = (0.5, 0.0, 0.85)
    camera.distance, camera.azimuth, camera.elevation = 1.5, 210.0, -32.0
    with SceneRenderer(sim.model, width=640, height=480) as renderer:
        for template, (index, scene) in wanted.items():
            check = check_scene(sim, ik, scene, seed=index)
            sim.reset(scene.start_pose(float(sim.rest_tray_pose[2])), positions=check.reach_goal)
            renderer.renderer.update_scene(sim.data, camera=camera)
            goal_outline(renderer.renderer.scene, scene.goal_pose())
            path = save_png(args.out / f"template_{template}.png", renderer.renderer.render().copy())
            print(f"{path}: grid index {index}, {len(scene.obstacles)} box(es)")


if __name__ == "__main__":
    main()
