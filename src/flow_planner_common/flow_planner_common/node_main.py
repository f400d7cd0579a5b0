"""The `main()` of a long-running node: start it, spin it until Ctrl-C or shutdown, clean up.

A node that cannot start (bad parameters, missing or invalid files, a params file that is not valid YAML, bad
--ros-args) prints one line `<name>: cannot start: <reason>` on stderr (a multi-line reason, such as rcl's, joined
into one) and the process exits 1, instead of a traceback.

Shutdown is robust to what process managers and `timeout -s INT` do: once shutdown has begun, further SIGINTs are
ignored (a second Ctrl-C cannot interrupt `stop()` or `destroy_node()` with a KeyboardInterrupt), and a
RuntimeError from a handle that the shutting-down context already invalidated (e.g. in `take_message`) ends the
spin quietly. The exit code of a Ctrl-C'd node is 0; an unexpected error while running prints its traceback and
exits 1.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


def one_line(text: str) -> str:
    """`text` with its line breaks and runs of blanks collapsed: a reason fit for one log line."""
    return " ".join(text.split())


def init_quietly(args: list[str] | None) -> None:
    """rclpy.init; when it fails, what rcl wrote to stderr meanwhile ('Failed to parse global arguments') is
    dropped: the exception holds the reason, reported in one line. Written out as usual when it succeeds."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            rclpy.init(args=args)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        written = held.read()
    if written:
        sys.stderr.buffer.write(written)
        sys.stderr.flush()


def ignore_further_interrupts() -> None:
    """From now on SIGINT does nothing (shutdown has begun; it is already being done)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def spin_node_main(
    name: str,
    make_node: Callable[[], Node],
    make_executor: Callable[[], Executor] = SingleThreadedExecutor,
    args: list[str] | None = None,
) -> int:
    """Run the node; returns the process exit code. A node's optional `stop()` runs before it is destroyed."""
    try:
        init_quietly(args)  # parses --ros-args: a bad params file fails here (RCLError)
        node = make_node()
    except KeyboardInterrupt:  # Ctrl-C while starting (e.g. loading a model): stop quietly
        ignore_further_interrupts()
        rclpy.try_shutdown()
        return 0
    except Exception as exc:  # any start-up failure: one clear line, non-zero exit
        print(f"{name}: cannot start: {one_line(str(exc)) or type(exc).__name__}", file=sys.stderr, flush=True)
        rclpy.try_shutdown()
        return 1
    code = 0
    executor = make_executor()
    try:
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        ignore_further_interrupts()
    except Exception:  # a shutdown race, or a real failure (below)
        ignore_further_interrupts()
        if rclpy.ok():  # the context is alive: a real failure of the node
            traceback.print_exc()
            code = 1
        # else: a handle invalidated by the shutting-down context (RuntimeError/InvalidHandle); nothing to report
    finally:
        ignore_further_interrupts()
        code = _clean_up(name, node, executor) or code
    return code


def _clean_up(name: str, node: Node, executor: Executor) -> int:
    """Shut the executor down, stop and destroy the node, shut rclpy down; 1 if any of it failed."""
    failed = 0
    stop = getattr(node, "stop", None)
    for step in (executor.shutdown, stop, node.destroy_node, rclpy.try_shutdown):
        if not callable(step):
            continue
        try:
            step()
        except Exception as exc:  # report, and go on cleaning up
            print(f"{name}: during shutdown: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            failed = 1
    return failed
