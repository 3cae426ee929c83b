"""The LIF neuron, surrogates, encoders and containers of snncost.nn."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import snncost.nn as sn
from snncost.nn.surrogate import spike_fn


def run_lif(currents, threshold, leak):
    lif = sn.LIF(threshold=threshold, leak=leak, learn_threshold=False, learn_leak=False)
    i = torch.tensor(currents, dtype=torch.float64).reshape(len(currents), 1)
    return lif(i).flatten().tolist()


def test_if_neuron_hand_computed():
    # theta=1, leak=1: u: 0.6 -> 1.2 fire (u=0.2) -> 0.8 -> 1.4 fire (0.4) -> 0.4
    assert run_lif([0.6, 0.6, 0.6, 0.6, 0.0], 1.0, 1.0) == [0, 1, 0, 1, 0]


def test_leak_hand_computed():
    # leak 0.5, theta 1: h = 0.8, 1.2 (fire, u=0.2), 0.1+0.8=0.9, 0.45+0.8=1.25 (fire)
    assert run_lif([0.8, 0.8, 0.8, 0.8], 1.0, 0.5) == [0, 1, 0, 1]


def test_soft_reset_keeps_residual_and_multiple_thresholds():
    # a current of 2.5 theta fires every step while the residual builds up: 2.5 -> 1.5 -> ...
    assert run_lif([2.5, 0.0, 0.0, 0.0], 1.0, 1.0) == [1, 1, 0, 0]


def test_threshold_edge_fires_at_equality():
    assert run_lif([0.5, 0.5], 1.0, 1.0) == [0, 1]  # h == theta fires
    assert run_lif([0.5, 0.4999], 1.0, 1.0) == [0, 0]


def test_negative_current_never_fires():
    assert run_lif([-1.0, -2.0, 0.5], 0.5, 1.0) == [0, 0, 0]


def test_lif_step_matches_multistep():
    torch.manual_seed(0)
    current = torch.randn(12, 3, 5)
    spikes = sn.LIF(threshold=0.7, leak=0.8)(current)
    u = torch.zeros(3, 5)
    for t in range(12):
        s, u = sn.lif_step(u, current[t], 0.8, 0.7)
        assert torch.equal(s, spikes[t])


@pytest.mark.parametrize("name", sn.SURROGATES)
def test_surrogate_is_derivative_of_its_primitive(name):
    sur = sn.Surrogate(name, slope=3.0)
    x = torch.linspace(-2, 2, 401, dtype=torch.float64)
    x = x[(x * 3.0).abs().sub(1.0).abs() > 1e-3]  # skip the pwl kinks at |alpha x| = 1
    eps = 1e-6
    fd = (sur.primitive(x + eps) - sur.primitive(x - eps)) / (2 * eps)
    torch.testing.assert_close(sur.grad(x), fd, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", sn.SURROGATES)
def test_surrogate_integrates_to_one(name):
    sur = sn.Surrogate(name, slope=2.0)
    x = torch.linspace(-2000, 2000, 2_000_001, dtype=torch.float64)
    area = torch.trapezoid(sur.grad(x), x).item()
    assert math.isclose(area, 1.0, rel_tol=2e-3)


def test_unknown_surrogate_names_choices():
    with pytest.raises(ValueError, match="piecewise_linear"):
        sn.Surrogate("relu")


def reference_lif(current, leak, theta, surrogate, detach_reset):
    """Unrolled autograd reference for the fused multi-step LIF backward."""
    u = torch.zeros_like(current[0])
    out = []
    for t in range(current.shape[0]):
        h = leak * u + current[t]
        s = spike_fn(h, theta, surrogate)
        u = h - (s.detach() if detach_reset else s) * theta
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("name", sn.SURROGATES)
def test_fused_bptt_matches_unrolled_autograd(detach_reset, name):
    torch.manual_seed(1)
    current = (torch.randn(7, 4, 6, dtype=torch.float64) * 0.8 + 0.3).requires_grad_()
    weights = torch.randn(7, 4, 6, dtype=torch.float64)
    sur = sn.Surrogate(name)
    grads = []
    for fn in (sn.lif_multistep, reference_lif):
        leak = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)
        theta = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
        s = fn(current, leak, theta, sur, detach_reset)
        (s * weights).sum().backward()
        grads.append((s.detach(), current.grad.clone(), leak.grad, theta.grad))
        current.grad = None
    for a, b in zip(grads[0], grads[1], strict=False):
        torch.testing.assert_close(a, b)


def test_lif_parameters_train():
    lif = sn.LIF(threshold=1.0, leak=0.9)
    s = lif(torch.rand(5, 2, 3) * 2)
    s.sum().backward()
    assert lif.threshold.grad is not None and lif.leak.grad is not None
    fixed = sn.LIF(learn_threshold=False, learn_leak=False)
    assert not any(p.requires_grad for p in fixed.parameters())


def test_lif_rejects_bad_parameters():
    with pytest.raises(ValueError, match="threshold"):
        sn.LIF(threshold=0.0)
    with pytest.raises(ValueError, match="leak"):
        sn.LIF(leak=1.5)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(-2, 3, allow_nan=False), min_size=1, max_size=20),
    st.floats(0.1, 2.0),
    st.floats(0.0, 1.0),
)
def test_lif_invariants(currents, theta, leak):
    """Spikes are binary, and with leak=1 the spike count is floor-bounded by the charge."""
    i = torch.tensor(currents, dtype=torch.float64).reshape(-1, 1)
    s = sn.lif_multistep(i, torch.tensor(leak, dtype=torch.float64), torch.tensor(theta, dtype=torch.float64), sn.Surrogate())
    assert set(s.flatten().tolist()) <= {0.0, 1.0}
    if leak == 1.0:
        # soft reset conserves charge: theta * spikes + final membrane = total input
        assert s.sum().item() * theta <= sum(max(0.0, c) for c in currents) + 1e-9


def test_direct_encoder_is_a_view_and_folding_is_exact():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 3, padding=1)
    seq = sn.SpikingSequential(sn.DirectEncoder(4), conv, sn.LIF(threshold=0.5))
    x = torch.randn(5, 2, 6, 6)
    out = seq(x)
    assert out.shape == (4, 5, 3, 6, 6)
    expected = sn.LIF(threshold=0.5)(conv(x).unsqueeze(0).repeat(4, 1, 1, 1, 1))
    assert torch.equal(out, expected)
    assert seq.timesteps == 4
    seq.timesteps = 2
    assert seq(x).shape[0] == 2


def test_poisson_encoder_rates_and_signs():
    enc = sn.PoissonEncoder(2000)
    enc.generator = torch.Generator().manual_seed(0)
    x = torch.tensor([0.25, -0.5, 0.0, 2.0])
    s = enc(x)
    rate = s.mean(0)
    torch.testing.assert_close(rate, torch.tensor([0.25, -0.5, 0.0, 1.0]), atol=0.04, rtol=0)
    enc.generator = torch.Generator().manual_seed(0)
    assert torch.equal(enc(x), s)


def test_temporal_dropout_mask_constant_in_time():
    drop = sn.TemporalDropout(0.5).train()
    y = drop(torch.ones(6, 3, 10))
    assert torch.equal(y, y[0].expand_as(y))
    assert torch.equal(drop.eval()(torch.ones(6, 3, 10)), torch.ones(6, 3, 10))


def test_output_integrator_mean():
    x = torch.arange(12.0).reshape(3, 2, 2)
    torch.testing.assert_close(sn.OutputIntegrator()(x), x.mean(0))
