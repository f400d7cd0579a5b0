"""Velocity-field models selected by config: `unet` (UNet1DFiLM) or `dit` (DiTAdaLN)."""

from __future__ import annotations

from typing import Any

from torch import nn

from flow_planner_ros.models.common import count_parameters
from flow_planner_ros.models.dit import DiTAdaLN
from flow_planner_ros.models.unet1d import UNet1DFiLM

MODEL_TYPES = ("unet", "dit")

__all__ = ["MODEL_TYPES", "DiTAdaLN", "UNet1DFiLM", "build_model", "count_parameters"]


def build_model(model_cfg: dict[str, Any], in_channels: int, cond_dim: int, horizon: int) -> nn.Module:
    """Model from the config's `model` section: {type: unet|dit, unet: {...}, dit: {...}}."""
    kind = model_cfg.get("type")
    if kind == "unet":
        opts = dict(model_cfg.get("unet") or {})
        return UNet1DFiLM(in_channels, cond_dim, **opts)
    if kind == "dit":
        opts = dict(model_cfg.get("dit") or {})
        return DiTAdaLN(in_channels, cond_dim, horizon, **opts)
    raise ValueError(f"model.type must be one of {MODEL_TYPES}, got {kind!r}")
