"""Data-parallel training under torchrun (DDP): process-group setup from torchrun's environment and the helpers the
training loop needs. One process (no torchrun, or WORLD_SIZE=1) is the plain single-process path.

    torchrun --nproc_per_node N install/flow_planner_ros/lib/flow_planner_ros/train --data ... --out ...

gloo on CPU, nccl on CUDA (rank r uses cuda:LOCAL_RANK). Every rank reads the whole data set and draws the same
permutation from the shared seed; each global batch is split over the ranks (`rank_share`), so the global batch
size, the steps per epoch and the learning-rate schedule are those of one process, and the averaged gradient is the
one-process gradient of the same batch (up to the noise draws, which are per rank).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str) -> DistContext:
    """Join the torchrun job (init_process_group) when WORLD_SIZE > 1; otherwise a single-process context."""
    if not launched_by_torchrun():
        return DistContext(device=device)
    rank, world, local_rank = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda requested but CUDA is not available")
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"local rank {local_rank} but only {torch.cuda.device_count()} CUDA device(s)")
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return DistContext(rank, world, local_rank, device)


def teardown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def rank_share(batch: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """This rank's part of one global batch of indices (strided, sizes differ by at most one)."""
    return batch[ctx.rank :: ctx.world_size] if ctx.enabled else batch


def all_reduce_sum(values: list[float], ctx: DistContext) -> list[float]:
    """Sum of `values` over the ranks (as float64 on the CPU for gloo, on the device for nccl)."""
    if not ctx.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()
