"""The neuron kinds of snncost.nn (LIF, IF, TauLIF, ParametricLIF; soft and hard reset).

Checked against three independent computations: a float32 numpy loop of the
formulas stated in :class:`snncost.graph.LIFNode` (the contract the replay
follows), SpikingJelly's own neurons (spike for spike, membrane exact), and
plain autograd over the unrolled steps (the fused BPTT's gradients).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

import snncost.nn as sn
from snncost.graph import LIFNode, build_graph

# ----------------------------------------------------------------------------- contract reference

# h = C(u, I) as LIFNode's docstring states it; every operand float32, left to right
CONTRACT_CHARGE: dict[str, Callable] = {
    "leak": lambda u, i, c, vr: c * u + i,
    "decay-input": lambda u, i, c, vr: u + (i - (u - vr)) / c,
    "no-decay-input": lambda u, i, c, vr: u - (u - vr) / c + i,
    "plif-decay-input": lambda u, i, c, vr: u + (i - (u - vr)) * c,
    "plif-no-decay-input": lambda u, i, c, vr: u - (u - vr) * c + i,
}


def contract_run(current: np.ndarray, node: LIFNode) -> tuple[np.ndarray, np.ndarray]:
    """Spikes and reset membranes per step, in float32 numpy, from the node's fields alone."""
    f32 = np.float32
    constant = f32({"leak": node.leak, "decay-input": node.tau, "no-decay-input": node.tau}.get(node.charge, node.decay))
    theta, vr = f32(node.threshold), f32(node.reset_value if node.reset == "hard" else 0.0)
    u = np.full(current.shape[1:], vr, f32)
    spikes, membranes = np.zeros_like(current), np.zeros_like(current)
    for t in range(current.shape[0]):
        h = CONTRACT_CHARGE[node.charge](u, current[t], constant, vr)
        s = h >= theta
        u = np.where(s, vr, h) if node.reset == "hard" else h - s.astype(f32) * theta
        spikes[t], membranes[t] = s, u
    return spikes, membranes


# every kind and reset, with constants whose float32 rounding matters (no powers of two)
MODULES: dict[str, Callable[[], sn.LIF]] = {
    "lif-soft": lambda: sn.LIF(threshold=0.7, leak=0.83),
    "lif-hard": lambda: sn.LIF(threshold=0.7, leak=0.83, reset="hard", reset_value=-0.15),
    "if-soft": lambda: sn.IF(threshold=0.7),
    "if-hard": lambda: sn.IF(threshold=0.7, reset="hard", reset_value=0.1),
    "tau-decay-input-soft": lambda: sn.TauLIF(tau=2.7, threshold=0.6, reset="soft"),
    "tau-decay-input-hard": lambda: sn.TauLIF(tau=2.7, threshold=0.6, reset_value=-0.15),
    "tau-no-decay-input-soft": lambda: sn.TauLIF(tau=2.7, decay_input=False, threshold=0.7, reset="soft"),
    "tau-no-decay-input-hard": lambda: sn.TauLIF(tau=2.7, decay_input=False, threshold=0.7, reset_value=0.1),
    "plif-decay-input-soft": lambda: sn.ParametricLIF(init_tau=3.3, threshold=0.6, reset="soft"),
    "plif-decay-input-hard": lambda: sn.ParametricLIF(init_tau=3.3, threshold=0.6, reset_value=-0.15),
    "plif-no-decay-input-soft": lambda: sn.ParametricLIF(
        init_tau=3.3, decay_input=False, threshold=0.7, reset="soft"
    ),
    "plif-no-decay-input-hard": lambda: sn.ParametricLIF(
        init_tau=3.3, decay_input=False, threshold=0.7, reset_value=0.1
    ),
}


def random_current(seed: int, shape=(24, 5, 40)) -> torch.Tensor:
    """float32 currents with many spikes and many near misses."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * 0.9 + 0.35


def fused_membranes(m: sn.LIF, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and reset membranes of the fused forward loop."""
    constant, theta = m.effective()
    h, s = sn.neuron_forward(current, constant, theta, m.kind)
    return s, sn.RESETS[m.kind.reset].u(h, s, theta, m.kind.vr)


@pytest.mark.parametrize("name", list(MODULES))
def test_every_kind_follows_the_graph_contract_exactly(name):
    m = MODULES[name]()
    node = LIFNode("n", shape=(40,), **m.graph_fields())
    current = random_current(1)
    want_s, want_u = contract_run(current.numpy(), node)
    with torch.no_grad():
        spikes = m(current)
    s, u = fused_membranes(m, current)
    assert 0.05 < want_s.mean() < 0.95, "the inputs must make the neurons both fire and not fire"
    np.testing.assert_array_equal(spikes.numpy(), want_s)
    np.testing.assert_array_equal(s.numpy(), want_s)
    np.testing.assert_array_equal(u.numpy(), want_u)


@pytest.mark.parametrize("name", list(MODULES))
def test_single_steps_equal_the_fused_loop(name):
    m = MODULES[name]()
    constant, theta = m.effective()
    current = random_current(2)
    want_s, want_u = fused_membranes(m, current)
    u = m.kind.initial_membrane(current[0])
    for t in range(current.shape[0]):
        s, u = sn.neuron_step(u, current[t], constant, theta, m.kind)
        assert torch.equal(s, want_s[t]) and torch.equal(u, want_u[t]), f"step {t}"


# ----------------------------------------------------------------------------- SpikingJelly


def spikingjelly_twin(name: str, m: sn.LIF) -> nn.Module:
    """SpikingJelly's neuron doing what ``m`` does (multi-step, membranes stored)."""
    neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
    _, theta = m.effective()
    v_reset = m.kind.reset_value if m.kind.reset == "hard" else None
    common = dict(v_threshold=theta, v_reset=v_reset, step_mode="m", store_v_seq=True)
    decay_input = "no-decay-input" not in m.kind.charge
    if name.startswith("if"):
        return neuron.IFNode(**common)
    if name.startswith("tau"):
        return neuron.LIFNode(tau=float(m.tau), decay_input=decay_input, **common)
    twin = neuron.ParametricLIFNode(init_tau=3.3, decay_input=decay_input, **common)
    with torch.no_grad():  # a trained-looking w, the same float32 value in both
        twin.w.fill_(0.37)
        m.w.fill_(0.37)
    return twin


@pytest.mark.parametrize("name", [n for n in MODULES if not n.startswith("lif")])
def test_matches_spikingjelly_spike_for_spike(name):
    functional = pytest.importorskip("spikingjelly.activation_based.functional")
    m = MODULES[name]()
    twin = spikingjelly_twin(name, m)
    for seed in (3, 4):  # two runs: SpikingJelly's state is cleared by reset_net in between
        current = random_current(seed)
        with torch.no_grad():
            want_s = twin(current)
            spikes = m(current)
        s, u = fused_membranes(m, current)
        assert torch.equal(spikes, want_s) and torch.equal(s, want_s), f"spikes differ (seed {seed})"
        assert torch.equal(u, twin.v_seq), f"membranes differ (seed {seed})"
        functional.reset_net(twin)


def test_parametric_lif_starts_where_spikingjelly_does():
    neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
    for init_tau in (2.0, 3.3, 10.0):
        twin = neuron.ParametricLIFNode(init_tau=init_tau)
        m = sn.ParametricLIF(init_tau=init_tau)
        assert torch.equal(m.w, twin.w.data)
        assert m.effective()[0] == pytest.approx(1.0 / init_tau, rel=1e-6)


# ----------------------------------------------------------------------------- gradients


def unrolled(current, constant, theta, kind, surrogate, detach_reset):
    """Plain autograd over the per-step reference: what the fused backward must reproduce."""
    u = kind.initial_membrane(current[0])
    out = []
    for t in range(current.shape[0]):
        s, u = sn.neuron_step(u, current[t], constant, theta, kind, surrogate, detach_reset)
        out.append(s)
    return torch.stack(out)


def fused(current, constant, theta, kind, surrogate, detach_reset):
    return sn.neuron_multistep(current, constant, theta, kind, surrogate, detach_reset)


RAW_CONSTANT = {"leak": 0.85, "tau": 2.5, "decay": -0.4}  # decay = sigmoid(-0.4) ~ 0.40


@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("reset", ["soft", "hard"])
@pytest.mark.parametrize("charge", list(sn.CHARGES))
def test_fused_bptt_matches_unrolled_autograd(charge, reset, detach_reset):
    kind = sn.NeuronKind(charge, reset, -0.3 if reset == "hard" else 0.0)
    surrogate = sn.Surrogate(sn.SURROGATES[len(charge) % len(sn.SURROGATES)])
    torch.manual_seed(len(charge) + 7 * (reset == "hard"))
    current = (torch.randn(7, 4, 6, dtype=torch.float64) * 0.9 + 0.5).requires_grad_()
    weights = torch.randn(7, 4, 6, dtype=torch.float64)
    learned_decay = kind.rule.parameter == "decay"
    results = []
    for fn in (fused, unrolled):
        raw = torch.tensor(RAW_CONSTANT[kind.rule.parameter], dtype=torch.float64, requires_grad=True)
        constant = torch.sigmoid(raw) if learned_decay else raw  # PLIF: the gradient reaches w
        theta = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
        s = fn(current, constant, theta, kind, surrogate, detach_reset)
        (s * weights).sum().backward()
        results.append((s.detach(), current.grad.clone(), raw.grad, theta.grad))
        current.grad = None
    assert 0.05 < results[0][0].mean() < 0.95
    assert all(g.abs().sum() > 0 for g in results[1][1:]), "a vacuous gradient proves nothing"
    for got, want, what in zip(results[0], results[1], ("spikes", "dL/dI", "dL/dconstant", "dL/dtheta"), strict=True):
        torch.testing.assert_close(got, want, msg=lambda m, w=what: f"{w}: {m}")


def test_lif_multistep_is_the_leak_soft_kind():
    current = random_current(5)
    leak, theta = torch.tensor(0.83), torch.tensor(0.7)
    a = sn.lif_multistep(current, leak, theta, sn.Surrogate())
    b = sn.neuron_multistep(current, leak, theta, sn.NeuronKind(), sn.Surrogate())
    assert torch.equal(a, b)


# ----------------------------------------------------------------------------- modules


def tiny_net(neuron: sn.LIF) -> sn.SpikingSequential:
    torch.manual_seed(0)
    net = sn.SpikingSequential(
        OrderedDict(
            enc=sn.DirectEncoder(6),
            fc1=nn.Linear(8, 24),
            lif=neuron,
            fc2=nn.Linear(24, 3),
            out=sn.OutputIntegrator(),
        )
    )
    net.input_shape = (8,)
    return net


@pytest.mark.parametrize("name", list(MODULES))
def test_one_training_step_with_each_kind(name):
    neuron = MODULES[name]()
    neuron.threshold.requires_grad_(True)
    net = tiny_net(neuron)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 8, generator=g) * 2, torch.randint(0, 3, (32,), generator=g)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    loss = nn.functional.cross_entropy(net(x), y)
    loss.backward()
    learned = dict(neuron.named_parameters())
    assert "threshold" in learned
    for pname, p in learned.items():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad) and p.grad != 0, f"{name}.{pname}: {p.grad}"
    before = {k: v.detach().clone() for k, v in learned.items()}
    opt.step()
    after = nn.functional.cross_entropy(net(x), y)
    assert after < loss, f"{name}: one step did not lower the loss ({loss:.4f} -> {after:.4f})"
    assert all(not torch.equal(before[k], v) for k, v in learned.items() if v.requires_grad)


EXPECTED_FIELDS: dict[str, dict[str, object]] = {
    "lif-soft": {"charge": "leak", "leak": 0.83, "reset": "soft", "reset_value": 0.0},
    "lif-hard": {"charge": "leak", "leak": 0.83, "reset": "hard", "reset_value": -0.15},
    "if-hard": {"charge": "leak", "leak": 1.0, "reset": "hard", "reset_value": 0.1},
    "tau-decay-input-hard": {"charge": "decay-input", "tau": 2.7, "reset": "hard", "reset_value": -0.15},
    "tau-no-decay-input-soft": {"charge": "no-decay-input", "tau": 2.7, "reset": "soft", "reset_value": 0.0},
    "plif-decay-input-soft": {"charge": "plif-decay-input", "decay": 1 / 3.3, "reset": "soft"},
    "plif-no-decay-input-hard": {"charge": "plif-no-decay-input", "decay": 1 / 3.3, "reset_value": 0.1},
}


@pytest.mark.parametrize("name", list(EXPECTED_FIELDS))
def test_build_graph_carries_every_field(name):
    neuron = MODULES[name]()
    graph = build_graph(tiny_net(neuron))
    (node,) = graph.lif_layers()
    unused = {"leak", "tau", "decay"} - {neuron.kind.rule.parameter}
    assert all(getattr(node, f) == 1.0 for f in unused), "fields a kind does not use keep their defaults"
    assert node.threshold == pytest.approx(float(np.float32(neuron.threshold.item())))
    for field, want in EXPECTED_FIELDS[name].items():
        got = getattr(node, field)
        assert got == (pytest.approx(want, rel=1e-6) if isinstance(want, float) else want), field


def test_effective_constants_are_what_the_forward_uses():
    plif = sn.ParametricLIF(init_tau=3.3)
    with torch.no_grad():
        plif.w.fill_(1.7)
    assert plif.effective()[0] == float(torch.sigmoid(torch.tensor(1.7)))
    lif = sn.LIF(leak=0.9, threshold=0.5)
    with torch.no_grad():
        lif.leak.fill_(1.3)
        lif.threshold.fill_(-1.0)
    assert lif.effective() == (1.0, float(np.float32(sn.LIF.min_threshold)))  # the clamps the forward applies
    assert sn.TauLIF(tau=2.7).effective() == (float(np.float32(2.7)), 1.0)


def test_kind_defaults_are_spikingjellys():
    tau, plif, if_ = sn.TauLIF(), sn.ParametricLIF(), sn.IF()
    for m in (tau, plif):
        assert (m.kind.reset, m.kind.reset_value, m.detach_reset, m.threshold.requires_grad) == ("hard", 0.0, False, False)
    assert tau.effective() == (2.0, 1.0) and math.isclose(plif.effective()[0], 0.5)
    assert not if_.leak.requires_grad and if_.kind == sn.NeuronKind()  # IF: snncost's LIF with leak 1
    assert isinstance(tau, sn.LIF) and isinstance(plif, sn.LIF)  # every consumer of sn.LIF sees them


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: sn.TauLIF(tau=0.5), "TauLIF tau must be >= 1"),
        (lambda: sn.ParametricLIF(init_tau=1.0), "ParametricLIF init_tau must be > 1"),
        (lambda: sn.IF(threshold=0.0), "IF threshold must be > 0"),
        (lambda: sn.LIF(reset="none"), "LIF: unknown reset 'none'; choose one of soft, hard"),
        (lambda: sn.LIF(reset_value=0.2), r"LIF: reset_value=0.2 needs reset='hard'"),
        (lambda: sn.NeuronKind("adaptive"), "unknown charge rule 'adaptive'"),
    ],
)
def test_bad_settings_are_refused_by_name(build, message):
    with pytest.raises(ValueError, match=message):
        build()
