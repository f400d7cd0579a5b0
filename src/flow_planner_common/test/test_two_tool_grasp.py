"""The carried tray held by both tools (issue 21): `TrayGrasp` with the right tool's part, `carried_tray` the mean of
the two tools' tray poses (position halfway, rotation the nearest rotation to the mean), in numpy
(kinematics.ArmKinematics) and torch (sphere_checker.SphereChecker) alike, and the checker's clearance and the
planner's sweep on that pose; a grasp without the right part keeps the left-rigid model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flow_planner_common.kinematics import CATEGORIES, ArmKinematics, TrayGrasp, mean_rotation, quat_to_matrix
from flow_planner_common.plan_scene import PlanScene
from flow_planner_common.robot import HOME_POSITIONS
from flow_planner_common.scene_safety import SceneSafety
from flow_planner_common.sphere_checker import SphereChecker
from flow_planner_common.tray_ik import TrayIK

#: A tray resting in front of the robot, reachable from home (as in test_tray_ik), level, yawed 0.2 rad.
TRAY = np.array([0.0, 0.55, 0.78, np.cos(0.1), 0.0, 0.0, np.sin(0.1)])
TRAY_CATEGORIES = [CATEGORIES.index(c) for c in ("tray_obstacle", "arm_tray", "tray_table")]


@pytest.fixture(scope="module")
def kinematics() -> ArmKinematics:
    return ArmKinematics()


@pytest.fixture(scope="module")
def checker() -> SphereChecker:
    return SphereChecker(dtype=torch.float64)


@pytest.fixture(scope="module")
def start(kinematics: ArmKinematics) -> np.ndarray:
    """Both end effectors on the tray's handles (IK from home)."""
    ik = TrayIK(kinematics)
    return ik.solve(*ik.reach_targets(TRAY), HOME_POSITIONS).positions


def rotation(axis, angle: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    return quat_to_matrix(np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis]))


def polar(m: np.ndarray) -> np.ndarray:
    """The nearest rotation to (..., 3, 3) m by SVD."""
    u, _, vt = np.linalg.svd(m)
    u[..., :, 2] *= np.sign(np.linalg.det(u @ vt))[..., None]
    return u @ vt


def quaternion(r: np.ndarray) -> np.ndarray:
    """(w, x, y, z) of a rotation matrix (Shepperd: from the largest of the four squared components)."""
    squares = 1.0 + np.array([np.trace(r), *(2.0 * np.diag(r) - np.trace(r))])
    k = int(np.argmax(squares))
    q = np.empty(4)
    q[k] = 0.5 * np.sqrt(squares[k])
    pairs = {(0, 1): r[2, 1] - r[1, 2], (0, 2): r[0, 2] - r[2, 0], (0, 3): r[1, 0] - r[0, 1],
             (1, 2): r[0, 1] + r[1, 0], (1, 3): r[0, 2] + r[2, 0], (2, 3): r[1, 2] + r[2, 1]}  # fmt: skip
    for (a, b), value in pairs.items():
        if k in (a, b):
            q[b if k == a else a] = value / (4.0 * q[k])
    assert np.allclose(quat_to_matrix(q), r, atol=1e-12)
    return q


def moved_right_tool(pos: np.ndarray, rot: np.ndarray, turn: np.ndarray, about: np.ndarray, shift: np.ndarray):
    """Body poses with the right arm's tool turned by `turn` about the point `about`, then shifted by `shift`."""
    pos, rot = pos.copy(), rot.copy()
    pos[1, -1] = about + turn @ (pos[1, -1] - about) + shift
    rot[1, -1] = turn @ rot[1, -1]
    return pos, rot


def test_grasp_from_start_fills_both_tools(kinematics: ArmKinematics, checker: SphereChecker, start) -> None:
    grasp = kinematics.grasp_from_start(start, TRAY)
    assert grasp.two_tool and grasp.right_position.shape == (3,) and grasp.right_rotation.shape == (3, 3)
    pos, rot = kinematics.forward_kinematics(start)
    for arm, (p, r) in enumerate(((grasp.position, grasp.rotation), (grasp.right_position, grasp.right_rotation))):
        assert np.allclose(pos[arm, -1] + rot[arm, -1] @ p, TRAY[:3], atol=1e-12)
        assert np.allclose(rot[arm, -1] @ r, quat_to_matrix(TRAY[3:]), atol=1e-12)
    # at the start the tray is where it was grasped, in both models and both implementations
    for g in (grasp, grasp.left_only()):
        p, r = kinematics.tray_poses(start, g)
        assert np.allclose(p, TRAY[:3], atol=1e-12) and np.allclose(r, quat_to_matrix(TRAY[3:]), atol=1e-12)
    same = checker.grasp_from_start(torch.as_tensor(start), TRAY)
    for name in ("position", "rotation", "right_position", "right_rotation"):
        assert np.array_equal(getattr(same, name), getattr(grasp, name))
    with pytest.raises(ValueError, match="both right_position and right_rotation"):
        TrayGrasp(grasp.position, grasp.rotation, right_position=grasp.right_position)


def test_without_a_grip_change_both_models_agree(kinematics: ArmKinematics, checker: SphereChecker, start) -> None:
    """The right tool exactly where it was relative to the left: the two-tool tray is the left-rigid one."""
    grasp = kinematics.grasp_from_start(start, TRAY)
    pos, rot = kinematics.forward_kinematics(start)
    # the whole pair of tools moved rigidly (a turn about an arbitrary point and a shift)
    turn, about, shift = rotation([0.3, -0.2, 1.0], 0.7), np.array([0.1, 0.4, 0.9]), np.array([0.05, -0.1, 0.2])
    pos[:, -1] = about + (pos[:, -1] - about) @ turn.T + shift
    rot[:, -1] = turn @ rot[:, -1]
    p2, r2 = ArmKinematics.carried_tray(pos, rot, grasp)
    p1, r1 = ArmKinematics.carried_tray(pos, rot, grasp.left_only())
    assert np.allclose(p2, p1, atol=1e-12) and np.allclose(r2, r1, atol=1e-12)
    # and on real joints: the arms carry the tray to a lifted, turned pose with both grasps kept (IK)
    ik = TrayIK(kinematics)
    lifted = np.array([0.05, 0.5, 0.95, np.cos(0.25), 0.0, 0.0, np.sin(0.25)])
    q = ik.solve(*ik.carry_targets(start, TRAY, lifted), start).positions
    p2, r2 = kinematics.tray_poses(q, grasp)
    p1, r1 = kinematics.tray_poses(q, grasp.left_only())
    assert np.linalg.norm(p2 - p1) < 1e-4 and np.abs(r2 - r1).max() < 1e-4  # the IK's tolerance
    assert np.linalg.norm(p2 - lifted[:3]) < 1e-3


@pytest.mark.parametrize("angle", [0.0, 0.05, 0.2, 0.5])
def test_with_a_grip_change_the_tray_sits_at_the_mean(kinematics: ArmKinematics, checker: SphereChecker, start,
                                                      angle: float) -> None:  # fmt: skip
    """The right tool shifted by d and turned by t about the tray's origin: the tray moves by d / 2 and turns by
    t / 2 (the geodesic midpoint, which is the SVD's nearest rotation to the mean)."""
    grasp = kinematics.grasp_from_start(start, TRAY)
    pos, rot = kinematics.forward_kinematics(start)
    axis, shift = np.array([0.2, 1.0, -0.4]), np.array([0.03, -0.02, 0.01])  # 37 mm
    moved = moved_right_tool(pos, rot, rotation(axis, angle), TRAY[:3], shift)
    tray_r = quat_to_matrix(TRAY[3:])
    p, r = ArmKinematics.carried_tray(*moved, grasp)
    assert np.allclose(p, TRAY[:3] + 0.5 * shift, atol=1e-12)
    halfway = rotation(axis, angle / 2) @ tray_r
    assert np.abs(r - halfway).max() < max(1e-12, angle**4 / 100)
    assert np.abs(r - polar(tray_r + rotation(axis, angle) @ tray_r)).max() < max(1e-12, angle**4 / 100)
    assert np.allclose(r.T @ r, np.eye(3), atol=1e-12) and np.linalg.det(r) == pytest.approx(1.0)
    left_p, left_r = ArmKinematics.carried_tray(*moved, grasp.left_only())
    assert np.allclose(left_p, TRAY[:3]) and np.allclose(left_r, tray_r)  # the left-rigid model ignores it
    # torch: the same pose
    tp, tr = SphereChecker.carried_tray(*(torch.as_tensor(a) for a in moved), grasp)
    assert np.abs(tp.numpy() - p).max() < 1e-12 and np.abs(tr.numpy() - r).max() < 1e-12


def test_mean_rotation_is_the_polar_factor() -> None:
    """Against the SVD polar decomposition of the mean of two rotations an angle t apart: off by about t^4 / 200."""
    rng = np.random.default_rng(2)
    base = polar(rng.normal(size=(400, 3, 3)))
    axes = rng.normal(size=(400, 3))
    for t in (0.0, 0.02, 0.1, 0.2, 0.4, 0.6):
        other = np.stack([rotation(a, t) for a in axes]) @ base
        got = mean_rotation(base, other)
        error = np.abs(got - polar(base + other)).max()
        assert error < max(1e-12, t**4 / 100), (t, error)
        assert np.abs(got.swapaxes(-1, -2) @ got - np.eye(3)).max() < 1e-12


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_numpy_and_torch_agree(kinematics: ArmKinematics, start, dtype: torch.dtype) -> None:
    torch_checker = SphereChecker(dtype=dtype)
    grasp = torch_checker.grasp_from_start(start, TRAY)
    q = start + np.random.default_rng(4).normal(0.0, 0.1, (3, 40, 12))  # grip changes of centimetres
    p, r = kinematics.tray_poses(q, grasp)
    tp, tr = torch_checker.carried_tray(*torch_checker.forward_kinematics(q), grasp)
    tolerance = 1e-10 if dtype == torch.float64 else 2e-6
    assert tp.shape == (3, 40, 3) and tr.shape == (3, 40, 3, 3)
    assert np.abs(tp.double().numpy() - p).max() < tolerance and np.abs(tr.double().numpy() - r).max() < tolerance
    left_rigid = kinematics.tray_poses(q, grasp.left_only())[0]
    assert np.linalg.norm(left_rigid - p, axis=-1).max() > 0.01  # the two models differ here


def test_the_checkers_clearance_holds_the_tray_at_the_mean(checker: SphereChecker, start) -> None:
    """clearance(grasp=...) equals clearance(tray_pose=the carried pose) in every tray category, configuration by
    configuration; with the left-only grasp it is the left-rigid pose's."""
    grasp = checker.grasp_from_start(start, TRAY)
    q = start + np.random.default_rng(5).normal(0.0, 0.05, (12, 12))
    boxes = np.array([[0.05, 0.45, 1.0, 0.2, 0.08, 0.1, 0.3], [-0.1, 0.7, 0.9, 0.05, 0.3, 0.3, 0.0]])
    for model in (grasp, grasp.left_only()):
        values = checker.clearance(q, boxes, grasp=model).numpy()
        p, r = ArmKinematics(checker.geometry).tray_poses(q, model)
        for i in range(len(q)):
            resting = checker.clearance(q[i], boxes, tray_pose=np.concatenate([p[i], quaternion(r[i])])).numpy()
            assert np.allclose(values[i], resting, atol=1e-9), (i, values[i], resting)
    two, left = (checker.clearance(q, boxes, grasp=g).numpy()[:, TRAY_CATEGORIES] for g in (grasp, grasp.left_only()))
    assert np.abs(two - left).max() > 1e-3  # the models put the tray apart by the grip change


def test_the_sweep_follows_the_mean_tray(checker: SphereChecker, start) -> None:
    """Only the right arm moves: the left-rigid tray stands still, the two-tool tray moves by half the right tool's
    motion; the sweep covers the tray's motion in both."""
    safety = SceneSafety(0.01, checker=checker)
    grasp = checker.grasp_from_start(start, TRAY)
    positions = np.repeat(start[None], 4, axis=0)
    positions[:, 8] += np.array([0.02, 0.04, 0.06, 0.08])  # the right elbow
    kinematics = ArmKinematics(checker.geometry)
    for model in (grasp, grasp.left_only()):
        sweep = safety.sweep(positions[None], start, PlanScene.from_boxes([], model))[0].numpy()
        trays = kinematics.tray_poses(np.concatenate([start[None], positions]), model)[0]
        steps = np.linalg.norm(np.diff(trays, axis=0), axis=-1)
        assert np.all(sweep >= 0.5 * steps - 1e-12)
    moved = np.linalg.norm(kinematics.tray_poses(positions[-1], grasp)[0] - TRAY[:3])
    assert moved > 1e-3
