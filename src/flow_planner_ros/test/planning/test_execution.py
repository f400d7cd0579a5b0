"""The execution state machine's transitions, without ROS: replan, final approach, reached, failed, refused replans,
seeds of replans and where a new plan joins the running one."""

from __future__ import annotations

import numpy as np

from flow_planner_common.motion import min_jerk_waypoints
from flow_planner_common.robot import DEFAULT_DT, HOME_POSITIONS, HORIZON, NUM_JOINTS
from flow_planner_ros.planning.execution import OVERRUN_STEPS, Decision, Execution, ExecutionLimits, JointStateWatchdog
from flow_planner_ros.planning.request import PlanRequest

GOAL = HOME_POSITIONS + 0.3


def execution(seed: int | None = 7) -> Execution:
    positions, velocities = min_jerk_waypoints(HOME_POSITIONS, GOAL, DEFAULT_DT)
    request = PlanRequest(HOME_POSITIONS.copy(), np.zeros(NUM_JOINTS), GOAL, 8, 5, seed, True)
    return Execution(1, request, positions, velocities, published_at=10.0, dt=DEFAULT_DT)


def limits(execution_steps: int = 15, max_replans: int = 30) -> ExecutionLimits:
    return ExecutionLimits(execution_steps, goal_tolerance=0.02, final_approach_distance=0.1, max_replans=max_replans)


def test_waits_then_replans_every_execution_steps() -> None:
    run = execution()
    far = HOME_POSITIONS + 0.05
    assert run.decide(10.0 + 14 * DEFAULT_DT, far, limits())[0] is Decision.WAIT
    assert run.decide(10.0 + 15 * DEFAULT_DT, far, limits())[0] is Decision.REPLAN
    new_positions, new_velocities = min_jerk_waypoints(far, GOAL, DEFAULT_DT)
    join = run.join(iter([10.96, 11.0]).__next__, blend_steps=5)  # planning starts at 10.96, switches at 11.0
    join.prefix()
    run.adopt(new_positions, new_velocities, join, planning_time=0.03)
    assert run.published_at == 11.0
    assert run.replans == 1 and run.planning_times == [0.03]
    assert run.decide(11.0 + 14 * DEFAULT_DT, far, limits())[0] is Decision.WAIT
    assert run.decide(11.0 + 15 * DEFAULT_DT, far, limits())[0] is Decision.REPLAN


def test_goal_within_tolerance_is_reached_at_any_time_after_one_waypoint() -> None:
    run = execution()
    assert run.decide(10.0, GOAL, limits())[0] is Decision.WAIT  # not before the first waypoint's time
    decision, message = run.decide(10.0 + DEFAULT_DT, GOAL + 0.01, limits())
    assert decision is Decision.REACHED and "0.0100" in message


def test_close_to_the_goal_the_running_plan_is_finished_instead_of_replanning() -> None:
    run = execution()
    near = GOAL - 0.05
    decision, message = run.decide(10.0 + 15 * DEFAULT_DT, near, limits())
    assert decision is Decision.FINAL_APPROACH and "0.0500" in message and run.final_approach
    assert run.decide(10.0 + 30 * DEFAULT_DT, near, limits())[0] is Decision.WAIT  # no more replans
    late = 10.0 + (HORIZON + OVERRUN_STEPS + 1) * DEFAULT_DT
    decision, message = run.decide(late, near, limits())
    assert decision is Decision.FAILED and "plan ended 0.0500 rad from the goal" in message


def test_whole_plan_execution_never_replans_and_fails_after_the_overrun() -> None:
    run = execution()
    far = HOME_POSITIONS
    for steps in (15, 30, 59, HORIZON + OVERRUN_STEPS):
        assert run.decide(10.0 + steps * DEFAULT_DT, far, limits(execution_steps=HORIZON))[0] is Decision.WAIT
    assert run.decide(10.0 + 71 * DEFAULT_DT, far, limits(execution_steps=HORIZON))[0] is Decision.FAILED


def test_max_replans_ends_the_execution() -> None:
    run = execution()
    run.replans = 2
    decision, message = run.decide(10.0 + 15 * DEFAULT_DT, HOME_POSITIONS, limits(max_replans=2))
    assert decision is Decision.FAILED and message.startswith("max_replans reached")


def test_without_joint_states_the_status_says_so_instead_of_inf() -> None:
    run = execution()
    assert run.goal_error(None) is None
    decision, message = run.decide(10.0 + (HORIZON + OVERRUN_STEPS + 1) * DEFAULT_DT, None, limits(HORIZON))
    assert decision is Decision.FAILED and "no /joint_states" in message and "inf" not in message


def test_a_refused_replan_finishes_the_running_plan() -> None:
    run = execution()
    run.refuse_replan(planning_time=0.04)
    assert run.final_approach and run.planning_times == [0.04]
    assert run.decide(10.0 + 15 * DEFAULT_DT, HOME_POSITIONS, limits())[0] is Decision.WAIT


def test_replan_requests_keep_the_goal_and_bump_the_seed() -> None:
    run = execution(seed=7)
    state = HOME_POSITIONS + 0.1, np.full(NUM_JOINTS, 0.2)
    first = run.replan_request(*state)
    np.testing.assert_array_equal(first.goal_positions, GOAL)
    np.testing.assert_array_equal(first.start_positions, state[0])
    assert first.seed == 8 and first.execute and first.num_samples == 8
    run.replans = 3
    assert run.replan_request(*state).seed == 11
    assert execution(seed=None).replan_request(*state).seed is None


def test_a_new_plan_joins_the_running_plan_where_the_controllers_are_at_the_switch() -> None:
    run = execution()
    clock = iter([10.0 + 18 * DEFAULT_DT, 10.0 + 20 * DEFAULT_DT]).__next__  # planning starts; the switch
    join = run.join(clock, blend_steps=5)
    # Planned from the commanded state when planning starts (a knot of the running plan here: its exact values).
    np.testing.assert_allclose(join.start_positions, run.positions[17])
    np.testing.assert_allclose(join.start_velocities, run.velocities[17])
    request = join.request(run.request)
    np.testing.assert_array_equal(request.start_positions, join.start_positions)
    np.testing.assert_array_equal(request.goal_positions, GOAL)
    prefix = join.prefix()
    assert join.switch_at == 10.0 + 20 * DEFAULT_DT and abs(prefix.advance - 2 * DEFAULT_DT) < 1e-9
    np.testing.assert_allclose(prefix.anchor, run.positions[19])
    np.testing.assert_allclose(prefix.anchor_velocity, run.velocities[19])
    np.testing.assert_allclose(prefix.positions, run.positions[20:25])
    np.testing.assert_array_equal(join.state[0], prefix.anchor)
    position, velocity, _ = run.state_at(10.0 + 20 * DEFAULT_DT)
    np.testing.assert_allclose(position, run.positions[19])
    np.testing.assert_allclose(velocity, run.velocities[19])


def test_the_watchdog_fails_an_execution_whose_joint_states_stopped() -> None:
    watchdog = JointStateWatchdog(period=0.025)
    assert watchdog.check(10.0, received=9.9, timeout=0.5) is None
    assert watchdog.check(10.025, received=9.9, timeout=0.5) is None
    assert watchdog.check(10.5, received=9.99, timeout=0.5) is None  # late tick (busy planning): no judgement
    assert watchdog.check(10.525, received=10.05, timeout=0.5) is None  # the queued states came in meanwhile
    assert watchdog.check(10.55, received=10.05, timeout=0.5) is None
    lost = watchdog.check(10.58, received=10.05, timeout=0.5)
    assert lost is not None and "lost /joint_states" in lost and "0.53 s old" in lost and "0.50 s" in lost


def test_an_arm_that_does_not_follow_aborts_within_the_path_tolerance() -> None:
    run = execution()
    tolerant = ExecutionLimits(60, goal_tolerance=0.02, final_approach_distance=0.1, max_replans=30, path_tolerance=0.1)
    half = NUM_JOINTS // 2
    for k in (5, 20, 40, 59, 70):  # following the plan: never
        at = 10.0 + k * DEFAULT_DT
        assert run.decide(at, run.state_at(at)[0], tolerant)[0] is not Decision.ABORT
        late = at - 0.05  # a state measured 50 ms ago is compared with the plan 50 ms ago
        assert run.decide(at, run.state_at(late)[0], tolerant, measured_at=late)[0] is not Decision.ABORT
    stuck = run.state_at(10.0 + 30 * DEFAULT_DT)[0]
    stuck[half:] = HOME_POSITIONS[half:]  # the right arm never left the start: 0.15 rad behind at half time
    decision, message = run.decide(10.0 + 30 * DEFAULT_DT, stuck, tolerant)
    assert decision is Decision.ABORT
    assert "joint 6 is 0.150 rad from where the plan commands it (path_tolerance 0.1 rad)" in message
    assert run.decide(10.0 + 30 * DEFAULT_DT, stuck, limits())[0] is not Decision.ABORT  # path_tolerance 0: off
    # before the plan starts (its stamp) the arms hold the start: not judged
    assert run.decide(9.99, HOME_POSITIONS + 0.5, tolerant, measured_at=9.99)[0] is Decision.WAIT
