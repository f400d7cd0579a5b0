"""A fixed-seed fuzz over the plan service and the bridge's controller topics, over real DDS with the real bridge
and planner processes (the planner tests' trained checkpoint and helpers: test_planner_node_dds)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
from trajectory_msgs.msg import JointTrajectory

from flow_planner_common.robot import DEFAULT_DT, HORIZON, JOINT_NAMES, NUM_JOINTS

_spec = importlib.util.spec_from_file_location("planner_node_dds", Path(__file__).with_name("test_planner_node_dds.py"))
_dds = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_dds)
checkpoint, start_process, client = _dds.checkpoint, _dds.start_process, _dds.client
BRIDGE, PLANNER, GOAL_OFFSET = _dds.BRIDGE, _dds.PLANNER, _dds.GOAL_OFFSET
planner_args, assert_valid_trajectory = _dds.planner_args, _dds.assert_valid_trajectory


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
