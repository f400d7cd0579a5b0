"""Fixtures for the learning-core tests: small synthetic data sets and one short real training run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

#: Trained once per session by `trained`; the thresholds in test_training.py are stated against this run.
TRAIN_OVERRIDES = {
    "model": {"type": "unet", "unet": {"hidden_dims": [32, 64]}},
    "training": {"epochs": 35, "batch_size": 32, "learning_rate": 3e-3, "warmup_steps": 20, "val_fraction": 0.1},
    "flow": {"integration_steps": 5},
}


@pytest.fixture(scope="session")
def synthetic_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from flow_planner_ros.learning.synthetic import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path_factory.mktemp("data") / "synthetic.npz", 1000, seed=0)


@pytest.fixture(scope="session")
def trained(synthetic_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """(checkpoint path, TrainResult) of a short CPU training run on the synthetic set."""
    from flow_planner_ros.learning.training import train
    from flow_planner_ros.learning.training_config import load_config

    out = tmp_path_factory.mktemp("ckpt") / "synthetic.safetensors"
    result = train(synthetic_path, load_config(None, TRAIN_OVERRIDES), out, progress_bar=False, log=lambda *_: None)
    return out, result
