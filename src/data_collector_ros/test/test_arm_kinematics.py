"""The numpy forward kinematics of flow_planner_common matches MuJoCo's end-effector sites of the scene."""

from __future__ import annotations

import mujoco
import numpy as np

from data_collector_ros.scene import SceneIndex, load_model
from flow_planner_common.arm_kinematics import ee_positions
from flow_planner_common.robot import HOME_POSITIONS, JOINT_NAMES, JOINT_POSITION_LIMITS


def test_forward_kinematics_matches_mujoco_sites_within_a_millimetre() -> None:
    model = load_model()
    data = mujoco.MjData(model)
    index = SceneIndex.from_model(model)
    qpos_address = [model.jnt_qposadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n)] for n in JOINT_NAMES]
    rng = np.random.default_rng(0)
    configurations = np.vstack([HOME_POSITIONS, rng.uniform(JOINT_POSITION_LIMITS[:, 0], JOINT_POSITION_LIMITS[:, 1],
                                                            (200, len(JOINT_NAMES)))])  # fmt: skip
    expected = np.zeros((len(configurations), 2, 3))
    for i, q in enumerate(configurations):
        data.qpos[qpos_address] = q
        mujoco.mj_kinematics(model, data)
        expected[i] = data.site_xpos[np.asarray(index.ee_sites)]
    errors = np.linalg.norm(ee_positions(configurations) - expected, axis=-1)
    assert errors.max() < 1e-3, errors.max()
    assert np.ptp(expected[:, 0, 0]) > 0.5  # the configurations really move the end effectors
