"""The planner's numpy IK (flow_planner_common.tray_ik) against the collector's MuJoCo IK (data_collector_ros.ik) on
the tray poses of the scene family: both converge on the same poses, and MuJoCo's own kinematics puts the end
effectors of the numpy solution on the handles."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from data_collector_ros.ik import IKSolver
from data_collector_ros.scene import SceneIndex, load_model
from data_collector_ros.scene_family import FamilyConfig, scene_for_index
from data_collector_ros.task import handle_targets
from flow_planner_common.kinematics import quat_to_matrix
from flow_planner_common.robot import HOME_POSITIONS
from flow_planner_common.tray_ik import POSITION_TOLERANCE, ROTATION_TOLERANCE, TrayIK


def family_tray_poses(count: int) -> list[np.ndarray]:
    """Start and goal tray poses of the first family scenes (handle_box scenes need a reach path: skipped)."""
    config, poses, index = FamilyConfig(), [], 0
    while len(poses) < count:
        try:
            scene = scene_for_index(config, index)
        except ValueError:
            pass
        else:
            poses += [scene.start_pose(), scene.goal_pose()]
        index += 1
    return poses[:count]


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return load_model()


def test_numpy_ik_agrees_with_mujoco_ik(model: mujoco.MjModel) -> None:
    index, mujoco_ik, numpy_ik = SceneIndex.from_model(model), IKSolver(model), TrayIK()
    data = mujoco.MjData(model)
    verdicts, same = [], 0
    for pose in family_tray_poses(40):
        targets, quats = handle_targets(model, index, pose)
        target_pos, target_rot = numpy_ik.reach_targets(pose)
        assert np.allclose(target_pos, targets, atol=1e-12) and np.allclose(target_rot, quat_to_matrix(quats))
        expected = mujoco_ik.solve(targets, quats, seed_positions=HOME_POSITIONS, seed=0)
        got = numpy_ik.solve(target_pos, target_rot, HOME_POSITIONS)
        verdicts.append((expected.success, got.success))
        if not got.success:
            assert got.reason.startswith("no inverse kinematics solution")
            continue
        # MuJoCo's kinematics of the numpy solution: the end-effector sites are on the handle sites
        data.qpos[index.qpos_adr] = got.positions
        mujoco.mj_kinematics(model, data)
        for arm in range(2):
            site = int(index.ee_sites[arm])
            assert np.linalg.norm(data.site_xpos[site] - targets[arm]) <= POSITION_TOLERANCE
            quat = np.zeros(4)
            mujoco.mju_mat2Quat(quat, data.site_xmat[site])
            error = np.zeros(3)
            mujoco.mju_subQuat(error, quats[arm], quat)
            assert np.linalg.norm(error) <= ROTATION_TOLERANCE
        same += bool(expected.success and np.max(np.abs(expected.positions - got.positions)) < 1e-2)
    agree = sum(a == b for a, b in verdicts)
    converged = sum(b for _, b in verdicts)
    assert agree >= 38, verdicts  # the same verdict on (nearly) every pose
    assert converged >= 30 and same >= 0.8 * converged  # mostly the very same solution from the same seed
