"""Training loop: AdamW, warmup + cosine LR, EMA, gradient clipping, validation loss, CSV log, resume, fine-tuning.

Outputs, next to `out` (a `.safetensors` checkpoint holding the EMA weights, see checkpoint.py):
- `<out>.state.safetensors`: raw weights, EMA weights, optimizer tensors, RNG state + JSON progress (resume);
- `<out>.log.csv`: one row per epoch (epoch, step, lr, train_loss, val_loss, samples_per_s, elapsed_s).

Under torchrun (see distributed.py) every rank trains on its share of each global batch through DDP; rank 0 alone
logs, validates and writes these files, and the losses it logs are those of the whole global batch.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from flow_planner_ros.learning.checkpoint import (
    Checkpoint,
    CheckpointError,
    atomic_save_safetensors,
    load_checkpoint,
    make_meta,
    read_safetensors,
    save_checkpoint,
)
from flow_planner_ros.learning.dataset import FlowDataset, TrajectoryData, split_by_episode
from flow_planner_ros.learning.distributed import DistContext, all_reduce_sum, barrier, rank_share
from flow_planner_ros.learning.flow import FlowMatching
from flow_planner_ros.learning.models import build_model, count_parameters
from flow_planner_ros.learning.normalization import Normalizer

STATE_KEY = "flow_planner_train_state"
#: Validation loss is averaged over this many fixed flow times per trajectory (deterministic).
VAL_TIMES = 8


@dataclass
class TrainResult:
    """Summary of a training run."""

    checkpoint: Path
    epochs: int
    global_step: int
    train_loss: float
    val_loss: float
    samples_per_s: float
    num_parameters: int


def state_path(out: str | Path) -> Path:
    return Path(str(out) + ".state.safetensors")


def log_path(out: str | Path) -> Path:
    return Path(str(out) + ".log.csv")


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup to 1, then cosine decay to 0 at `total` steps."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """EMA with warmup: effective decay min(decay, (1 + step) / (10 + step))."""
    d = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1 - d)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)


@torch.no_grad()
def validation_loss(model: nn.Module, flow: FlowMatching, ds: FlowDataset, batch_size: int, seed: int = 1234) -> float:
    """Mean CFM loss over fixed noise and fixed times t = (k + 0.5)/VAL_TIMES: comparable across epochs."""
    if len(ds) == 0:
        return float("nan")
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for k in range(VAL_TIMES):
        for i in range(0, len(ds), batch_size):
            x1, cond = ds.x[i : i + batch_size], ds.cond[i : i + batch_size]
            x0 = torch.randn(x1.shape, generator=generator)
            t = torch.full((x1.shape[0],), (k + 0.5) / VAL_TIMES)
            xt, ut = flow.path(x1, x0, t)
            pred = model(xt.to(device), t.to(device), cond.to(device))
            total += flow.error(pred, ut.to(device), t.to(device), reduction="sum").item() / ut[0].numel()
            count += x1.shape[0]
    return total / count


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, extra = {}, {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{key}"] = value
            else:
                extra[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "extra": extra}


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    for name, value in info["extra"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    groups = info["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_state(
    out: Path, model: nn.Module, ema: nn.Module, opt: torch.optim.Optimizer, generator: torch.Generator,
    progress: dict[str, Any],
) -> None:
    """Everything needed to resume, in one safetensors file (no pickle)."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    opt_tensors, opt_info = _optimizer_tensors(opt)
    tensors.update(opt_tensors)
    tensors["rng.generator"] = generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    atomic_save_safetensors(state_path(out), tensors, {STATE_KEY: json.dumps({**progress, "optimizer": opt_info})})


def _init_checkpoint(init: str | Path, config: dict[str, Any]) -> Checkpoint:
    """The checkpoint to fine-tune, refused (CheckpointError) unless its model and flow sections are `config`'s."""
    base = load_checkpoint(init)
    for section in ("model", "flow"):
        if base.meta[section] != config[section]:
            raise CheckpointError(
                f"{init}: its {section} section differs from the training config's; fine-tuning needs the same "
                f"(checkpoint: {json.dumps(base.meta[section], sort_keys=True)})"
            )
    return base


def train(
    data_path: str | Path, config: dict[str, Any], out: str | Path, epochs: int | None = None, device: str = "cpu",
    resume: bool = False, progress_bar: bool = True, log: Any = print, dist_ctx: DistContext | None = None,
    init: str | Path | None = None,
) -> TrainResult:
    """Train a velocity model on `data_path` with `config` (see config.py) and write the checkpoint `out`.

    `init`: a checkpoint to fine-tune (its weights and its normalization, not stats fitted to this data: the
    model's inputs keep their meaning); its model and flow sections must be `config`'s. A resumable state file
    of `out` takes precedence (a resumed fine-tuning continues where it stopped).
    With `dist_ctx` from distributed.setup() under torchrun this is one rank of a DDP job (its device is used)."""
    ctx = dist_ctx or DistContext(device=device)
    if ctx.enabled:
        device = ctx.device
    if not ctx.is_main:
        progress_bar, log = False, lambda *_args, **_kwargs: None
    out = Path(out)
    tcfg = config["training"]
    epochs = int(epochs if epochs is not None else tcfg["epochs"])
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but CUDA is not available")
    if device == "cpu" and tcfg.get("num_threads"):
        torch.set_num_threads(int(tcfg["num_threads"]))
    seed = int(tcfg["seed"])
    torch.manual_seed(seed)

    use_phase = bool(config["conditioning"]["use_phase"])
    obstacles = bool(config["model"].get("obstacles", False))
    data = TrajectoryData.load(
        data_path, use_phase=use_phase, only_success=bool(tcfg["only_success"]), obstacles=obstacles
    )
    train_idx, val_idx = split_by_episode(data.grid_index, float(tcfg["val_fraction"]), seed)
    suffixes = [int(j) for j in tcfg["suffix_starts"]]
    train_data = data.subset(train_idx).with_suffix_starts(suffixes)
    val_data = data.subset(val_idx).with_suffix_starts(suffixes)
    if config["flow"]["reference"] == "min_jerk":
        train_data, val_data = train_data.relative_to_reference(), val_data.relative_to_reference()
    base = _init_checkpoint(init, config) if init is not None else None
    if base is not None:
        normalizer = base.normalizer
    else:
        normalizer = Normalizer.fit(train_data.positions, train_data.velocities, train_data.cond, obstacles=obstacles)
        normalizer = normalizer.with_noise_scale(float(config["flow"].get("noise_scale", 1.0)))
    train_ds, val_ds = FlowDataset(train_data, normalizer), FlowDataset(val_data, normalizer)
    horizon, channels, cond_dim = train_ds.x.shape[1], train_ds.x.shape[2], train_ds.cond.shape[1]

    model = build_model(config["model"], channels, cond_dim, horizon).to(device)
    if base is not None:
        model.load_state_dict(base.model.state_dict())
    ema = copy.deepcopy(model).requires_grad_(False)
    # The module that runs forward and backward: DDP averages the gradients over the ranks during backward.
    net: nn.Module = model
    if ctx.enabled:
        net = DistributedDataParallel(model, device_ids=[ctx.local_rank] if device.startswith("cuda") else None)
    predict_data = bool((config["model"].get(config["model"]["type"]) or {}).get("predict_data", False))
    flow = FlowMatching(
        float(config["flow"]["sigma"]), str(config["flow"].get("coupling", "independent")), data_loss=predict_data
    )
    opt = torch.optim.AdamW(
        model.parameters(), lr=float(tcfg["learning_rate"]), weight_decay=float(tcfg["weight_decay"])
    )
    generator = torch.Generator().manual_seed(seed)
    batch_size = min(int(tcfg["batch_size"]), len(train_ds))
    steps_per_epoch = math.ceil(len(train_ds) / batch_size)
    total_steps = epochs * steps_per_epoch
    base_lr = float(tcfg["learning_rate"])
    n_params = count_parameters(model)

    start_epoch, step, elapsed = 0, 0, 0.0
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
    if resume and state_path(out).exists():
        tensors, metadata = read_safetensors(state_path(out))
        if STATE_KEY not in metadata:
            raise CheckpointError(f"{state_path(out)}: not a training state file")
        prog = json.loads(metadata[STATE_KEY])
        if prog["data_hash"] != data.hash or prog["model"] != config["model"] or prog["use_phase"] != use_phase:
            raise CheckpointError(f"{state_path(out)}: saved for different data or model config; cannot resume")
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        _restore_optimizer(opt, tensors, prog["optimizer"])
        generator.set_state(tensors["rng.generator"])
        torch.set_rng_state(tensors["rng.torch"])
        normalizer = Normalizer.from_dict(prog["normalizer"]) if "normalizer" in prog else normalizer
        start_epoch, step, elapsed, history = prog["epoch"], prog["global_step"], prog["elapsed_s"], prog["history"]
        log(f"resuming from epoch {start_epoch} (step {step}) of {state_path(out)}")
    elif not resume and ctx.is_main:
        log_path(out).unlink(missing_ok=True)
    where = f"{device} x {ctx.world_size} processes (DDP)" if ctx.enabled else device
    log(f"model {config['model']['type']}: {n_params:,} parameters; {len(train_ds)} train / {len(val_ds)} val "
        f"trajectories; {steps_per_epoch} steps/epoch on {where}")

    barrier(ctx)  # rank 0 has removed an old log before any rank looks at it
    new_log = not log_path(out).exists()
    if ctx.is_main:
        out.parent.mkdir(parents=True, exist_ok=True)
    train_loss = history["train_loss"][-1] if history["train_loss"] else float("nan")
    val_loss = history["val_loss"][-1] if history["val_loss"] else float("nan")
    samples_per_s = float("nan")
    bar = tqdm(range(start_epoch, epochs), initial=start_epoch, total=epochs, disable=not progress_bar, desc="train")
    log_context = open(log_path(out), "a", newline="") if ctx.is_main else contextlib.nullcontext()  # noqa: SIM115
    with log_context as log_file:
        writer = csv.writer(log_file) if ctx.is_main else None
        if writer is not None and new_log:
            writer.writerow(["epoch", "step", "lr", "train_loss", "val_loss", "samples_per_s", "elapsed_s"])
        for epoch in bar:
            model.train()
            if ctx.enabled:  # per-rank noise draws, reproducible per (seed, epoch, rank), also after a resume
                torch.manual_seed(seed + 1 + epoch * ctx.world_size + ctx.rank)
            t0 = time.perf_counter()
            perm = torch.randperm(len(train_ds), generator=generator)  # the same on every rank (shared seed)
            losses = []
            for i in range(steps_per_epoch):
                idx = perm[i * batch_size : (i + 1) * batch_size]
                # This rank's share; its loss is weighted so that DDP's mean over the ranks is the global batch mean.
                mine, weight = rank_share(idx, ctx), 1.0
                if ctx.enabled:
                    weight = len(mine) * ctx.world_size / len(idx)
                    if len(mine) == 0:  # a last batch smaller than the world: take part with zero weight
                        mine, weight = idx[:1], 0.0
                x1, cond = train_ds.x[mine].to(device), train_ds.cond[mine].to(device)
                lr = base_lr * lr_factor(step, int(tcfg["warmup_steps"]), total_steps)
                for group in opt.param_groups:
                    group["lr"] = lr
                loss = flow.loss(net, x1, cond, generator=None)
                opt.zero_grad(set_to_none=True)
                (loss * weight if ctx.enabled else loss).backward()
                nn.utils.clip_grad_norm_(model.parameters(), float(tcfg["grad_clip"]))
                opt.step()
                ema_update(ema, model, float(tcfg["ema_decay"]), step)
                # This rank's part of the global batch loss (the parts of all ranks sum to it).
                losses.append(loss.item() * weight / ctx.world_size if ctx.enabled else loss.item())
                step += 1
            if ctx.enabled:
                train_loss = all_reduce_sum([float(np.sum(losses))], ctx)[0] / steps_per_epoch
            else:
                train_loss = float(np.mean(losses))
            dt_epoch = time.perf_counter() - t0
            elapsed += dt_epoch
            samples_per_s = len(train_ds) / dt_epoch
            if not ctx.is_main:  # rank 0 validates, logs and writes; the others go on to the next epoch
                continue
            val_loss = validation_loss(ema, flow, val_ds, 256)
            history["train_loss"].append(train_loss)
            history["val_loss"].append(val_loss)
            writer.writerow([
                epoch + 1, step, f"{lr:.6g}", f"{train_loss:.6f}", f"{val_loss:.6f}", f"{samples_per_s:.1f}",
                f"{elapsed:.1f}",
            ])
            log_file.flush()
            bar.set_postfix(loss=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
            training_meta = {
                "data_hash": data.hash, "data_path": str(data_path), "epochs": epoch + 1, "global_step": step,
                "train_loss": train_loss, "val_loss": val_loss, "num_parameters": n_params,
                "num_train": len(train_ds), "num_val": len(val_ds), "seed": seed,
                "val_fraction": float(tcfg["val_fraction"]),
                "val_episodes": sorted(set(data.grid_index[val_idx].tolist())),
                "only_success": bool(tcfg["only_success"]), "config": config["training"],
                "samples_per_s": samples_per_s, "elapsed_s": elapsed,
            }
            if base is not None:  # what it was fine-tuned from, by that checkpoint's own training record
                training_meta["init"] = {"checkpoint": str(init), **{
                    k: base.meta.get("training", {}).get(k) for k in ("data_hash", "data_path", "epochs", "val_loss")
                }}
            meta = make_meta(config["model"], config["flow"], use_phase, data.dt, training_meta)
            save_checkpoint(out, ema, normalizer, meta)
            save_state(out, model, ema, opt, generator, {
                "epoch": epoch + 1, "global_step": step, "elapsed_s": elapsed, "history": history,
                "data_hash": data.hash, "model": config["model"], "use_phase": use_phase,
                "normalizer": {k: v.tolist() for k, v in normalizer.to_dict().items()},
            })
    bar.close()
    barrier(ctx)  # every rank returns after rank 0 has written the checkpoint
    if start_epoch >= epochs:
        log(f"nothing to do: already trained for {start_epoch} >= {epochs} epochs")
    return TrainResult(out, max(start_epoch, epochs), step, train_loss, val_loss, samples_per_s, n_params)
