"""NIR export/import (snncost.interop.nir): round trips, snntorch interop, refusals."""

from __future__ import annotations

import os
import subprocess
from collections import OrderedDict
from dataclasses import fields
from pathlib import Path

import make_nir_golden  # tests/make_nir_golden.py: the golden graph and its NIR files
import nir
import numpy as np
import pytest
import torch
from torch import nn

import snncost
import snncost.nn as sn
from snncost.graph import ConvNode, LayerGraph, LIFNode, build_graph
from snncost.interop import NIRConversionError, from_nir, load_nir, save_nir, to_nir
from snncost.interop.nir import DEFAULT_DT, graph_to_module
from snncost.interop.nir_compat import accepts_keyword
from snncost.models import NeuronConfig, VGGSpec, build_snn
from snncost.sim import simulate
from snncost.sim.replay import encode_poisson

T = 4


def tiny_vgg(encoding: str, leak: float) -> sn.SpikingSequential:
    """vgg-tiny in miniature: conv, avg pool, conv, avg pool, hidden linear, output."""
    torch.manual_seed(0)
    spec = VGGSpec(
        features=[4, "P", 8, "P"],
        classifier=[16],
        in_channels=1,
        image_size=8,
        dropout=0.0,
        bias=True,
    )
    model = build_snn(spec, NeuronConfig(timesteps=T, encoding=encoding, threshold=0.5, leak=leak))
    with torch.no_grad():  # a different threshold per layer, so the mapping is per layer
        for i, m in enumerate(mod for mod in model.modules() if isinstance(mod, sn.LIF)):
            m.threshold.fill_(0.3 + 0.1 * i)
    return model.eval()


def assert_same_counts(a, b, names: bool = True) -> None:
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers, strict=True):
        for f in fields(la):
            va, vb = getattr(la, f.name), getattr(lb, f.name)
            if f.name == "name" and not names:
                continue
            if isinstance(va, np.ndarray):
                np.testing.assert_array_equal(va, vb, err_msg=f"{la.name}.{f.name}")
            else:
                assert va == vb, f"{la.name}.{f.name}: {va} != {vb}"


def replay_inputs(graph: LayerGraph, x: torch.Tensor, T: int = T):
    if graph.encoding == "poisson":
        return encode_poisson(x, T, graph.input.gain or 1.0, torch.Generator().manual_seed(3))
    return x


# ---------------------------------------------------------------------- round trips
@pytest.mark.parametrize("encoding", ["direct", "poisson"])
@pytest.mark.parametrize("leak", [0.875, 1.0], ids=["lif", "if"])
def test_round_trip_file_replays_identically(tmp_path, encoding, leak):
    model = tiny_vgg(encoding, leak)
    graph = build_graph(model, name="tiny")
    ng = to_nir(graph)
    kinds = [type(n).__name__ for n in ng.nodes.values()]
    neuron = "IF" if leak == 1.0 else "LIF"
    assert kinds == ["Input", "Conv2d", neuron, "AvgPool2d", "Conv2d", neuron, "AvgPool2d",
                     "Flatten", "Affine", neuron, "Affine", "Output"]  # fmt: skip
    md = ng.metadata["snncost"]
    assert (md["encoding"], md["timesteps"], md["reset"], md["dt"]) == (
        encoding,
        T,
        "subtract",
        DEFAULT_DT,
    )
    assert "mean over T" in md["nodes"]["output"]["readout"]

    path = save_nir(ng, tmp_path / "tiny.nir")
    back = from_nir(load_nir(path))
    assert back.encoding == encoding and back.timesteps == T and back.name == "tiny"
    assert [(n.name, n.type_name, n.out_shape) for n in back] == [
        (n.name, n.type_name, n.out_shape) for n in graph
    ]
    for a, b in zip(graph.lif_layers(), back.lif_layers(), strict=True):
        assert (a.leak, a.threshold) == (b.leak, b.threshold)
    for a, b in zip(graph.weight_layers(), back.weight_layers(), strict=True):
        np.testing.assert_array_equal(a.weight, b.weight)
        np.testing.assert_array_equal(a.bias, b.bias)

    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    ra = simulate(graph, replay_inputs(graph, x))
    rb = simulate(back, replay_inputs(back, x))
    assert_same_counts(ra, rb)
    np.testing.assert_array_equal(ra.logits, rb.logits)
    assert sum(int(c.output_spikes.sum()) for c in ra.layers) > 0  # the test exercises spikes


def test_evaluate_accepts_nir_graph_and_file(tmp_path):
    model = tiny_vgg("direct", 0.875)
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    y = torch.arange(5)
    ref = snncost.evaluate(model, data=(x, y), name="m")
    path = save_nir(model, tmp_path / "m.h5")
    for source in (path, str(path), to_nir(model)):
        rep = snncost.evaluate(source, data=(x, y), name="m")
        assert [r.model_dump() for r in rep.snn] == [r.model_dump() for r in ref.snn]
        assert [r.model_dump() for r in rep.ann] == [r.model_dump() for r in ref.ann]
        assert rep.accuracy == ref.accuracy
    cmp = snncost.compare_profiles(path, ["45nm", "loihi"], data=x)
    assert cmp.timesteps == T and len(cmp.rows) == 2
    # the torch form of the imported graph also passes the replay-vs-PyTorch check
    rep = snncost.evaluate(path, data=x, verify=True)
    assert rep.spike_mismatches == 0


def test_graph_to_module_gives_back_the_graph():
    graph = build_graph(tiny_vgg("poisson", 0.875))
    again = build_graph(graph_to_module(from_nir(to_nir(graph))))
    assert [(n.name, n.type_name, n.out_shape) for n in again] == [
        (n.name, n.type_name, n.out_shape) for n in graph
    ]
    assert again.input.gain == graph.input.gain


def test_quantized_weights_round_trip():
    rng = np.random.default_rng(0)
    codes1 = rng.integers(-7, 8, size=(4, 1, 3, 3)).astype(np.float32)
    codes2 = rng.integers(-7, 8, size=(10, 64)).astype(np.float32)
    s1 = np.array([0.11, 0.07, 0.09, 0.13], np.float32)
    s2 = np.full(10, 0.05, np.float32)
    from snncost.graph import FlattenNode, InputNode, LinearNode, OutputNode, PoolNode

    graph = LayerGraph([
        InputNode("in", shape=(1, 8, 8), encoding="direct", timesteps=T),
        ConvNode("c", weight=codes1, in_shape=(1, 8, 8), out_shape=(4, 8, 8), padding=(1, 1),
                 weight_bits=4, weight_scale=s1, number_format="int"),
        LIFNode("l", leak=0.9, threshold=0.4, shape=(4, 8, 8)),
        PoolNode("p", kind="avg", kernel=2, in_shape=(4, 8, 8), out_shape=(4, 4, 4)),
        FlattenNode("f", in_shape=(4, 4, 4), out_shape=(64,)),
        LinearNode("fc", weight=codes2, in_shape=(64,), out_shape=(10,),
                   weight_bits=4, weight_scale=s2, number_format="int"),
        OutputNode("out", shape=(10,)),
    ])  # fmt: skip
    ng = to_nir(graph)
    expected = codes1 * s1.reshape(-1, 1, 1, 1)  # NIR holds the float weights the layer applies
    np.testing.assert_allclose(ng.nodes["c"].weight, expected, rtol=1e-6)
    back = from_nir(ng)
    for a, b in zip(graph.weight_layers(), back.weight_layers(), strict=True):
        np.testing.assert_array_equal(a.weight, b.weight)  # the integer codes again
        np.testing.assert_array_equal(np.asarray(a.weight_scale), np.asarray(b.weight_scale))
        assert (b.weight_bits, b.number_format) == (4, "int")
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    ra, rb = simulate(graph, x), simulate(back, x)
    assert_same_counts(ra, rb)
    np.testing.assert_array_equal(ra.logits, rb.logits)


# ---------------------------------------------------------------------- snntorch
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::RuntimeWarning")
@pytest.mark.parametrize("beta", [0.75, 1.0], ids=["leaky", "if"])
def test_snntorch_network_costs_like_the_snncost_equivalent(beta):
    snn = pytest.importorskip("snntorch")
    pytest.importorskip("nirtorch")
    if not accepts_keyword(nir.LIF, "v_reset"):
        pytest.skip(f"snntorch's export_to_nir writes v_reset, which nir {nir.version} lacks (< 1.0.6)")
    from snntorch import utils as snn_utils
    from snntorch.export_nir import export_to_nir

    thr = 0.6

    def leaky(shape):  # NIR type checking needs per-neuron parameters of the layer's shape
        # NIR does not record snntorch's reset_delay. For IF snntorch's default (delayed)
        # subtractive reset is exactly snncost's; for beta < 1 the delayed reset is not
        # leaked, so use the immediate one (reset_delay=False), see docs/nir.md
        return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.full(shape, thr),
                         reset_mechanism="subtract", reset_delay=beta == 1.0,
                         init_hidden=True)  # fmt: skip

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), leaky((4, 8, 8)), nn.AvgPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1), leaky((8, 4, 4)), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(32, 16), leaky((16,)), nn.Linear(16, 10),
    )  # fmt: skip
    with torch.no_grad():
        for m in net:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(2.0)
    graph = export_to_nir(net, torch.randn(1, 1, 8, 8), ignore_dims=[0])
    assert sum(isinstance(n, nir.LIF) for n in graph.nodes.values()) == 3

    imported = from_nir(graph, timesteps=T)
    assert [n.leak for n in imported.lif_layers()] == [beta] * 3
    assert [n.threshold for n in imported.lif_layers()] == [pytest.approx(thr, rel=1e-6)] * 3

    # the same network from snncost modules, same weights
    mods: list = [sn.DirectEncoder(T)]
    for m in net:
        if isinstance(m, snn.Leaky):
            mods.append(sn.LIF(threshold=thr, leak=beta, learn_threshold=False, learn_leak=False))
        else:
            mods.append(m)
    mods.append(sn.OutputIntegrator())
    ours = sn.SpikingSequential(OrderedDict((f"m{i}", m) for i, m in enumerate(mods))).eval()
    ours.input_shape = (1, 8, 8)

    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    rep_nir = snncost.evaluate(graph, data=x, timesteps=T)
    rep_ours = snncost.evaluate(ours, data=x)
    keys = ("synaptic_ops", "macs", "neuron_updates", "spikes", "input_events", "energy_total_pj")
    assert len(rep_nir.snn) == len(rep_ours.snn) == 4
    for a, b in zip(rep_nir.snn, rep_ours.snn, strict=True):
        assert {k: getattr(a, k) for k in keys} == {k: getattr(b, k) for k in keys}
    assert rep_nir.snn_total == rep_ours.snn_total
    assert rep_nir.ann_total == rep_ours.ann_total
    assert rep_nir.snn_total.spikes > 0

    # snntorch itself, run for T steps, emits the same spikes per layer: exactly for IF;
    # for beta < 1 (reset_delay=False) up to the neurons whose membrane stays above threshold
    # after a reset (snntorch's immediate reset then needs twice the threshold to fire again)
    counts = {i: 0 for i, m in enumerate(net) if isinstance(m, snn.Leaky)}
    hooks = [net[i].register_forward_hook(lambda m, inp, out, i=i: counts.__setitem__(i, counts[i] + int(out.sum())))
             for i in counts]  # fmt: skip
    snn_utils.reset(net)
    with torch.no_grad():
        out = sum(net(x) for _ in range(T)) / T
    for h in hooks:
        h.remove()
    replay = simulate(imported, x)
    ours_spikes = [int(c.output_spikes.sum()) for c in replay.layers[:3]]
    if beta == 1.0:
        assert list(counts.values()) == ours_spikes
        np.testing.assert_allclose(replay.logits, out.numpy(), rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_allclose(list(counts.values()), ours_spikes, rtol=0.03)


# ---------------------------------------------------------------------- refusals
def small_nir(neuron: nir.NIRNode, key: str = "lif1") -> nir.NIRGraph:
    rng = np.random.default_rng(0)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([3])}),
        "fc1": nir.Affine(
            weight=rng.normal(size=(4, 3)).astype(np.float32), bias=np.zeros(4, np.float32)
        ),
        key: neuron,
        "fc2": nir.Linear(weight=rng.normal(size=(2, 4)).astype(np.float32)),
        "output": nir.Output(output_type={"output": np.array([2])}),
    }
    keys = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(keys, keys[1:], strict=False)))


def cuba(tau_syn: float, beta: float = 0.5) -> nir.CubaLIF:
    dt, n = DEFAULT_DT, 4
    tau_mem = dt / (1 - beta)
    return nir.CubaLIF(
        tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, tau_mem), r=np.full(n, tau_mem / dt),
        v_leak=np.zeros(n), v_threshold=np.full(n, 0.5), w_in=np.full(n, tau_syn / dt),
    )  # fmt: skip


def test_cubalif_without_synaptic_memory_is_an_lif():
    g = from_nir(small_nir(cuba(tau_syn=DEFAULT_DT)), timesteps=3)
    (lif,) = g.lif_layers()
    assert (lif.name, lif.leak, lif.threshold) == ("lif1", 0.5, 0.5)
    simulate(g, torch.randn(2, 3))


def test_refuses_cubalif_with_synaptic_memory():
    with pytest.raises(NIRConversionError, match=r"'syn'.*CubaLIF.*synaptic memory"):
        from_nir(small_nir(cuba(tau_syn=2 * DEFAULT_DT), key="syn"), timesteps=3)


def test_refuses_per_neuron_thresholds():
    lif = nir.LIF(tau=np.full(4, 2e-4), r=np.full(4, 2.0), v_leak=np.zeros(4),
                  v_threshold=np.array([0.5, 0.5, 0.6, 0.5]))  # fmt: skip
    with pytest.raises(NIRConversionError, match=r"'lif1'.*LIF.*per-neuron v_threshold differ"):
        from_nir(small_nir(lif), timesteps=3)
    same = nir.LIF(
        tau=np.full(4, 2e-4), r=np.full(4, 2.0), v_leak=np.zeros(4), v_threshold=np.full(4, 0.5)
    )
    (node,) = from_nir(small_nir(same), timesteps=3).lif_layers()
    assert (node.leak, node.threshold) == (0.5, 0.5)


def test_refuses_non_chain_graph():
    g = small_nir(nir.IF(r=np.ones(4), v_threshold=np.ones(4)))
    g.nodes["fc3"] = nir.Linear(weight=np.ones((2, 4), np.float32))
    g.nodes["output2"] = nir.Output(output_type={"output": np.array([2])})
    g.edges += [("lif1", "fc3"), ("fc3", "output2")]
    with pytest.raises(NIRConversionError, match=r"'lif1'.*2 outgoing edges.*chain"):
        from_nir(g, timesteps=2)


def test_refuses_recurrence():
    g = small_nir(nir.IF(r=np.ones(4), v_threshold=np.ones(4)))
    g.nodes["rec"] = nir.Linear(weight=np.eye(4, dtype=np.float32))
    g.edges += [("lif1", "rec"), ("rec", "lif1")]
    with pytest.raises(NIRConversionError, match=r"'lif1'"):
        from_nir(g, timesteps=2)


def test_refuses_unknown_node_type():
    li = nir.LI(tau=np.full(4, 2e-4), r=np.ones(4), v_leak=np.zeros(4))
    with pytest.raises(NIRConversionError, match=r"'leaky_int' of type LI: no snncost mapping"):
        from_nir(small_nir(li, key="leaky_int"), timesteps=2)


def test_refuses_spiking_output_layer_and_missing_timesteps():
    rng = np.random.default_rng(1)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([3])}),
        "fc": nir.Linear(weight=rng.normal(size=(2, 3)).astype(np.float32)),
        "lif_out": nir.IF(r=np.ones(2), v_threshold=np.ones(2)),
        "output": nir.Output(output_type={"output": np.array([2])}),
    }
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "lif_out"), ("lif_out", "output")])
    with pytest.raises(NIRConversionError, match=r"'output'.*spiking layer 'lif_out'"):
        from_nir(g, timesteps=2)
    with pytest.raises(ValueError, match="timesteps="):
        from_nir(small_nir(nir.IF(r=np.ones(4), v_threshold=np.ones(4))))


def test_export_refuses_max_pool_and_ann():
    spec = VGGSpec(
        features=[4, "P"], classifier=[], in_channels=1, image_size=4, pool="max", dropout=0.0
    )
    with pytest.raises(NIRConversionError, match=r"'features.2' of type pool: max pooling"):
        to_nir(build_snn(spec, NeuronConfig(timesteps=2)))
    from snncost.models import build_ann

    with pytest.raises(ValueError, match="spiking"):
        to_nir(build_ann(VGGSpec(features=[4], classifier=[], in_channels=1, image_size=4)))


def test_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.nir"
    with pytest.raises(FileNotFoundError, match="nope.nir"):
        load_nir(missing)
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="bad.nir"):
        from_nir(bad, timesteps=2)
    with pytest.raises(ValueError, match="bad.nir"):
        snncost.evaluate(str(bad), timesteps=2)


def test_cli_export_nir(tmp_path, capsys):
    from snncost.__main__ import main
    from snncost.checkpoint import save_model

    spec = VGGSpec(features=[4, "P"], classifier=[8], in_channels=1, image_size=8, dropout=0.0)
    neurons = NeuronConfig(timesteps=3, leak=0.9)
    torch.manual_seed(0)
    model = build_snn(spec, neurons)
    ckpt = tmp_path / "snn.pt"
    save_model(ckpt, model, spec, "snn", neurons=neurons)
    out = tmp_path / "snn.nir"
    assert main(["export-nir", str(ckpt), str(out), "--timesteps", "5"]) == 0
    assert "wrote" in capsys.readouterr().err
    g = from_nir(out)
    assert g.timesteps == 5 and [n.leak for n in g.lif_layers()] == [pytest.approx(0.9)] * 2
    assert main(["export-nir", str(tmp_path / "missing.pt"), str(out)]) == 2
    assert "missing.pt" in capsys.readouterr().err


def test_sumpool_scale_folds_into_the_next_weights():
    rng = np.random.default_rng(2)
    w1 = rng.normal(size=(2, 1, 3, 3)).astype(np.float32)
    w2 = rng.normal(size=(3, 8)).astype(np.float32)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1, 4, 4])}),
        "conv": nir.Conv2d(
            input_shape=np.array([4, 4]),  # a tuple trips nir 1.0.4 with padding="same"
            weight=w1,
            stride=1,
            padding="same",
            dilation=1,
            groups=1,
            bias=np.zeros(2, np.float32),
        ),  # fmt: skip
        "if": nir.IF(r=np.ones((2, 4, 4)), v_threshold=np.full((2, 4, 4), 0.5)),
        "pool": nir.SumPool2d(
            kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])
        ),
        "flat": nir.Flatten(input_type={"input": np.array([2, 2, 2])}, start_dim=0, end_dim=-1),
        "fc": nir.Linear(weight=w2),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    keys = list(nodes)
    g = from_nir(
        nir.NIRGraph(nodes=nodes, edges=list(zip(keys, keys[1:], strict=False))), timesteps=2
    )
    assert [n.type_name for n in g] == [
        "input",
        "conv",
        "lif",
        "pool",
        "flatten",
        "linear",
        "output",
    ]
    assert g["conv"].padding == (1, 1) and g["pool"].kind == "avg"
    np.testing.assert_array_equal(g["fc"].weight, w2 * 4)  # sum = 4 x average
    simulate(g, torch.randn(2, 1, 4, 4))


def test_cli_evaluate_reads_a_nir_file(tmp_path, capsys):
    from snncost.__main__ import main

    path = save_nir(tiny_vgg("direct", 0.875), tmp_path / "m.nir")
    assert main(["evaluate", str(path), "--samples", "4", "--format", "json"]) == 0
    assert '"timesteps": 4' in capsys.readouterr().out


# ---------------------------------------------------------------------- nir versions
# tests/nir_golden holds one small graph written by each nir version (tests/make_nir_golden.py
# writes them); OTHER_NIR_PYTHON is an interpreter with another nir version installed
# (make test-nir-floor sets it) for files written live by that version.
GOLDEN = sorted((Path(__file__).parent / "nir_golden").glob("golden_nir-*.nir"))
OTHER_NIR_PYTHON = os.environ.get("SNNCOST_NIR_OTHER_PYTHON")


def test_golden_files_come_from_the_floor_and_a_newer_nir():
    versions = {p.stem.split("-")[1] for p in GOLDEN}
    assert "1.0.4" in versions and len(versions) >= 2, versions
    assert any(p.stem.endswith("node-metadata") for p in GOLDEN)


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_file_of_each_nir_version_imports(path):
    """A file from nir 1.0.4 reads with a newer nir and the other way round, losing nothing."""
    graph = from_nir(path)
    assert make_nir_golden.differences(graph) == []
    x = torch.rand(4, 1, 4, 4, generator=torch.Generator().manual_seed(6))
    golden = make_nir_golden.golden_graph()
    ra, rb = (simulate(g, replay_inputs(g, x, T=3)) for g in (golden, graph))
    assert_same_counts(ra, rb)
    np.testing.assert_array_equal(ra.logits, rb.logits)
    assert sum(int(c.output_spikes.sum()) for c in ra.layers) > 0


def test_golden_check_finds_a_difference(tmp_path):
    graph = make_nir_golden.golden_graph()
    graph["if"].threshold = 0.5
    path = save_nir(graph, tmp_path / "changed.nir")
    assert make_nir_golden.differences(from_nir(path)) == ["if.threshold: 0.5 != 0.625"]


def _other_nir(*args: str) -> subprocess.CompletedProcess:
    root = Path(__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [OTHER_NIR_PYTHON, str(root / "tests" / "make_nir_golden.py"), *args]
    return subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(
    not OTHER_NIR_PYTHON,
    reason="SNNCOST_NIR_OTHER_PYTHON (a python with another nir version) is not set; "
    "make test-nir-floor sets it; the committed golden files are checked anyway",
)
def test_files_written_live_cross_between_nir_versions(tmp_path):
    probe = subprocess.run([OTHER_NIR_PYTHON, "-c", "import nir; print(nir.version)"],
                           capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    other = probe.stdout.strip()
    assert other != nir.version, f"SNNCOST_NIR_OTHER_PYTHON has the same nir {other}"
    theirs = tmp_path / f"written_by_nir-{other}.nir"
    done = _other_nir("write", str(theirs))
    assert done.returncode == 0, done.stderr
    assert make_nir_golden.differences(from_nir(theirs)) == []
    ours = save_nir(make_nir_golden.golden_graph(), tmp_path / f"written_by_nir-{nir.version}.nir")
    done = _other_nir("check", str(ours))
    assert done.returncode == 0, done.stdout + done.stderr


def test_reading_a_newer_file_leaves_out_only_what_loses_nothing(monkeypatch):
    """What nir 1.0.4 does with a file from a newer nir, on any nir: node metadata it has
    no field for moves to the graph's, a zero v_reset is left out, a non-zero one is kept."""
    from snncost.interop import nir_compat

    no_metadata_in_104 = {"Input", "Output", "Conv2d", "Linear", "AvgPool2d", "Scale"}

    def like_nir_104(node_type, name):
        return name == "metadata" and node_type.__name__ not in no_metadata_in_104

    monkeypatch.setattr(nir_compat, "accepts_keyword", like_nir_104)
    path = next(p for p in GOLDEN if p.stem.endswith("node-metadata"))
    g = nir_compat.read_from_newer_nir(path)
    moved = g.metadata["snncost"]["nodes"]
    assert set(moved) == {"input", "conv", "pool", "hidden", "output"}
    assert moved["input"]["encoding"] == "poisson" and moved["conv"]["weight_bits"] == 4
    assert "leak" in g.nodes["lif"].metadata["snncost"]  # LIF keeps its own metadata
    assert make_nir_golden.differences(from_nir(g)) == []

    node = {"type": "LIF", "v_reset": np.zeros(2), "metadata": {"other_tool": 1}}
    graph = {"nodes": {"a": node, "b": {"type": "IF", "v_reset": np.ones(2)}}}
    nir_compat._fit_to_installed_nir(graph)
    assert graph["nodes"]["a"] == {"type": "LIF", "metadata": {"other_tool": 1}}
    assert "v_reset" in graph["nodes"]["b"]  # a reset to 1 would be lost: nir's error names it
    assert "metadata" not in graph


@pytest.mark.parametrize("fields", [{"charge": "decay-input", "tau": 2.0}, {"reset": "hard"}])
def test_to_nir_refuses_neuron_kinds_it_cannot_write(fields):
    """A SpikingJelly charge rule or a hard reset has no exact NIR form: refused, naming the node."""
    from snncost.graph import InputNode, LayerGraph, LIFNode, LinearNode, OutputNode
    from snncost.interop.nir import NIRConversionError, to_nir

    w = np.ones((3, 4), np.float32)
    graph = LayerGraph([
        InputNode("in", shape=(4,), encoding="direct", timesteps=2),
        LinearNode("fc1", weight=w, in_shape=(4,), out_shape=(3,)),
        LIFNode("sj", shape=(3,), **fields),
        LinearNode("fc2", weight=np.ones((2, 3), np.float32), in_shape=(3,), out_shape=(2,)),
        OutputNode("out", shape=(2,)),
    ])  # fmt: skip
    with pytest.raises(NIRConversionError, match="'sj' of type lif.*charge"):
        to_nir(graph)
