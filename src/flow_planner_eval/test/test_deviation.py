"""flow_planner_eval.deviation on real MuJoCo: a straight reach and carry on an empty scene (a box kept far away),
sampled every 10 ms; the measurement reads zero where executed and modelled geometry coincide (the start), sees a
deliberately wrong grasp by exactly its error, and the controllers' tracking error stays within centimetres."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from flow_planner_common.obstacles import Box
from flow_planner_common.robot import DEFAULT_DT, HORIZON, PHASE_CARRY, PHASE_REACH

FAR_BOX = Box(center=(0.5, 0.9, 0.85), size=(0.1, 0.1, 0.1), yaw=0.0)


@pytest.fixture(scope="module")
def executed():
    from data_collector_ros.episode_sequence import SimulationScene, run_episode
    from data_collector_ros.ik import IKSolver
    from data_collector_ros.simulation import Simulation
    from data_collector_ros.task import TaskConfig
    from flow_planner_common.motion import reference_trajectory
    from flow_planner_eval.deviation import DeviationMeter

    sim = Simulation()
    ik, meter = IKSolver(sim.model), DeviationMeter(sim)
    grasps = []

    def step(task):
        positions, velocities = reference_trajectory(task.start.positions, task.start.velocities, task.goal, DEFAULT_DT)
        grasp = None
        if task.phase == PHASE_CARRY:
            grasp = meter.checker.grasp_from_start(task.start.positions, task.tray_start)
            grasps.append((task.start.positions, task.tray_start, grasp))
        return meter.execute(task.phase, positions, velocities, DEFAULT_DT, grasp, boxes=[FAR_BOX])

    sim.set_obstacles([FAR_BOX])
    tray = np.array([0.5, 0.0, float(sim.rest_tray_pose[2]), 1.0, 0.0, 0.0, 0.0])
    episode = run_episode(SimulationScene(sim, 0.02), ik, TaskConfig(), tray, 0, step)
    assert episode.attached
    return meter, episode.reach, episode.carry, grasps[0]


def test_samples_every_10_ms_through_the_plan_and_its_settle(executed) -> None:
    _, reach, carry, _ = executed
    for phase, d in ((PHASE_REACH, reach), (PHASE_CARRY, carry)):
        assert d.phase == phase
        assert d.times[0] == 0.0 and np.allclose(np.diff(d.times), 0.01)
        assert d.times[-1] == pytest.approx(HORIZON * DEFAULT_DT + 0.25, abs=1e-6)
        assert int(d.at_waypoint.sum()) == HORIZON + 1  # the start state and every waypoint
        assert np.all(np.isfinite(d.arm)) and np.all(np.isfinite(d.arm_from_waypoint))
        assert d.arm[0] < 1e-5  # the plan starts where the robot is (the command, to a micrometre)
        assert d.arm.max() < 0.03  # tracking error: millimetres, not decimetres
        assert d.arm[-1] < 0.002  # settled onto the goal
        assert d.clearance_planned.shape == (HORIZON, 2) and d.clearance_executed.shape == (len(d.times), 2)
        assert np.all(d.clearance_executed[:, 0] > 0.2)  # the far box
    assert reach.tray_planned is None and reach.grip_planned is None
    assert np.isinf(reach.clearance_executed[:, 1]).all()  # a resting tray is not checked


def test_carried_tray_and_grip(executed) -> None:
    _, _, carry, _ = executed
    # at the start the physics' tray is where the checker's model (and the two-tool model) puts it: the grasps are
    # taken there
    for values in (
        carry.tray_planned,
        carry.tray_executed,
        carry.tray_from_waypoint,
        carry.tray_mean_planned,
        carry.tray_mean_executed,
    ):
        assert values.shape == carry.times.shape and values[0] < 1e-5
    assert carry.grip_planned.shape == (HORIZON,) and carry.grip_executed[0] < 1e-5
    assert carry.tray_planned.max() < 0.05
    # the checker's model is the two-tool mean (issue 21): the same numbers as the SVD-averaged candidate's
    assert np.abs(carry.tray_executed - carry.tray_mean_executed).max() < 1e-5
    assert np.abs(carry.tray_planned - carry.tray_mean_planned).max() < 1e-5
    assert np.all(np.isfinite(carry.clearance_executed))  # the tray where the physics has it, against the box


def test_a_wrong_grasp_reads_as_its_error(executed) -> None:
    from flow_planner_common.kinematics import TrayGrasp

    meter, _, _, (start, tray, grasp) = executed
    shifted = TrayGrasp(grasp.position + np.array([0.0, 0.0, 0.01]), grasp.rotation)  # 10 mm along the tool's z
    model = meter.model_tray_vertices(start[None], shifted)
    real = meter.pose_vertices(tray[None])
    assert np.linalg.norm(model - real, axis=-1).max() == pytest.approx(0.01, abs=1e-6)


def test_summaries() -> None:
    from flow_planner_eval.deviation import grip_bin, percentiles

    assert [grip_bin(g) for g in (0.0, 0.0099, 0.01, 0.029, 0.03, 0.2)] == [
        "< 10 mm", "< 10 mm", "10-30 mm", "10-30 mm", "> 30 mm", "> 30 mm"
    ]  # fmt: skip
    assert percentiles([1.0, 2.0, 3.0]) == {"p50": 2.0, "p99": pytest.approx(2.98), "max": 3.0, "n": 3}
    assert percentiles([])["n"] == 0


def test_summarize_executed(executed) -> None:
    from flow_planner_eval.deviation import summarize

    _, reach, carry, _ = executed
    s = summarize([reach, carry])
    assert s["arm"]["n"] == len(reach.times) + len(carry.times)
    assert s["tray_planned"]["n"] == len(carry.times)
    assert s["grip_planned.phase_max"]["max"] == pytest.approx(carry.grip_planned.max())
    assert "arm_clearance_lost" not in s  # no plan came within 50 mm of the box
    covered = dataclasses.replace(carry, cover=np.full(carry.times.shape, 0.01))
    assert 0.0 <= summarize([covered])["arm_cover_excess"]["share_over"] <= 1.0
    assert summarize([reach, carry], waypoints_only=True)["arm"]["n"] == 2 * (HORIZON + 1)
