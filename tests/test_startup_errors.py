"""Every start-up error is one line: the node executables, as real processes, given a params file that is not valid
YAML, one that does not exist, or a malformed parameter override, print exactly `<name>: cannot start: <reason>` (no
traceback, nor rcl's own 'Failed to parse global arguments' line) and exit 1 (the collector: `collector: invalid
parameters: <reason>`, exit 2, as for its other parameter errors). The launch files refuse a params file
that is not valid YAML before anything starts (tests/test_launch_arguments.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

WORKSPACE = Path(__file__).resolve().parents[1]
EXECUTABLES = {
    "planner": WORKSPACE / "install" / "flow_planner_ros" / "lib" / "flow_planner_ros" / "planner",
    "sim_bridge": WORKSPACE / "install" / "data_collector_ros" / "lib" / "data_collector_ros" / "sim_bridge",
    "collector": WORKSPACE / "install" / "data_collector_ros" / "lib" / "data_collector_ros" / "collector",
}
NOT_YAML = "flow_planner:\n  ros__parameters:\n    num_samples: [1, 2\n"


@pytest.mark.parametrize("problem", ["not_yaml", "missing", "bad_override"])
@pytest.mark.parametrize("name", sorted(EXECUTABLES))
def test_a_bad_start_is_one_line(name: str, problem: str, ros_domain_id: int, tmp_path: Path) -> None:
    executable = EXECUTABLES[name]
    assert executable.exists(), f"{executable} missing: colcon build the workspace first"
    params = tmp_path / "params.yaml"
    if problem == "not_yaml":
        params.write_text(NOT_YAML)
    args = ["-p", "x"] if problem == "bad_override" else ["--params-file", str(params)]
    done = subprocess.run([str(executable), "--ros-args", *args], capture_output=True, text=True, timeout=60,
                          env=os.environ)  # fmt: skip
    lines = (done.stdout + done.stderr).strip().splitlines()
    code, prefix = (2, "collector: invalid parameters: ") if name == "collector" else (1, f"{name}: cannot start: ")
    assert done.returncode == code, lines
    assert len(lines) == 1 and lines[0].startswith(prefix), lines
    reason = {"not_yaml": "Couldn't parse params file", "missing": "Couldn't parse params file",
              "bad_override": "parameter override"}[problem]  # fmt: skip
    assert reason in lines[0], lines[0]
