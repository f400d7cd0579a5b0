"""Scene conditioning (model.obstacles): layout, normalization, DeepSets encoder, checkpoints, sampler.

What these tests show: the encoding is exactly invariant to the order of the boxes and blind to masked-out slots;
the layout travels in the checkpoint and a mismatch is refused; a model trained for a few epochs on a handful of
real cluttered-family episodes produces a different plan when a box moves onto the start→goal path. They do not
show that the moved plan avoids the box (that needs a trained model and the collision checker: issue 12, items 4-6).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from flow_planner_common.obstacles import BOX_DIM, MAX_OBSTACLES
from flow_planner_ros.learning.checkpoint import META_KEY, CheckpointError, load_checkpoint, make_meta, save_checkpoint
from flow_planner_ros.learning.conditioning import (
    OBSTACLE_FEATURES,
    SCENE_DIM,
    build_cond,
    cond_layout,
    obstacle_features,
    scene_slices,
)
from flow_planner_ros.learning.dataset import TrajectoryData
from flow_planner_ros.learning.flow_sampler import FlowSampler
from flow_planner_ros.learning.models import ObstacleSetEncoder, build_model
from flow_planner_ros.learning.normalization import Normalizer
from flow_planner_ros.learning.training_config import ConfigError, load_config

FLOW_CFG = {"sigma": 0.0, "integration_steps": 3, "method": "euler"}
UNET = {"type": "unet", "obstacles": True, "unet": {"hidden_dims": [16, 32]}}
DIT = {"type": "dit", "obstacles": True, "dit": {"hidden_dim": 32, "depth": 2, "heads": 4}}
COND_DIM = 36 + SCENE_DIM


def _scene(rng: np.random.Generator, used: int = 3) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.zeros((MAX_OBSTACLES, BOX_DIM))
    boxes[:, :3] = rng.uniform([0.3, -0.4, 0.8], [0.7, 0.4, 1.1], size=(MAX_OBSTACLES, 3))
    boxes[:, 3:6] = rng.uniform(0.05, 0.2, size=(MAX_OBSTACLES, 3))
    boxes[:, 6] = rng.uniform(-np.pi, np.pi, size=MAX_OBSTACLES)
    mask = np.arange(MAX_OBSTACLES) < used
    return boxes, mask


def _randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-zero weights everywhere (FiLM / adaLN start at zero, which would hide the conditioning entirely)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=gen))
    return model.eval()


def _cond(rng: np.random.Generator, scene: tuple[np.ndarray, np.ndarray], batch: int = 2) -> torch.Tensor:
    base = rng.normal(size=(batch, 36))
    return torch.tensor(np.concatenate([base, np.repeat(obstacle_features(*scene)[None], batch, 0)], -1)).float()


def test_layout_names_and_sizes() -> None:
    layout = cond_layout(False, obstacles=True)
    assert len(layout) == COND_DIM == 36 + MAX_OBSTACLES * (len(OBSTACLE_FEATURES) + 1)
    assert cond_layout(False) == layout[:36] and cond_layout(True, True)[36] == "phase"
    assert layout[36] == "obstacles/0/cx" and layout[-1] == f"obstacle_mask/{MAX_OBSTACLES - 1}"
    boxes, mask = slice(*scene_slices(COND_DIM)[0].indices(COND_DIM)[:2]), scene_slices(COND_DIM)[1]
    assert layout[boxes][-1] == f"obstacles/{MAX_OBSTACLES - 1}/cos2yaw" and layout[mask][0] == "obstacle_mask/0"


def test_features_zero_masked_slots_and_use_twice_the_yaw() -> None:
    boxes, mask = _scene(np.random.default_rng(0), used=2)
    boxes[3] = np.nan  # garbage in an unused slot never reaches the conditioning
    feats = obstacle_features(boxes, mask)
    assert feats.shape == (SCENE_DIM,) and np.all(np.isfinite(feats))
    per_box = feats[: MAX_OBSTACLES * len(OBSTACLE_FEATURES)].reshape(MAX_OBSTACLES, -1)
    assert np.all(per_box[2:] == 0) and feats[-MAX_OBSTACLES:].tolist() == [1, 1, 0, 0]
    turned = boxes.copy()
    turned[:, 6] += np.pi  # a box after a half turn is the same box
    np.testing.assert_allclose(obstacle_features(turned, mask), feats, atol=1e-12)


def test_normalizer_fits_scene_over_used_boxes_shared_by_slots() -> None:
    rng = np.random.default_rng(1)
    scenes = [_scene(rng, used=int(rng.integers(0, MAX_OBSTACLES + 1))) for _ in range(50)]
    arrays = {
        "arms_start": rng.normal(size=(50, 12)), "arms_start_vel": rng.normal(size=(50, 12)),
        "arms_goal": rng.normal(size=(50, 12)), "phase": np.zeros(50),
        "obstacles": np.stack([s[0] for s in scenes]), "obstacle_mask": np.stack([s[1] for s in scenes]),
    }
    cond = build_cond(arrays, use_phase=False, obstacles=True)
    norm = Normalizer.fit(rng.normal(size=(50, 60, 12)), rng.normal(size=(50, 60, 12)), cond, obstacles=True)
    used = arrays["obstacles"][arrays["obstacle_mask"]]
    boxes, mask = scene_slices(COND_DIM)
    mean = norm.cond_mean[boxes].reshape(MAX_OBSTACLES, -1)
    assert np.allclose(mean, mean[0])  # one set of stats for every slot
    np.testing.assert_allclose(mean[0, :6], used[:, :6].mean(0))  # masked (zero) rows excluded
    np.testing.assert_allclose(norm.cond_std[boxes].reshape(MAX_OBSTACLES, -1)[0, :6], used[:, :6].std(0))
    assert np.all(norm.cond_mean[mask] == 0) and np.all(norm.cond_std[mask] == 1)  # the mask stays 0/1
    np.testing.assert_array_equal(norm.cond_mean[:36], cond[:, :36].mean(0))


def test_suffix_starts_carry_the_scene(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    scene = obstacle_features(*_scene(rng))
    cond = np.concatenate([rng.normal(size=(3, 36)), np.repeat(scene[None], 3, 0)], -1)
    data = TrajectoryData(rng.normal(size=(3, 60, 12)), rng.normal(size=(3, 60, 12)), cond, np.arange(3), 0.05,
                          False, "h", obstacles=True)
    longer = data.with_suffix_starts([10, 20])
    assert len(longer) == 9 and longer.obstacles
    np.testing.assert_array_equal(longer.cond[:, 36:], np.tile(cond[:, 36:], (3, 1)))
    np.testing.assert_array_equal(longer.cond[3:6, :12], data.positions[:, 9])


def test_encoder_is_permutation_invariant_and_blind_to_masked_boxes() -> None:
    enc = _randomize(ObstacleSetEncoder(MAX_OBSTACLES, len(OBSTACLE_FEATURES), 16))
    rng = np.random.default_rng(3)
    boxes, mask = _scene(rng, used=3)
    cond = _cond(rng, (boxes, mask))
    perm = [2, 0, 3, 1]
    _, ref = enc(cond)
    scene = torch.tensor(obstacle_features(boxes[perm], mask[perm])).float().expand(2, -1)
    _, permuted = enc(torch.cat([cond[:, :36], scene], -1))
    torch.testing.assert_close(permuted, ref, atol=1e-6, rtol=0)
    # Whatever an unused slot holds in the normalized input (here: large values), the encoding is the same.
    dirty = cond.clone()
    box_slice, _ = scene_slices(COND_DIM)
    dirty[:, box_slice.start + 3 * len(OBSTACLE_FEATURES) : box_slice.stop] = 1e3
    assert torch.equal(enc(dirty)[1], ref)
    # A used box matters: moving one changes the encoding.
    moved = cond.clone()
    moved[:, box_slice.start] += 1.0
    assert (enc(moved)[1] - ref).abs().max() > 1e-4
    # An empty scene is finite.
    empty = cond.clone()
    empty[:, -MAX_OBSTACLES:] = 0
    assert torch.isfinite(enc(empty)[1]).all()


@pytest.mark.parametrize("model_cfg", [UNET, DIT], ids=["unet", "dit"])
def test_models_invariant_to_box_order_and_use_the_scene(model_cfg: dict) -> None:
    model = _randomize(build_model(model_cfg, 24, COND_DIM, 60))
    rng = np.random.default_rng(4)
    boxes, mask = _scene(rng, used=3)
    base = torch.tensor(rng.normal(size=(2, 36))).float()

    def cond(b: np.ndarray, m: np.ndarray) -> torch.Tensor:
        return torch.cat([base, torch.tensor(obstacle_features(b, m)).float().expand(2, -1)], -1)

    x, t = torch.randn(2, 60, 24), torch.rand(2)
    with torch.no_grad():
        ref = model(x, t, cond(boxes, mask))
        perm = [1, 3, 0, 2]
        torch.testing.assert_close(model(x, t, cond(boxes[perm], mask[perm])), ref, atol=1e-5, rtol=0)
        unused = boxes.copy()
        unused[3] = [9, 9, 9, 1, 1, 1, 1]
        assert torch.equal(model(x, t, cond(unused, mask)), ref)
        moved = boxes.copy()
        moved[0, :3] += 0.2
        assert (model(x, t, cond(moved, mask)) - ref).abs().max() > 1e-3


def _save(path: Path, model_cfg: dict = UNET) -> Path:
    rng = np.random.default_rng(5)
    model = _randomize(build_model(model_cfg, 24, COND_DIM, 60))
    scenes = [_scene(rng) for _ in range(8)]
    cond = np.concatenate([rng.normal(size=(8, 36)), np.stack([obstacle_features(*s) for s in scenes])], -1)
    norm = Normalizer.fit(rng.normal(size=(8, 60, 12)), rng.normal(size=(8, 60, 12)), cond, obstacles=True)
    meta = make_meta(model_cfg, FLOW_CFG, False, 0.05, {"data_hash": "x", "epochs": 1})
    assert meta["cond_layout"] == cond_layout(False, True)
    return save_checkpoint(path, model, norm, meta)


def _rewrite_meta(path: Path, out: Path, **changes: object) -> Path:
    """Copy a checkpoint with metadata keys replaced."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        meta = json.loads(f.metadata()[META_KEY])
    save_file(tensors, str(out), metadata={META_KEY: json.dumps({**meta, **changes})})
    return out


def test_checkpoint_records_layout_and_refuses_a_mismatch(tmp_path: Path) -> None:
    path = _save(tmp_path / "scene.safetensors")
    ckpt = load_checkpoint(path, expected_cond_layout=cond_layout(False, True))
    assert ckpt.obstacles and ckpt.meta["cond_layout"] == cond_layout(False, True)
    with pytest.raises(CheckpointError, match="conditioning is with obstacles, expected without obstacles"):
        load_checkpoint(path, expected_cond_layout=cond_layout(False))
    # The recorded layout must be the one the model config implies, else the line names the difference.
    scene_blind = _rewrite_meta(path, tmp_path / "a.safetensors", cond_layout=cond_layout(False))
    with pytest.raises(CheckpointError, match=r"conditioning layout .*without obstacles, expected with obstacles"):
        load_checkpoint(scene_blind)
    renamed = cond_layout(False, True)
    renamed[40] = "obstacles/0/size_y"
    with pytest.raises(CheckpointError, match=r"entry 40 is 'obstacles/0/size_y', expected 'obstacles/0/sy'"):
        load_checkpoint(_rewrite_meta(path, tmp_path / "b.safetensors", cond_layout=renamed))
    flag_off = _rewrite_meta(path, tmp_path / "c.safetensors", model={**UNET, "obstacles": False})
    with pytest.raises(CheckpointError, match="conditioning layout"):
        load_checkpoint(flag_off)
    with pytest.raises(CheckpointError, match=r"model\.obstacles 'yes' must be true or false"):
        load_checkpoint(_rewrite_meta(path, tmp_path / "d.safetensors", model={**UNET, "obstacles": "yes"}))


def test_config_option_defaults_off() -> None:
    assert load_config()["model"]["obstacles"] is False
    assert load_config(overrides={"model": {"obstacles": True}})["model"]["obstacles"] is True
    with pytest.raises(ConfigError, match=r"model\.obstacles"):
        load_config(overrides={"model": {"obstacles": 1}})


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_sampler_same_seed_reordered_obstacles_same_samples(tmp_path: Path, backend: str) -> None:
    sampler = FlowSampler.from_checkpoint(_save(tmp_path / "s.safetensors", DIT), backend=backend)
    rng = np.random.default_rng(6)
    start, goal = rng.normal(size=12) * 0.3, rng.normal(size=12) * 0.3
    boxes, mask = _scene(rng, used=3)
    perm = [3, 1, 2, 0]
    a = sampler.plan(start, np.zeros(12), goal, num_samples=4, seed=7, obstacles=(boxes, mask))
    b = sampler.plan(start, np.zeros(12), goal, num_samples=4, seed=7, obstacles=(boxes[perm], mask[perm]))
    np.testing.assert_allclose(a[0], b[0], atol=1e-5)
    np.testing.assert_allclose(a[1], b[1], atol=1e-5)
    moved = boxes.copy()
    moved[0, :3] += 0.2
    c = sampler.plan(start, np.zeros(12), goal, num_samples=4, seed=7, obstacles=(moved, mask))
    assert np.abs(c[0] - a[0]).max() > 1e-4
    empty = sampler.plan(start, np.zeros(12), goal, num_samples=4, seed=7)  # None = an empty scene
    none_used = sampler.plan(start, np.zeros(12), goal, num_samples=4, seed=7, obstacles=(boxes, np.zeros(4, bool)))
    np.testing.assert_array_equal(empty[0], none_used[0])
    with pytest.raises(ValueError, match="obstacles must be"):
        sampler.plan(start, np.zeros(12), goal, obstacles=(boxes[:2], mask[:2]))


def test_scene_blind_sampler_refuses_a_scene(tmp_path: Path) -> None:
    model_cfg = {"type": "unet", "unet": {"hidden_dims": [16, 32]}}
    model = build_model(model_cfg, 24, 36, 60)
    rng = np.random.default_rng(8)
    norm = Normalizer.fit(rng.normal(size=(4, 60, 12)), rng.normal(size=(4, 60, 12)), rng.normal(size=(4, 36)))
    path = save_checkpoint(tmp_path / "blind.safetensors", model, norm,
                           make_meta(model_cfg, FLOW_CFG, False, 0.05, {"data_hash": "x"}))
    sampler = FlowSampler.from_checkpoint(path)
    boxes, mask = _scene(rng)
    with pytest.raises(ValueError, match="not conditioned on obstacles"):
        sampler.plan(np.zeros(12), np.zeros(12), np.zeros(12), obstacles=(boxes, mask))
    sampler.plan(np.zeros(12), np.zeros(12), np.zeros(12), obstacles=(boxes, np.zeros(4, bool)))  # empty is fine


@pytest.fixture(scope="module")
def trained_scene_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """30 short epochs on 6 real cluttered-family episodes (about 15 s to collect, a few s to train)."""
    from data_collector_ros.collector import CollectorConfig, ShardCollector
    from data_collector_ros.scene_family import FamilyConfig
    from flow_planner_ros.learning.training import train

    root = tmp_path_factory.mktemp("scene")
    data = root / "data"
    ShardCollector(CollectorConfig(data, 0, 6, family=FamilyConfig(seed=0)), log=lambda _: None).run(progress=False)
    cfg = load_config(overrides={
        "model": {"obstacles": True, "unet": {"hidden_dims": [16, 32]}},
        "flow": {"reference": "min_jerk", "integration_steps": 3},
        "training": {"epochs": 30, "batch_size": 8, "warmup_steps": 5, "val_fraction": 0.0},
    })
    out = root / "scene.safetensors"
    train(data, cfg, out, progress_bar=False, log=lambda *_: None)
    return data, out


def test_trained_scene_model_plan_changes_when_a_box_moves_onto_the_path(trained_scene_model) -> None:
    from flow_planner_ros.learning.dataset import load_arrays

    data, out = trained_scene_model
    arrays = load_arrays(data)
    assert arrays["obstacle_mask"].any(), "the scene family gave no obstacles"
    ckpt = load_checkpoint(out, expected_cond_layout=cond_layout(False, True))
    assert ckpt.obstacles and ckpt.normalizer.cond_dim == COND_DIM
    sampler = FlowSampler(ckpt)
    i = int(np.flatnonzero(arrays["obstacle_mask"].any(1))[0])
    start, vel, goal = arrays["arms_start"][i], arrays["arms_start_vel"][i], arrays["arms_goal"][i]
    boxes, mask = arrays["obstacles"][i].copy(), arrays["obstacle_mask"][i].copy()
    base = sampler.plan(start, vel, goal, num_samples=4, seed=3, obstacles=(boxes, mask))
    # Reordering the boxes: the same samples.
    perm = np.roll(np.arange(MAX_OBSTACLES), 1)
    again = sampler.plan(start, vel, goal, num_samples=4, seed=3, obstacles=(boxes[perm], mask[perm]))
    np.testing.assert_allclose(again[0], base[0], atol=1e-5)
    # A box moved "onto the path": without forward kinematics here, the first used box goes to the mean centre of all
    # recorded boxes (where the scene family puts obstacles in the expert's way). This shows the trained model's plan
    # responds to the move, not that the new plan avoids the box.
    moved = boxes.copy()
    j = int(np.flatnonzero(mask)[0])
    moved[j, :3] = arrays["obstacles"][arrays["obstacle_mask"]][:, :3].mean(0)
    shifted = sampler.plan(start, vel, goal, num_samples=4, seed=3, obstacles=(moved, mask))
    change = float(np.abs(shifted[0] - base[0]).max())
    assert change > 1e-3, f"moving a box changed the plan by only {change:.2e} rad"
