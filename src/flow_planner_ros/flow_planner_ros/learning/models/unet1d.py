"""Temporal 1D UNet with FiLM conditioning in every residual block (style of diffusion_policy's ConditionalUnet1D).

Input/output (B, H, C) channels-last; internally (B, C, H). Each level but the last halves the horizon, so the
input is right-padded (edge values) to a multiple of 2**(levels − 1) and the output cropped back: any horizon
(17, 60, 64, …) works with any depth. An optional ramp channel tells every waypoint where it is along the horizon.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from flow_planner_common.obstacles import MAX_OBSTACLES
from flow_planner_ros.learning.models.common import (
    ObstacleSetEncoder,
    SinusoidalTimeEmbedding,
    data_to_velocity,
    time_scaled,
)


def _groups(channels: int, max_groups: int = 8) -> int:
    """Largest group count ≤ max_groups dividing channels (GroupNorm)."""
    return next(g for g in range(min(max_groups, channels), 0, -1) if channels % g == 0)


class Conv1dBlock(nn.Module):
    """Conv1d → GroupNorm → Mish."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(in_ch, out_ch, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(_groups(out_ch), out_ch),
            nn.Mish(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class FiLMResidualBlock1D(nn.Module):
    """conv block → conv → GroupNorm → FiLM → Mish, plus a residual path.

    FiLM (h·(1 + scale) + shift, scale/shift from the [time; cond] embedding) comes after the branch's last
    normalization, so the conditioning sets the amplitude of what is added to the unnormalized residual stream
    (placed before a GroupNorm, per-sample normalization would wipe most of it out).
    """

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, kernel_size: int) -> None:
        super().__init__()
        self.conv1 = Conv1dBlock(in_ch, out_ch, kernel_size)
        self.conv2 = nn.Conv1d(out_ch, out_ch, kernel_size, padding=kernel_size // 2)
        self.norm2 = nn.GroupNorm(_groups(out_ch), out_ch)
        self.act = nn.Mish()
        self.film = nn.Sequential(nn.Mish(), nn.Linear(emb_dim, 2 * out_ch))
        nn.init.zeros_(self.film[-1].weight)
        nn.init.zeros_(self.film[-1].bias)
        self.residual = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(emb).unsqueeze(-1).chunk(2, dim=1)
        h = self.norm2(self.conv2(self.conv1(x)))
        return self.act(h * (1 + scale) + shift) + self.residual(x)


class UNet1DFiLM(nn.Module):
    """Conditional 1D UNet: velocity field v(x, t, cond) for (B, H, C) trajectories."""

    def __init__(
        self, in_channels: int, cond_dim: int, hidden_dims: list[int] | tuple[int, ...] = (64, 128, 256),
        time_emb_dim: int = 64, kernel_size: int = 5, horizon_channel: bool = True, obstacle_features: int = 0,
        obstacle_slots: int = MAX_OBSTACLES, scene_emb_dim: int = 64, predict_data: bool = False,
        time_scaled_input: bool = False,
    ) -> None:
        super().__init__()
        # predict_data: the network outputs the endpoint x1, forward returns the velocity (common.data_to_velocity)
        self.predict_data = bool(predict_data)
        self.time_scaled_input = bool(time_scaled_input)  # the network sees t·x (common.time_scaled)
        dims = [int(d) for d in hidden_dims]
        if not dims or min(dims) < 1:
            raise ValueError("hidden_dims must be a non-empty list of positive ints")
        if kernel_size % 2 != 1:
            raise ValueError("kernel_size must be odd")
        self.in_channels, self.cond_dim, self.levels = in_channels, cond_dim, len(dims)
        # A convolution only sees where it is along the horizon through padding effects; an explicit ramp
        # channel (0 at the first waypoint, 1 at the last) lets FiLM build time-varying outputs from the goal.
        self.horizon_channel = bool(horizon_channel)
        self.time_emb = nn.Sequential(
            SinusoidalTimeEmbedding(time_emb_dim),
            nn.Linear(time_emb_dim, 4 * time_emb_dim),
            nn.Mish(),
            nn.Linear(4 * time_emb_dim, time_emb_dim),
        )
        # Obstacle models: the conditioning ends with the scene, encoded by a DeepSets encoder whose embedding joins
        # the FiLM input in place of the raw scene entries.
        self.scene = None
        emb_dim = time_emb_dim + cond_dim
        if obstacle_features:
            self.scene = ObstacleSetEncoder(obstacle_slots, obstacle_features, scene_emb_dim)
            emb_dim += scene_emb_dim - self.scene.scene_dim
        self.down = nn.ModuleList()
        prev = in_channels + int(self.horizon_channel)
        for i, d in enumerate(dims):
            last = i == len(dims) - 1
            self.down.append(nn.ModuleList([
                FiLMResidualBlock1D(prev, d, emb_dim, kernel_size),
                FiLMResidualBlock1D(d, d, emb_dim, kernel_size),
                nn.Conv1d(d, d, 3, stride=2, padding=1) if not last else nn.Identity(),
            ]))
            prev = d
        self.mid = nn.ModuleList([
            FiLMResidualBlock1D(dims[-1], dims[-1], emb_dim, kernel_size),
            FiLMResidualBlock1D(dims[-1], dims[-1], emb_dim, kernel_size),
        ])
        self.up = nn.ModuleList()
        for i in range(len(dims) - 1, 0, -1):
            self.up.append(nn.ModuleList([
                FiLMResidualBlock1D(dims[i] * 2, dims[i - 1], emb_dim, kernel_size),
                FiLMResidualBlock1D(dims[i - 1], dims[i - 1], emb_dim, kernel_size),
                nn.ConvTranspose1d(dims[i - 1], dims[i - 1], 4, stride=2, padding=1),
            ]))
        self.final_block = FiLMResidualBlock1D(dims[0] * 2, dims[0], emb_dim, kernel_size)
        self.final = nn.Conv1d(dims[0], in_channels, 1)

    def padded_length(self, horizon: int) -> int:
        """Horizon rounded up to a multiple of 2**(levels − 1)."""
        m = 2 ** (self.levels - 1)
        return int(math.ceil(horizon / m) * m)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        horizon = x.shape[1]
        h = (time_scaled(x, t) if self.time_scaled_input else x).transpose(1, 2)
        if self.horizon_channel:
            ramp = torch.linspace(0.0, 1.0, horizon, device=x.device, dtype=x.dtype)
            h = torch.cat([h, ramp.expand(h.shape[0], 1, horizon)], dim=1)
        pad = self.padded_length(horizon) - horizon
        if pad:
            h = F.pad(h, (0, pad), mode="replicate")
        if self.scene is not None:
            base, scene = self.scene(cond)
            emb = torch.cat([self.time_emb(t), base, scene], dim=-1)
        else:
            emb = torch.cat([self.time_emb(t), cond], dim=-1)
        skips = []
        for block1, block2, downsample in self.down:
            h = block2(block1(h, emb), emb)
            skips.append(h)
            h = downsample(h)
        for block in self.mid:
            h = block(h, emb)
        for block1, block2, upsample in self.up:
            h = torch.cat([h, skips.pop()], dim=1)
            h = upsample(block2(block1(h, emb), emb))
        h = self.final(self.final_block(torch.cat([h, skips.pop()], dim=1), emb))
        out = h[..., :horizon].transpose(1, 2)
        return data_to_velocity(out, x, t) if self.predict_data else out
