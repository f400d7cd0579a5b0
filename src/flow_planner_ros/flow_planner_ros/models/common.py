"""Shared model pieces: sinusoidal time embedding."""

from __future__ import annotations

import math

import torch
from torch import nn

#: Flow time t ∈ [0, 1] is scaled by this before the sinusoidal embedding (frequencies tuned for 0..1000).
TIME_SCALE = 1000.0


class SinusoidalTimeEmbedding(nn.Module):
    """t (B,) in [0, 1] → (B, dim) sin/cos features."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 4 or dim % 2:
            raise ValueError("time embedding dim must be an even number >= 4")
        half = dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / (half - 1))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = (t.float() * TIME_SCALE)[:, None] * self.freqs[None, :]
        return torch.cat([args.sin(), args.cos()], dim=-1)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
