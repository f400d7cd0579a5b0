"""The robot model and numpy forward kinematics (flow_planner_common.kinematics) against real MuJoCo: the committed
geometry equals the MJCF's, forward kinematics equals mj_kinematics, and the module loads without MuJoCo or torch."""

from __future__ import annotations

import subprocess
import sys

import mujoco
import numpy as np
import pytest

from data_collector_ros.robot_geometry import geometry_from_model
from data_collector_ros.scene import SceneIndex, load_model
from flow_planner_common.kinematics import GEOMETRY_JSON, ArmKinematics, RobotGeometry
from flow_planner_common.robot import NUM_JOINTS


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return load_model()


def test_committed_geometry_equals_the_mjcf(model: mujoco.MjModel) -> None:
    generated = geometry_from_model(model)
    assert generated.equals(RobotGeometry.load()), "regenerate: python -m data_collector_ros.robot_geometry > " + str(
        GEOMETRY_JSON
    )
    assert RobotGeometry.from_json(generated.to_json()).equals(generated)


def test_kinematics_module_loads_neither_mujoco_nor_torch() -> None:
    code = (
        "import sys, numpy as np; from flow_planner_common.kinematics import ArmKinematics; "
        "ArmKinematics().forward_kinematics(np.zeros((2, 3, 12))); "
        "assert not {'mujoco', 'data_collector_ros', 'torch'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_forward_kinematics_matches_mujoco(model: mujoco.MjModel) -> None:
    kinematics = ArmKinematics()
    rng = np.random.default_rng(7)
    index, data = SceneIndex.from_model(model), mujoco.MjData(model)
    q = rng.uniform(-2 * np.pi, 2 * np.pi, (500, NUM_JOINTS))
    ee_pos, ee_rot = kinematics.ee_poses(q)
    pos, _ = kinematics.forward_kinematics(q)
    errors = []
    for i in range(len(q)):
        data.qpos[index.qpos_adr] = q[i]
        mujoco.mj_kinematics(model, data)
        errors.append(np.abs(data.site_xpos[index.ee_sites] - ee_pos[i]).max())
        errors.append(np.abs(data.site_xmat[index.ee_sites].reshape(2, 3, 3) - ee_rot[i]).max())
        errors.append(np.abs(data.xpos[index.tool_bodies] - pos[i, :, -1]).max())
    print(f"\nFK max error over 500 configurations: {max(errors):.2e}")
    assert max(errors) < 1e-6
