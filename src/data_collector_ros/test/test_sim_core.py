"""The ROS-free simulation core with real MuJoCo: scene, IK, tracking, grasp, success, stability, contract."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from data_collector_ros.ik import IKSolver
from data_collector_ros.interpolation import HermiteTrajectory
from data_collector_ros.jtc_contract import TrajectoryRejected, hermite_peak_speeds, validate_trajectory
from data_collector_ros.scene import SceneIndex, classify_contacts
from data_collector_ros.simulation import Simulation, SimulationUnstable
from data_collector_ros.success import evaluate_simulation
from data_collector_ros.task import TaskConfig, handle_targets
from flow_planner_common.motion import min_jerk_waypoints
from flow_planner_common.robot import (
    DEFAULT_DT,
    HOME_POSITIONS,
    JOINT_NAMES,
    JOINT_POSITION_LIMITS,
    JOINT_VELOCITY_LIMITS,
    LEFT_ARM_JOINTS,
    PHASE_CARRY,
    PHASE_REACH,
)

TASK = TaskConfig()
AT_REST = {"start_positions": [0.0] * 6, "start_velocities": [0.0] * 6}


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return Simulation()


@pytest.fixture(scope="module")
def ik(sim: Simulation) -> IKSolver:
    return IKSolver(sim.model)



def forward_kinematics(model: mujoco.MjModel, positions: np.ndarray) -> np.ndarray:
    """(2, 3) end-effector positions of a configuration, straight from MuJoCo's kinematics."""
    data, index = mujoco.MjData(model), SceneIndex.from_model(model)
    data.qpos[index.qpos_adr] = positions
    mujoco.mj_kinematics(model, data)
    return data.site_xpos[index.ee_sites].copy()


def touches_environment(model: mujoco.MjModel, positions: np.ndarray) -> bool:
    """Whether an arm is in contact with the table or the tray (MuJoCo's collision detection)."""
    data, index = mujoco.MjData(model), SceneIndex.from_model(model)
    data.qpos[index.qpos_adr] = positions
    mujoco.mj_kinematics(model, data)
    mujoco.mj_collision(model, data)
    return bool(classify_contacts(index, data.contact.geom[: data.ncon])[1])

def start_poses(sim: Simulation) -> np.ndarray:
    grid = TASK.grid(3, 3, 3, float(sim.rest_tray_pose[2]))
    return grid[[0, 13, 17, 26]]


def test_mjcf_joint_ranges_are_the_robot_limits(sim: Simulation) -> None:
    joint_ids = [sim.model.joint(name).id for name in JOINT_NAMES]
    np.testing.assert_allclose(sim.model.jnt_range[joint_ids], JOINT_POSITION_LIMITS)


def test_ik_reaches_handles_within_5mm(sim: Simulation, ik: IKSolver) -> None:
    for pose in start_poses(sim):
        targets, quats = handle_targets(sim.model, sim.index, pose)
        result = ik.solve(targets, quats, seed=1)
        assert result.success, result
        reached = forward_kinematics(sim.model, result.positions)  # independent forward kinematics
        assert np.linalg.norm(reached - targets, axis=1).max() < 0.005
        again = ik.solve(targets, quats, seed=1)
        np.testing.assert_array_equal(again.positions, result.positions)  # deterministic


def test_executed_reach_and_carry_succeed(sim: Simulation, ik: IKSolver) -> None:
    pose = start_poses(sim)[1]
    sim.reset(pose)
    targets, quats = handle_targets(sim.model, sim.index, pose)
    goal = ik.solve(targets, quats).positions
    positions, velocities = min_jerk_waypoints(sim.state().positions, goal, DEFAULT_DT)
    sim.run_trajectory(positions, velocities, DEFAULT_DT)
    assert np.abs(sim.state().positions - goal).max() < 5e-3  # stated tracking tolerance: 5 mrad
    reach = evaluate_simulation(sim, PHASE_REACH, targets, pose)
    assert reach.success, reach.reasons
    assert sim.attach().attached
    tray_goal = TASK.carry_goal_pose(pose)
    carry_targets, carry_quats = handle_targets(sim.model, sim.index, tray_goal)
    carry_goal = ik.solve(carry_targets, carry_quats, seed_positions=goal).positions
    positions, velocities = min_jerk_waypoints(sim.state().positions, carry_goal, DEFAULT_DT)
    sim.run_trajectory(positions, velocities, DEFAULT_DT)
    carry = evaluate_simulation(sim, PHASE_CARRY, carry_targets, pose, tray_goal)
    assert carry.success, carry.reasons
    assert carry.metrics["tray_position_error"] < 0.02


def test_collision_and_limit_cases_fail(sim: Simulation) -> None:
    pose = sim.reset().tray_pose
    home_ee = sim.ee_poses()[0]
    down = np.array(HOME_POSITIONS)
    down[1] += 1.2  # left shoulder lift drives the arm down into the table
    positions, velocities = min_jerk_waypoints(HOME_POSITIONS, down, DEFAULT_DT)
    sim.run_trajectory(positions, velocities, DEFAULT_DT)
    result = evaluate_simulation(sim, PHASE_REACH, home_ee, pose)
    assert not result.success
    assert any("arm-table collision" in r for r in result.reasons), result.reasons

    sim.reset()
    fast = np.array(HOME_POSITIONS)
    fast[0] += 1.5  # 1.5 rad in 0.3 s: over the pi rad/s limit
    positions, velocities = min_jerk_waypoints(HOME_POSITIONS, fast, DEFAULT_DT, horizon=6)
    sim.run_trajectory(positions, velocities, DEFAULT_DT)
    result = evaluate_simulation(sim, PHASE_REACH, sim.ee_poses()[0], pose)
    assert not result.success
    assert any("velocity" in r for r in result.reasons), result.reasons


def test_attach_only_near_handles(sim: Simulation) -> None:
    sim.reset()
    result = sim.attach()
    assert not result.attached and "not attached" in result.message
    assert sim.state().grasped == (False, False)


def test_replacement_continues_from_commanded_state(sim: Simulation) -> None:
    sim.reset()
    goal_a = np.array(HOME_POSITIONS) + 0.4
    positions, velocities = min_jerk_waypoints(HOME_POSITIONS, goal_a, DEFAULT_DT)
    sim.execute(positions, velocities, DEFAULT_DT)
    sim.advance(1.2)
    before_q, before_v = sim.command()
    goal_b = np.array(HOME_POSITIONS) - 0.2
    positions, velocities = min_jerk_waypoints(before_q, goal_b, DEFAULT_DT)
    sim.execute(positions, velocities, DEFAULT_DT)
    after_q, after_v = sim.command()
    np.testing.assert_allclose(after_q, before_q, atol=1e-12)  # no position jump
    np.testing.assert_allclose(after_v, before_v, atol=1e-12)  # starts with the current velocity
    previous = sim.state().positions
    for _ in range(100):
        sim.step(5)
        now = sim.state().positions
        assert np.abs(now - previous).max() < 0.05  # rad per 10 ms: no jump in the measured motion
        previous = now
    sim.advance(sim.trajectory_time_left() + 0.3)
    assert np.abs(sim.state().positions - goal_b).max() < 5e-3


def test_forced_instability_is_detected_and_reset_recovers(sim: Simulation) -> None:
    sim.reset()
    sim.data.qvel[0] = 1e4
    with pytest.raises(SimulationUnstable, match=r"runaway|MuJoCo warning"):
        sim.step(5)
    with pytest.raises(SimulationUnstable):
        sim.step()  # stays failed until reset
    sim.reset()
    sim.data.qpos[3] = np.nan
    with pytest.raises(SimulationUnstable):
        sim.step(5)
    state = sim.reset()
    sim.step(50)
    np.testing.assert_allclose(sim.state().positions, state.positions, atol=1e-3)


def test_hermite_passes_through_waypoints() -> None:
    times = np.array([0.1, 0.3, 0.45])
    positions = np.array([[1.0], [2.0], [0.5]])
    velocities = np.array([[0.5], [-1.0], [0.0]])
    traj = HermiteTrajectory.from_waypoints(np.array([0.0]), np.array([0.2]), times, positions, velocities)
    q, v = traj.sample(times)
    np.testing.assert_allclose(q, positions, atol=1e-12)
    np.testing.assert_allclose(v, velocities, atol=1e-12)
    q0, v0 = traj.sample(0.0)
    assert q0[0] == 0.0 and v0[0] == pytest.approx(0.2)
    q_end, v_end = traj.sample(5.0)
    assert q_end[0] == 0.5 and v_end[0] == 0.0


@pytest.mark.parametrize(
    ("names", "positions", "velocities", "times", "reason"),
    [
        (["left_wrong_joint", *LEFT_ARM_JOINTS[1:]], [[0.0] * 6], [[0.0] * 6], [0.1], "not this controller"),
        (list(LEFT_ARM_JOINTS), [[np.nan] + [0.0] * 5], [[0.0] * 6], [0.1], "non-finite"),
        (list(LEFT_ARM_JOINTS), [[0.0] * 6] * 2, [[0.0] * 6] * 2, [0.2, 0.2], "strictly increasing"),
        (list(LEFT_ARM_JOINTS), [[0.0] * 5], [[0.0] * 5], [0.1], "5 positions"),
        (list(LEFT_ARM_JOINTS), [[0.0] * 6], [[0.0] * 6], [0.0], "after 0"),
        (list(LEFT_ARM_JOINTS), [], [], [], "empty"),
        (list(LEFT_ARM_JOINTS), [[0.0] * 6], [[10.0] * 6], [0.1], "velocity"),
    ],
)
def test_contract_rejections(names, positions, velocities, times, reason) -> None:
    with pytest.raises(TrajectoryRejected, match=reason):
        validate_trajectory(LEFT_ARM_JOINTS, names, positions, velocities, times, **AT_REST)


def test_contract_reorders_joints() -> None:
    names = list(reversed(LEFT_ARM_JOINTS))
    start = {"start_positions": [1, 2, 3, 4, 5, 6], "start_velocities": [0.0] * 6}
    valid = validate_trajectory(LEFT_ARM_JOINTS, names, [[6, 5, 4, 3, 2, 1]], [[0.0] * 6], [0.1], **start)
    np.testing.assert_array_equal(valid.positions[0], [1, 2, 3, 4, 5, 6])


def test_contract_counts_time_from_the_start_time() -> None:
    """header.stamp as JTC reads it: points already passed are skipped, a trajectory that ended is rejected, and
    one that starts absurdly far ahead (another clock) too."""
    positions, velocities = np.full((3, 6), 0.01) * [[1], [2], [3]], np.zeros((3, 6))
    args = (LEFT_ARM_JOINTS, LEFT_ARM_JOINTS, positions, velocities, [0.1, 0.2, 0.3])
    valid = validate_trajectory(*args, **AT_REST, start_time=-0.15)
    np.testing.assert_allclose(valid.times, [0.05, 0.15])
    np.testing.assert_allclose(valid.positions[:, 0], [0.02, 0.03])
    np.testing.assert_allclose(validate_trajectory(*args, **AT_REST, start_time=0.5).times, [0.6, 0.7, 0.8])
    with pytest.raises(TrajectoryRejected, match=r"ends in the past \(0\.2000 s ago"):
        validate_trajectory(*args, **AT_REST, start_time=-0.5)
    with pytest.raises(TrajectoryRejected, match="ahead of the controller's clock"):
        validate_trajectory(*args, **AT_REST, start_time=1.7e9)


def _left(positions, velocities, times, margin: float = 0.05, start_velocities=AT_REST["start_velocities"]):
    return validate_trajectory(
        LEFT_ARM_JOINTS, LEFT_ARM_JOINTS, positions, velocities, times, speed_margin=margin,
        start_positions=AT_REST["start_positions"], start_velocities=start_velocities,
    )


def test_contract_rejects_speed_implied_by_waypoints() -> None:
    """Velocities written within limits, but the points themselves are too far apart for their times."""
    zeros = np.zeros((1, 6))
    jump = np.zeros((1, 6))
    jump[0, 1] = 2.0  # 2 rad at t = 0.05 s: 40 rad/s on average
    with pytest.raises(TrajectoryRejected, match=r"implied speed .* left_shoulder_lift_joint from the current state"):
        _left(jump, zeros, [DEFAULT_DT])
    later = np.vstack([np.full((1, 6), 0.01), np.full((1, 6), 0.01)])
    later[1, 3] += 1.0  # fine first segment, then 1 rad in 0.05 s
    with pytest.raises(TrajectoryRejected, match="joint between points 0 and 1"):
        _left(later, np.zeros((2, 6)), [0.5, 0.55])
    # Mean speed 2.4 rad/s is within the limit, but Hermite with zero knot velocities peaks at 1.5x = 3.6 rad/s.
    hermite = np.full((1, 6), 0.12)
    with pytest.raises(TrajectoryRejected, match=r"implied speed 3\.60 rad/s"):
        _left(hermite, zeros, [DEFAULT_DT])


def test_contract_speed_margin_and_smooth_motion() -> None:
    limit = JOINT_VELOCITY_LIMITS[0]
    times = np.array([0.1, 0.2])
    ramp = np.outer(times, np.full(6, 1.03 * limit))  # constant 1.03x the limit, written consistently
    velocities = np.full((2, 6), 1.03 * limit)
    with pytest.raises(TrajectoryRejected, match="velocity above"):
        _left(ramp, velocities, times)  # the written velocities themselves are above the limit
    velocities = np.full((2, 6), limit)  # moving at the limit, points 1.03x apart: Hermite peaks 1.045x
    _left(ramp, velocities, times, margin=0.05, start_velocities=velocities[0])
    with pytest.raises(TrajectoryRejected, match=r"implied speed 3\.28 rad/s"):
        _left(ramp, velocities, times, margin=0.0, start_velocities=velocities[0])
    goal = np.array(HOME_POSITIONS[:6]) + np.array([1.5, -1.0, 1.0, 1.2, -1.5, 2.0])
    positions, velocities = min_jerk_waypoints(HOME_POSITIONS[:6], goal, DEFAULT_DT)
    start = {"start_positions": HOME_POSITIONS[:6], "start_velocities": [0.0] * 6}
    times = DEFAULT_DT * np.arange(1, len(positions) + 1)
    validate_trajectory(LEFT_ARM_JOINTS, LEFT_ARM_JOINTS, positions, velocities, times, **start)


def test_hermite_peak_speed_matches_dense_sampling() -> None:
    rng = np.random.default_rng(3)
    times = np.cumsum(rng.uniform(0.02, 0.3, 8))
    positions, velocities = rng.normal(size=(8, 4)), rng.normal(size=(8, 4))
    traj = HermiteTrajectory.from_waypoints(np.zeros(4), np.ones(4), times, positions, velocities)
    peaks = hermite_peak_speeds(traj.times, traj.positions, traj.velocities)
    for k in range(len(traj.times) - 1):
        _, v = traj.sample(np.linspace(traj.times[k], traj.times[k + 1] - 1e-9, 4001))
        np.testing.assert_allclose(peaks[k], np.abs(v).max(axis=0), rtol=1e-5)


def test_kinematic_checker_flags_table_collision(sim: Simulation) -> None:
    down = np.array(HOME_POSITIONS)
    down[1] += 1.2
    arm_env = [touches_environment(sim.model, q) for q in (HOME_POSITIONS, down)]
    assert not arm_env[0] and arm_env[1]
