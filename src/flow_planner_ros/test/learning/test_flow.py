"""One flow-matching formulation for training and sampling."""

from __future__ import annotations

import pytest
import torch

from flow_planner_ros.learning.flow import FlowMatching, formulation_error, integrate, oracle_velocity, sample_noise
from flow_planner_ros.learning.models import UNet1DFiLM


def test_xt_plus_remaining_velocity_reconstructs_x1() -> None:
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(32, 60, 24, generator=g, dtype=torch.float64)
    x0 = torch.randn(32, 60, 24, generator=g, dtype=torch.float64)
    t = torch.rand(32, generator=g, dtype=torch.float64)
    xt, ut = FlowMatching(0.0).path(x1, x0, t)
    recon = xt + (1 - t.view(-1, 1, 1)) * ut
    assert (recon - x1).abs().max() < 1e-12
    # t = 0 is pure noise, t = 1 is data: the direction the samplers integrate.
    xt0, _ = FlowMatching(0.0).path(x1, x0, torch.zeros(32, dtype=torch.float64))
    assert torch.equal(xt0, x0)


def test_sigma_path_stays_within_noise_of_x1() -> None:
    x1, x0 = torch.randn(64, 60, 24), torch.randn(64, 60, 24)
    t = torch.rand(64)
    xt, ut = FlowMatching(0.1).path(x1, x0, t)
    dev = (xt + (1 - t.view(-1, 1, 1)) * ut - x1).std().item()
    assert 0.05 < dev < 0.15  # σ·ε, not a different path


@pytest.mark.parametrize("method", ["euler", "midpoint"])
@pytest.mark.parametrize("steps", [1, 3, 10])
def test_sampler_with_oracle_field_lands_on_x1(method: str, steps: int) -> None:
    x1, x0 = torch.randn(4, 60, 24, dtype=torch.float64), torch.randn(4, 60, 24, dtype=torch.float64)
    x = integrate(oracle_velocity(x1), x0, torch.zeros(4, 0), steps, method)
    assert (x - x1).abs().max() < 1e-9


def test_noise_prediction_used_as_velocity_would_be_caught() -> None:
    """The seed's bug: a model trained to predict noise (DDPM) but integrated as a velocity misses x1 by O(1);
    the conditional velocity x1 − x0 of the training path lands on x1."""
    x1, x0 = torch.randn(4, 60, 24, dtype=torch.float64), torch.randn(4, 60, 24, dtype=torch.float64)
    no_cond = torch.zeros(4, 0)
    right = integrate(lambda x, t, c: x1 - x0, x0, no_cond, 7)
    wrong = integrate(lambda x, t, c: x0, x0, no_cond, 7)
    assert (right - x1).abs().max() < 1e-9
    assert (wrong - x1).abs().mean() > 0.5
    assert formulation_error(FlowMatching(0.0), x1) < 1e-9
    assert formulation_error(FlowMatching(0.1), x1.float()) < 1e-5  # σ only widens the path


def test_loss_trains_towards_conditional_velocity() -> None:
    model = UNet1DFiLM(24, 36, [16, 32])
    flow = FlowMatching(0.0)
    x1, cond = torch.randn(8, 60, 24), torch.randn(8, 36)
    loss = flow.loss(model, x1, cond, torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and loss.item() > 0.5  # untrained: E|x1 − x0|² ≈ 2
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_sampling_is_seeded_and_batched() -> None:
    model = UNet1DFiLM(24, 36, [16, 32]).eval()
    cond = torch.randn(1, 36).repeat(6, 1)  # best-of-6 for one request, one batch
    def sample(model, cond, horizon, channels, steps, seed=None, method="euler"):
        return integrate(model, sample_noise(cond.shape[0], horizon, channels, seed), cond, steps, method)

    a = sample(model, cond, 60, 24, steps=3, seed=7)
    b = sample(model, cond, 60, 24, steps=3, seed=7)
    c = sample(model, cond, 60, 24, steps=3, seed=8)
    assert a.shape == (6, 60, 24)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert not torch.allclose(a[0], a[1])  # distinct candidates within the batch
    with pytest.raises(ValueError):
        sample(model, cond, 60, 24, steps=0)
    with pytest.raises(ValueError):
        sample(model, cond, 60, 24, steps=2, method="rk45")


@pytest.mark.parametrize(("predict_data", "shared_start"), [(True, "data"), (False, "velocity")])
@pytest.mark.parametrize("method", ["euler", "midpoint"])
def test_a_shared_first_step_gives_the_same_samples(predict_data: bool, shared_start: str, method: str) -> None:
    """A network that sees t·x predicts from the conditioning alone at t = 0: evaluating the first step once per
    distinct conditioning row (two requests of 4 samples each, interleaved) changes nothing but the row count."""
    torch.manual_seed(0)
    model = UNet1DFiLM(24, 36, [16, 32], predict_data=predict_data, time_scaled_input=True).eval()
    requests = torch.randn(2, 36)
    cond = requests[torch.tensor([0, 1, 0, 0, 1, 1, 0, 1])]
    x0 = sample_noise(8, 60, 24, seed=3)
    rows: list[int] = []

    def counting(x, t, c):
        rows.append(x.shape[0])
        return model(x, t, c)

    with torch.no_grad():
        plain = integrate(model, x0, cond, 2, method)
        shared = integrate(counting, x0, cond, 2, method, shared_start)
    torch.testing.assert_close(shared, plain, rtol=1e-5, atol=1e-5)
    assert rows[0] == 2 and all(n == 8 for n in rows[1:])
    with pytest.raises(ValueError, match="shared_start"):
        integrate(model, x0, cond, 2, method, "noise")
