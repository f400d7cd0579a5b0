"""The numpy collision checker (flow_planner_common.collision) against real MuJoCo: committed geometry, forward
kinematics, conservativeness (never "free" where mj_collision reports contact), false-positive rate, batching."""

from __future__ import annotations

import copy
import subprocess
import sys

import mujoco
import numpy as np
import pytest

from data_collector_ros.robot_geometry import geometry_from_model
from data_collector_ros.scene import (
    GROUP_LEFT,
    GROUP_RIGHT,
    GROUP_TRAY,
    HANDLE_SITES,
    SceneIndex,
    classify_contacts,
    load_model,
    obstacle_contacts,
    place_obstacles,
)
from flow_planner_common.collision import CATEGORIES, GEOMETRY_JSON, CollisionChecker, RobotGeometry, TrayGrasp
from flow_planner_common.obstacles import MAX_OBSTACLES, Box
from flow_planner_common.robot import HOME_POSITIONS, NUM_JOINTS

SCENES, CONFIGS_PER_SCENE = 120, 12  # 1440 configurations


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return load_model()


@pytest.fixture(scope="module")
def checker() -> CollisionChecker:
    return CollisionChecker()


def _random_configs(rng: np.random.Generator, count: int) -> np.ndarray:
    """Half near home (the task's workspace, many near misses), half anywhere within ±pi."""
    near = HOME_POSITIONS + rng.normal(0.0, 0.6, (count, NUM_JOINTS))
    anywhere = rng.uniform(-np.pi, np.pi, (count, NUM_JOINTS))
    return np.where(rng.random((count, 1)) < 0.5, near, anywhere)


def _random_boxes(rng: np.random.Generator) -> list[Box]:
    """1..MAX_OBSTACLES boxes around the arms' and the tray's workspace."""
    return [
        Box(
            (rng.uniform(-0.1, 0.8), rng.uniform(-0.6, 0.6), rng.uniform(0.78, 1.4)),
            tuple(rng.uniform(0.03, 0.35, 3)),
            rng.uniform(-np.pi, np.pi),
        )
        for _ in range(rng.integers(1, MAX_OBSTACLES + 1))
    ]


def _carry_grasp(model: mujoco.MjModel, checker: CollisionChecker) -> TrayGrasp:
    """The tray held with its left handle site on the left end-effector site (the grasp the weld keeps)."""
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, HANDLE_SITES[0])
    handle_rot = np.zeros(9)
    mujoco.mju_quat2Mat(handle_rot, model.site_quat[site])
    handle_rot = handle_rot.reshape(3, 3)
    g = checker.geometry
    ee_pos, ee_rot = g.ee_pos[0], g.ee_rot[0]
    rotation = ee_rot @ handle_rot.T
    return TrayGrasp(ee_pos - rotation @ model.site_pos[site], rotation)


class _MujocoContacts:
    """mj_collision per configuration on a model copy whose tray also collides with the arms (as plan_cost)."""

    def __init__(self, model: mujoco.MjModel) -> None:
        self.model = copy.deepcopy(model)
        self.index = SceneIndex.from_model(self.model)
        self.data = mujoco.MjData(self.model)
        groups = self.index.geom_group
        self.model.geom_conaffinity[groups == GROUP_TRAY] |= 2 | 4
        self.model.body_conaffinity[self.index.tray_body] |= 2 | 4  # the broad phase filters on the body's bits
        names = [mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_GEOM, i) or "" for i in range(self.model.ngeom)]
        tools = np.array([n in ("left_tool_geom", "right_tool_geom") for n in names])
        handles = np.array([n in {f"{s}_geom" for s in HANDLE_SITES} for n in names])
        arm = np.isin(groups, (GROUP_LEFT, GROUP_RIGHT))
        self.arm_tray = (arm[:, None] & (groups == GROUP_TRAY)[None, :]) & ~(tools[:, None] & handles[None, :])
        self.tray_q = self.index.tray_qpos_adr

    def set_scene(self, boxes: list[Box]) -> None:
        place_obstacles(self.model, self.index, boxes)

    def contacts(self, q: np.ndarray, tray_pos: np.ndarray, tray_rot: np.ndarray) -> np.ndarray:
        """(5,) bool: contact per category in CATEGORIES[:5] order."""
        d = self.data
        d.qpos[self.index.qpos_adr] = q
        d.qpos[self.tray_q : self.tray_q + 3] = tray_pos
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, np.ascontiguousarray(tray_rot).ravel())
        d.qpos[self.tray_q + 3 : self.tray_q + 7] = quat
        mujoco.mj_kinematics(self.model, d)
        mujoco.mj_collision(self.model, d)
        pairs = d.contact.geom[: d.ncon].copy()
        arm_arm, arm_env = classify_contacts(self.index, pairs)
        arm_obstacle, tray_obstacle = obstacle_contacts(self.index, pairs)
        arm_tray = bool(
            len(pairs) and (self.arm_tray[pairs[:, 0], pairs[:, 1]] | self.arm_tray[pairs[:, 1], pairs[:, 0]]).any()
        )
        return np.array([arm_arm, arm_env, arm_obstacle, tray_obstacle, arm_tray])


def test_committed_geometry_equals_the_mjcf(model: mujoco.MjModel) -> None:
    generated = geometry_from_model(model)
    assert generated.equals(RobotGeometry.load()), "regenerate: python -m data_collector_ros.robot_geometry > " + str(
        GEOMETRY_JSON
    )
    assert RobotGeometry.from_json(generated.to_json()).equals(generated)


def test_checker_module_does_not_load_mujoco() -> None:
    code = (
        "import sys, numpy as np; from flow_planner_common.collision import CollisionChecker; "
        "CollisionChecker().clearance(np.zeros((2, 3, 12))); "
        "assert not {'mujoco', 'data_collector_ros'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_forward_kinematics_matches_mujoco(model: mujoco.MjModel, checker: CollisionChecker) -> None:
    rng = np.random.default_rng(7)
    index, data = SceneIndex.from_model(model), mujoco.MjData(model)
    q = rng.uniform(-2 * np.pi, 2 * np.pi, (500, NUM_JOINTS))
    ee_pos, ee_rot = checker.ee_poses(q)
    pos, _ = checker.forward_kinematics(q)
    errors = []
    for i in range(len(q)):
        data.qpos[index.qpos_adr] = q[i]
        mujoco.mj_kinematics(model, data)
        errors.append(np.abs(data.site_xpos[index.ee_sites] - ee_pos[i]).max())
        errors.append(np.abs(data.site_xmat[index.ee_sites].reshape(2, 3, 3) - ee_rot[i]).max())
        errors.append(np.abs(data.xpos[index.tool_bodies] - pos[i, :, -1]).max())
    print(f"\nFK max error over 500 configurations: {max(errors):.2e}")
    assert max(errors) < 1e-6


def test_conservative_against_mujoco_contacts(model: mujoco.MjModel, checker: CollisionChecker) -> None:
    rng = np.random.default_rng(2024)
    sim = _MujocoContacts(model)
    grasp = _carry_grasp(model, checker)
    mujoco_hits, checker_hits = [], []
    for scene in range(SCENES):
        boxes = _random_boxes(rng)
        sim.set_scene(boxes)
        q = _random_configs(rng, CONFIGS_PER_SCENE)
        if scene % 2 == 0:  # reach: the tray rests on the table
            yaw = rng.uniform(-0.8, 0.8)
            pose = np.array(
                [rng.uniform(0.35, 0.65), rng.uniform(-0.15, 0.15), 0.76, np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]
            )
            report = checker.clearance(q, boxes, tray_pose=pose)
            tray_rot = np.zeros(9)
            mujoco.mju_quat2Mat(tray_rot, pose[3:])
            tray = [(pose[:3], tray_rot.reshape(3, 3))] * len(q)
        else:  # carry: the tray follows the left tool
            report = checker.clearance(q, np.array([b.as_array() for b in boxes]), grasp=grasp)
            tray_pos, tray_rot = checker.tray_poses(q, grasp)
            tray = list(zip(tray_pos, tray_rot, strict=True))
        for i in range(len(q)):
            mujoco_hits.append(sim.contacts(q[i], *tray[i]))
        checker_hits.append(report.as_array()[:, :5] <= 0.0)
    mujoco_hits, checker_hits = np.array(mujoco_hits), np.concatenate(checker_hits)
    false_free = mujoco_hits & ~checker_hits
    free = ~mujoco_hits.any(axis=1)
    false_positive = free & checker_hits.any(axis=1)
    print(f"\n{len(free)} configurations, {SCENES} scenes; MuJoCo contacts per category:")
    for k, name in enumerate(CATEGORIES[:5]):
        line = f"  {name:14s} mujoco {mujoco_hits[:, k].sum():5d}  checker {checker_hits[:, k].sum():5d}"
        print(f"{line}  false free {false_free[:, k].sum()}")
    rate = false_positive.sum() / max(1, free.sum())
    print(f"  false-positive rate (MuJoCo free, checker colliding): {false_positive.sum()}/{free.sum()} = {rate:.1%}")
    assert len(free) >= 1000
    assert mujoco_hits.sum(axis=0).min() >= 10, "every category must be exercised"
    assert not false_free.any(), f"checker reported free where MuJoCo has contact: {np.argwhere(false_free)[:10]}"
    assert rate < 0.10


def test_batch_equals_single_configurations(model: mujoco.MjModel, checker: CollisionChecker) -> None:
    rng = np.random.default_rng(3)
    boxes = _random_boxes(rng)
    q = _random_configs(rng, 24).reshape(4, 6, NUM_JOINTS)
    grasp = checker.grasp_from_start(HOME_POSITIONS, np.array([0.5, 0.0, 0.76, 1.0, 0.0, 0.0, 0.0]))
    for tray in ({"tray_pose": np.array([0.5, 0.0, 0.76, 1.0, 0.0, 0.0, 0.0])}, {"grasp": grasp}, {}):
        batch = checker.clearance(q, boxes, **tray).as_array()
        assert batch.shape == (4, 6, len(CATEGORIES))
        single = np.array([[checker.clearance(q[n, k], boxes, **tray).as_array() for k in range(6)] for n in range(4)])
        np.testing.assert_allclose(batch, single, rtol=0, atol=1e-9)


def test_clearances_are_distances(checker: CollisionChecker) -> None:
    """Home pose: arms apart, just above the table (the shoulder's capsule cap); a box on the tool penetrates."""
    ee, _ = checker.ee_poses(HOME_POSITIONS)
    free = checker.clearance(HOME_POSITIONS, [Box((ee[0, 0], ee[0, 1], ee[0, 2] + 0.6), (0.1, 0.1, 0.1))])
    assert free.overall > 0.005 and free.arm_obstacle > 0.2 and free.arm_arm > 0.2
    hit = checker.clearance(HOME_POSITIONS, [Box(tuple(ee[0]), (0.1, 0.1, 0.1))])
    assert hit.arm_obstacle < 0.0 and hit.overall == hit.arm_obstacle
    mask = np.array([True, False])
    far, on_tool = Box(tuple(ee[0] + 1.0), (0.1,) * 3), Box(tuple(ee[0]), (0.1,) * 3)
    masked = checker.clearance(HOME_POSITIONS, np.stack([far.as_array(), on_tool.as_array()]), mask)
    assert masked.arm_obstacle > 0.0
    assert np.isinf(checker.clearance(HOME_POSITIONS).tray_obstacle)
