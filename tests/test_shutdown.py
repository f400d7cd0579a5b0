"""Shutdown is robust to a second SIGINT (a process manager, `timeout -s INT`, an impatient Ctrl-C): the node
executables, as real processes, exit 0 with no traceback when SIGINT comes twice, once while they run and again
while they are shutting down (the bridge joining its simulation thread, a collector destroying its node)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

WORKSPACE = Path(__file__).resolve().parents[1]
LIB = WORKSPACE / "install"
EXECUTABLES = {
    "sim_bridge": (LIB / "data_collector_ros" / "lib" / "data_collector_ros" / "sim_bridge", [], "sim_bridge running"),
    "planner": (LIB / "flow_planner_ros" / "lib" / "flow_planner_ros" / "planner", [], "loaded"),
    "collector": (
        LIB / "data_collector_ros" / "lib" / "data_collector_ros" / "collector",
        ["-p", "count:=1000", "-p", "progress:=false", "-p", "grid_nx:=3", "-p", "grid_ny:=2"],
        "collecting grid indices",
    ),
}


@pytest.mark.parametrize("second_after", [0.002, 0.05])
@pytest.mark.parametrize("name", sorted(EXECUTABLES))
def test_two_sigints_exit_cleanly_without_a_traceback(
    name: str, second_after: float, ros_domain_id: int, tmp_path: Path
) -> None:
    executable, args, ready = EXECUTABLES[name]
    assert executable.exists(), f"{executable} missing: colcon build the workspace first"
    if name == "collector":
        args = [*args, "-p", f"output_dir:={tmp_path / 'data'}"]
    log = tmp_path / f"{name}.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(executable), "--ros-args", *args], stdout=out, stderr=subprocess.STDOUT,
                                   env=os.environ)  # fmt: skip
        try:
            end = time.monotonic() + 60
            while ready not in log.read_text():
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < end, f"{name} did not start:\n{log.read_text()}"
                time.sleep(0.05)
            time.sleep(0.3)  # running, not starting
            process.send_signal(signal.SIGINT)
            time.sleep(second_after)
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    output = log.read_text()
    assert code == 0, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
