"""Plans stamped with the instant they start under sim time, however long planning takes: over real DDS with the real
MuJoCo bridge publishing /clock at real_time_factor 4 and the planner on use_sim_time.

The regression: rclpy's sim-time clock moves only when the node's executor takes a /clock message, and the planner
plans on its one executor thread, so a plan published after planning was stamped with the /clock of before
planning: at real_time_factor 4, four times the planning time in the past. The bridge counts time_from_start from
the stamp (like joint_trajectory_controller), skipped that much of the plan and interpolated from the arm at rest to
the first waypoint still ahead; in the held-out comparison one carry was rejected for it ('implied speed 9.17 rad/s
... from the current state to point 0') and the arms never moved. node.sim_clock.FreshClock reads the newest /clock
itself."""

from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path

import rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock

from flow_planner_common.robot import DEFAULT_DT, HORIZON
from flow_planner_ros.node.sim_clock import FreshClock

_here = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("planner_node_dds", _here / "test_planner_node_dds.py")
_dds = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_dds)
BRIDGE, PLANNER, GOAL_OFFSET = _dds.BRIDGE, _dds.PLANNER, _dds.GOAL_OFFSET
REAL_TIME_FACTOR = 4.0
#: s of wall time; the requests' Euler steps are doubled until planning takes this long (x REAL_TIME_FACTOR: the
#: stale stamps' error in sim time)
SLOW_PLANNING = 0.25
#: s of sim time; how far before its receipt a plan may start (the delivery to the bridge: ~10-30 ms of wall time,
#: times REAL_TIME_FACTOR). The stale stamps were 4x the planning time early.
MAX_START_BEFORE_RECEIPT = 0.25
ACCEPTED = re.compile(r"(left|right) arm trajectory accepted: (\d+) points, ([0-9.]+) s")


def test_plans_start_when_stamped_however_long_planning_takes(checkpoint, start_process, client) -> None:
    bridge = start_process(BRIDGE, "-p", f"real_time_factor:={REAL_TIME_FACTOR}", "-p", "publish_clock:=true")
    planner = start_process(PLANNER, *_dds.planner_args(
        checkpoint, "-p", "use_sim_time:=true", "-p", "max_num_samples:=1024", "-p", "max_integration_steps:=1000",
    ))  # fmt: skip
    client.wait_for_service(planner)
    home = client.wait_for_states()
    goal = home + GOAL_OFFSET
    client.wait_until_planner_has_states(goal)
    slow = {"num_samples": 32, "integration_steps": 5}
    while (dry := client.plan(goal_positions=list(goal), seed=3, **slow)).planning_time < SLOW_PLANNING:
        assert dry.success, dry.message
        assert slow["integration_steps"] < 1000, f"planning stays fast ({dry.planning_time:.3f} s)"
        slow["integration_steps"] *= 2

    response = client.plan(goal_positions=list(goal), seed=3, execute=True, **slow)
    assert response.success, response.message
    end = time.monotonic() + 30.0
    final = None
    while final is None and time.monotonic() < end:
        with client.lock:
            final = next((s for s in client.statuses if s.request_id == 1 and s.state != "executing"), None)
        time.sleep(0.05)
    log = bridge.output()
    assert "rejected" not in log, log
    assert final is not None and final.state == "reached", (final, log)
    # The bridge logs the accepted plan's end in seconds from its receipt: HORIZON * DEFAULT_DT + its start
    starts = {arm: float(end_s) - HORIZON * DEFAULT_DT for arm, _, end_s in ACCEPTED.findall(log)}
    print(f"planning {response.planning_time:.3f} s (wall, {slow}); starts from receipt (sim s) {starts}")
    assert set(starts) == {"left", "right"}, log
    assert all(start >= -MAX_START_BEFORE_RECEIPT for start in starts.values()), (response.planning_time, starts)


def test_fresh_clock_reads_the_newest_clock_while_no_executor_runs(ros_domain_id: int) -> None:
    """The node is never spun: rclpy's clock stays at zero, FreshClock follows /clock (also back, as on a sim
    reset); without sim time it is the system clock."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    try:
        node = Node("clock_reader", context=context, parameter_overrides=[Parameter("use_sim_time", value=True)])
        source = Node("clock_source", context=context)
        publisher = source.create_publisher(Clock, "/clock", 10)
        fresh = FreshClock(node)
        for seconds in (12.5, 13.25, 1.0):
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = int(seconds), round((seconds % 1) * 1e9)
            end = time.monotonic() + 10.0
            while fresh.now() != seconds and time.monotonic() < end:
                publisher.publish(msg)  # again until discovery has matched the probe
                time.sleep(0.02)
            assert fresh.now() == seconds
        assert node.get_clock().now().nanoseconds == 0  # what the planner stamped with before
        fresh.close()
        plain = FreshClock(Node("wall_reader", context=context))
        assert abs(plain.now() - time.time()) < 0.5
    finally:
        rclpy.try_shutdown(context=context)
