"""The planner node as a separate process over real DDS, with a real (small) model trained here on CPU and the
real MuJoCo bridge as the arm controllers.

The checkpoint (conftest.py) is trained once per session on rest-to-rest minimum-jerk motions around the home pose
(with the dataset's moving-start suffix augmentation: the states a receding-horizon replan starts from), so the model
is competent on the requests below. The thresholds are stated against that run. The helpers are in dds_support.py
(other modules of this folder use them through this module's names).
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest
from trajectory_msgs.msg import JointTrajectory

from flow_planner_common.robot import DEFAULT_DT, HOME_POSITIONS, HORIZON, JOINT_NAMES, NUM_JOINTS
from flow_planner_common.service_calls import call_until_answered
from flow_planner_msgs.srv import PlanTrajectory

_spec = importlib.util.spec_from_file_location("dds_support", Path(__file__).parent / "dds_support.py")
_support = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_support)
PLANNER = _support.PLANNER
BRIDGE = _support.BRIDGE
GOAL_OFFSET = _support.GOAL_OFFSET
REACH_TOLERANCE = _support.REACH_TOLERANCE
Client = _support.Client
planner_args = _support.planner_args
assert_valid_trajectory = _support.assert_valid_trajectory
bridge_in_process = _support.bridge_in_process


def test_plan_service_returns_valid_trajectories_and_refuses_bad_requests(checkpoint, start_process, client) -> None:
    planner = start_process(PLANNER, *planner_args(checkpoint))
    client.wait_for_service(planner)

    # No /joint_states yet (no bridge): a request without a start state is refused, not guessed.
    response = client.plan(goal_positions=list(HOME_POSITIONS + GOAL_OFFSET))
    assert not response.success and "no /joint_states" in response.message

    start, goal = HOME_POSITIONS, HOME_POSITIONS + GOAL_OFFSET
    response = client.plan(start_positions=list(start), goal_positions=list(goal), num_samples=8, seed=1)
    assert response.success, response.message
    assert_valid_trajectory(response.trajectory)
    assert response.planning_time > 0 and 1 <= response.num_valid_candidates <= 8
    final = np.array(response.trajectory.points[-1].positions)
    assert np.max(np.abs(final - goal)) < 0.1

    bad_requests = {
        "goal_positions has 11 values": {"goal_positions": list(goal[:11])},
        "goal_positions is not finite": {"goal_positions": [float("nan"), *goal[1:]]},
        "start_positions is not finite": {"start_positions": [float("inf"), *start[1:]], "goal_positions": list(goal)},
        "unknown joint name": {"joint_names": ["bogus", *JOINT_NAMES[1:]], "goal_positions": list(goal)},
        "goal_positions beyond limits": {"start_positions": list(start), "goal_positions": [9.0, *goal[1:]]},
        "start_velocities has 3 values": {
            "start_positions": list(start), "start_velocities": [0.0] * 3, "goal_positions": list(goal)
        },
    }  # fmt: skip
    for reason, fields in bad_requests.items():
        response = client.plan(**fields)
        assert not response.success and reason in response.message, (reason, response.message)
    # Still up and serving.
    response = client.plan(start_positions=list(start), goal_positions=list(goal), seed=2)
    assert response.success and planner.popen.poll() is None


def test_fifty_concurrent_calls_from_several_clients_are_all_answered_batched_as_alone(
    checkpoint, start_process, client, ros_domain_id
) -> None:
    planner = start_process(PLANNER, *planner_args(checkpoint))
    client.wait_for_service(planner)
    others = [Client(ros_domain_id, f"planner_test_client_{i}") for i in range(4)]
    try:
        for other in others:
            other.wait_for_service(planner)
        clients = [client, *others]
        goal = HOME_POSITIONS + GOAL_OFFSET
        futures = [
            clients[i % len(clients)].plan_client.call_async(
                PlanTrajectory.Request(
                    start_positions=list(HOME_POSITIONS), goal_positions=list(goal), num_samples=2, seed=i
                )
            )
            for i in range(50)
        ]
        end = time.monotonic() + 240
        while not all(f.done() for f in futures):
            assert time.monotonic() < end, f"{sum(f.done() for f in futures)}/50 answered"
            time.sleep(0.05)
        responses = [f.result() for f in futures]
        assert all(r.success for r in responses), [r.message for r in responses if not r.success]
        for r in responses:
            assert_valid_trajectory(r.trajectory)
        # requests planned together (dynamic batching: one model call) got what each one alone gets
        for i in (0, 7, 31, 49):
            alone = client.plan(start_positions=list(HOME_POSITIONS), goal_positions=list(goal), num_samples=2, seed=i)
            np.testing.assert_allclose(
                [p.positions for p in alone.trajectory.points],
                [p.positions for p in responses[i].trajectory.points], atol=1e-4,
            )
    finally:
        for other in others:
            other.close()


def _execute_to_the_end(client: Client, planner, timeout: float) -> tuple[np.ndarray, np.ndarray, object]:
    """Execute a plan from the measured state to it + GOAL_OFFSET (seed 3): the start, the goal and the final status
    (reached or failed) within `timeout` s."""
    client.wait_for_service(planner)
    start = client.wait_for_states()
    goal = start + GOAL_OFFSET
    client.wait_until_planner_has_states(goal)
    response = client.plan(goal_positions=list(goal), num_samples=8, seed=3, execute=True)
    assert response.success, response.message
    end, final = time.monotonic() + timeout, None
    while time.monotonic() < end and final is None:
        time.sleep(0.1)
        with client.lock:
            final = next((s for s in client.statuses if s.state in ("reached", "failed")), None)
    assert final is not None, f"execution did not finish within {timeout:g} s"
    return start, goal, final


def test_receding_horizon_execution_reaches_the_goal_without_jumps(checkpoint, start_process, client) -> None:
    start_process(BRIDGE, "-p", "real_time_factor:=1.0")
    planner = start_process(PLANNER, *planner_args(checkpoint, "-p", "execution_steps:=15"))
    _, goal, final_status = _execute_to_the_end(client, planner, timeout=60.0)
    time.sleep(0.3)
    with client.lock:
        states = [q for _, q in client.states]
        commands = list(client.commands)
        replans = max(s.replans for s in client.statuses)
    assert final_status.state == "reached", final_status.message
    assert np.max(np.abs(states[-1] - goal)) < REACH_TOLERANCE
    assert replans >= 2, "execution_steps=15 must replan"
    assert len(commands) == 2 * (replans + 1)

    # Every command is a valid trajectory for its arm, and each replan continues the motion: the largest
    # measured step between consecutive joint states stays within the nominal step size of the motion.
    for _, _, msg in commands:
        assert len(msg.points) == HORIZON and len(msg.joint_names) == NUM_JOINTS // 2
    steps = np.max(np.abs(np.diff(np.array(states), axis=0)), axis=1)
    nominal = np.max(np.abs(GOAL_OFFSET)) / (HORIZON * DEFAULT_DT) * 2.0  # twice the mean speed of the longest joint
    per_sample = nominal / 100.0  # /joint_states at 100 Hz
    worst = int(np.argmax(steps))
    with client.lock:
        times = [t for t, _ in client.states]
    command_times = [t - times[0] for _, t, _ in commands]
    assert steps.max() <= 2.0 * per_sample, (steps.max(), per_sample, times[worst + 1] - times[0], command_times)


def test_an_arm_that_does_not_follow_its_plan_stops_both(checkpoint, start_process, client) -> None:
    """The right arm's trajectories go to a topic no controller reads (as when its controller refuses them while the
    left one accepts): the left arm starts, the right stays; the planner stops both and reports the execution failed."""
    start_process(BRIDGE, "-p", "real_time_factor:=1.0")
    planner = start_process(PLANNER, *planner_args(checkpoint, "-p", "right_controller_topic:=/nobody/joint_trajectory",
                                                   "-p", "path_tolerance:=0.1"))  # fmt: skip
    start, goal, final = _execute_to_the_end(client, planner, timeout=30.0)
    assert final.state == "failed", final
    assert "does not follow its trajectory" in final.message and "both arms stopped" in final.message, final.message
    time.sleep(1.5)  # the stop runs out
    with client.lock:
        states = np.array([q for _, q in client.states])
        left = [msg for arm, _, msg in client.commands if arm == "left"]
    half = NUM_JOINTS // 2
    assert len(left) == 2, "the plan, then the stop"
    assert np.abs(states[:, half:] - start[half:]).max() < 0.01, "the right arm was never commanded"
    moved = np.abs(states[-1, :half] - start[:half]).max()
    assert moved > 0.05 and np.abs(states[-1, :half] - goal[:half]).max() > 0.1, "the left arm stopped on its way"
    assert np.abs(states[-1] - states[-20]).max() < 1e-3, "and stands still"


def test_candidates_beyond_a_tight_limit_are_never_published(checkpoint, start_process, client) -> None:
    start_process(BRIDGE, "-p", "real_time_factor:=1.0")
    tight = ",".join(["0.05"] * NUM_JOINTS)
    planner = start_process(PLANNER, *planner_args(checkpoint, "-p", f"velocity_limits:=[{tight}]"))
    client.wait_for_service(planner)
    client.wait_for_states()
    client.wait_until_planner_has_states(HOME_POSITIONS + GOAL_OFFSET)
    response = client.plan(goal_positions=list(HOME_POSITIONS + GOAL_OFFSET), num_samples=8, seed=4, execute=True)
    assert not response.success
    # refinement (on by default) cannot help either: the message names the samples' and the refined candidates' reasons
    assert "no safe sample among 8" in response.message and "velocity limit exceeded" in response.message
    assert "nor among 6 refined candidates" in response.message
    assert len(response.trajectory.points) == 0
    time.sleep(1.0)
    with client.lock:
        assert client.commands == [], "an unsafe trajectory reached the controllers"


@pytest.mark.parametrize("problem", ["missing", "corrupt", "pickle"])
def test_bad_checkpoint_stops_the_node_with_one_clear_line(problem: str, tmp_path: Path, start_process) -> None:
    path = tmp_path / "model.safetensors"
    if problem == "corrupt":
        path.write_bytes(b"\x00" * 64)
    elif problem == "pickle":
        import pickle

        path = tmp_path / "model.pt"
        path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    planner = start_process(PLANNER, "-p", f"checkpoint:={path}")
    assert planner.popen.wait(timeout=60) != 0
    lines = [line for line in planner.output().splitlines() if line.startswith("planner: cannot start")]
    assert len(lines) == 1 and str(path.name) in lines[0], planner.output()


def test_a_new_request_preempts_the_running_execution(checkpoint, start_process, client) -> None:
    start_process(BRIDGE, "-p", "real_time_factor:=1.0")
    planner = start_process(PLANNER, *planner_args(checkpoint))
    client.wait_for_service(planner)
    start = client.wait_for_states()
    first_goal, second_goal = start + GOAL_OFFSET, start - 0.5 * GOAL_OFFSET
    client.wait_until_planner_has_states(first_goal)
    assert client.plan(goal_positions=list(first_goal), seed=5, execute=True).success
    time.sleep(1.0)
    assert client.plan(goal_positions=list(second_goal), seed=6, execute=True).success

    end = time.monotonic() + 30
    while time.monotonic() < end:
        with client.lock:
            states = {(s.request_id, s.state) for s in client.statuses}
        if (2, "reached") in states or (2, "failed") in states:
            break
        time.sleep(0.1)
    assert (1, "preempted") in states and (2, "reached") in states, states
    assert (1, "reached") not in states and (1, "failed") not in states
    time.sleep(0.3)
    with client.lock:
        final = client.states[-1][1]
    assert np.max(np.abs(final - second_goal)) < REACH_TOLERANCE


def planner_commands(client: Client) -> list[JointTrajectory]:
    """What the planner published (60-point trajectories) among everything seen on the controller topics."""
    with client.lock:
        return [msg for _, _, msg in client.commands if len(msg.points) == HORIZON]


def test_an_executed_request_must_start_where_the_robot_is(checkpoint, start_process, client) -> None:
    """Hostile test item 1: an explicit start 1 rad from the measured state was executed with a jump."""
    start_process(BRIDGE, "-p", "real_time_factor:=1.0")
    planner = start_process(PLANNER, *planner_args(checkpoint))
    client.wait_for_service(planner)
    home = client.wait_for_states()
    client.wait_until_planner_has_states(home + GOAL_OFFSET)
    start = home.copy()
    start[[0, 1, 6, 7]] += 1.0
    goal = start.copy()
    goal[[3, 9]] += 0.2
    for steps in (60, 10):
        assert planner.popen.poll() is None
        response = client.plan(
            start_positions=list(start), goal_positions=list(goal), num_samples=16, seed=0, execute=True
        )
        assert not response.success and "from the measured state" in response.message, (steps, response.message)
        assert len(response.trajectory.points) == 0
    dry_run = client.plan(start_positions=list(start), goal_positions=list(goal), num_samples=16, seed=0)
    assert "measured state" not in dry_run.message  # planning alone from any start stays allowed
    time.sleep(1.0)
    with client.lock:
        speeds = list(client.speeds)
    assert planner_commands(client) == [], "a plan that does not start at the robot reached the controllers"
    assert max(speeds) < 0.05, "the arm moved"


def test_preempting_plans_join_the_moving_arm_without_a_jump(checkpoint, start_process, client) -> None:
    """Hostile test item 2: a preempting plan started behind the moving arm (measured speed up to 3x the limit)."""
    start_process(BRIDGE, "-p", "real_time_factor:=1.0")
    planner = start_process(PLANNER, *planner_args(checkpoint))
    client.wait_for_service(planner)
    home = client.wait_for_states()
    goals = [home + GOAL_OFFSET, home - 0.5 * GOAL_OFFSET, home + 0.8 * GOAL_OFFSET, home]
    client.wait_until_planner_has_states(goals[0])
    for i, goal in enumerate(goals):
        response = client.plan(goal_positions=list(goal), num_samples=8, seed=10 + i, execute=True)
        assert response.success, response.message
        time.sleep(0.9)  # mid-motion: the arm moves fastest here
    time.sleep(3.5)
    with client.lock:
        speeds = np.array(client.speeds)
        states = {(s.request_id, s.state) for s in client.statuses}
    assert {(1, "preempted"), (2, "preempted"), (3, "preempted")} <= states, states
    # The motions' own peak speed is ~0.3 rad/s; a start 0.07-0.29 rad behind the arm showed as 2-10 rad/s.
    assert speeds.max() < 0.6, f"measured joint speed peaked at {speeds.max():.3f} rad/s"
    commands = planner_commands(client)
    assert len(commands) == 2 * len(goals)
    for msg in commands:  # each published plan moves at most one velocity-limited step per waypoint
        positions = np.array([p.positions for p in msg.points])
        assert np.abs(np.diff(positions, axis=0)).max() <= np.pi * DEFAULT_DT


def test_a_burst_beyond_the_backlog_is_answered_busy_never_dropped(
    checkpoint, start_process, client, ros_domain_id
) -> None:
    """Hostile test item 6: of 150 async calls, the 49 oldest were never answered."""
    planner = start_process(PLANNER, *planner_args(checkpoint, "-p", "max_pending_requests:=8"))
    client.wait_for_service(planner)
    goal = HOME_POSITIONS + GOAL_OFFSET
    futures = [
        client.plan_client.call_async(
            PlanTrajectory.Request(start_positions=list(HOME_POSITIONS), goal_positions=list(goal), seed=i)
        )
        for i in range(150)
    ]
    end = time.monotonic() + 120
    while not all(f.done() for f in futures):
        assert time.monotonic() < end, f"{sum(f.done() for f in futures)}/150 answered"
        time.sleep(0.05)
    responses = [f.result() for f in futures]
    busy = [r for r in responses if r.message.startswith("busy")]
    planned = [r for r in responses if r.success]
    assert len(busy) + len(planned) == 150, {r.message for r in responses}
    assert busy and planned, (len(busy), len(planned))
    assert all(not r.success and "max_pending_requests=8" in r.message for r in busy)
    assert planner.popen.poll() is None


def test_parameters_are_described_ranged_and_validated_when_set(checkpoint, start_process, client) -> None:
    """What `ros2 param describe` / `ros2 param set` see, through the node's parameter services."""
    from rcl_interfaces.msg import Parameter as ParameterMsg
    from rcl_interfaces.msg import ParameterType, ParameterValue
    from rcl_interfaces.srv import DescribeParameters, GetParameters, SetParameters

    from flow_planner_ros.node.planner_settings import PLANNER_PARAMETERS

    planner = start_process(PLANNER, *planner_args(checkpoint))
    client.wait_for_service(planner)

    def call(srv_type, name: str, request):  # describe, get, set: safe to repeat
        return call_until_answered(client.node.create_client(srv_type, f"/flow_planner/{name}"), request, 30.0)

    names = [spec.name for spec in PLANNER_PARAMETERS]
    described = call(DescribeParameters, "describe_parameters", DescribeParameters.Request(names=names))
    for spec, descriptor in zip(PLANNER_PARAMETERS, described.descriptors, strict=True):
        assert descriptor.name == spec.name and descriptor.description == spec.description
        assert descriptor.read_only == spec.read_only, spec.name
        if isinstance(spec.default, int | float) and not isinstance(spec.default, bool):
            ranges = descriptor.integer_range or descriptor.floating_point_range
            assert len(ranges) == 1 and ranges[0].from_value == spec.low and ranges[0].to_value == spec.high

    def set_int(name: str, value: int):
        parameter = ParameterMsg(name=name, value=ParameterValue(type=ParameterType.PARAMETER_INTEGER,
                                                                 integer_value=value))  # fmt: skip
        return call(SetParameters, "set_parameters", SetParameters.Request(parameters=[parameter])).results[0]

    assert not set_int("execution_steps", 0).successful  # out of the declared range
    assert not set_int("num_samples", 100).successful  # within its range, but above max_num_samples
    assert not set_int("num_threads", 2).successful  # read-only
    assert set_int("num_samples", 3).successful
    got = call(GetParameters, "get_parameters", GetParameters.Request(names=["num_samples", "execution_steps"]))
    assert [v.integer_value for v in got.values] == [3, 60]
    response = client.plan(start_positions=list(HOME_POSITIONS), goal_positions=list(HOME_POSITIONS + GOAL_OFFSET))
    assert response.success and response.message.startswith("ok: ") and "/3 candidates" in response.message


def test_the_planner_process_never_imports_the_expert_or_the_collector(
    checkpoint, start_process, client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python's own import log (-X importtime) of the running planner process: no CEM, cost, collector or MuJoCo."""
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    planner = start_process(PLANNER, *planner_args(checkpoint))
    client.wait_for_service(planner)
    assert client.plan(start_positions=list(HOME_POSITIONS), goal_positions=list(HOME_POSITIONS + GOAL_OFFSET)).success
    imported = {line.rsplit("|", 1)[-1].strip() for line in planner.output().splitlines() if "import time:" in line}
    assert "flow_planner_ros.planning.pipeline" in imported  # the log is the planner's
    forbidden = sorted(m for m in imported if m.startswith(("data_collector_ros", "mujoco")))
    assert forbidden == [], forbidden


def test_fuzzed_requests_and_trajectories_never_move_the_arm_unsafely(checkpoint, start_process, client) -> None:
    """Safety issue: a fixed-seed fuzz over the plan service and the bridge's controller topics. Every refusal has a
    reason; nothing published exceeds the limits or starts away from the measured state; both nodes stay alive."""
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectoryPoint

    from flow_planner_common.robot import (
        JOINT_POSITION_LIMITS,
        JOINT_VELOCITY_LIMITS,
        LEFT_ARM_JOINTS,
        RIGHT_ARM_JOINTS,
    )

    bridge = start_process(BRIDGE, "-p", "real_time_factor:=1.0")
    planner = start_process(PLANNER, *planner_args(checkpoint))
    client.wait_for_service(planner)
    home = client.wait_for_states()
    client.wait_until_planner_has_states(home + GOAL_OFFSET)
    arms = {"left": LEFT_ARM_JOINTS, "right": RIGHT_ARM_JOINTS}
    publishers = {
        arm: client.node.create_publisher(JointTrajectory, f"/{arm}_arm_controller/joint_trajectory", 10)
        for arm in arms
    }
    end = time.monotonic() + 10
    while not all(p.get_subscription_count() > 0 for p in publishers.values()):
        assert time.monotonic() < end, "the bridge does not subscribe to the controller topics"
        time.sleep(0.05)

    rng = np.random.default_rng(1234)

    def measured() -> np.ndarray:
        with client.lock:
            return client.states[-1][1].copy()

    def fuzz_vector(valid: np.ndarray) -> list[float]:
        kind = rng.choice(["valid", "empty", "short", "long", "nan", "inf", "huge", "big_offset"])
        if kind == "empty":
            return []
        if kind == "short":
            return list(rng.uniform(-1, 1, int(rng.integers(1, NUM_JOINTS))))
        if kind == "long":
            return list(rng.uniform(-1, 1, int(rng.choice([13, 24, 10_000]))))
        values = valid.copy()
        if kind in ("nan", "inf", "huge"):
            value = {"nan": float("nan"), "inf": float(rng.choice([np.inf, -np.inf])), "huge": 1e300}[kind]
            values[rng.integers(0, NUM_JOINTS, int(rng.integers(1, NUM_JOINTS + 1)))] = value * rng.choice([-1.0, 1.0])
        elif kind == "big_offset":
            values = values + rng.uniform(-2.0, 2.0, NUM_JOINTS)
        return list(values)

    def fuzz_names() -> list[str]:
        kind = rng.choice(["empty", "shuffled", "unknown", "long_name", "non_ascii", "duplicated", "few"])
        names = list(JOINT_NAMES)
        if kind == "empty":
            return []
        rng.shuffle(names)
        if kind == "unknown":
            names[int(rng.integers(0, NUM_JOINTS))] = "bogus_joint"
        elif kind == "long_name":
            names[int(rng.integers(0, NUM_JOINTS))] = "x" * 10_000
        elif kind == "non_ascii":
            names[int(rng.integers(0, NUM_JOINTS))] = "gelenk_ü_関節_\u202e_😀"
        elif kind == "duplicated":
            names[1] = names[0]
        elif kind == "few":
            names = names[: int(rng.integers(1, NUM_JOINTS))]
        return names

    def fuzzed_request() -> dict:
        q = measured()
        if rng.random() < 0.3:  # a valid request from the measured state, executed: some motions really run
            goal = q + rng.uniform(-0.3, 0.3, NUM_JOINTS)
            names = list(JOINT_NAMES)
            if rng.random() < 0.5:
                rng.shuffle(names)
            order = [JOINT_NAMES.index(n) for n in names]
            return {"joint_names": names, "goal_positions": list(goal[order]), "seed": int(rng.integers(0, 2**31)),
                    "execute": True}  # fmt: skip
        goal = q + rng.uniform(-0.3, 0.3, NUM_JOINTS)
        return {
            "start_positions": fuzz_vector(q) if rng.random() < 0.7 else [],
            "start_velocities": fuzz_vector(np.zeros(NUM_JOINTS)) if rng.random() < 0.5 else [],
            "goal_positions": fuzz_vector(goal),
            "joint_names": fuzz_names() if rng.random() < 0.5 else [],  # half reach the checks past the names
            # uint32 fields: -5 and -1 arrive as their wrapped values (rclpy refuses a negative int outright).
            "num_samples": int(rng.choice([2**32 - 5, 0, 1, 3, 65, 10**6])),
            "integration_steps": int(rng.choice([2**32 - 1, 0, 2, 101, 10**6])),
            "seed": int(rng.integers(-(2**63), 2**63 - 1)),
            "execute": bool(rng.random() < 0.5),
        }

    def point(positions, velocities, t: float) -> JointTrajectoryPoint:
        sec = int(np.floor(t))
        return JointTrajectoryPoint(
            positions=[float(x) for x in positions], velocities=[float(x) for x in velocities],
            time_from_start=Duration(sec=sec, nanosec=round((t - sec) * 1e9)),
        )  # fmt: skip

    def fuzzed_trajectory(arm: str) -> JointTrajectory:
        joints = list(arms[arm])
        names = list(joints)
        name_kind = rng.choice(["valid", "shuffled", "wrong", "few", "duplicated"])
        if name_kind == "shuffled":
            rng.shuffle(names)
        elif name_kind == "wrong":
            names = list(arms["right" if arm == "left" else "left"])
        elif name_kind == "few":
            names = names[: int(rng.integers(0, len(names)))]
        elif name_kind == "duplicated":
            names[-1] = names[0]
        current = measured()[[JOINT_NAMES.index(n) if n in JOINT_NAMES else 0 for n in names]]
        n = len(names)
        kind = rng.choice(["harmless", "nan", "non_increasing", "zero_time", "far", "empty", "ragged"])
        count = int(rng.integers(1, 11))
        if kind == "harmless":
            points = [point(current + 0.05, np.zeros(n), 1.0)]
        elif kind == "nan":
            positions = current.copy()
            if n:
                positions[int(rng.integers(0, n))] = float("nan")
            points = [point(positions, np.zeros(n), 1.0)]
        elif kind == "non_increasing":
            times = np.sort(rng.uniform(0.1, 1.0, count))[::-1]
            points = [point(current + 0.01 * k, np.zeros(n), t) for k, t in enumerate(times)]
        elif kind == "zero_time":
            points = [point(current, np.zeros(n), 0.0) for _ in range(count)]
        elif kind == "far":
            points = [point(current + rng.choice([-2.0, 2.0], n), np.zeros(n), 0.05)]
        elif kind == "empty":
            points = []
        else:  # ragged: fewer positions than joints
            points = [point(current[: max(n - 1, 0)], np.zeros(n), 0.5 + 0.1 * k) for k in range(count)]
        assert len(points) <= 10
        return JointTrajectory(joint_names=names, points=points)

    started = time.monotonic()
    responses = []
    for _ in range(40):
        if rng.random() < 0.55:
            fields = fuzzed_request()
            response = client.plan(**fields)
            responses.append(response)
            summary = {k: (v if not isinstance(v, list) else f"{len(v)} values") for k, v in fields.items()}
            if not response.success:
                assert 0 < len(response.message) < 2000, (summary, response.message[:300])
            else:
                assert_valid_trajectory(response.trajectory)
        else:
            arm = str(rng.choice(list(arms)))
            publishers[arm].publish(fuzzed_trajectory(arm))
        time.sleep(float(rng.uniform(0.05, 0.4)))
        assert planner.popen.poll() is None, f"planner exited:\n{planner.output()[-3000:]}"
        assert bridge.popen.poll() is None, f"bridge exited:\n{bridge.output()[-3000:]}"
    time.sleep(2.0)
    fuzz_time = time.monotonic() - started

    assert planner.popen.poll() is None, f"planner exited:\n{planner.output()[-3000:]}"
    assert bridge.popen.poll() is None, f"bridge exited:\n{bridge.output()[-3000:]}"
    assert any(r.success for r in responses) and any(not r.success for r in responses)
    with client.lock:
        speeds = np.array(client.speeds)
        state_times = np.array([t for t, _ in client.states])
        states = np.array([q for _, q in client.states])
        commands = [(arm, t, msg) for arm, t, msg in client.commands if len(msg.points) == HORIZON]
    # The bridge accepts up to 5 % above the limits in the speed its trajectories imply; a little on top.
    assert speeds.max() <= float(JOINT_VELOCITY_LIMITS.max()) * 1.1, f"measured speed {speeds.max():.3f} rad/s"
    assert commands, "no fuzzed round executed a plan"
    for arm, received, msg in commands:
        assert set(msg.joint_names) == set(arms[arm]) and len(msg.joint_names) == len(arms[arm])
        cols = [JOINT_NAMES.index(n) for n in msg.joint_names]
        positions = np.array([p.positions for p in msg.points])
        velocities = np.array([p.velocities for p in msg.points])
        assert np.all(np.isfinite(positions)) and np.all(np.isfinite(velocities)), arm
        limits = JOINT_POSITION_LIMITS[cols]
        assert np.all(positions >= limits[:, 0]) and np.all(positions <= limits[:, 1]), arm
        assert np.all(np.abs(velocities) <= JOINT_VELOCITY_LIMITS[cols] + 1e-9), np.abs(velocities).max()
        steps = np.abs(np.diff(positions, axis=0)).max()
        assert steps <= np.pi * DEFAULT_DT + 1e-6, steps
        nearest = int(np.argmin(np.abs(state_times - received)))
        gap = np.abs(positions[0] - states[nearest][cols]).max()
        assert gap <= np.pi * DEFAULT_DT * 1.5, (arm, received - state_times[0], gap)

    # Still answering: a valid dry run from the measured state succeeds.
    q = measured()
    response = client.plan(goal_positions=list(q + 0.1 * GOAL_OFFSET), seed=99)
    assert response.success, response.message
    assert fuzz_time < 90, fuzz_time
