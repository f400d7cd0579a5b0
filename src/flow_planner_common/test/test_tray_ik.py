"""The numpy IK for tray-pose goals (flow_planner_common.tray_ik) on its own: it inverts the forward kinematics it
is built on, keeps a carried tray's grip, says why a pose is out of reach, and takes the caller's acceptance."""

from __future__ import annotations

import numpy as np
import pytest

from flow_planner_common.kinematics import ArmKinematics, quat_to_matrix
from flow_planner_common.robot import HOME_POSITIONS, JOINT_POSITION_LIMITS
from flow_planner_common.tray_ik import (
    POSITION_TOLERANCE,
    ROTATION_TOLERANCE,
    TrayIK,
    nearest_turns,
    rotation_error,
)

#: A tray resting in front of the robot, reachable from home (a scene of the family), level, yawed 0.2 rad.
TRAY = np.array([0.0, 0.55, 0.78, np.cos(0.1), 0.0, 0.0, np.sin(0.1)])


@pytest.fixture(scope="module")
def ik() -> TrayIK:
    return TrayIK()


def test_rotation_error_is_the_rotation_vector() -> None:
    rng = np.random.default_rng(0)
    for angle in (0.0, 1e-6, 0.3, 2.0, np.pi - 1e-4, np.pi):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        target = quat_to_matrix(np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis]))
        got = rotation_error(target, np.eye(3))
        assert np.linalg.norm(got) == pytest.approx(angle, abs=1e-6)
        if 1e-3 < angle < np.pi - 1e-3:
            assert np.allclose(got, angle * axis, atol=1e-6)
        else:  # a half turn about a or -a is the same rotation
            assert np.allclose(quat_to_matrix(np.concatenate([[np.cos(np.linalg.norm(got) / 2)],
                               np.sin(np.linalg.norm(got) / 2) * got / max(np.linalg.norm(got), 1e-12)])),
                               target, atol=1e-5)  # fmt: skip


def test_solves_targets_of_reachable_configurations(ik: TrayIK) -> None:
    """Targets from the forward kinematics of configurations near home are met from a seed 0.3 rad away."""
    rng = np.random.default_rng(1)
    kinematics = ArmKinematics()
    for _ in range(10):
        q = HOME_POSITIONS + rng.uniform(-0.6, 0.6, 12)
        target_pos, target_rot = kinematics.ee_poses(q)
        solution = ik.solve(target_pos, target_rot, q + rng.uniform(-0.3, 0.3, 12))
        assert solution.success, solution.reason
        assert np.all(solution.position_error <= POSITION_TOLERANCE)
        assert np.all(solution.rotation_error <= ROTATION_TOLERANCE)
        pe, re = ik.errors(solution.positions, target_pos, target_rot)
        assert np.allclose(pe, solution.position_error) and np.allclose(re, solution.rotation_error)
        assert np.all(solution.positions >= JOINT_POSITION_LIMITS[:, 0])
        assert np.all(solution.positions <= JOINT_POSITION_LIMITS[:, 1])


def test_reach_puts_both_end_effectors_on_the_handles(ik: TrayIK) -> None:
    target_pos, target_rot = ik.reach_targets(TRAY)
    # the handles lie on either side of the tray centre, 0.25 m along the tray's y axis
    assert np.allclose(target_pos.mean(axis=0)[:2], TRAY[:2], atol=1e-9)
    assert np.linalg.norm(target_pos[0] - target_pos[1]) == pytest.approx(0.5)
    solution = ik.solve(target_pos, target_rot, HOME_POSITIONS)
    assert solution.success, solution.reason
    ee_p, ee_r = ik.kinematics.ee_poses(solution.positions)
    assert np.allclose(ee_p, target_pos, atol=POSITION_TOLERANCE)
    assert np.all(np.linalg.norm(rotation_error(target_rot, ee_r), axis=-1) <= ROTATION_TOLERANCE)


def test_carry_keeps_both_tools_in_the_tray_frame(ik: TrayIK) -> None:
    """Carry targets hold the tools where they held the tray at the start: same targets at the start pose, and
    at a lifted, turned pose both tools keep their pose relative to the tray."""
    start = ik.solve(*ik.reach_targets(TRAY), HOME_POSITIONS).positions
    start_p, start_r = ik.kinematics.ee_poses(start)
    same_p, same_r = ik.carry_targets(start, TRAY, TRAY)
    assert np.allclose(same_p, start_p, atol=1e-12) and np.allclose(same_r, start_r, atol=1e-12)
    goal_pose = np.array([0.1, 0.5, 0.95, np.cos(0.25), 0.0, 0.0, np.sin(0.25)])
    goal_p, goal_r = ik.carry_targets(start, TRAY, goal_pose)
    tray_r0, tray_r1 = quat_to_matrix(TRAY[3:]), quat_to_matrix(goal_pose[3:])
    for arm in range(2):
        assert np.allclose(tray_r1.T @ (goal_p[arm] - goal_pose[:3]), tray_r0.T @ (start_p[arm] - TRAY[:3]))
        assert np.allclose(tray_r1.T @ goal_r[arm], tray_r0.T @ start_r[arm])
    carried = ik.solve(goal_p, goal_r, start)
    assert carried.success, carried.reason
    # batched targets: one pose per row
    many_p, many_r = ik.carry_targets(start, TRAY, np.stack([TRAY, goal_pose]))
    assert many_p.shape == (2, 2, 3) and np.allclose(many_p[1], goal_p) and np.allclose(many_r[0], start_r)


def test_out_of_reach_is_refused_with_the_distance(ik: TrayIK) -> None:
    far = TRAY.copy()
    far[:3] = (0.0, 2.5, 0.8)
    solution = ik.solve(*ik.reach_targets(far), HOME_POSITIONS, attempts=4)
    assert not solution.success
    assert solution.reason.startswith("no inverse kinematics solution")
    assert "mm" in solution.reason and solution.position_error.max() > 0.5


def test_acceptance_picks_the_closest_accepted_solution(ik: TrayIK) -> None:
    target = ik.reach_targets(TRAY)
    free = ik.solve(*target, HOME_POSITIONS, attempts=16)
    assert free.success
    seen: list[np.ndarray] = []

    def refuse_closest(candidates: np.ndarray) -> list[str]:
        seen.append(candidates)
        return ["in a box"] + [""] * (len(candidates) - 1)

    other = ik.solve(*target, HOME_POSITIONS, attempts=16, accept=refuse_closest)
    candidates = seen[0]
    assert np.allclose(candidates[0], free.positions)  # the closest comes first, as without acceptance
    distances = np.linalg.norm(candidates - HOME_POSITIONS, axis=-1)
    assert np.all(np.diff(distances) >= 0)
    if len(candidates) > 1:
        assert other.success and np.allclose(other.positions, candidates[1])
    refused = ik.solve(*target, HOME_POSITIONS, attempts=16, accept=lambda c: ["in a box"] * len(c))
    assert not refused.success and refused.reason.endswith("the closest: in a box")


def test_nearest_turns_moves_joints_toward_the_reference() -> None:
    q = np.zeros(12)
    q[0], q[2] = 2 * np.pi - 0.1, 3.0  # the elbow (+-pi) cannot turn
    out = nearest_turns(q, np.zeros(12))
    assert out[0] == pytest.approx(-0.1) and out[2] == 3.0
    assert np.array_equal(nearest_turns(out, out), out)
