"""Velocity-field models selected by config: `unet` (UNet1DFiLM) or `dit` (DiTAdaLN)."""

from __future__ import annotations

from typing import Any

from torch import nn

from flow_planner_ros.learning.conditioning import OBSTACLE_FEATURES
from flow_planner_ros.learning.models.common import ObstacleSetEncoder, count_parameters
from flow_planner_ros.learning.models.dit import DiTAdaLN
from flow_planner_ros.learning.models.unet1d import UNet1DFiLM

MODEL_TYPES = ("unet", "dit")

__all__ = ["MODEL_TYPES", "DiTAdaLN", "ObstacleSetEncoder", "UNet1DFiLM", "build_model", "count_parameters"]


def build_model(model_cfg: dict[str, Any], in_channels: int, cond_dim: int, horizon: int) -> nn.Module:
    """Model from the config's `model` section: {type: unet|dit, obstacles: bool, unet: {...}, dit: {...}}.

    With `obstacles` the conditioning ends with the scene (conditioning.obstacle_layout), encoded by a DeepSets
    ObstacleSetEncoder inside the model (one flat cond input, so the ONNX export is unchanged)."""
    kind = model_cfg.get("type")
    obstacles = model_cfg.get("obstacles", False)
    if not isinstance(obstacles, bool):
        raise ValueError(f"model.obstacles must be true or false, got {obstacles!r}")
    scene = {"obstacle_features": len(OBSTACLE_FEATURES)} if obstacles else {}
    if kind == "unet":
        opts = dict(model_cfg.get("unet") or {})
        return UNet1DFiLM(in_channels, cond_dim, **opts, **scene)
    if kind == "dit":
        opts = dict(model_cfg.get("dit") or {})
        return DiTAdaLN(in_channels, cond_dim, horizon, **opts, **scene)
    raise ValueError(f"model.type must be one of {MODEL_TYPES}, got {kind!r}")
