"""The precision options of the learning core (config flow.noise_scale, flow.coupling, model.<type>.predict_data,
model.<type>.time_scaled_input):
validation, the pieces, and short real trainings on small synthetic data (also with model.obstacles on the
synthetic set's empty scenes). The measured effect on the synthetic set is benchmarks/bench_learning.py --recipes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from flow_planner_ros.learning.checkpoint import load_checkpoint
from flow_planner_ros.learning.diagnostics import diagnose
from flow_planner_ros.learning.flow import integrate, ot_assignment
from flow_planner_ros.learning.flow_sampler import FlowSampler
from flow_planner_ros.learning.models import build_model
from flow_planner_ros.learning.synthetic import write_synthetic_dataset
from flow_planner_ros.learning.training import train
from flow_planner_ros.learning.training_config import ConfigError, load_config

CONFIG_FILE = Path(__file__).resolve().parents[4] / "config" / "flow_config.yaml"
SMALL = {
    "model": {"type": "unet", "unet": {"hidden_dims": [16, 32], "predict_data": True, "time_scaled_input": True}},
    "training": {"epochs": 3, "batch_size": 16, "warmup_steps": 5, "val_fraction": 0.2, "suffix_starts": [20]},
    "flow": {"reference": "min_jerk", "coupling": "ot", "noise_scale": 0.5},
}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("precision") / "synthetic.npz", 40, seed=1)


def test_config_validates_the_precision_keys() -> None:
    cfg = load_config(CONFIG_FILE)
    assert cfg["flow"]["coupling"] in ("independent", "ot") and cfg["flow"]["noise_scale"] > 0
    assert cfg["model"]["unet"]["predict_data"] is True  # the shipped recipe (see the comments in the file)
    assert cfg["model"]["unet"]["time_scaled_input"] is True and cfg["flow"]["integration_steps"] == 2
    assert load_config(None, {"flow": {"coupling": "ot", "noise_scale": "0.5"}})["flow"]["noise_scale"] == 0.5
    for bad in ({"coupling": "sinkhorn"}, {"noise_scale": 0}, {"noise_scale": -1.0}, {"noise_scale": "x"}):
        with pytest.raises(ConfigError):
            load_config(None, {"flow": bad})


def test_ot_assignment_is_the_cheapest_permutation() -> None:
    generator = torch.Generator().manual_seed(0)
    x1 = torch.randn(6, 5, 3, generator=generator)
    shuffle = torch.tensor([3, 0, 5, 1, 4, 2])
    x0 = x1[shuffle] + 0.01 * torch.randn(6, 5, 3, generator=generator)
    perm = ot_assignment(x0, x1)
    assert sorted(perm.tolist()) == list(range(6))
    torch.testing.assert_close(x0[perm], x1, atol=0.05, rtol=0)


def test_data_predicting_model_lands_on_its_prediction() -> None:
    """forward returns the velocity towards the network's endpoint, so the last Euler step ends on it."""
    torch.manual_seed(0)
    model = build_model({"type": "unet", "unet": {"hidden_dims": [8, 16], "predict_data": True}}, 4, 3, 12).eval()
    dit = build_model({"type": "dit", "dit": {"hidden_dim": 16, "depth": 1, "heads": 2, "predict_data": True}},
                      4, 3, 12).eval()
    for net in (model, dit):
        x, cond = torch.randn(2, 12, 4), torch.randn(2, 3)
        t = torch.full((2,), 0.75)
        predict_data, net.predict_data = net.predict_data, False
        endpoint = net(x, t, cond)  # the raw network output
        net.predict_data = predict_data
        torch.testing.assert_close(x + 0.25 * net(x, t, cond), endpoint)
        out = integrate(net, x, cond, 4)
        assert out.shape == x.shape and torch.isfinite(out).all()


def test_a_time_scaled_model_ignores_the_noise_at_t0_and_sees_it_later() -> None:
    """time_scaled_input: the first Euler step's endpoint is a function of the conditioning alone, so a 1-step plan
    is the same for every noise draw; later the state matters. Without it the noise moves even the first step."""
    unet = {"type": "unet", "unet": {"hidden_dims": [8, 16], "predict_data": True}}
    dit = {"type": "dit", "dit": {"hidden_dim": 16, "depth": 1, "heads": 2, "predict_data": True}}
    for cfg in (unet, dit):
        torch.manual_seed(0)
        kind = cfg["type"]
        scaled = build_model({**cfg, kind: {**cfg[kind], "time_scaled_input": True}}, 4, 3, 12).eval()
        plain = build_model(cfg, 4, 3, 12).eval()
        for net in (scaled, plain):  # zero-initialized output layers would hide any dependence on x
            for parameter in net.parameters():
                torch.nn.init.normal_(parameter, std=0.3)
        cond = torch.randn(1, 3).expand(2, 3)
        x = torch.randn(2, 12, 4)
        with torch.no_grad():
            one_step = integrate(scaled, x, cond, 1)
            torch.testing.assert_close(one_step[0], one_step[1])
            assert not torch.allclose(integrate(plain, x, cond, 1)[0], integrate(plain, x, cond, 1)[1])
            endpoint = x + 0.5 * scaled(x, torch.full((2,), 0.5), cond)  # the prediction at t = 0.5
            assert not torch.allclose(endpoint[0], endpoint[1])


def test_short_training_with_every_precision_option(small_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.safetensors"
    result = train(small_set, load_config(None, SMALL), out, progress_bar=False, log=lambda *_: None)
    assert result.epochs == 3 and np.isfinite(result.train_loss) and np.isfinite(result.val_loss)
    ckpt = load_checkpoint(out)
    assert ckpt.model.predict_data and ckpt.model.time_scaled_input and ckpt.meta["flow"]["coupling"] == "ot"
    # noise_scale 0.5: normalized trajectories have std ~2 (the source noise is half the data's spread)
    baseline = train(small_set, load_config(None, {**SMALL, "flow": {"reference": "min_jerk"}}),
                     tmp_path / "b.safetensors", epochs=1, progress_bar=False, log=lambda *_: None)
    ref = load_checkpoint(baseline.checkpoint)
    np.testing.assert_allclose(ckpt.normalizer.pos_std, 0.5 * ref.normalizer.pos_std)
    np.testing.assert_allclose(ckpt.normalizer.vel_std, 0.5 * ref.normalizer.vel_std)
    report = diagnose(out, small_set, num_trajectories=8)
    for key in ("sensitivity_goal", "sensitivity_resample", "sensitivity_start", "gt_mae"):
        assert np.isfinite(report[key]), key
    pos, vel = FlowSampler.from_checkpoint(out).plan(np.zeros(12), np.zeros(12), np.full(12, 0.3), 2, 5, 0)
    assert pos.shape == vel.shape == (2, 60, 12) and np.isfinite(pos).all()


def test_obstacle_model_trains_and_diagnoses_on_the_synthetic_set(small_set: Path, tmp_path: Path) -> None:
    """model.obstacles true (as the real-data config will be) on the synthetic set: its scenes are empty."""
    cfg = load_config(CONFIG_FILE, {"model": {"obstacles": True, "unet": {"hidden_dims": [16, 32]}},
                                    "training": {"epochs": 1, "batch_size": 16, "warmup_steps": 5}})
    out = tmp_path / "obstacles.safetensors"
    train(small_set, cfg, out, progress_bar=False, log=lambda *_: None)
    assert load_checkpoint(out).obstacles
    report = diagnose(out, small_set, num_trajectories=8)
    assert np.isfinite(report["sensitivity_goal"]) and np.isfinite(report["sensitivity_resample"])
