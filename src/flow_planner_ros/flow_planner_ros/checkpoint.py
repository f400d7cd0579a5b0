"""Checkpoint: ONE safetensors file, never a pickle.

Format (`*.safetensors`):
- tensors `model.<name>`: the (EMA) weights of the velocity model;
- tensors `norm.<group>_<mean|std>` (float64): normalization stats for pos, vel, cond;
- header metadata key `flow_planner` (JSON string): {format, format_version, model (config section),
  flow: {sigma, integration_steps, method}, joint_names, num_joints, horizon, dt, channel_layout,
  cond_layout, use_phase, training: {data_hash, epochs, global_step, train_loss, val_loss, ...}}.
Loading parses the safetensors header only (a pickle/zip `.pt` file is refused before anything is
deserialized), then checks joint names/count, horizon, channel and conditioning layout and weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from flow_planner_common.atomic_file import atomic_path
from flow_planner_common.robot import HORIZON, JOINT_NAMES
from flow_planner_ros.conditioning import channel_layout, cond_layout
from flow_planner_ros.models import build_model
from flow_planner_ros.normalization import Normalizer

FORMAT = "flow_planner_checkpoint"
FORMAT_VERSION = 1
META_KEY = "flow_planner"


class CheckpointError(ValueError):
    """A checkpoint is unreadable, not ours, or does not match the robot/data layout."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (eval mode), its normalization and metadata."""

    model: nn.Module
    normalizer: Normalizer
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def horizon(self) -> int:
        return int(self.meta["horizon"])

    @property
    def channels(self) -> int:
        return len(self.meta["channel_layout"])

    @property
    def use_phase(self) -> bool:
        return bool(self.meta["use_phase"])

    @property
    def dt(self) -> float:
        return float(self.meta["dt"])


def make_meta(
    model_cfg: dict[str, Any], flow_cfg: dict[str, Any], use_phase: bool, dt: float, training: dict[str, Any]
) -> dict[str, Any]:
    """Metadata for the current robot definition (joint names, horizon, layouts)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model_cfg,
        "flow": flow_cfg,
        "joint_names": list(JOINT_NAMES),
        "num_joints": len(JOINT_NAMES),
        "horizon": HORIZON,
        "dt": float(dt),
        "channel_layout": channel_layout(),
        "cond_layout": cond_layout(use_phase),
        "use_phase": bool(use_phase),
        "training": training,
    }


def atomic_save_safetensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """safetensors save_file, atomically (flow_planner_common.atomic_file)."""
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}, tmp, metadata=metadata)
    return Path(path)


def save_checkpoint(path: str | Path, model: nn.Module, normalizer: Normalizer, meta: dict[str, Any]) -> Path:
    """Write model weights, normalization and metadata to one safetensors file, atomically."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"norm.{k}": torch.from_numpy(v) for k, v in normalizer.to_dict().items()})
    return atomic_save_safetensors(path, tensors, {META_KEY: json.dumps(meta)})


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors and the header metadata of a safetensors file; CheckpointError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    with open(path, "rb") as handle:
        head = handle.read(9)
    # safetensors starts with an 8-byte little-endian header size, then a JSON object.
    if len(head) < 9 or head[8:9] != b"{":
        raise CheckpointError(f"{path}: not a safetensors checkpoint (pickle/.pt files are refused, never unpickled)")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{path}: unreadable safetensors file ({exc})") from exc
    return tensors, metadata


def parse_meta(path: str | Path, metadata: dict[str, str]) -> dict[str, Any]:
    """Decode and check the JSON metadata against this robot definition."""
    if META_KEY not in metadata:
        raise CheckpointError(f"{path}: safetensors file without '{META_KEY}' metadata (not a flow_planner checkpoint)")
    try:
        meta = json.loads(metadata[META_KEY])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} file")
    if meta.get("format_version") != FORMAT_VERSION:
        version = meta.get("format_version")
        raise CheckpointError(f"{path}: format_version {version}, this reader knows {FORMAT_VERSION}")
    required = ("model", "joint_names", "num_joints", "horizon", "dt", "channel_layout", "cond_layout", "use_phase")
    missing = [k for k in required if k not in meta]
    if missing:
        raise CheckpointError(f"{path}: metadata lacks {', '.join(missing)}")
    if meta["num_joints"] != len(JOINT_NAMES) or list(meta["joint_names"]) != list(JOINT_NAMES):
        raise CheckpointError(
            f"{path}: trained for {meta['num_joints']} joints {meta['joint_names']}, this robot has "
            f"{len(JOINT_NAMES)} joints {list(JOINT_NAMES)}"
        )
    if meta["horizon"] != HORIZON:
        raise CheckpointError(f"{path}: trained for horizon {meta['horizon']}, this robot uses {HORIZON}")
    if list(meta["channel_layout"]) != channel_layout():
        raise CheckpointError(f"{path}: channel layout differs from [positions(12) | velocities(12)] in joint order")
    if list(meta["cond_layout"]) != cond_layout(bool(meta["use_phase"])):
        raise CheckpointError(f"{path}: conditioning layout is not [arms_start, arms_start_vel, arms_goal(, phase)]")
    return meta


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Load and validate a checkpoint; the model is in eval mode on `device`. Raises CheckpointError."""
    tensors, metadata = read_safetensors(path)
    meta = parse_meta(path, metadata)
    norm_arrays = {k[len("norm."):]: v.numpy() for k, v in tensors.items() if k.startswith("norm.")}
    try:
        normalizer = Normalizer.from_dict(norm_arrays)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    channels, cond_dim = len(meta["channel_layout"]), len(meta["cond_layout"])
    if 2 * normalizer.num_joints != channels or normalizer.cond_dim != cond_dim:
        raise CheckpointError(
            f"{path}: normalization stats ({normalizer.num_joints} joints, {normalizer.cond_dim} cond) do not match "
            f"the layout ({channels} channels, {cond_dim} cond)"
        )
    try:
        model = build_model(meta["model"], channels, cond_dim, int(meta["horizon"]))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid model config {meta['model']} ({exc})") from exc
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = "; ".join(line.strip() for line in str(exc).splitlines()[1:3])
        raise CheckpointError(f"{path}: weights do not match the model config ({first})") from exc
    model.to(device).eval()
    return Checkpoint(model=model, normalizer=normalizer, meta=meta)
