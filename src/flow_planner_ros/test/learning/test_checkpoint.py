"""Checkpoint round trip, layout checks and refusal of pickles."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from flow_planner_ros.learning.checkpoint import META_KEY, CheckpointError, load_checkpoint, make_meta, save_checkpoint
from flow_planner_ros.learning.models import build_model
from flow_planner_ros.learning.normalization import Normalizer

MODEL_CFG = {"type": "unet", "unet": {"hidden_dims": [16, 32]}}
FLOW_CFG = {"sigma": 0.0, "integration_steps": 3, "method": "euler"}


def _normalizer(cond_dim: int = 36) -> Normalizer:
    rng = np.random.default_rng(0)
    pos, vel = rng.normal(size=(4, 60, 12)), 0.1 * rng.normal(size=(4, 60, 12))
    return Normalizer.fit(pos, vel, rng.normal(size=(4, cond_dim)))


def _save(path: Path, meta_changes: dict | None = None, model_cfg: dict = MODEL_CFG) -> tuple[Path, torch.nn.Module]:
    model = build_model(model_cfg, 24, 36, 60)
    meta = make_meta(model_cfg, FLOW_CFG, False, 0.05, {"data_hash": "x", "epochs": 1})
    meta.update(meta_changes or {})
    return save_checkpoint(path, model, _normalizer(), meta), model


def _rewrite_meta(path: Path, out: Path, **changes: object) -> Path:
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        meta = json.loads(f.metadata()[META_KEY])
    meta.update(changes)
    save_file(tensors, str(out), metadata={META_KEY: json.dumps(meta)})
    return out


@pytest.mark.parametrize("kind", ["unet", "dit"])
def test_round_trip_gives_identical_outputs(tmp_path: Path, kind: str) -> None:
    cfg = MODEL_CFG if kind == "unet" else {"type": "dit", "dit": {"hidden_dim": 32, "depth": 2, "heads": 4}}
    path, model = _save(tmp_path / "m.safetensors", model_cfg=cfg)
    if kind == "dit":  # make the zero-initialised layers non-trivial before saving
        for p in model.parameters():
            torch.nn.init.normal_(p, std=0.05)
        save_checkpoint(path, model, _normalizer(), make_meta(cfg, FLOW_CFG, False, 0.05, {}))
    ckpt = load_checkpoint(path)
    x, t, c = torch.randn(2, 60, 24), torch.rand(2), torch.randn(2, 36)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x, t, c), ckpt.model(x, t, c))
    assert ckpt.horizon == 60 and ckpt.dt == 0.05 and not ckpt.use_phase
    for key, value in _normalizer().to_dict().items():
        np.testing.assert_array_equal(ckpt.normalizer.to_dict()[key], value)
    assert ckpt.meta["joint_names"][0] == "left_shoulder_pan_joint"


def test_mismatches_fail_with_clear_messages(tmp_path: Path) -> None:
    path, _ = _save(tmp_path / "m.safetensors")
    cases = {
        "horizon 64": {"horizon": 64},
        "13 joints": {"num_joints": 13},
        "channel layout": {"channel_layout": ["x"] * 24},
        "conditioning layout": {"use_phase": True},
        "weights do not match": {"model": {"type": "unet", "unet": {"hidden_dims": [16, 32, 64]}}},
    }
    for message, change in cases.items():
        bad = _rewrite_meta(path, tmp_path / "bad.safetensors", **change)
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(bad)


def _rewrite_tensors(path: Path, out: Path, change) -> Path:
    """Copy a checkpoint with `change(name, tensor)` applied to every model weight."""
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        metadata = f.metadata()
    tensors = {k: change(k, v) if k.startswith("model.") else v for k, v in tensors.items()}
    save_file(tensors, str(out), metadata=metadata)
    return out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dt": 1e8}, "dt 100000000.0 must be a finite number of seconds in"),
        ({"dt": 0.0}, "dt 0.0 must be"),
        ({"dt": -0.05}, "dt -0.05 must be"),
        ({"dt": float("nan")}, "dt nan must be"),
        ({"dt": "0.05"}, "dt '0.05' must be"),
        ({"horizon": 60.0}, "horizon 60.0 must be an integer"),
        ({"use_phase": 0}, "use_phase 0 must be true or false"),
        ({"flow": {**FLOW_CFG, "method": "evil"}}, "flow.method 'evil' must be one of euler, midpoint"),
        ({"flow": {**FLOW_CFG, "integration_steps": 0}}, "integration_steps 0 must be an integer in"),
        ({"flow": {**FLOW_CFG, "integration_steps": 10**9}}, "integration_steps 1000000000 must be"),
        ({"flow": {**FLOW_CFG, "integration_steps": 2.5}}, "integration_steps 2.5 must be"),
        ({"flow": {**FLOW_CFG, "sigma": -1.0}}, "flow.sigma -1.0 must be a finite number"),
        ({"flow": {**FLOW_CFG, "sigma": float("inf")}}, "flow.sigma inf must be"),
        ({"flow": {**FLOW_CFG, "reference": "evil"}}, "flow.reference 'evil' must be one of none, min_jerk"),
        ({"flow": "euler"}, "flow metadata must be a mapping"),
        ({"training": []}, "training metadata must be a mapping"),
        ({"model": {"type": "evil"}}, "must name a type in unet, dit"),
        ({"model": {"type": "unet", "unet": {"hidden_dims": [10**7, 10**7]}}}, "model.unet.hidden_dims"),
        ({"model": {"type": "dit", "dit": {"hidden_dim": float("nan")}}}, "model.dit.hidden_dim = nan"),
        ({"model": {"type": "unet", "unet": {"hidden_dims": [16] * 100}}}, "lists up to 16 entries"),
        ({"model": {"type": "unet", "unet": {"bogus_option": 1}}}, "invalid model config"),
        ({"channel_layout": 24}, "malformed metadata (TypeError"),
        ({"joint_names": None}, "malformed metadata (TypeError"),
    ],
)
def test_bad_metadata_values_are_refused(tmp_path: Path, change: dict, message: str) -> None:
    path, _ = _save(tmp_path / "m.safetensors")
    bad = _rewrite_meta(path, tmp_path / "bad.safetensors", **change)
    with pytest.raises(CheckpointError, match=re.escape(message)):
        load_checkpoint(bad)


def test_huge_model_config_is_refused_before_allocating(tmp_path: Path) -> None:
    """Within the per-option bounds but ~800 GB of weights: the shapes are compared on the meta device first."""
    path, _ = _save(tmp_path / "m.safetensors")
    huge = {"type": "dit", "dit": {"hidden_dim": 4096, "depth": 1000, "heads": 4}}  # ~200 G parameters
    bad = _rewrite_meta(path, tmp_path / "bad.safetensors", model=huge)
    with pytest.raises(CheckpointError, match="weights do not match the model config"):
        load_checkpoint(bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda k, v: torch.full_like(v, float("nan")), "non-finite values"),
        (lambda k, v: v.clone().fill_(float("inf")) if k.endswith("weight") else v, "non-finite values"),
        (lambda k, v: v * 1e30 + 1e30, "beyond"),
        (lambda k, v: v * 1e5 + 1e5, "not finite on a probe input"),
    ],
)
def test_non_finite_or_overflowing_weights_are_refused(tmp_path: Path, change, message: str) -> None:
    path, _ = _save(tmp_path / "m.safetensors")
    bad = _rewrite_tensors(path, tmp_path / "bad.safetensors", change)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(bad)


def test_non_finite_normalization_is_refused(tmp_path: Path) -> None:
    path, _ = _save(tmp_path / "m.safetensors")
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        metadata = f.metadata()
    for key, value in (("norm.vel_std", 0.0), ("norm.cond_mean", float("nan"))):
        bad = dict(tensors)
        bad[key] = torch.full_like(tensors[key], value)
        save_file(bad, str(tmp_path / "bad.safetensors"), metadata=metadata)
        with pytest.raises(CheckpointError, match="non-finite values or non-positive std"):
            load_checkpoint(tmp_path / "bad.safetensors")


def test_pickle_file_is_refused_without_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (marker.touch, ())

    pt = tmp_path / "model.pt"
    torch.save({"state_dict": Exploit()}, pt)
    raw = tmp_path / "model.pkl"
    raw.write_bytes(pickle.dumps(Exploit()))
    for path in (pt, raw):
        with pytest.raises(CheckpointError, match="not a safetensors checkpoint"):
            load_checkpoint(path)
    assert not marker.exists()


def test_other_bad_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="not a flow_planner checkpoint"):
        load_checkpoint(tmp_path / "foreign.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    path, _ = _save(tmp_path / "m.safetensors")
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError):
        load_checkpoint(truncated)


def test_summary_comes_from_the_metadata(trained) -> None:
    """The words about a model (demo, planner log) are read from its metadata: a scene-blind synthetic model says
    so, with its own training run's numbers."""
    checkpoint = load_checkpoint(trained[0])
    text = checkpoint.summary()
    assert "scene-blind" in text and "sees the scene's boxes" not in text
    assert f"{checkpoint.meta['flow']['integration_steps']} euler steps" in text
    assert f"{checkpoint.meta['training']['num_train']} training samples" in text
    checkpoint.meta["model"]["obstacles"] = True
    assert "sees the scene's boxes" in checkpoint.summary()
