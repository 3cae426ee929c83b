"""k-bit weight quantization (snncost.nn.quant) and its bit-exact integer replay."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

import snncost
import snncost.nn as sn
from snncost.checkpoint import load_model, read_checkpoint, save_model
from snncost.graph import build_graph
from snncost.models import NeuronConfig, VGGSpec, build_ann, build_snn
from snncost.sim import ann_counts, verify_against_torch


def qmax(bits: int) -> int:
    return 2 ** (bits - 1) - 1


# ---------------------------------------------------------------------- the quantizer
def test_quantize_tensor_hand_computed():
    w = torch.tensor([[0.5, -1.0, 0.25, 0.0], [0.1, 0.2, -0.05, 0.3], [0.0, 0.0, 0.0, 0.0]])
    codes, scale = sn.quantize_tensor(w, 3)  # q_max = 3
    assert codes.dtype == torch.int32 and scale.shape == (3,)
    torch.testing.assert_close(scale, torch.tensor([1.0 / 3, 0.1, 1.0]))  # all-zero row: 1
    assert codes.tolist() == [[2, -3, 1, 0], [1, 2, 0, 3], [0, 0, 0, 0]]
    codes_l, scale_l = sn.quantize_tensor(w, 3, per_channel=False)
    assert scale_l.shape == () and float(scale_l) == pytest.approx(1.0 / 3)
    assert codes_l.tolist() == [[2, -3, 1, 0], [0, 1, 0, 1], [0, 0, 0, 0]]
    zero_codes, zero_scale = sn.quantize_tensor(torch.zeros(2, 3), 4, per_channel=False)
    assert float(zero_scale) == 1.0 and not zero_codes.any()


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    bits=st.integers(2, 16),
    per_channel=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
    magnitude=st.sampled_from([1e-6, 1e-2, 1.0, 1e3]),
    zero_rows=st.booleans(),
)
@example(shape=[4, 5], bits=16, per_channel=True, seed=5996, magnitude=0.01, zero_rows=False)  # float32 rounding
def test_quantize_tensor_round_trip(shape, bits, per_channel, seed, magnitude, zero_rows):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=gen) * magnitude
    if zero_rows and shape[0] > 1:
        w[0] = 0.0
    codes, scale = sn.quantize_tensor(w, bits, per_channel)
    q = qmax(bits)
    assert codes.shape == w.shape and codes.dtype == torch.int32
    assert int(codes.abs().max()) <= q
    assert scale.shape == ((shape[0],) if per_channel else ())
    assert bool((scale > 0).all())
    s = scale.reshape(-1, *[1] * (w.dim() - 1)) if per_channel else scale
    err = (codes.double() * s.double() - w.double()).abs()
    # half a step, plus float32 rounding of w / scale (visible at 16 bits: 32767 steps)
    assert bool((err <= s.double() / 2 * (1 + 1e-5) + w.abs().double() * 2**-21 + 1e-30).all())
    # the largest weight of every nonzero channel (or of the layer) maps to +-q_max
    rows = w.reshape(shape[0], -1).abs().amax(1) if per_channel else w.abs().amax().reshape(1)
    top = (
        codes.reshape(shape[0], -1).abs().amax(1) if per_channel else codes.abs().amax().reshape(1)
    )
    assert top[rows > 0].tolist() == [q] * int((rows > 0).sum())


@pytest.mark.parametrize("bits", [1, 17, 0, 3.5, True, "8"])
def test_bits_validated(bits):
    with pytest.raises(ValueError, match=r"2\.\.16"):
        sn.quantize_tensor(torch.ones(2, 2), bits)
    with pytest.raises(ValueError, match=r"2\.\.16"):
        sn.quantize_model(nn.Sequential(nn.Linear(2, 2)), bits)
    with pytest.raises(ValueError, match=r"2\.\.16"):
        sn.QuantLinear(2, 2, weight_bits=bits)


# ---------------------------------------------------------------------- the layers
@pytest.mark.parametrize("per_channel", [True, False])
def test_quant_conv_forward_and_ste_gradient(per_channel):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1, bias=True)
    q = sn.quantize_model(conv, 4, per_channel)
    assert isinstance(q, sn.QuantConv2d) and q.weight is conv.weight
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    y = q(x)
    codes, scale = q.weight_codes, q.weight_scale
    assert scale.shape == ((5,) if per_channel else ())
    s4 = scale.view(1, -1, 1, 1) if per_channel else scale
    # accumulate with the integer codes first, then scale, then bias (bit for bit)
    ref = F.conv2d(x.detach(), codes.float(), None, padding=1) * s4 + conv.bias.detach().view(
        1, -1, 1, 1
    )
    assert torch.equal(y.detach(), ref)
    torch.testing.assert_close(
        y.detach(), F.conv2d(x.detach(), q.dequantized_weight(), conv.bias.detach(), padding=1)
    )
    # straight-through: dL/dW is the float layer's gradient, dL/dx the dequantized weights'
    g = torch.randn_like(y)
    y.backward(g)
    w = conv.weight.detach().clone().requires_grad_(True)
    x2 = x.detach().clone().requires_grad_(True)
    F.conv2d(x2, w, None, padding=1).backward(g)
    torch.testing.assert_close(q.weight.grad, w.grad, rtol=1e-5, atol=1e-5)
    x3 = x.detach().clone().requires_grad_(True)
    F.conv2d(x3, q.dequantized_weight(), None, padding=1).backward(g)
    torch.testing.assert_close(x.grad, x3.grad, rtol=1e-5, atol=1e-5)
    assert q.bias.grad is not None
    assert "weight_bits=4" in repr(q)


def test_quant_linear_forward_gradient_and_qat_step():
    torch.manual_seed(1)
    lin = sn.QuantLinear(6, 3, weight_bits=5, per_channel=True)
    x = torch.randn(4, 6)
    y = lin(x)
    ref = F.linear(x, lin.weight_codes.float()) * lin.weight_scale + lin.bias.detach()
    assert torch.equal(y.detach(), ref)
    g = torch.randn_like(y)
    y.backward(g)
    w = lin.weight.detach().clone().requires_grad_(True)
    F.linear(x, w).backward(g)
    torch.testing.assert_close(lin.weight.grad, w.grad)
    # QAT: an optimiser step moves the float master weight
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    before = lin.weight.detach().clone()
    opt.step()
    assert not torch.equal(before, lin.weight.detach())


def test_quantize_model_swaps_in_place_and_keeps_state_dict():
    torch.manual_seed(0)
    spec = VGGSpec(
        features=[4, "P", 8], classifier=[16], in_channels=1, image_size=8, dropout=0.0, bias=True
    )
    model = build_snn(spec, NeuronConfig(timesteps=2))
    keys = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    params = {n: p for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    assert sn.model_quantization(model) is None
    out = sn.quantize_model(model, 6, per_channel=False)
    assert out is model
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == keys
    assert all(p is params[n] for n, p in model.named_parameters())  # shared, not copied
    kinds = {n: type(m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert set(kinds.values()) == {sn.QuantConv2d, sn.QuantLinear}
    assert list(kinds) == ["features.0", "features.3", "classifier.1", "classifier.3"]
    assert sn.model_quantization(model) == {"bits": 6, "per_channel": False}
    # the optimiser built before the swap still trains the model's weights
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    before = model.classifier[3].bias.detach().clone()
    opt.step()
    assert not torch.equal(before, model.classifier[3].bias.detach())
    # re-quantize, then undo (bits None or 32)
    sn.quantize_model(model, 8)
    assert sn.model_quantization(model) == {"bits": 8, "per_channel": True}
    sn.quantize_model(model, 32)
    assert sn.model_quantization(model) is None
    assert all(
        type(m) in (nn.Conv2d, nn.Linear)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    )
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == keys
    sn.quantize_model(model, 4)
    assert sn.dequantize_model(model) is model and sn.model_quantization(model) is None


def test_mixed_quantization_record_round_trip():
    model = nn.Sequential(
        OrderedDict(a=nn.Linear(4, 4), b=nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)))
    )
    sn.quantize_model(model, 4)
    model.b[1] = sn.quantize_model(model.b[1], 8, per_channel=False)
    model.a = sn.dequantize_model(model.a)
    rec = sn.model_quantization(model)
    assert rec["bits"] == 4 and rec["layers"] == {
        "a": None,
        "b.0": {"bits": 4, "per_channel": True},
        "b.1": {"bits": 8, "per_channel": False},
    }
    fresh = nn.Sequential(
        OrderedDict(a=nn.Linear(4, 4), b=nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)))
    )
    sn.apply_quantization(fresh, rec)
    assert sn.model_quantization(fresh) == rec
    with pytest.raises(ValueError, match="lacks"):
        sn.apply_quantization(nn.Sequential(nn.Linear(4, 4)), rec)


def test_quantize_model_refuses_unknown_subclasses():
    class MyConv(nn.Conv2d):
        def forward(self, x):
            return super().forward(x) * 2

    model = nn.Sequential(OrderedDict(head=nn.Linear(2, 2), body=nn.Sequential(MyConv(1, 2, 3))))
    with pytest.raises(TypeError, match=r"'body\.0'.*MyConv"):
        sn.quantize_model(model, 8)
    assert type(model.head) is nn.Linear  # nothing swapped on error
    assert sn.dequantize_model(model) is model  # nothing to undo: fine


# ---------------------------------------------------------------------- graph
def test_graph_nodes_hold_codes_and_scale():
    torch.manual_seed(0)
    spec = VGGSpec(
        features=[4, "P", 8], classifier=[16], in_channels=1, image_size=8, dropout=0.0, bias=True
    )
    model = build_snn(spec, NeuronConfig(timesteps=2))
    float_graph = build_graph(model)
    assert all(
        n.weight_scale is None and n.number_format == "float" and n.weight_bits == 32
        for n in float_graph.weight_layers()
    )
    sn.quantize_model(model, 5, per_channel=False)
    sn.quantize_model(model.classifier[1], 5, per_channel=True)
    graph = build_graph(model)
    modules = dict(model.named_modules())
    for node in graph.weight_layers():
        m = modules[node.name]
        assert node.weight_bits == 5 and node.number_format == "int" and "int5" in node.describe()
        assert node.weight.dtype == np.float32 and np.array_equal(
            node.weight, np.round(node.weight)
        )
        assert np.abs(node.weight).max() <= qmax(5)
        assert node.weight_scale.dtype == np.float32 and node.weight_scale.shape == (
            node.out_features,
        )
        np.testing.assert_array_equal(node.weight, m.weight_codes.numpy())
        np.testing.assert_allclose(node.effective_weight, m.dequantized_weight().numpy(), rtol=1e-6)
        assert node.params == m.weight.numel() + m.bias.numel()
    # a per-layer scale is repeated per output channel
    conv = graph["features.0"]
    assert np.all(conv.weight_scale == conv.weight_scale[0])


def test_ann_baseline_priced_at_weight_bits():
    """A k-bit SNN's main baseline is a k-bit ANN with 8-bit activations; the fp32 ANN is listed too."""
    from snncost.costmodel import ann_baselines, cost_run
    from snncost.hardware import load_profile

    spec = VGGSpec(features=[4, "P", 8], classifier=[16], in_channels=1, image_size=8, dropout=0.0)
    model = sn.quantize_model(build_snn(spec, NeuronConfig(timesteps=2)), 4)
    ann = ann_counts(build_graph(model), batch_size=1)
    assert all(lc.weight_bits == 4 and lc.number_format == "int" for lc in ann.layers)
    p45 = load_profile("45nm")
    same, fp32, zero = ann_baselines(ann, p45)
    assert (same.key, fp32.key, zero.key) == ("ann", "ann-fp32", "ann-zero-skipping")
    assert (same.widths.weights, same.widths.inputs, same.widths.number_format) == (4, 8, "int")
    assert (fp32.widths.weights, fp32.widths.inputs, fp32.widths.number_format) == (32, 32, "float")
    run = cost_run(ann, p45, same.widths, "no-reuse")
    for row in run.rows:  # no-reuse: one weight word of 4 bits per MAC
        weights = [a for a in row.accesses if a.tensor == "weights"]
        assert [a.bits for a in weights] == [4] and weights[0].reads == row.macs
        assert row.energy_mac_pj == pytest.approx(row.macs * (0.2 * 1 + 0.03))  # int8 MAC
    float_ann = ann_counts(build_ann(spec), input_shape=(1, 8, 8))
    assert all(lc.weight_bits == 32 and lc.number_format == "float" for lc in float_ann.layers)


# ---------------------------------------------------------------------- bit-exact replay
IMAGE = (2, 8, 8)


def quant_snn(
    encoding: str, pool: str, bits: int, per_channel: bool, seed: int = 0, timesteps: int = 6
):
    """A small VGG SNN with biases and a leak, quantized; thresholds set by :func:`calibrate`."""
    torch.manual_seed(seed)
    spec = VGGSpec(
        features=[6, "P", 8], classifier=[16], in_channels=IMAGE[0], image_size=IMAGE[1],
        dropout=0.0, pool=pool, bias=True,
    )  # fmt: skip
    neurons = NeuronConfig(
        timesteps=timesteps, encoding=encoding, leak=0.9, learn_threshold=False, learn_leak=False
    )
    model = build_snn(spec, neurons)
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.bias.uniform_(-0.1, 0.2, generator=gen)
    sn.quantize_model(model, bits, per_channel)
    return model.eval()


def calibrate(model: nn.Module, x: torch.Tensor, exact_from: int = 0, q: float = 0.85) -> None:
    """Set each LIF threshold, layer by layer, from the currents it receives on ``x``.

    From layer ``exact_from`` on, the threshold is an input current that
    actually occurs (its ``q`` quantile), so some neurons reach ``h == theta``
    exactly: any rounding difference between PyTorch and the replay flips
    spikes. Earlier layers (the analog first layer of a direct-coded model)
    get a little margin instead.
    """
    lifs = [m for m in model.modules() if isinstance(m, sn.LIF)]
    for i, lif in enumerate(lifs):
        seen = {}
        handle = lif.register_forward_pre_hook(
            lambda _m, inp, seen=seen: seen.setdefault("i", inp[0].detach())
        )
        if isinstance(model.encoder, sn.PoissonEncoder):
            model.encoder.generator = torch.Generator().manual_seed(7)
        with torch.no_grad():
            model(x)
        handle.remove()
        cur = seen["i"][0].flatten()  # first step: h = I
        pos = cur[cur > 0].sort().values
        theta = float(pos[int(q * (len(pos) - 1))])
        lif.threshold.data.fill_(theta if i >= exact_from else theta * 1.0001 + 1e-6)


def check_activity(result: dict) -> None:
    spikes = result["counts"].extra["spikes"]
    for name, s in spikes.items():
        rate = s.mean()
        assert 0.01 < rate < 0.9, f"{name}: spike rate {rate:.3f} makes the comparison vacuous"


@pytest.mark.parametrize("pool", ["avg", "max"])
@pytest.mark.parametrize("bits", [4, 5, 8])
@pytest.mark.parametrize("per_channel", [True, False])
def test_integer_replay_bit_exact_poisson(pool, bits, per_channel):
    model = quant_snn("poisson", pool, bits, per_channel, seed=bits)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(12, *IMAGE, generator=gen) * 2 - 0.5  # signed Poisson spikes too
    calibrate(model, x)
    model.encoder.generator = torch.Generator().manual_seed(3)
    r = verify_against_torch(model, None, x, batch_size=5)
    check_activity(r)
    assert r["spikes_compared"] > 0
    assert r["per_layer"] == {n: 0 for n in r["per_layer"]}, r["per_layer"]
    assert r["spike_mismatches"] == 0
    assert r["logits_equal"] and r["max_logit_abs_diff"] == 0.0
    assert r["prediction_agreement"] == 1.0


@pytest.mark.parametrize("pool", ["avg", "max"])
@pytest.mark.parametrize("bits", [4, 5, 8])
@pytest.mark.parametrize("per_channel", [True, False])
def test_integer_replay_direct(pool, bits, per_channel):
    model = quant_snn("direct", pool, bits, per_channel, seed=bits + 10)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(12, *IMAGE, generator=gen)
    calibrate(model, x, exact_from=1)
    r = verify_against_torch(model, None, x, batch_size=5)
    check_activity(r)
    assert r["prediction_agreement"] == 1.0
    first, *spike_fed = r["per_layer"]
    # the analog first layer's MACs are summed in PyTorch's (unspecified) order, so a
    # neuron within an ulp of its threshold may differ there; never beyond that
    assert r["per_layer"][first] <= 0.001 * r["spikes_compared"]
    if r["per_layer"][first] == 0:  # identical input spikes -> identical spikes everywhere after
        assert all(r["per_layer"][n] == 0 for n in spike_fed), r["per_layer"]
        assert r["logits_equal"]


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_integer_replay_direct_dyadic_inputs_fully_exact(pool):
    """8-bit pixels n/256 times integer codes: even the dense first layer is exact."""
    model = quant_snn("direct", pool, 8, True, seed=5)
    gen = torch.Generator().manual_seed(4)
    x = torch.randint(0, 256, (12, *IMAGE), generator=gen).float() / 256
    calibrate(model, x)  # exact thresholds in every layer, the first included
    r = verify_against_torch(model, None, x, batch_size=5)
    check_activity(r)
    assert r["spike_mismatches"] == 0 and r["logits_equal"]


def test_float_weight_replay_would_not_be_exact():
    """Control: replaying the dequantized float weights (codes*scale) loses bit-exactness."""
    model = quant_snn("poisson", "avg", 5, True, seed=1, timesteps=8)
    x = torch.rand(16, *IMAGE, generator=torch.Generator().manual_seed(1))
    calibrate(model, x)
    graph = build_graph(model)
    for node in graph.weight_layers():
        node.weight, node.weight_scale = node.effective_weight, None
    model.encoder.generator = torch.Generator().manual_seed(3)
    naive = verify_against_torch(model, graph, x)
    model.encoder.generator = torch.Generator().manual_seed(3)
    exact = verify_against_torch(model, None, x)
    assert exact["logits_equal"] and exact["spike_mismatches"] == 0
    assert not naive["logits_equal"]


def test_float_model_replay_unchanged():
    """Float layers go through the same kernels with scale 1: PyTorch agreement as before."""
    model = quant_snn("poisson", "avg", 8, True, seed=2)
    sn.dequantize_model(model)
    x = torch.rand(8, *IMAGE, generator=torch.Generator().manual_seed(1))
    calibrate(model, x, exact_from=99)  # float currents: keep thresholds off exact ties
    model.encoder.generator = torch.Generator().manual_seed(3)
    r = verify_against_torch(model, None, x)
    check_activity(r)
    assert r["prediction_agreement"] == 1.0
    assert r["mismatch_fraction"] < 0.01


# ---------------------------------------------------------------------- checkpoints and reports
@pytest.fixture(scope="module")
def quant_digits_snn():
    torch.manual_seed(0)
    spec = VGGSpec(features=[4, "P", 8], classifier=[16], in_channels=1, image_size=8, dropout=0.0)
    neurons = NeuronConfig(timesteps=4, threshold=0.5, encoding="poisson")
    model = sn.quantize_model(build_snn(spec, neurons), 4, per_channel=True)
    return model.eval(), spec, neurons


def test_checkpoint_round_trip_quantized(quant_digits_snn, tmp_path):
    model, spec, neurons = quant_digits_snn
    path = tmp_path / "q4.pt"
    save_model(path, model, spec, "snn", neurons)
    record = read_checkpoint(path)
    assert record["quant"] == {"bits": 4, "per_channel": True}
    assert set(record["state_dict"]) == set(build_snn(spec, neurons).state_dict())
    loaded = load_model(path)
    assert sn.model_quantization(loaded) == {"bits": 4, "per_channel": True}
    assert isinstance(loaded.features[0], sn.QuantConv2d)
    x = torch.rand(3, 1, 8, 8)
    for m in (model, loaded):
        m.encoder.generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    # float checkpoints still load as float (and older ones, without the field)
    float_path = tmp_path / "f.pt"
    save_model(float_path, build_snn(spec, neurons), spec, "snn", neurons)
    assert read_checkpoint(float_path)["quant"] is None
    assert sn.model_quantization(load_model(float_path)) is None


def test_evaluate_prices_int_weights(quant_digits_snn, tmp_path):
    model, spec, neurons = quant_digits_snn
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(6) % 10
    rep = snncost.evaluate(model, profile="45nm", data=(x, y), verify=True)
    assert rep.spike_mismatches == 0 and rep.spikes_compared > 0
    assert all(r.weight_bits == 4 and r.number_format == "int" for r in rep.snn)
    assert all(r.weight_bits == 4 and r.number_format == "int" for r in rep.ann)
    assert "int4 weights, int8 activations" in rep.baseline
    assert [b.key for b in rep.baselines] == ["ann", "ann-fp32", "ann-zero-skipping"]
    float_rep = snncost.evaluate(sn.dequantize_model(build_snn(spec, neurons)), data=(x, y))
    assert all(r.weight_bits == 32 for r in float_rep.snn + float_rep.ann)
    assert "fp32" in float_rep.baseline
    # fewer weight bits read -> less weight-memory energy per weight read (no-reuse: one word per op)
    nr = snncost.evaluate(model, profile="45nm", data=(x, y), dataflow="no-reuse")
    w = [a for a in nr.snn[0].accesses if a.tensor == "weights"]
    assert [a.bits for a in w] == [4]
    assert w[0].reads == pytest.approx(nr.snn[0].synaptic_ops + nr.snn[0].macs)

    # the CLI on a quantized checkpoint
    from snncost.__main__ import main

    path = tmp_path / "q4.pt"
    save_model(path, model, spec, "snn", neurons)
    out = tmp_path / "r.json"
    code = main(
        [
            "evaluate",
            str(path),
            "--data",
            "digits",
            "--samples",
            "8",
            "--format",
            "json",
            "--output",
            str(out),
            "--verify",
        ]
    )
    assert code == 0
    cli = snncost.CostReport.model_validate_json(out.read_text())
    assert cli.spike_mismatches == 0
    assert [r.weight_bits for r in cli.snn] == [4] * 4 and [r.weight_bits for r in cli.ann] == [
        4
    ] * 4
