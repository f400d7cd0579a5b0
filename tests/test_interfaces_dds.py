"""PlanTrajectory round-trips over real DDS between two processes (this one and an echo server)."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import rclpy
from rclpy.node import Node

from flow_planner_common.robot import JOINT_NAMES
from flow_planner_msgs.srv import PlanTrajectory

SERVER = Path(__file__).parent / "ros_processes" / "plan_echo_server.py"


@pytest.fixture
def echo_server(ros_domain_id: int):
    process = subprocess.Popen(
        [sys.executable, str(SERVER)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ
    )
    try:
        assert process.stdout.readline().strip() == "ready", "echo server did not start"
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_plan_trajectory_round_trip(echo_server: subprocess.Popen, ros_domain_id: int) -> None:
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    node = Node("plan_client", context=context)
    try:
        client = node.create_client(PlanTrajectory, "/flow_planner/plan")
        assert client.wait_for_service(timeout_sec=20.0), "service not discovered over DDS"
        request = PlanTrajectory.Request(
            start_positions=[0.1 * i for i in range(12)],
            start_velocities=[-0.01 * i for i in range(12)],
            joint_names=list(JOINT_NAMES),
            goal_positions=[math.pi / (i + 1) for i in range(12)],
            num_samples=8,
            integration_steps=10,
            seed=-42,
            execute=True,
        )
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        future = client.call_async(request)
        executor.spin_until_future_complete(future, timeout_sec=20.0)
        assert future.done(), "no response within 20 s"
        response = future.result()
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)

    assert response.success is True
    assert response.message == "seed=-42 samples=8 steps=10"
    assert list(response.trajectory.joint_names) == list(JOINT_NAMES)
    start, goal = response.trajectory.points
    assert list(start.positions) == pytest.approx(request.start_positions, abs=0)
    assert list(start.velocities) == pytest.approx(request.start_velocities, abs=0)
    assert list(goal.positions) == pytest.approx(request.goal_positions, abs=0)
    assert (start.time_from_start.sec, start.time_from_start.nanosec) == (0, 50_000_000)
    assert response.planning_time == pytest.approx(0.010)
    assert response.num_valid_candidates == 8


def test_plan_trajectory_defaults_are_empty() -> None:
    request = PlanTrajectory.Request()
    assert list(request.start_positions) == [] and list(request.start_velocities) == []
    assert list(request.joint_names) == [] and list(request.goal_positions) == []
    assert (request.num_samples, request.integration_steps, request.seed, request.execute) == (0, 0, 0, False)
    response = PlanTrajectory.Response()
    assert response.success is False and response.planning_time == 0.0
