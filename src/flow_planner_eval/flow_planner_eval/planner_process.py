"""The `planner` node as a child process of `evaluate`: started from the installed executable with the shipped
config/planner.yaml plus overrides, its output logged to a file, stopped with SIGINT (then SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class PlannerLaunch:
    """What the planner process is started with."""

    checkpoint: Path
    execution_steps: int
    log_path: Path
    backend: str | None = None
    use_sim_time: bool = False
    parameters: tuple[tuple[str, str], ...] = ()  # more node parameters, (name, value as `ros2 run -p` reads it)


def package_share(package: str) -> Path | None:
    """The installed share folder of a package, None if it is not installed."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return Path(get_package_share_directory(package))
    except PackageNotFoundError:
        return None


class PlannerProcess:
    """A running `planner` node (flow_planner_ros/lib/flow_planner_ros/planner)."""

    def __init__(self, launch: PlannerLaunch) -> None:
        from ament_index_python.packages import get_package_prefix

        executable = Path(get_package_prefix("flow_planner_ros")) / "lib" / "flow_planner_ros" / "planner"
        if not executable.exists():
            raise FileNotFoundError(f"{executable} missing: colcon build the workspace")
        params = ["-p", f"checkpoint:={launch.checkpoint}", "-p", f"execution_steps:={launch.execution_steps}"]
        share = package_share("flow_planner_ros")
        if share is not None and (share / "config" / "planner.yaml").is_file():
            params = ["--params-file", str(share / "config" / "planner.yaml"), *params]
        if launch.backend:
            params += ["-p", f"backend:={launch.backend}"]
        if launch.use_sim_time:
            params += ["-p", "use_sim_time:=true"]
        for name, value in launch.parameters:
            params += ["-p", f"{name}:={value}"]
        self.log_path = launch.log_path
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[str] = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(executable), "--ros-args", *params], stdout=self._log, stderr=subprocess.STDOUT, env=os.environ
        )

    def exited(self) -> bool:
        return self.process.poll() is not None

    def describe_exit(self) -> str:
        """'the planner exited (code): last log lines'."""
        return f"the planner exited ({self.process.returncode}): {self.log_tail()}"

    def log_tail(self, lines: int = 3) -> str:
        try:
            return " | ".join(self.log_path.read_text().strip().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
