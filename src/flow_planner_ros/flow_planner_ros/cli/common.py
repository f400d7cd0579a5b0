"""Shared CLI behaviour: expected errors become one line on stderr and exit code 2, no traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from flow_planner_common.trajectory_schema import SchemaError
from flow_planner_ros.checkpoint import CheckpointError
from flow_planner_ros.config import ConfigError

EXPECTED_ERRORS = (SchemaError, CheckpointError, ConfigError, FileNotFoundError, PermissionError, ValueError)


def run_cli(name: str, body: Callable[[], int]) -> int:
    """Run body(); map bad input to 'name: error: …' on stderr and exit code 2, Ctrl-C to 130."""
    try:
        return body()
    except EXPECTED_ERRORS as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
