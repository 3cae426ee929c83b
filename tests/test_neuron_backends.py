"""The numba neuron kernels against the torch form of the fused neuron (snncost.nn.functional).

Training on the CPU runs :mod:`snncost.nn.neuron_kernels`; the torch loops
(tested against plain autograd in ``test_neuron_kinds.py``) are the
reference. Spikes must agree bit for bit, gradients to float32 rounding,
for every charge rule, reset, surrogate and ``detach_reset``, and on every
memory layout a network hands the neurons (channels-last activations, a
direct-input current repeated over T as a stride-0 view, slices).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import snncost.nn as sn
from snncost.nn.functional import neuron_backend, set_neuron_backend

CONSTANT = {"leak": 0.85, "tau": 2.5, "decay": 0.4}


def run(backend, current, kind, surrogate, detach_reset, weights, theta=0.6):
    """Spikes and the gradients of ``sum(spikes * weights)`` w.r.t. current, constant and theta."""
    current = current.detach().clone().requires_grad_()
    constant = torch.tensor(CONSTANT[kind.rule.parameter], requires_grad=True)
    th = torch.tensor(theta, requires_grad=True)
    with neuron_backend(backend):
        s = sn.neuron_multistep(current, constant, th, kind, surrogate, detach_reset)
        (s * weights).sum().backward()
    return s.detach(), current.grad, constant.grad, th.grad


@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("surrogate", sn.SURROGATES)
@pytest.mark.parametrize("reset", ["soft", "hard"])
@pytest.mark.parametrize("charge", list(sn.CHARGES))
def test_kernels_match_the_torch_loops(charge, reset, surrogate, detach_reset):
    kind = sn.NeuronKind(charge, reset, -0.3 if reset == "hard" else 0.0)
    gen = torch.Generator().manual_seed(zlib.crc32(f"{charge} {reset} {surrogate}".encode()))
    current = torch.randn(9, 3, 5, 7, generator=gen) * 0.8 + 0.7
    weights = torch.randn(current.shape, generator=gen)
    want = run("torch", current, kind, sn.Surrogate(surrogate), detach_reset, weights)
    got = run("numba", current, kind, sn.Surrogate(surrogate), detach_reset, weights)
    assert 0.05 < want[0].mean() < 0.95, "too few or too many spikes to test anything"
    assert torch.equal(got[0], want[0]), "spikes differ"
    assert all(g.abs().sum() > 0 for g in want[1:]), "a vacuous gradient proves nothing"
    for a, b, what in zip(got[1:], want[1:], ("dL/dI", "dL/dconstant", "dL/dtheta"), strict=True):
        torch.testing.assert_close(a, b, rtol=2e-5, atol=2e-5, msg=lambda m, w=what: f"{w}: {m}")


LAYOUTS = ("contiguous", "channels_last", "repeated_over_T", "channels_last_repeated", "sliced")


def shaped(layout: str, T: int, B: int, C: int, H: int, gen: torch.Generator) -> torch.Tensor:
    """A ``[T, B, C, H, H]`` current in the memory layout ``layout``."""
    if layout == "contiguous":
        return torch.randn(T, B, C, H, H, generator=gen)
    if (
        layout == "channels_last"
    ):  # what a channels-last conv hands the neuron after SpikingSequential's unfold
        return (
            torch.randn(T * B, C, H, H, generator=gen)
            .contiguous(memory_format=torch.channels_last)
            .view(T, B, C, H, H)
        )
    if layout.endswith(
        "repeated_over_T"
    ):  # the direct-input first layer, computed once (stride 0 in T)
        x = torch.randn(B, C, H, H, generator=gen)
        if layout.startswith("channels_last"):
            x = x.contiguous(memory_format=torch.channels_last)
        return x.unsqueeze(0).expand(T, B, C, H, H)
    return torch.randn(T, B, 2 * C, H, H, generator=gen)[:, :, ::2]  # no dense per-step view


@settings(max_examples=25, deadline=None)
@given(
    layout=st.sampled_from(LAYOUTS + ("channels_last_repeated_over_T",)),
    T=st.integers(1, 6),
    B=st.integers(1, 3),
    C=st.integers(1, 5),
    H=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_every_layout_gives_the_torch_result(layout, T, B, C, H, seed):
    gen = torch.Generator().manual_seed(seed)
    current = shaped(layout, T, B, C, H, gen) * 0.9 + 0.3
    weights = torch.randn(current.shape, generator=gen)
    kind, surrogate = sn.NeuronKind(), sn.Surrogate("arctan")
    want = run("torch", current, kind, surrogate, True, weights)
    got = run("numba", current, kind, surrogate, True, weights)
    assert got[0].shape == current.shape and got[1].shape == current.shape
    assert torch.equal(got[0], want[0])
    for a, b in zip(got[1:], want[1:], strict=True):
        torch.testing.assert_close(a, b, rtol=2e-5, atol=2e-5)


def test_channels_last_spikes_stay_channels_last():
    """No copy into another layout: the next conv gets the layout the last one produced."""
    current = shaped("channels_last", 4, 2, 8, 5, torch.Generator().manual_seed(0))
    with neuron_backend("numba"):
        s = sn.neuron_multistep(
            current, torch.tensor(1.0), torch.tensor(0.5), sn.NeuronKind(), sn.Surrogate()
        )
    assert s.stride() == current.stride()


def test_the_kernels_are_what_training_runs_on_the_cpu(monkeypatch):
    """``auto`` (the default) uses the kernels for float32 CPU tensors and the torch loops otherwise."""
    from snncost.nn import neuron_kernels

    calls = []
    real = neuron_kernels.multistep_forward
    monkeypatch.setattr(neuron_kernels, "multistep_forward", lambda *a: calls.append(1) or real(*a))
    lif = sn.LIF(threshold=0.5)
    lif(torch.rand(3, 2, 4))
    assert calls == [1]
    lif.double()(torch.rand(3, 2, 4, dtype=torch.float64))
    assert calls == [1], "float64 runs the torch loops"


def test_backend_errors_name_the_choices_and_the_tensor():
    with pytest.raises(
        ValueError, match="unknown neuron backend 'cuda'; choose one of auto, numba, torch"
    ):
        set_neuron_backend("cuda")
    with (
        neuron_backend("numba"),
        pytest.raises(ValueError, match="float32 CPU tensors; got torch.float64 on cpu"),
    ):
        sn.neuron_multistep(
            torch.rand(2, 3, dtype=torch.float64),
            torch.tensor(1.0),
            torch.tensor(0.5),
            sn.NeuronKind(),
            sn.Surrogate(),
        )


def test_kernel_constants_follow_the_rule_table():
    """The float32 constants handed to numba: the rule's constant in every slot, then vr, theta, u0."""
    from snncost.nn.functional import _kernel_constants

    nc = _kernel_constants(2.5, 0.75, -0.25)
    assert nc.dtype == np.float32 and list(nc) == [2.5, 2.5, 2.5, -0.25, 0.75, -0.25]
