"""Shared CLI behaviour: expected errors become one line on stderr and exit code 2, no traceback."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from flow_planner_common.trajectory_schema import SchemaError
from flow_planner_ros.learning.checkpoint import CheckpointError
from flow_planner_ros.learning.training_config import ConfigError

EXPECTED_ERRORS = (SchemaError, CheckpointError, ConfigError, OSError, ValueError)


class OutputError(ValueError):
    """An output file cannot be written where asked."""


def check_output_file(path: str | Path, what: str = "output") -> Path:
    """Fail now, not after the work, when `path` cannot be written: it is a folder, or its folder cannot be
    created or written (probed with a real temporary file, so it also holds for root and read-only mounts)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path} is an existing directory, not a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        raise OutputError(f"{what} {path}: cannot write in {path.parent} ({exc.strerror or exc})") from exc
    return path


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
