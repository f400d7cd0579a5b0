"""The sphere checker (flow_planner_common.sphere_checker, both backends: the compiled kernel and torch ops) against
real MuJoCo on the scene family: the committed sphere cover covers the MJCF geoms, forward kinematics,
conservativeness (0 false "free" per category on 10 000 configurations of 500 family scenes, tray resting and
carried), separation distances as lower bounds (and close to MuJoCo's for the arm against boxes and the table),
batching, input types, the backends' agreement, no MuJoCo import, CPU = CUDA."""

from __future__ import annotations

import math
import subprocess
import sys

import mujoco
import numpy as np
import pytest
import torch

from data_collector_ros.collision_judge import (
    DISTANCE_LIMIT,
    JudgeCase,
    MujocoJudge,
    Verdicts,
    judge_cases,
    random_boxes,
)
from data_collector_ros.robot_geometry import _collides
from data_collector_ros.robot_spheres import spheres_from_model
from data_collector_ros.scene import SceneIndex, load_model
from flow_planner_common.kinematics import CATEGORIES, ArmKinematics, quat_to_matrix
from flow_planner_common.robot import HOME_POSITIONS, NUM_JOINTS
from flow_planner_common.robot_spheres import SPHERES_JSON, RobotSpheres
from flow_planner_common.sphere_checker import SphereChecker
from flow_planner_common.sphere_kernel import LANES, _trig_lanes

SCENES, CONFIGS_PER_SCENE = 500, 20  # 10 000 configurations
#: Largest accepted false-positive rate (MuJoCo free, the checker colliding at margin 0): measured 7.2 % on these
#: cases (seed 11) and on the benchmark's (seed 0); 12.6 % / 13.4 % with the spheres alone (no geom bound).
FALSE_POSITIVE_BOUND = 0.10
#: The arm against a box or the table: the median of how far the checker's value is below MuJoCo's separation
#: distance (m), at most the padding plus this (measured 0.1-0.4 mm beyond it; the spheres alone: 10 mm).
GEOM_BOUND_SLACK = 0.002
#: Scenes whose configurations also get MuJoCo's signed distances (mj_geomDistance per geom pair: slower).
DISTANCE_SCENES = 60
FLOAT32_FK, FLOAT64_FK = 1e-5, 1e-9


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return load_model()


@pytest.fixture(scope="module", params=["compiled", "torch"])
def checker(request: pytest.FixtureRequest) -> SphereChecker:
    """Each backend of clearance(): the compiled kernel (the CPU default) and torch ops (the CUDA path)."""
    return SphereChecker(backend=request.param)


@pytest.fixture(scope="module")
def cases(model: mujoco.MjModel) -> list[JudgeCase]:
    return judge_cases(SCENES, CONFIGS_PER_SCENE, seed=11, model=model)


def _clearances(checker: SphereChecker, case: JudgeCase) -> np.ndarray:
    return checker.clearance(case.positions, case.boxes, tray_pose=case.tray_pose, grasp=case.grasp).cpu().numpy()


def _tray(case: JudgeCase) -> tuple[np.ndarray, np.ndarray]:
    """The tray's pose per configuration, (n, 3) and (n, 3, 3), as the judge placed it."""
    if case.grasp is not None:
        return ArmKinematics().tray_poses(case.positions, case.grasp)
    n = len(case.positions)
    return np.broadcast_to(case.tray_pose[:3], (n, 3)), np.broadcast_to(quat_to_matrix(case.tray_pose[3:]), (n, 3, 3))


def test_committed_spheres_equal_the_mjcf(model: mujoco.MjModel) -> None:
    generated = spheres_from_model(model)
    assert generated.equals(RobotSpheres.load()), "regenerate: python -m data_collector_ros.robot_spheres > " + str(
        SPHERES_JSON
    )
    assert RobotSpheres.from_json(generated.to_json()).equals(generated)


def test_spheres_cover_every_collision_geom(model: mujoco.MjModel, checker: SphereChecker) -> None:
    """Points sampled in (and on) every arm collision geom lie in a sphere of the same body (unpadded radii)."""
    spheres, rng = checker.spheres, np.random.default_rng(5)
    index = SceneIndex.from_model(model)
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    for arm, prefix in enumerate(("left_", "right_")):
        chain = [int(model.jnt_bodyid[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, prefix + j)])
                 for j in ("shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint",
                           "wrist_2_joint", "wrist_3_joint")]  # fmt: skip
        chain.append(int(index.tool_bodies[arm]))
        geoms = [g for g in range(model.ngeom) if int(model.geom_bodyid[g]) in chain and _collides(model, g)]
        for geom in geoms:
            points = _points_in_geom(model, geom, rng)  # body frame
            body = chain.index(int(model.geom_bodyid[geom]))
            mine = spheres.body[arm] == body
            centres, radii = spheres.center[arm, mine], spheres.radius[arm, mine]
            outside = np.linalg.norm(points[:, None] - centres[None], axis=-1) - radii[None]
            assert outside.min(axis=1).max() <= 1e-12, mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, geom)


def _points_in_geom(model: mujoco.MjModel, geom: int, rng: np.random.Generator, count: int = 4000) -> np.ndarray:
    """(count, 3) points inside a capsule, cylinder or box geom (half of them on its surface), in its body frame."""
    size, kind = model.geom_size[geom], int(model.geom_type[geom])
    u = rng.uniform(-1.0, 1.0, (count, 3))
    if kind == mujoco.mjtGeom.mjGEOM_BOX:
        local = u * size
        face = rng.integers(0, 3, count // 2)
        local[np.arange(count // 2), face] = np.sign(u[: count // 2, 0]) * size[face]
    else:
        direction = rng.normal(size=(count, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        if kind == mujoco.mjtGeom.mjGEOM_CAPSULE:  # a point of the segment plus up to the radius
            radial = size[0] * np.cbrt(rng.uniform(0.0, 1.0, (count, 1)))
            radial[: count // 2] = size[0]
            local = direction * radial + np.outer(u[:, 2] * size[1], [0.0, 0.0, 1.0])
        else:  # cylinder: a disc point at a height, rims included
            angle = rng.uniform(0.0, 2 * np.pi, count)
            radial = size[0] * np.sqrt(rng.uniform(0.0, 1.0, count))
            radial[: count // 2] = size[0]
            height = u[:, 2] * size[1]
            height[: count // 4] = np.sign(height[: count // 4]) * size[1]
            local = np.stack([radial * np.cos(angle), radial * np.sin(angle), height], axis=1)
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, model.geom_quat[geom])
    return model.geom_pos[geom] + local @ rot.reshape(3, 3).T


@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float32, FLOAT32_FK), (torch.float64, FLOAT64_FK)])
def test_forward_kinematics_matches_mujoco(model: mujoco.MjModel, dtype: torch.dtype, tolerance: float) -> None:
    checker = SphereChecker(dtype=dtype)
    rng = np.random.default_rng(7)
    index, data = SceneIndex.from_model(model), mujoco.MjData(model)
    q = rng.uniform(-2 * np.pi, 2 * np.pi, (300, NUM_JOINTS))
    pos, rot = (t.numpy() for t in checker.forward_kinematics(q))
    ee_pos, ee_rot = (t.numpy() for t in checker.ee_poses(q))
    chain = ArmKinematics().forward_kinematics(q)[0]  # the numpy chain (float64) for the bodies
    errors = []
    for i in range(len(q)):
        data.qpos[index.qpos_adr] = q[i]
        mujoco.mj_kinematics(model, data)
        errors.append(np.abs(data.site_xpos[index.ee_sites] - ee_pos[i]).max())
        errors.append(np.abs(data.site_xmat[index.ee_sites].reshape(2, 3, 3) - ee_rot[i]).max())
        errors.append(np.abs(data.xpos[index.tool_bodies] - pos[i, :, -1]).max())
        errors.append(np.abs(data.xmat[index.tool_bodies].reshape(2, 3, 3) - rot[i, :, -1]).max())
    print(f"\n{dtype}: FK max error over {len(q)} configurations: {max(errors):.2e}")
    assert max(errors) < tolerance
    assert np.abs(pos - chain).max() < tolerance
    # sphere centres from the MuJoCo body frames of the chain; the carried tray as ArmKinematics carries it
    bodies = [[int(model.body_parentid[t])] for t in index.tool_bodies]
    for arm in range(2):
        while len(bodies[arm]) < 6:
            bodies[arm].insert(0, int(model.body_parentid[bodies[arm][0]]))
        bodies[arm].append(int(index.tool_bodies[arm]))
    centres = checker.sphere_centers(*checker.forward_kinematics(q[:20])).numpy()
    for i in range(20):
        data.qpos[index.qpos_adr] = q[i]
        mujoco.mj_kinematics(model, data)
        for arm in range(2):
            body = np.array(bodies[arm])[checker.spheres.body[arm]]
            expected = data.xpos[body] + np.einsum("sij,sj->si", data.xmat[body].reshape(-1, 3, 3),
                                                   checker.spheres.center[arm])  # fmt: skip
            assert np.abs(centres[i, arm] - expected).max() < tolerance
    kinematics = ArmKinematics()
    grasp = kinematics.grasp_from_start(HOME_POSITIONS, np.array([0.5, 0.0, 0.76, 1.0, 0.0, 0.0, 0.0]))
    near = HOME_POSITIONS + np.random.default_rng(8).normal(0.0, 0.1, (300, NUM_JOINTS))  # grip changes of cm
    # the left-rigid model anywhere, the two-tool one (the mean of both tools' tray poses) near the grasp and, with
    # float32 rounding amplified where the tools' rotations are far apart (the mean of two rotations), anywhere
    for joints, model, bound in ((q, grasp.left_only(), tolerance), (near, grasp, tolerance),
                                 (q, grasp, 10 * tolerance)):  # fmt: skip
        tray_pos, tray_rot = checker.carried_tray(*checker.forward_kinematics(joints), model)
        expected_pos, expected_rot = kinematics.tray_poses(joints, model)
        assert np.abs(tray_pos.numpy() - expected_pos).max() < bound
        assert np.abs(tray_rot.numpy() - expected_rot).max() < bound


def test_conservative_against_mujoco_on_the_scene_family(checker: SphereChecker, cases: list[JudgeCase]) -> None:
    verdicts = Verdicts.of(cases, [_clearances(checker, c) for c in cases])
    carried = sum(c.grasp is not None for c in cases)
    print(f"\n{len(verdicts.contacts)} configurations, {len(cases)} family scenes ({carried} carrying the tray):")
    print(verdicts.table())
    assert len(verdicts.contacts) >= 10_000 and len(cases) >= 500
    assert verdicts.contacts.sum(axis=0).min() >= 10, "every category must be exercised"
    assert not verdicts.false_free.any(), f"free where MuJoCo has contact: {verdicts.table()}"
    assert verdicts.false_positive_rate < FALSE_POSITIVE_BOUND


def test_separation_distances_are_lower_bounds(
    model: mujoco.MjModel, checker: SphereChecker, cases: list[JudgeCase]
) -> None:
    """Where MuJoCo's signed distance (mj_geomDistance) is >= 0 the checker's value is at most it; where it is < 0,
    the checker's is < 0 too (a penetration's depth is the deepest sphere's, not the geom's)."""
    judge, gaps, worst = MujocoJudge(model), [[] for _ in CATEGORIES], np.full(len(CATEGORIES), -np.inf)
    for case in cases[:DISTANCE_SCENES]:
        judge.set_scene(case.boxes)
        ours = _clearances(checker, case)
        for q, tray_pos, tray_rot, mine in zip(case.positions, *_tray(case), ours, strict=True):
            theirs = judge.distances(q, tray_pos, tray_rot)
            apart = (theirs >= 0.0) & (theirs < DISTANCE_LIMIT)
            worst = np.maximum(worst, np.where(apart, mine - theirs, -np.inf))
            assert np.all(mine[theirs < 0.0] <= 0.0)
            for k in np.flatnonzero(apart):
                gaps[k].append(theirs[k] - mine[k])
    print("\nhow far below MuJoCo's separation distance (mm): median, 90th percentile")
    for name, gap in zip(CATEGORIES, gaps, strict=True):
        print(f"  {name:14s} {np.median(gap) * 1e3:6.1f} {np.percentile(gap, 90) * 1e3:6.1f}  ({len(gap)} values)")
    assert np.all(worst <= -checker.padding + 1e-4), dict(zip(CATEGORIES, worst, strict=True))
    for name in ("arm_table", "arm_obstacle"):  # the geoms' separating-axis bound: nearly MuJoCo's distance
        assert np.median(gaps[CATEGORIES.index(name)]) <= checker.padding + GEOM_BOUND_SLACK, name


def test_a_tool_buried_in_a_box_reads_deep(checker: SphereChecker) -> None:
    """The geom bound's axis from the box to the geom's centre does not exist where that centre is inside the box: a
    buried tool reads centimetres deep (the endpoint rule refuses starts and goals deeper than 3 mm), not the
    padding."""
    pos, rot = checker.forward_kinematics(HOME_POSITIONS)
    tool = (pos[0, -1] + rot[0, -1] @ torch.tensor([0.0, 0.0, 0.05])).numpy()  # the left tool box's centre
    for size, deeper_than in ((0.2, 0.1), (0.12, 0.06)):
        box = np.array([[*tool, size, size, size, 0.0]])
        assert float(checker.clearance(HOME_POSITIONS, box)[CATEGORIES.index("arm_obstacle")]) < -deeper_than


def test_batch_equals_single_configurations(checker: SphereChecker) -> None:
    """A batch's rows equal single configurations': the compiled kernel's blocks of LANES (two full, one short) with
    one lane each."""
    rng = np.random.default_rng(3)
    boxes = random_boxes(rng, 3)
    rows, columns = 2, LANES + 22
    q = HOME_POSITIONS + rng.normal(0.0, 0.8, (rows, columns, NUM_JOINTS))
    tray_pose = np.array([0.5, 0.0, 0.76, 1.0, 0.0, 0.0, 0.0])
    grasp = checker.grasp_from_start(HOME_POSITIONS, tray_pose)
    for tray in ({"tray_pose": tray_pose}, {"grasp": grasp}, {}):
        batch = checker.clearance(q, boxes, **tray)
        assert batch.shape == (rows, columns, len(CATEGORIES))
        single = torch.stack([torch.stack([checker.clearance(q[n, k], boxes, **tray) for k in range(columns)])
                              for n in range(rows)])  # fmt: skip
        torch.testing.assert_close(batch, single, rtol=0.0, atol=1e-5)  # float32 rounding of differently sized products


def test_inputs_numpy_float64_and_masks(checker: SphereChecker) -> None:
    rng = np.random.default_rng(4)
    q = HOME_POSITIONS + rng.normal(0.0, 0.5, (5, NUM_JOINTS))
    boxes = random_boxes(rng, 2)
    from_numpy = checker.clearance(q, boxes)
    assert from_numpy.dtype == torch.float32 and from_numpy.device == checker.device
    from_torch = checker.clearance(torch.as_tensor(q), torch.as_tensor(boxes))  # float64 tensors
    torch.testing.assert_close(from_numpy, from_torch)
    exact = SphereChecker(dtype=torch.float64, backend=checker.backend).clearance(q, boxes)
    assert exact.dtype == torch.float64
    # float32 pads every radius by its ROUNDING_SLACK (1e-4 m): a pair of spheres reads up to 2e-4 closer
    torch.testing.assert_close(from_numpy.double(), exact, rtol=0.0, atol=2.5e-4)
    # a masked-out box counts as absent; no boxes at all: no obstacle pairs (+inf)
    padded, mask = np.concatenate([boxes, random_boxes(rng, 2)]), np.array([1, 1, 0, 0], dtype=bool)
    masked = checker.clearance(q, padded, mask)
    torch.testing.assert_close(masked, from_numpy)
    torch.testing.assert_close(checker.clearance(q, padded, torch.as_tensor(mask)), from_numpy)  # a tensor mask
    per_scene = checker.clearance(np.stack([q, q]), np.stack([padded, padded]), np.stack([mask, mask]))  # G = 2
    torch.testing.assert_close(per_scene, torch.stack([from_numpy, from_numpy]), rtol=0.0, atol=1e-5)
    none = checker.clearance(q, np.zeros((2, 7)), np.zeros(2, dtype=bool))
    assert torch.isinf(none[:, CATEGORIES.index("arm_obstacle")]).all()
    assert torch.isinf(none[:, 3:]).all()  # no tray: no tray categories
    pose = np.array([0.5, 0.0, 0.76, 1.0, 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="not both"):
        checker.clearance(q, tray_pose=pose, grasp=checker.grasp_from_start(q[0], pose))


@pytest.mark.parametrize(("dtype", "rounding"), [(torch.float64, 1e-8), (torch.float32, 2e-5)])
def test_compiled_kernel_agrees_with_torch(cases: list[JudgeCase], dtype: torch.dtype, rounding: float) -> None:
    """The compiled kernel (sphere_kernel) and the torch ops give the same bounds in each dtype (the kernel's float32
    lanes: the default): equal up to rounding in every category but arm-arm, where the kernel takes the exact closest
    sphere pair and torch a bound below it (in float64 within 12 % where apart by less than 10 cm; <= 0 where spheres
    overlap); tray resting, carried by both tools and by the left alone."""
    compiled, reference = (SphereChecker(dtype=dtype, backend=b) for b in ("compiled", "torch"))
    arm_arm = []
    for case in cases[:150]:
        trays = [{"tray_pose": case.tray_pose}] if case.grasp is None else [{"grasp": case.grasp},
                                                                             {"grasp": case.grasp.left_only()}]
        for tray in trays:  # fmt: skip
            ours = compiled.clearance(case.positions, case.boxes, **tray).numpy()
            theirs = reference.clearance(case.positions, case.boxes, **tray).numpy()
            assert np.array_equal(np.isfinite(ours), np.isfinite(theirs))
            finite = np.isfinite(ours[:, 1:])
            assert np.abs(ours[:, 1:][finite] - theirs[:, 1:][finite]).max() < rounding
            arm_arm.append(np.stack([ours[:, 0], theirs[:, 0]], axis=1))
    exact, bound = np.concatenate(arm_arm).T
    assert np.all(bound <= exact + rounding)
    apart, near = exact > 0.0, (exact > 0.0) & (exact < 0.1)
    assert near.sum() >= 100
    if dtype == torch.float64:  # torch's float32 bound also takes off its product's rounding (_gram_eps)
        assert np.all(bound[near] >= 0.88 * exact[near])
    assert np.all(exact[~apart] <= 0.0) and (~apart).sum() >= 50


def test_compiled_batches_scenes_and_threads() -> None:
    """Several scenes in one call equal one call per scene; a batch split over threads equals one thread."""
    checker = SphereChecker(backend="compiled")
    rng = np.random.default_rng(9)
    pose = np.array([0.5, 0.0, 0.76, 1.0, 0.0, 0.0, 0.0])
    q = HOME_POSITIONS + rng.normal(0.0, 0.4, (3, 700, NUM_JOINTS))  # 2100 configurations: split over threads
    boxes = np.stack([random_boxes(rng, 4) for _ in range(3)])
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=bool)
    grasps = [checker.grasp_from_start(q[g, 0], pose) for g in range(3)]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        batched = checker.clearance(q, boxes, mask, grasp=grasps)
        torch.set_num_threads(1)
        alone = torch.stack([checker.clearance(q[g], boxes[g], mask[g], grasp=grasps[g]) for g in range(3)])
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(batched, alone)
    assert torch.isinf(batched[2, :, CATEGORIES.index("arm_obstacle")]).all()  # scene 2: every box masked out


def test_compiled_sin_cos_match_libm() -> None:
    """The kernels' branch-free sin and cos (sphere_kernel._sin_cos) are libm's to rounding, over every quadrant, at
    the quadrant boundaries and far beyond any joint limit."""
    rng = np.random.default_rng(5)
    angles = np.concatenate([rng.uniform(-40.0, 40.0, 20000), np.arange(-16, 17) * math.pi / 4, [0.0, 1e-300]])
    trig = np.ascontiguousarray(np.stack([angles, np.zeros_like(angles)])[:, None, :])  # (2, 1, n)
    _trig_lanes(trig)
    np.testing.assert_allclose(trig[0, 0], np.sin(angles), rtol=0.0, atol=5e-16)
    np.testing.assert_allclose(trig[1, 0], 1.0 - np.cos(angles), rtol=0.0, atol=5e-16)


def test_backend_choice() -> None:
    assert SphereChecker().backend == "compiled"  # numba is a dependency: the CPU default
    with pytest.raises(ValueError, match="backend"):
        SphereChecker(backend="fortran")
    with pytest.raises(ValueError, match="CPU only"):
        SphereChecker(device="cuda", backend="compiled")


def test_checker_module_does_not_load_mujoco() -> None:
    code = (
        "import sys, torch; from flow_planner_common.sphere_checker import SphereChecker; "
        "SphereChecker().clearance(torch.zeros((2, 3, 12))); "
        "assert not {'mujoco', 'data_collector_ros'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(cases: list[JudgeCase]) -> None:
    """The same torch ops on CUDA and on the CPU."""
    gpu, checker = SphereChecker(device="cuda"), SphereChecker(backend="torch")
    for case in cases[:40]:
        q = torch.as_tensor(case.positions, device="cuda")
        on_gpu = gpu.clearance(q, case.boxes, tray_pose=case.tray_pose, grasp=case.grasp)
        assert on_gpu.device.type == "cuda"
        on_cpu = _clearances(checker, case)
        finite = np.isfinite(on_cpu)
        assert np.array_equal(finite, torch.isfinite(on_gpu).cpu().numpy())
        assert np.abs(on_gpu.cpu().numpy()[finite] - on_cpu[finite]).max() < 1e-4
    pos, _ = gpu.forward_kinematics(torch.as_tensor(cases[0].positions, device="cuda"))
    assert pos.device.type == "cuda"
    assert math.isclose(float(pos[0, 0, 0, 2]), float(checker.forward_kinematics(cases[0].positions)[0][0, 0, 0, 2]),
                        abs_tol=1e-5)  # fmt: skip
