"""Test-wide fixtures: every test that talks DDS gets its own ROS_DOMAIN_ID, claimed with a lock file
so parallel test runs and other processes on the machine never see each other's topics."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Headless rendering for every test: MuJoCo picks its GL backend when first imported, whichever test imports it first
# (data_collector_ros sets the same default, but a test may import mujoco before it).
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"

# Domain IDs 0..101 use the default port ranges on every platform; we leave 0 to interactive use.
_DOMAIN_RANGE = range(1, 102)
_LOCK_DIR = Path(os.environ.get("FLOW_PLANNER_DOMAIN_LOCKS", "/tmp/flow_planner_ros_domains"))


@pytest.fixture
def ros_domain_id(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Claim a free ROS_DOMAIN_ID (localhost only) for this test and export it to child processes."""
    _LOCK_DIR.mkdir(parents=True, exist_ok=True)
    start = os.getpid() % len(_DOMAIN_RANGE)
    for offset in range(len(_DOMAIN_RANGE)):
        domain = _DOMAIN_RANGE[(start + offset) % len(_DOMAIN_RANGE)]
        handle = open(_LOCK_DIR / f"{domain}.lock", "w")  # noqa: SIM115 - held for the test's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
        monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        try:
            yield domain
        finally:
            handle.close()
        return
    pytest.fail("no free ROS_DOMAIN_ID in 1..101")
