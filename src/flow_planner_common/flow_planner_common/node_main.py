"""The `main()` of a long-running node: start it, spin it until Ctrl-C or shutdown, clean up.

A node that cannot start (bad parameters, missing or invalid files) prints one line `<name>: cannot start:
<reason>` on stderr and the process exits 1, instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


def spin_node_main(
    name: str,
    make_node: Callable[[], Node],
    make_executor: Callable[[], Executor] = SingleThreadedExecutor,
    args: list[str] | None = None,
) -> int:
    """Run the node; returns the process exit code. A node's optional `stop()` runs before it is destroyed."""
    rclpy.init(args=args)
    try:
        node = make_node()
    except Exception as exc:  # any start-up failure: one clear line, non-zero exit
        print(f"{name}: cannot start: {exc}", file=sys.stderr, flush=True)
        rclpy.try_shutdown()
        return 1
    executor = make_executor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        stop = getattr(node, "stop", None)
        if callable(stop):
            stop()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
