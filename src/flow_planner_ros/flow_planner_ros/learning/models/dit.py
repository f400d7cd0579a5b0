"""Diffusion Transformer over the time axis with adaLN-zero conditioning (Peebles & Xie, 2023).

Tokens are waypoints (B, H, C) → Linear → + sinusoidal position embedding; c = MLP(time emb) + MLP(cond)
modulates every block (shift/scale/gate for attention and MLP, zero-initialised so each block starts as the
identity) and the final layer. Any horizon works.
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


def position_embedding(length: int, dim: int) -> torch.Tensor:
    """(length, dim) fixed sin/cos position embedding."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    emb = torch.zeros(length, dim)
    emb[:, 0::2] = torch.sin(pos * div)
    emb[:, 1::2] = torch.cos(pos * div)[:, : dim // 2]
    return emb


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class DiTBlock(nn.Module):
    """Pre-LN transformer block with adaLN-zero modulation."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"hidden_dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.ada[-1].weight)
        nn.init.zeros_(self.ada[-1].bias)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, dim=-1)
        x = x + gate1.unsqueeze(1) * self.attention(_modulate(self.norm1(x), shift1, scale1))
        return x + gate2.unsqueeze(1) * self.mlp(_modulate(self.norm2(x), shift2, scale2))


class DiTAdaLN(nn.Module):
    """Conditional DiT velocity field v(x, t, cond) for (B, H, C) trajectories."""

    def __init__(
        self, in_channels: int, cond_dim: int, horizon: int, hidden_dim: int = 128, depth: int = 4, heads: int = 4,
        mlp_ratio: float = 4.0, time_emb_dim: int = 64, obstacle_features: int = 0, obstacle_slots: int = MAX_OBSTACLES,
        predict_data: bool = False, time_scaled_input: bool = False,
    ) -> None:
        super().__init__()
        # predict_data: the network outputs the endpoint x1, forward returns the velocity (common.data_to_velocity)
        self.predict_data = bool(predict_data)
        self.time_scaled_input = bool(time_scaled_input)  # the network sees t·x (common.time_scaled)
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self.in_channels, self.cond_dim, self.hidden_dim = in_channels, cond_dim, hidden_dim
        self.embed = nn.Linear(in_channels, hidden_dim)
        self.register_buffer("pos_emb", position_embedding(horizon, hidden_dim), persistent=False)
        self.time_mlp = nn.Sequential(
            SinusoidalTimeEmbedding(time_emb_dim), nn.Linear(time_emb_dim, hidden_dim), nn.SiLU(),
            nn.Linear(hidden_dim, hidden_dim),
        )
        # Obstacle models: the conditioning ends with the scene; its DeepSets embedding is added to c.
        self.scene = ObstacleSetEncoder(obstacle_slots, obstacle_features, hidden_dim) if obstacle_features else None
        base_dim = cond_dim - (self.scene.scene_dim if self.scene is not None else 0)
        self.cond_mlp = nn.Sequential(nn.Linear(base_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim))
        self.blocks = nn.ModuleList(DiTBlock(hidden_dim, heads, mlp_ratio) for _ in range(depth))
        self.final_norm = nn.LayerNorm(hidden_dim, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(hidden_dim, 2 * hidden_dim))
        self.out = nn.Linear(hidden_dim, in_channels)
        for layer in (self.final_ada[-1], self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        pos = self.pos_emb if self.pos_emb.shape[0] == length else position_embedding(length, self.hidden_dim).to(x)
        h = self.embed(time_scaled(x, t) if self.time_scaled_input else x) + pos
        if self.scene is not None:
            base, scene = self.scene(cond)
            c = self.time_mlp(t) + self.cond_mlp(base) + scene
        else:
            c = self.time_mlp(t) + self.cond_mlp(cond)
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.final_ada(c).chunk(2, dim=-1)
        out = self.out(_modulate(self.final_norm(h), shift, scale))
        return data_to_velocity(out, x, t) if self.predict_data else out
