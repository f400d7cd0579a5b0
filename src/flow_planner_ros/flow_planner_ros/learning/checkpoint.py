"""Checkpoint: ONE safetensors file, never a pickle.

Format (`*.safetensors`):
- tensors `model.<name>`: the (EMA) weights of the velocity model;
- tensors `norm.<group>_<mean|std>` (float64): normalization stats for pos, vel, cond;
- header metadata key `flow_planner` (JSON string): {format, format_version, model (config section; its
  `obstacles` flag, absent = false, says whether the conditioning ends with the scene),
  flow: {sigma, integration_steps, method}, joint_names, num_joints, horizon, dt, channel_layout,
  cond_layout, use_phase, training: {data_hash, epochs, global_step, train_loss, val_loss, ...}}.
Loading parses the safetensors header only (a pickle/zip `.pt` file is refused before anything is
deserialized), then checks joint names/count, horizon, channel and conditioning layout, every metadata value
(dt finite in DT_RANGE, known flow method/reference, integration steps and sigma in range, bounded model sizes),
the weight shapes against the model config on the meta device (nothing is allocated for a config that does not
match the file), and that weights, normalization stats and a probe forward pass are finite.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from flow_planner_common.atomic_file import atomic_path
from flow_planner_common.robot import HORIZON, JOINT_NAMES
from flow_planner_ros.learning.conditioning import channel_layout, cond_layout, layout_difference
from flow_planner_ros.learning.flow import METHODS
from flow_planner_ros.learning.models import MODEL_TYPES, build_model
from flow_planner_ros.learning.normalization import Normalizer
from flow_planner_ros.learning.training_config import MAX_INTEGRATION_STEPS, REFERENCES

FORMAT = "flow_planner_checkpoint"
FORMAT_VERSION = 1
META_KEY = "flow_planner"
#: Waypoint spacing (s) a checkpoint may declare.
DT_RANGE = (1e-3, 1.0)
#: Bounds on every number / list in the model options (widths, depth, heads, kernel, ratios), checked before building.
MAX_MODEL_OPTION = 4096
MAX_MODEL_LIST = 16
#: Largest |weight| accepted: trained weights are O(1); beyond this the float32 forward pass overflows.
MAX_ABS_WEIGHT = 1e6


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

    def summary(self) -> str:
        """What the model is and was trained on, in words, from its own metadata (never from prose that ages)."""
        model, flow = self.meta.get("model", {}), self.meta.get("flow", {})
        training = self.meta.get("training", {})
        sees = "sees the scene's boxes" if self.obstacles else "is not told about boxes (scene-blind)"
        phase = ", told reach or carry" if self.use_phase else ""
        data = ""
        if training:
            loss = float(training.get("val_loss", float("nan")))
            data = (f"; trained {training.get('epochs', '?')} epochs on {training.get('num_train', '?')} training "
                    f"samples of {training.get('data_path', '?')} (val loss {loss:.4f})")
        return (f"{model.get('type', '?')} model, {training.get('num_parameters', '?')} parameters, "
                f"{flow.get('integration_steps', '?')} {flow.get('method', '')} steps; it {sees}{phase}{data}")

    @property
    def obstacles(self) -> bool:
        """Whether the model is conditioned on the scene (obstacle boxes and mask)."""
        return model_obstacles(self.meta["model"])


def model_obstacles(model_cfg: dict[str, Any]) -> bool:
    """The model section's `obstacles` flag (absent in checkpoints older than the option: false)."""
    return bool(model_cfg.get("obstacles", False))


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
        "cond_layout": cond_layout(use_phase, model_obstacles(model_cfg)),
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
    try:
        _check_layout(path, meta)
    except (TypeError, KeyError, AttributeError) as exc:  # e.g. a number where a list belongs
        raise CheckpointError(f"{path}: malformed metadata ({type(exc).__name__}: {exc})") from exc
    return meta


def _check_layout(path: str | Path, meta: dict[str, Any]) -> None:
    """Required keys, robot joints, horizon, layouts, then every value (check_meta_values)."""
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
    if not isinstance(meta["use_phase"], bool):
        raise CheckpointError(f"{path}: use_phase {meta['use_phase']!r} must be true or false")
    obstacles = meta["model"].get("obstacles", False) if isinstance(meta["model"], dict) else False
    if not isinstance(obstacles, bool):
        raise CheckpointError(f"{path}: model.obstacles {obstacles!r} must be true or false")
    expected = cond_layout(meta["use_phase"], obstacles)
    if list(meta["cond_layout"]) != expected:
        raise CheckpointError(
            f"{path}: conditioning layout is not [arms_start, arms_start_vel, arms_goal(, phase)"
            f"{'(, obstacles, obstacle_mask)' if obstacles else ''}] as its model config says: "
            f"{layout_difference(meta['cond_layout'], expected)}"
        )
    check_meta_values(path, meta)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_meta_values(path: str | Path, meta: dict[str, Any]) -> None:
    """Every metadata value in range: dt, horizon, flow section, model section sizes, training section type."""
    if not isinstance(meta["horizon"], int) or isinstance(meta["horizon"], bool):
        raise CheckpointError(f"{path}: horizon {meta['horizon']!r} must be an integer")
    dt = meta["dt"]
    if not (_is_number(dt) and math.isfinite(dt) and DT_RANGE[0] <= dt <= DT_RANGE[1]):
        raise CheckpointError(f"{path}: dt {dt!r} must be a finite number of seconds in [{DT_RANGE[0]}, {DT_RANGE[1]}]")
    if not isinstance(meta.get("training", {}), dict):
        raise CheckpointError(f"{path}: training metadata must be a mapping")
    flow = meta.get("flow", {})
    if not isinstance(flow, dict):
        raise CheckpointError(f"{path}: flow metadata must be a mapping, got {flow!r}")
    if flow.get("method", METHODS[0]) not in METHODS:
        raise CheckpointError(f"{path}: flow.method {flow['method']!r} must be one of {', '.join(METHODS)}")
    if flow.get("reference", REFERENCES[0]) not in REFERENCES:
        raise CheckpointError(f"{path}: flow.reference {flow['reference']!r} must be one of {', '.join(REFERENCES)}")
    steps = flow.get("integration_steps", 1)
    if not (isinstance(steps, int) and not isinstance(steps, bool) and 1 <= steps <= MAX_INTEGRATION_STEPS):
        raise CheckpointError(
            f"{path}: flow.integration_steps {steps!r} must be an integer in [1, {MAX_INTEGRATION_STEPS}]"
        )
    sigma = flow.get("sigma", 0.0)
    if not (_is_number(sigma) and math.isfinite(sigma) and sigma >= 0):
        raise CheckpointError(f"{path}: flow.sigma {sigma!r} must be a finite number >= 0")
    check_model_config(path, meta["model"])


def check_model_config(path: str | Path, model_cfg: Any) -> None:
    """The model section names a known type and its options are small numbers / short lists (before building)."""
    if not isinstance(model_cfg, dict) or model_cfg.get("type") not in MODEL_TYPES:
        raise CheckpointError(f"{path}: model config {model_cfg!r} must name a type in {', '.join(MODEL_TYPES)}")
    options = model_cfg.get(model_cfg["type"]) or {}
    if not isinstance(options, dict):
        raise CheckpointError(f"{path}: model.{model_cfg['type']} must be a mapping")
    for key, value in options.items():
        values = value if isinstance(value, list) else [value]
        if len(values) > MAX_MODEL_LIST or not all(
            isinstance(v, bool) or (_is_number(v) and math.isfinite(v) and abs(v) <= MAX_MODEL_OPTION) for v in values
        ):
            raise CheckpointError(
                f"{path}: model.{model_cfg['type']}.{key} = {value!r} is out of range (numbers up to "
                f"{MAX_MODEL_OPTION}, lists up to {MAX_MODEL_LIST} entries)"
            )


def _check_weights(path: str | Path, meta: dict[str, Any], state: dict[str, torch.Tensor], channels: int,
                   cond_dim: int) -> None:
    """Shapes from the config built on the meta device (no allocation) must be the file's; values finite, bounded."""
    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in build_model(meta["model"], channels, cond_dim, HORIZON)
                        .state_dict().items()}
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: invalid model config {meta['model']} ({exc})") from exc
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    wrong = [k for k in expected.keys() & state.keys() if tuple(state[k].shape) != expected[k]]
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape differs", sorted(wrong)))
            if keys
        )
        raise CheckpointError(f"{path}: weights do not match the model config ({detail})")
    for name, tensor in state.items():
        if tensor.is_floating_point():
            if not bool(torch.isfinite(tensor).all()):
                raise CheckpointError(f"{path}: weight {name} has non-finite values (NaN or Inf)")
            if tensor.numel() and float(tensor.abs().max()) > MAX_ABS_WEIGHT:
                raise CheckpointError(f"{path}: weight {name} has values beyond ±{MAX_ABS_WEIGHT:g}")


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", expected_cond_layout: list[str] | None = None
) -> Checkpoint:
    """Load and validate a checkpoint; the model is in eval mode on `device`. Raises CheckpointError.

    `expected_cond_layout`: the conditioning layout the caller will feed (conditioning.cond_layout); a checkpoint
    with another one is refused with a line naming the difference."""
    tensors, metadata = read_safetensors(path)
    meta = parse_meta(path, metadata)
    if expected_cond_layout is not None and list(meta["cond_layout"]) != list(expected_cond_layout):
        raise CheckpointError(
            f"{path}: conditioning layout differs from the expected one: "
            f"{layout_difference(meta['cond_layout'], expected_cond_layout)}"
        )
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
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    _check_weights(path, meta, state, channels, cond_dim)
    model = build_model(meta["model"], channels, cond_dim, HORIZON)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = "; ".join(line.strip() for line in str(exc).splitlines()[1:3])
        raise CheckpointError(f"{path}: weights do not match the model config ({first})") from exc
    model.eval()
    with torch.no_grad():  # a probe input: finite weights can still overflow float32 in the forward pass
        probe = torch.Generator().manual_seed(0)
        x, c = torch.randn(1, HORIZON, channels, generator=probe), torch.randn(1, cond_dim, generator=probe)
        if not bool(torch.isfinite(model(x, torch.full((1,), 0.5), c)).all()):
            raise CheckpointError(f"{path}: the model's output is not finite on a probe input (weights out of range)")
    model.to(device)
    return Checkpoint(model=model, normalizer=normalizer, meta=meta)
