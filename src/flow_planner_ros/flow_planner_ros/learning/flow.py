"""Flow matching, one formulation for training and sampling.

Path (torchcfm ConditionalFlowMatcher): x0 ~ N(0, I) at t = 0, data x1 at t = 1,
x_t = t·x1 + (1 − t)·x0 (+ σ·ε), target velocity u_t = x1 − x0, so x_t + (1 − t)·u_t = x1 (σ = 0).
The model predicts u_t; samplers integrate dx/dt = v(x, t, cond) from t = 0 (noise) to t = 1 (data).
Model call convention everywhere: model(x (B, H, C), t (B,), cond (B, D)) → (B, H, C).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from flow_planner_ros.learning.models.common import DATA_PREDICTION_EPS

VelocityFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
METHODS = ("euler", "midpoint")
#: Noise-data pairing in a training batch (see FlowMatching.loss).
COUPLINGS = ("independent", "ot")


def ot_assignment(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Minibatch exact optimal transport with uniform weights: the permutation p minimizing Σ‖x0[p[i]] − x1[i]‖².

    The batch's noise draws are reassigned to its data rows (each row keeps its conditioning), so the paths cross
    less; with equal batch sizes the exact OT plan is this permutation (the linear assignment problem)."""
    from scipy.optimize import linear_sum_assignment

    cost = torch.cdist(x0.detach().reshape(len(x0), -1).double(), x1.detach().reshape(len(x1), -1).double()) ** 2
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
    perm = torch.empty(len(x1), dtype=torch.long)
    perm[torch.as_tensor(cols)] = torch.as_tensor(rows)
    return perm.to(x0.device)


class FlowMatching:
    """Wraps torchcfm's ConditionalFlowMatcher: training loss and the matching samplers."""

    def __init__(self, sigma: float = 0.0, coupling: str = "independent", data_loss: bool = False) -> None:
        from torchcfm.conditional_flow_matching import ConditionalFlowMatcher  # slow import (~3 s)

        if sigma < 0:
            raise ValueError("sigma must be >= 0")
        if coupling not in COUPLINGS:
            raise ValueError(f"coupling must be one of {COUPLINGS}, got {coupling!r}")
        self.sigma = float(sigma)
        self.coupling = coupling
        # data_loss (models with predict_data): the velocity error times (1 − t), i.e. the error of the predicted
        # endpoint x1, so that the loss does not blow up as t → 1 where velocity = (x1 − x) / (1 − t).
        self.data_loss = bool(data_loss)
        self.cfm = ConditionalFlowMatcher(sigma=self.sigma)

    def path(self, x1: torch.Tensor, x0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_t, u_t) on the conditional path between noise x0 and data x1 at times t (B,)."""
        _, xt, ut = self.cfm.sample_location_and_conditional_flow(x0, x1, t)
        return xt, ut

    def loss(
        self, model: nn.Module, x1: torch.Tensor, cond: torch.Tensor, generator: torch.Generator | None = None,
        t: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """MSE between the predicted and the conditional velocity at a random (or given) t."""
        x0 = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
        if self.coupling == "ot":
            x0 = x0[ot_assignment(x0, x1)]
        if t is None:
            t = torch.rand(x1.shape[0], generator=generator, device=x1.device, dtype=x1.dtype)
        xt, ut = self.path(x1, x0, t)
        return self.error(model(xt, t, cond), ut, t)

    def error(self, pred: torch.Tensor, ut: torch.Tensor, t: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """MSE of predicted vs conditional velocity (weighted by (1 − t)² with data_loss)."""
        if self.data_loss:
            w = (1.0 - t).clamp_min(DATA_PREDICTION_EPS).view(-1, *([1] * (pred.ndim - 1)))
            pred, ut = pred * w, ut * w
        return F.mse_loss(pred, ut, reduction=reduction)


def time_grid(steps: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """steps + 1 equally spaced times from 0 (noise) to 1 (data)."""
    if steps < 1:
        raise ValueError("steps must be >= 1")
    return torch.linspace(0.0, 1.0, steps + 1, device=device)


#: How a model's velocity at t = 0 depends on x when its network input ignores x there (time_scaled_input):
#: "data" (predict_data: v = x1_hat(cond) - x) or "velocity" (v = g(cond)); see `integrate`.
SHARED_STARTS = ("data", "velocity")


def integrate(
    velocity: VelocityFn, x0: torch.Tensor, cond: torch.Tensor, steps: int, method: str = "euler",
    shared_start: str | None = None,
) -> torch.Tensor:
    """Integrate dx/dt = velocity(x, t, cond) from x0 at t = 0 to t = 1 with `steps` Euler or midpoint steps.

    `shared_start` (SHARED_STARTS, for models whose network sees t·x: at t = 0 its output is a function of the
    conditioning alone): the first evaluation runs once per distinct conditioning row, best-of-N samples of one
    request sharing theirs, and is broadcast (exact: the same velocities, fewer network rows)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if shared_start is not None and shared_start not in SHARED_STARTS:
        raise ValueError(f"shared_start must be one of {SHARED_STARTS} or None, got {shared_start!r}")
    times = time_grid(steps).tolist()  # Python floats: built on the CPU, no device sync (and CUDA-graph safe)
    x = x0
    batch = x0.shape[0]
    for t0, t1 in pairwise(times):
        h = t1 - t0
        t_now = torch.full((batch,), t0, device=x.device, dtype=x.dtype)
        if t0 == 0.0 and shared_start is not None:
            v = _velocity_at_start(velocity, x, cond, shared_start)
        else:
            v = velocity(x, t_now, cond)
        if method == "midpoint":
            t_mid = torch.full((batch,), t0 + 0.5 * h, device=x.device, dtype=x.dtype)
            v = velocity(x + 0.5 * h * v, t_mid, cond)
        x = x + h * v
    return x


def _velocity_at_start(velocity: VelocityFn, x: torch.Tensor, cond: torch.Tensor, shared_start: str) -> torch.Tensor:
    """velocity(x, 0, cond) evaluated on the distinct rows of `cond` only (see integrate's `shared_start`)."""
    unique, inverse = torch.unique(cond, dim=0, return_inverse=True)
    if unique.shape[0] == cond.shape[0]:
        return velocity(x, torch.zeros(x.shape[0], device=x.device, dtype=x.dtype), cond)
    rows = unique.shape[0]
    # at t = 0 the network's input is 0·x: x = 0 gives the same output; for "data" it is x1_hat, as (x1_hat - 0) / 1
    out = velocity(x.new_zeros((rows, *x.shape[1:])), torch.zeros(rows, device=x.device, dtype=x.dtype), unique)
    return out[inverse] - x if shared_start == "data" else out[inverse]


def sample_noise(
    num: int, horizon: int, channels: int, seed: int | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """x0 ~ N(0, I) of shape (num, horizon, channels); the same seed gives the same noise on any batch size
    prefix (generated on CPU, then moved)."""
    generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    return torch.randn((num, horizon, channels), generator=generator).to(device)


def oracle_velocity(x1: torch.Tensor) -> VelocityFn:
    """The exact conditional field towards x1 on the training path: u = (x1 − x) / (1 − t).

    On the path x = t·x1 + (1 − t)·x0 this equals u_t = x1 − x0; integrating it with the samplers above
    must land on x1 for any step count — the check that training and sampling share one formulation.
    """

    def velocity(x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        del cond
        return (x1 - x) / (1.0 - t).clamp_min(1e-6).view(-1, *([1] * (x.ndim - 1)))

    return velocity


def formulation_error(
    flow: FlowMatching, x1: torch.Tensor, seed: int = 0, steps: tuple[int, ...] = (1, 5, 10)
) -> float:
    """Max abs error of (a) x_t + (1 − t)·u_t = x1 on torchcfm's path (σ = 0 part) and (b) Euler/midpoint
    integration of the oracle field from noise reaching x1. ~1e-6 when training and sampling agree."""
    generator = torch.Generator().manual_seed(seed)
    x0 = torch.randn(x1.shape, generator=generator, dtype=x1.dtype)
    t = torch.rand(x1.shape[0], generator=generator, dtype=x1.dtype)
    xt, ut = FlowMatching(0.0).path(x1, x0, t) if flow.sigma else flow.path(x1, x0, t)
    tb = t.view(-1, *([1] * (x1.ndim - 1)))
    err = (xt + (1 - tb) * ut - x1).abs().max().item()
    for n in steps:
        for method in METHODS:
            x = integrate(oracle_velocity(x1), x0, torch.zeros(x1.shape[0], 0), n, method)
            err = max(err, (x - x1).abs().max().item())
    return float(err)
