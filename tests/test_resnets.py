"""The residual zoo: spiking ResNet-19 (tdBN) and SEW-ResNet-18, their pruning groups and presets."""

import json
import math

import pytest
import torch
from torch import nn

import snncost.nn as sn
from snncost.checkpoint import model_record, rebuild_model
from snncost.compress import (
    collect_membrane_stats,
    plan_spatial_pruning,
    spec_cost,
    warm_start_weights,
)
from snncost.models import (
    NeuronConfig,
    ResNetSpec,
    build_ann,
    build_snn,
    norm_layers,
    spec_from_arch,
    spec_from_dict,
    transfer_weights,
    weight_layers,
)
from snncost.models.resnet import CurrentAddBlock, SEWBlock
from trainers.config import resolve_config
from trainers.data import make_synthetic
from trainers.pipeline import model_spec

NEURONS = NeuronConfig(timesteps=2, threshold=0.5)


def tiny(block: str, **kw) -> ResNetSpec:
    """A ResNet small enough for CPU tests: identity and projection shortcuts, a hidden head."""
    sizes = dict(stem=8, widths=[8, 12], depths=[2, 2], strides=[1, 2], head=[10], image_size=8)
    return ResNetSpec(block=block, **{**sizes, **kw})


def _macs_by_hooks(model: nn.Module, x: torch.Tensor) -> int:
    """Dense MACs per sample of every conv/linear, from the shapes seen in a real forward pass."""
    total = 0

    def hook(m, _inputs, out):
        nonlocal total
        per_output = (
            m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            if isinstance(m, nn.Conv2d)
            else m.in_features
        )
        total += per_output * out[0].numel()

    handles = [m.register_forward_hook(hook) for _, m in weight_layers(model)]
    model.eval()
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


# ------------------------------------------------------------------ the published networks


@pytest.mark.parametrize(
    "arch, convs, linears, params",
    # ResNet-19: 1 stem + 2 x 8 block convs (+2 conv1x1 shortcuts), FC 256 and FC 10
    [("resnet19", 17, 2, 12_687_232), ("sew-resnet18", 17, 1, 11_164_352)],
)
def test_published_networks_have_their_layers_and_shapes(arch, convs, linears, params):
    spec = spec_from_arch(arch)
    ann, snn = build_ann(spec), build_snn(spec, NeuronConfig(timesteps=1))
    layers = weight_layers(ann)
    assert sum(isinstance(m, nn.Conv2d) and "shortcut" not in n for n, m in layers) == convs
    assert sum(isinstance(m, nn.Linear) for _, m in layers) == linears
    assert sum(m.weight.numel() for _, m in layers) == params == spec.cost()[0]
    x = torch.randn(1, 3, 32, 32)
    assert spec.cost()[1] == _macs_by_hooks(ann, x)
    assert ann(x).shape == (1, 10) and snn(x).shape == (1, 10)
    assert snn.input_shape == (3, 32, 32) and snn.spec is spec
    assert [n for n, _ in weight_layers(snn)] == [n for n, _ in layers]


@pytest.mark.parametrize("block", ["tdbn", "sew"])
def test_ann_weights_load_into_the_snn(block):
    spec = tiny(block)
    torch.manual_seed(0)
    ann, snn = build_ann(spec), build_snn(spec, NEURONS)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so a missed buffer would show
        for _, bn in norm_layers(ann):
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2.0)
            bn.bias.normal_()
    copied = transfer_weights(ann, snn)
    assert len(copied) == len(weight_layers(ann)) + len(norm_layers(ann))
    snn_state = snn.state_dict()
    for key, value in ann.state_dict().items():
        assert torch.equal(snn_state[key], value), key
    # same current into the first neuron: the SNN's stem (time 0) is the ANN's pre-activation
    seen = {}
    ann.stem[2].register_forward_pre_hook(lambda m, a: seen.update(ann=a[0]))
    snn.stem[2].register_forward_pre_hook(lambda m, a: seen.update(snn=a[0][0]))
    ann.eval(), snn.eval()
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        ann(x), snn(x)
    torch.testing.assert_close(seen["snn"], seen["ann"])


def test_blocks_compute_their_papers_formulas():
    torch.manual_seed(1)
    x = (torch.rand(2, 3, 8, 4, 4) < 0.5).float()  # [T, B, C, H, W] spikes
    for connect, g in {
        "ADD": lambda a, s: a + s,
        "AND": lambda a, s: a * s,
        "IAND": lambda a, s: (1 - a) * s,
    }.items():
        spec = tiny("sew", connect=connect)
        block = build_snn(spec, NEURONS).layer1[1].eval()
        assert isinstance(block, SEWBlock) and block.shortcut is None
        with torch.no_grad():
            a = block.act2(block.conv2(block.act1(block.conv1(x))))
            assert torch.equal(block(x), g(a, x))
    block = build_snn(tiny("tdbn"), NEURONS).layer2[0].eval()
    assert isinstance(block, CurrentAddBlock)
    with torch.no_grad():
        current = block.conv2(block.act1(block.conv1(x))) + block.shortcut(x)
        assert torch.equal(block(x), block.act2(current))
    with pytest.raises(ValueError, match="no ANN form"):
        build_ann(tiny("sew", connect="AND"))


def test_tdbn_batchnorm_is_over_time_and_batch_and_starts_at_alpha_vth():
    snn = build_snn(tiny("tdbn"), NEURONS)
    norms = dict(norm_layers(snn))
    assert norms["stem.1"].weight.eq(0.5).all() and norms["layer1.0.conv1.1"].weight.eq(0.5).all()
    alpha = 0.5 / math.sqrt(2)
    assert torch.allclose(norms["layer1.0.conv2.1"].weight, torch.full((8,), alpha))
    assert torch.allclose(norms["layer2.0.shortcut.1"].weight, torch.full((12,), alpha))
    # training-mode statistics are those of the [T*B, C, H, W] view
    unit = snn.layer1[0].conv1.train()
    x = torch.randn(2, 3, 8, 8, 8)
    out = unit(x)
    ref = unit[0](x.flatten(0, 1))
    mean, var = ref.mean((0, 2, 3)), ref.var((0, 2, 3), unbiased=False)
    expected = (ref - mean[None, :, None, None]) / torch.sqrt(
        var[None, :, None, None] + unit[1].eps
    )
    expected = expected * unit[1].weight[None, :, None, None] + unit[1].bias[None, :, None, None]
    torch.testing.assert_close(out, expected.unflatten(0, (2, 3)), atol=1e-5, rtol=1e-5)


def test_blocks_trace_with_torch_fx():
    class Leaves(torch.fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return isinstance(m, (sn.SpikingSequential, sn.LIF)) or super().is_leaf_module(
                m, qualname
            )

    x = (torch.rand(2, 3, 8, 8, 8) < 0.5).float()
    for spec, ops in (
        (tiny("tdbn"), {"add"}),
        (tiny("sew"), {"add"}),
        (tiny("sew", connect="IAND"), {"mul", "sub"}),
    ):
        snn = build_snn(spec, NEURONS).eval()
        for name in ("layer1", "layer2"):
            block = getattr(snn, name)[0]
            graph = Leaves().trace(block)
            called = {n.target.__name__ for n in graph.nodes if n.op == "call_function"}
            assert ops <= called, (spec.block, spec.connect, called)
            assert {n.target for n in graph.nodes if n.op == "call_module"} >= {
                "conv1",
                "act1",
                "conv2",
                "act2",
            }
            traced = torch.fx.GraphModule(block, graph)
            with torch.no_grad():
                assert torch.equal(traced(x), block(x))


def test_checkpoint_rebuilds_a_resnet():
    spec = tiny("sew", connect="IAND", dropout=0.1)
    snn = build_snn(spec, NEURONS)
    record = model_record(snn, spec, "snn", NEURONS)
    assert record["spec"]["family"] == "resnet" and spec_from_dict(record["spec"]) == spec
    again = rebuild_model(record, "mem")
    for key, value in snn.state_dict().items():
        assert torch.equal(again.state_dict()[key], value)
    x = torch.randn(2, 3, 8, 8)
    snn.eval()
    assert torch.equal(again(x), snn(x))


def test_bad_resnet_specs_are_named():
    with pytest.raises(ValueError, match=r"widths\[1\]"):
        tiny("sew", widths=[8, 0])
    with pytest.raises(ValueError, match="depths has 1 entries"):
        tiny("sew", depths=[2])
    with pytest.raises(ValueError, match="stage 2.*needs a projection"):
        tiny("sew", projections=[False, False])
    with pytest.raises(ValueError, match="only SEW blocks take AND"):
        tiny("tdbn", connect="AND")
    with pytest.raises(ValueError, match="stem = 0"):
        tiny("sew", stem=0)


# ------------------------------------------------------------------ channel groups and pruning


@pytest.mark.parametrize("block", ["tdbn", "sew"])
def test_channel_groups_match_the_built_network(block):
    spec = tiny(block)
    snn = build_snn(spec, NEURONS)
    modules = dict(snn.named_modules())
    groups = spec.channel_groups()
    named = [g.name for g in groups]
    assert named == ["stem.2", "layer1.0.act1", "layer1.1.act1", "layer2.0.act1",
                     "layer2.0.shortcut.2" if block == "sew" else "layer2.0.act2", "layer2.1.act1", "head.3"]  # fmt: skip
    # every module is in at most one group as producer/norm and one as consumer
    produced = [p for g in groups for p in (*g.producers, *g.norms)]
    consumed = [c for g in groups for c in g.consumers]
    assert len(produced) == len(set(produced)) and len(consumed) == len(set(consumed))
    for g in groups:
        for site in g.sites:
            assert isinstance(modules[site], sn.LIF)
        for p in g.producers:
            assert modules[p].weight.shape[0] == g.width
        for bn in g.norms:
            assert isinstance(modules[bn], nn.BatchNorm2d) and modules[bn].num_features == g.width
        for c in g.consumers:
            assert modules[c].weight.shape[1] == g.width
    # the stem and stage 1 are joined by identity shortcuts: one group
    assert groups[0].sites == ("stem.2", "layer1.0.act2", "layer1.1.act2")
    # every conv/linear but the output is produced by some group, and every input is read from one
    weights = [n for n, _ in weight_layers(snn)]
    assert set(produced) >= set(weights[:-1]) and set(consumed) == set(weights[1:])


def _kill_channels(model: nn.Module, norms: tuple[str, ...], dead: list[int]) -> None:
    """Zero the BatchNorm outputs of ``dead`` channels: they then carry nothing anywhere."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name in norms:
            modules[name].weight[dead] = 0.0
            modules[name].bias[dead] = 0.0


@pytest.mark.parametrize("block", ["tdbn", "sew"])
def test_pruning_dead_tied_channels_keeps_the_function(block):
    """Channels that are zero everywhere, removed from a tied group, change no logit."""
    spec = tiny(block, widths=[8, 12])
    torch.manual_seed(2)
    ann = build_ann(spec)
    x = torch.randn(16, 3, 8, 8)
    ann.train()
    with torch.no_grad():
        ann(x)  # non-trivial running statistics
    ann.eval()
    groups = {g.name: g for g in spec.channel_groups()}
    tied = groups["layer2.0.shortcut.2" if block == "sew" else "layer2.0.act2"]
    _kill_channels(ann, tied.norms, [1, 4, 5])
    _kill_channels(ann, groups["stem.2"].norms, [0, 7])
    _kill_channels(ann, groups["layer1.1.act1"].norms, [3])
    stats = collect_membrane_stats(ann, [x])
    overrides = {
        name: g.width for name, g in groups.items()
    }  # every other group keeps all its channels
    overrides.update({tied.name: 9, "stem.2": 6, "layer1.1.act1": 7})
    plan = plan_spatial_pruning(ann, stats, overrides=overrides)
    pruned_spec = plan.pruned_spec
    assert pruned_spec.stem == pruned_spec.widths[0] == 6 and pruned_spec.widths[1] == 9
    assert pruned_spec.mids[0][1] == 7 and pruned_spec.projections == spec.projections
    small = build_ann(pruned_spec).eval()
    kept = warm_start_weights(ann, small, stats, plan)
    assert (
        kept["stem.0"] == kept["layer1.0.conv2.0"] == kept["layer1.1.conv2.0"] == [1, 2, 3, 4, 5, 6]
    )
    assert kept["layer2.0.shortcut.0"] == kept["layer2.0.conv2.0"] == [0, 2, 3, 6, 7, 8, 9, 10, 11]
    with torch.no_grad():
        torch.testing.assert_close(small(x), ann(x), atol=1e-5, rtol=1e-5)
    assert spec_cost(pruned_spec)[0] == sum(m.weight.numel() for _, m in weight_layers(small))


@pytest.mark.parametrize("block", ["tdbn", "sew"])
def test_snn_plan_ties_widths_to_the_widest_site(block):
    spec = tiny(block)
    torch.manual_seed(3)
    snn = build_snn(spec, NEURONS)
    stats = collect_membrane_stats(snn, [torch.randn(8, 3, 8, 8) for _ in range(2)])
    assert set(stats) == {s for g in spec.channel_groups() for s in g.sites}
    plan = plan_spatial_pruning(snn, stats, threshold=0.9)
    by_group: dict[str, list] = {}
    for layer in plan.layers:
        by_group.setdefault(layer.group, []).append(layer)
    for layers in by_group.values():
        assert len({lp.new_width for lp in layers}) == 1  # tied widths are equal
        assert layers[0].new_width == max(lp.significant for lp in layers)
    assert (
        len(by_group["stem.2"]) == 3
        and plan.layer("layer1.1.act2").weight_layer == "layer1.1.conv2.0"
    )
    assert plan.layer("layer2.0.act2").weight_layer == "layer2.0.conv2.0"
    small = build_snn(plan.pruned_spec, NEURONS)
    warm_start_weights(snn, small, stats, plan)
    assert small(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    assert "| group | own width |" in plan.to_markdown()
    json.dumps(plan.to_dict())


# ------------------------------------------------------------------ presets


def test_model_spec_resizes_a_resnet_preset():
    from trainers.data import DataBundle

    train, test = make_synthetic(n_train=8, n_test=4, classes=10, channels=3, size=32)
    data = DataBundle(train, test, test, (0.5,) * 3, (0.25,) * 3, "cifar10")
    cfg = resolve_config(
        "cifar10-resnet19", overrides=["model.widths=[8,8,16,32]", "model.classifier=[16]"]
    )
    spec = model_spec(cfg, data)
    assert (spec.stem, spec.widths, spec.depths, spec.head) == (8, [8, 16, 32], [3, 3, 2], [16])
    assert model_spec(resolve_config("cifar10-sew18"), data) == spec_from_arch("sew-resnet18")
    with pytest.raises(ValueError, match="needs 4 entries"):
        model_spec(resolve_config("cifar10-resnet19", overrides=["model.widths=[8,8]"]), data)
    with pytest.raises(ValueError, match="VGGs only"):
        model_spec(resolve_config("cifar10-resnet19", overrides=["model.features=[8]"]), data)


TINY_RUN = [
    "progress=false", "data.batch_size=16", "data.augment=true",
    "ann.epochs=1", "snn.epochs=1", "snn.timesteps=2", "convert.batches=1",
    "spatial.epochs=1", "spatial.batches=2", "spatial.ann_epochs=1", "temporal.schedule=[2,1]", "temporal.epochs=1",
    "quantize.sweep=[8]", "evaluate.samples=8", "evaluate.verify_samples=4", "evaluate.noise_stds=[]",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset, widths", [("cifar10-resnet19", "[4,4,8,8]"), ("cifar10-sew18", "[4,4,4,8,8]")]
)
def test_resnet_presets_train_one_epoch_per_stage(preset, widths, runs_dir, monkeypatch):
    """Both presets, every training stage for one epoch, on a generated CIFAR-shaped subset.

    The test never reads CIFAR-10 itself (CI has no data): a generated set of
    3x32x32 images in 10 classes stands in for it; the preset's narrowest
    settings (widths, T, epochs) are overridden so it runs in seconds. The
    evaluate stage traces each variant into a LayerGraph DAG, replays it
    (checked spike for spike against the forward on 4 images) and costs it.
    """
    import trainers.data as data_module
    from trainers.run import main

    monkeypatch.setattr(
        data_module,
        "_cifar10",
        lambda cfg, seed: make_synthetic(60, 16, classes=10, channels=3, size=32, seed=seed),
    )
    assert (
        main(
            [
                "--preset",
                preset,
                *TINY_RUN,
                f"model.widths={widths}",
                f"runs_dir={runs_dir}",
                "name=r",
            ]
        )
        == 0
    )
    records = [json.loads(x) for x in open(f"{runs_dir}/r/metrics.jsonl")]
    stages = list(dict.fromkeys(r["stage"] for r in records))
    assert stages == [
        "ann",
        "convert",
        "snn",
        "spatial-ann",
        "spatial",
        "temporal-T2",
        "temporal-T1",
        "temporal",
        "quantize",
    ]
    results = json.load(open(f"{runs_dir}/r/results.json"))
    snns = [v for v in results["variants"] if v.get("verified_samples")]
    assert len(snns) >= 3 and all(v["spike_mismatches"] == 0 and v["spikes_compared"] > 0 for v in snns)
    plan = json.load(open(f"{runs_dir}/r/spatial_plan.json"))
    groups: dict[str, set] = {}
    for layer in plan["layers"]:
        groups.setdefault(layer["group"], set()).add(layer["new_width"])
    assert all(len(w) == 1 for w in groups.values())
    pruned = spec_from_dict(plan["pruned_spec"])
    assert pruned.stem == pruned.widths[0]  # the stem is tied to stage 1 by identity shortcuts
