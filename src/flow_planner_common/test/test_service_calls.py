"""service_calls over real DDS: a request that gets no answer is sent again until one arrives (the response a server
drops while discovery is incomplete), a server that can never answer ends the wait early, and the wait is bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_srvs.srv import SetBool

from flow_planner_common.service_calls import call, call_until_answered

NAME = "/service_calls_test/set"


class DroppingServer:
    """A SetBool server in its own context that answers only every `answer_every`-th request (0: none)."""

    def __init__(self, domain_id: int, answer_every: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("dropping_server", context=self.context)
        self.service = self.node.create_service(SetBool, NAME, lambda request, response: response)
        self.answer_every = answer_every
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:  # takes requests itself (no executor), so it can leave some unanswered
        while not self._stop.is_set():
            with self.service.handle:
                request, header = self.service.handle.service_take_request(SetBool.Request)
            if header is None:
                time.sleep(0.005)
                continue
            self.received += 1
            if self.answer_every and self.received % self.answer_every == 0:
                self.service.send_response(SetBool.Response(success=request.data, message=str(self.received)), header)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def client_node(ros_domain_id: int) -> Iterator[Node]:
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    node = Node("service_calls_client", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield node
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=context)
    thread.join(timeout=5)


def test_an_unanswered_request_is_sent_again_until_answered(ros_domain_id: int, client_node: Node) -> None:
    server = DroppingServer(ros_domain_id, answer_every=2)
    try:
        client = client_node.create_client(SetBool, NAME)
        response = call_until_answered(client, SetBool.Request(data=True), timeout=30.0, attempt_timeout=0.5)
        assert response.success and response.message == "2"  # the first request was dropped, the second answered
        assert call(client, SetBool.Request(data=True), timeout=0.5) is None  # the third: dropped, forgotten
    finally:
        server.close()


def test_a_server_that_cannot_answer_ends_the_wait(ros_domain_id: int, client_node: Node) -> None:
    server = DroppingServer(ros_domain_id, answer_every=0)
    try:
        client = client_node.create_client(SetBool, NAME)
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="did not answer within 2 s"):
            call_until_answered(client, SetBool.Request(), timeout=2.0, attempt_timeout=0.5)
        assert time.monotonic() - started < 5.0
        assert server.received >= 2
        with pytest.raises(TimeoutError, match="will not answer: its process exited"):
            call_until_answered(client, SetBool.Request(), timeout=30.0, why_not=lambda: "its process exited")
    finally:
        server.close()
