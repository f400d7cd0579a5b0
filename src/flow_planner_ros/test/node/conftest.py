"""Fixtures of the planner node's DDS tests, defined once for the folder: `checkpoint` (a small model trained once
per session on minimum-jerk motions around home; the tests' thresholds are stated against it), `start_process` (node
executables as child processes, stopped after the test) and `client` (a test node over DDS)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("dds_support", Path(__file__).parent / "dds_support.py")
support = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(support)
Client, Process, write_min_jerk_dataset = support.Client, support.Process, support.write_min_jerk_dataset


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from flow_planner_ros.learning.training import train
    from flow_planner_ros.learning.training_config import load_config

    folder = tmp_path_factory.mktemp("planner_ckpt")
    data = write_min_jerk_dataset(folder / "min_jerk.npz", episodes=240, seed=0)
    overrides = {
        "model": {"type": "unet", "unet": {"hidden_dims": [32, 64]}},
        "training": {
            "epochs": 40, "batch_size": 64, "learning_rate": 3e-3, "warmup_steps": 20, "val_fraction": 0.1,
            "suffix_starts": [10, 20, 30, 40],
        },
        "flow": {"integration_steps": 5, "reference": "min_jerk"},
    }
    out = folder / "planner_test.safetensors"
    train(data, load_config(None, overrides), out, progress_bar=False, log=lambda *_: None)
    return out


@pytest.fixture
def start_process(ros_domain_id: int, tmp_path: Path):
    started: list[Process] = []

    def start(executable: Path, *args: str) -> Process:
        process = Process(executable, ["--ros-args", *args], tmp_path / f"{executable.name}_{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def client(ros_domain_id: int):
    c = Client(ros_domain_id)
    yield c
    c.close()
