"""flow_config.yaml: defaults, loading and validation (unknown keys are errors, not silently ignored)."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import yaml

from flow_planner_common.robot import HORIZON

DEFAULT_CONFIG: dict[str, Any] = {
    "model": {
        "type": "unet",
        "obstacles": False,
        "unet": {"hidden_dims": [32, 64], "kernel_size": 5, "time_emb_dim": 64, "horizon_channel": True},
        "dit": {"hidden_dim": 128, "depth": 4, "heads": 4, "mlp_ratio": 4.0, "time_emb_dim": 64},
    },
    "conditioning": {"use_phase": False},
    "flow": {
        "sigma": 0.0, "integration_steps": 5, "method": "euler", "reference": "none", "noise_scale": 1.0,
        "coupling": "independent",
    },
    "training": {
        "batch_size": 32,
        "learning_rate": 3e-3,
        "weight_decay": 1e-4,
        "epochs": 60,
        "warmup_steps": 100,
        "ema_decay": 0.999,
        "grad_clip": 1.0,
        "val_fraction": 0.1,
        "seed": 0,
        "only_success": True,
        "suffix_starts": [],
        "num_threads": 1,
    },
}
#: What the flow generates: "none" = the trajectory itself; "min_jerk" = its residual to the reference motion
#: (data_collector_ros.interpolation.reference_trajectory) from the conditioning's start state to its goal.
REFERENCES = ("none", "min_jerk")
#: How training pairs noise with data in a batch: independent draws, or a minibatch optimal-transport assignment.
COUPLINGS = ("independent", "ot")
#: Most integration steps a config or checkpoint may ask for.
MAX_INTEGRATION_STEPS = 1000
#: Sections whose keys are free-form (model constructor options); their own keys are checked by the model.
_OPEN_SECTIONS = {("model", "unet"), ("model", "dit")}


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or has unknown/invalid keys."""


def _merge(base: dict[str, Any], override: dict[str, Any], where: tuple[str, ...] = ()) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        path = (*where, key)
        if key not in base:
            raise ConfigError(f"unknown config key {'.'.join(path)}")
        if isinstance(base[key], dict) and path not in _OPEN_SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"config key {'.'.join(path)} must be a mapping")
            out[key] = _merge(base[key], value, path)
        elif path in _OPEN_SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"config key {'.'.join(path)} must be a mapping")
            out[key] = {**base[key], **value}
        else:
            out[key] = value
    return out


def yaml_error_line(path: Path, exc: yaml.YAMLError) -> str:
    """One line for a YAML syntax error: file, line, column (1-based) and the problem."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    return f"{where}: invalid YAML: {problem}"


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, overlaid with the YAML file (if given) and then `overrides` (same nesting)."""
    cfg = copy.deepcopy(DEFAULT_CONFIG)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(yaml_error_line(path, exc)) from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        cfg = _merge(cfg, loaded)
    if overrides:
        cfg = _merge(cfg, overrides)
    _check(cfg)
    return cfg


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite_float(cfg: dict[str, Any], section: str, key: str) -> float:
    """cfg[section][key] as a finite float, stored back (YAML reads `3e-3` as a string); ConfigError otherwise."""
    value = cfg[section][key]
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise ConfigError(f"{section}.{key} must be a finite number, got {value!r}")
    cfg[section][key] = number
    return number


def _check(cfg: dict[str, Any]) -> None:
    if cfg["model"]["type"] not in ("unet", "dit"):
        raise ConfigError(f"model.type must be unet or dit, got {cfg['model']['type']!r}")
    if not isinstance(cfg["model"]["obstacles"], bool):
        raise ConfigError(f"model.obstacles must be true or false, got {cfg['model']['obstacles']!r}")
    if cfg["flow"]["method"] not in ("euler", "midpoint"):
        raise ConfigError("flow.method must be euler or midpoint")
    steps = cfg["flow"]["integration_steps"]
    if not _is_int(steps) or not 1 <= steps <= MAX_INTEGRATION_STEPS:
        raise ConfigError(f"flow.integration_steps must be an integer in [1, {MAX_INTEGRATION_STEPS}]")
    if cfg["flow"]["reference"] not in REFERENCES:
        raise ConfigError(f"flow.reference must be one of {', '.join(REFERENCES)}")
    if _finite_float(cfg, "flow", "sigma") < 0:
        raise ConfigError("flow.sigma must be >= 0")
    if not 0 < _finite_float(cfg, "flow", "noise_scale") <= 10:
        raise ConfigError("flow.noise_scale must be in (0, 10]")
    if cfg["flow"]["coupling"] not in COUPLINGS:
        raise ConfigError(f"flow.coupling must be one of {', '.join(COUPLINGS)}, got {cfg['flow']['coupling']!r}")
    t = cfg["training"]
    for key in ("batch_size", "epochs"):
        if not _is_int(t[key]) or t[key] < 1:
            raise ConfigError(f"training.{key} must be an integer >= 1")
    for key in ("learning_rate", "weight_decay", "grad_clip", "val_fraction", "ema_decay"):
        _finite_float(cfg, "training", key)
    if float(t["learning_rate"]) <= 0:
        raise ConfigError("training.learning_rate must be > 0")
    if not 0 <= float(t["val_fraction"]) < 1:
        raise ConfigError("training.val_fraction must be in [0, 1)")
    if not 0 <= float(t["ema_decay"]) < 1:
        raise ConfigError("training.ema_decay must be in [0, 1)")
    suffixes = t["suffix_starts"]
    if not isinstance(suffixes, list) or any(not isinstance(j, int) or not 0 < j < HORIZON for j in suffixes):
        raise ConfigError(f"training.suffix_starts must be a list of waypoint indices in 1..{HORIZON - 1}")
