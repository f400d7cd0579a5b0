"""The planner's "now" on its node clock, current even while its one executor thread is busy planning.

With use_sim_time, rclpy's clock moves only when the node's executor takes a /clock message (its TimeSource
subscription). The planner runs everything on one thread, so while it samples, checks and refines a plan (tens to
hundreds of ms) its clock stands still, and a plan stamped with "now" after planning was stamped that long in the
past: under a simulation at real_time_factor 4, 60-330 ms of sim time, and the controllers, which count
time_from_start from the stamp, skipped that much of the plan's start and interpolated from the arm at rest to the
first waypoint still ahead, too fast for the velocity limits (the bridge then rejects the plan: the arm never
moves). Joins to a running plan were spliced at a past instant the same way.

`FreshClock` reads the newest /clock itself when asked, from a subscription of its own that no executor spins (on a
helper node, `<node>_clock`, made when sim time is first active): the DDS reader keeps the latest message (depth
1) whatever the executor is doing. Without sim time the node clock (system time) is current anyway and is used.
"""

from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

#: s; a plan that joins no running one is stamped this far ahead: a controller whose clock runs ahead of ours (sim
#: time reaches us on /clock every few ms) still finds its first waypoint a whole dt away.
FRESH_PLAN_LEAD = 0.02
#: The /clock QoS of rclpy's TimeSource: the newest message only.
CLOCK_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT)


class FreshClock:
    """`now()`: seconds on `node`'s clock, with sim time the newest /clock message received (not yet only the one
    the executor last handled)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._probe: Node | None = None
        self._subscription = None
        self._latest: int | None = None  # ns of the newest /clock taken

    def now(self) -> float:
        clock = self._node.get_clock()
        if not clock.ros_time_is_active:
            return clock.now().nanoseconds * 1e-9
        if self._subscription is None:
            self._open()
        newest = self._take_newest()
        if newest is not None:
            self._latest = newest
        if self._latest is None:  # no /clock seen here yet: what the executor has
            return clock.now().nanoseconds * 1e-9
        return self._latest * 1e-9

    def _open(self) -> None:
        self._probe = Node(
            f"{self._node.get_name()}_clock", namespace=self._node.get_namespace(), context=self._node.context,
            use_global_arguments=False, start_parameter_services=False, enable_rosout=False,
        )  # fmt: skip
        self._subscription = self._probe.create_subscription(Clock, "/clock", lambda _: None, CLOCK_QOS)

    def _take_newest(self) -> int | None:
        """ns of the newest /clock waiting in the reader (None: nothing new since the last take)."""
        newest, handle = None, self._subscription.handle
        with handle:
            while (taken := handle.take_message(Clock, False)) is not None:
                stamp = taken[0].clock
                newest = stamp.sec * 1_000_000_000 + stamp.nanosec
        return newest

    def close(self) -> None:
        if self._probe is not None:
            self._probe.destroy_node()
            self._probe = self._subscription = None
