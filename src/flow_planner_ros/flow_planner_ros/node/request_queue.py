"""The planner node's request queue (rclpy types, no node): PlanTrajectory requests and ExecutePlan goals wait here
in arrival order until they are planned. A request beyond `max_pending_requests` is answered success=false "busy"
at once; `take_waiting` moves every request waiting in the service's DDS queue (KEEP_ALL) into this one, so a burst
is never dropped silently."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from flow_planner_common.ros_messages import pose_values
from flow_planner_msgs.srv import PlanTrajectory
from flow_planner_ros.planning.pose_goal import pose_given
from flow_planner_ros.planning.request import RequestFields

Reply = Callable[[PlanTrajectory.Response], None]
#: A queued request: the request, how to answer it, and its ExecutePlan goal (None for a service call).
Queued = tuple[PlanTrajectory.Request, Reply, Any]


class RequestQueue:
    """Requests waiting to be planned, at most `limit()` of them (the node's current max_pending_requests)."""

    def __init__(self, limit: Callable[[], int]) -> None:
        self._limit = limit
        self._pending: deque[Queued] = deque()

    def __len__(self) -> int:
        return len(self._pending)

    def put(self, request: PlanTrajectory.Request, reply: Reply, goal: Any = None) -> bool:
        """Queue a request, or answer it "busy" now when the queue is full; whether it was queued."""
        limit = self._limit()
        if len(self._pending) < limit:
            self._pending.append((request, reply, goal))
            return True
        busy = PlanTrajectory.Response(success=False)
        busy.message = f"busy: {len(self._pending)} requests are waiting (max_pending_requests={limit}); retry later"
        reply(busy)
        return False

    def take_waiting(self, service) -> None:
        """Move every request waiting in an rclpy service's DDS queue into this one (or answer it busy)."""
        while True:
            with service.handle:
                taken = service.handle.service_take_request(service.srv_type.Request)
            request, header = taken if taken is not None else (None, None)
            if header is None:
                return
            self.put(request, lambda response, header=header: service.send_response(response, header))

    def pop(self) -> Queued:
        """The oldest queued request."""
        return self._pending.popleft()

    def pop_batch(self, limit: int) -> list[Queued]:
        """The oldest queued request, and with it up to `limit` - 1 more that directly follow it, when all are
        service calls that execute nothing (those can be planned together: no execution or goal between them)."""
        batch = [self._pending.popleft()]
        while self._pending and len(batch) < limit and all(_plain(q) for q in (batch[0], self._pending[0])):
            batch.append(self._pending.popleft())
        return batch


def request_fields(request: PlanTrajectory.Request) -> RequestFields:
    """The plain fields of a PlanTrajectory request, for validate_plan_request (target_tray_pose None: not given)."""
    target = pose_values(request.target_tray_pose)
    return RequestFields(
        start_positions=list(request.start_positions),
        start_velocities=list(request.start_velocities),
        joint_names=list(request.joint_names),
        goal_positions=list(request.goal_positions),
        num_samples=request.num_samples,
        integration_steps=request.integration_steps,
        seed=request.seed,
        execute=request.execute,
        target_tray_pose=target if pose_given(target) else None,
        carrying_tray=request.carrying_tray,
        tray_pose=pose_values(request.tray_pose),
    )


def _plain(queued: Queued) -> bool:
    """A service call that only plans (no ExecutePlan goal, execute=false)."""
    request, _, goal = queued
    return goal is None and not request.execute
