"""PCA-based spatial pruning: statistics, width selection, plans, rebuild, warm start, plot."""

import pytest
import torch

from snncost.compress import (
    MembraneStats,
    SpatialPlan,
    collect_membrane_stats,
    pca_explained_variance,
    plan_spatial_pruning,
    plot_explained_variance,
    select_width,
    spec_cost,
    warm_start_weights,
)
from snncost.models import NeuronConfig, VGGSpec, build_ann, build_snn, weight_layers

SPEC = VGGSpec(
    features=[8, "P", 16, "P"], classifier=[32], in_channels=1, image_size=8, num_classes=10
)
NEURONS = NeuronConfig(timesteps=4, encoding="direct", threshold=0.5)


def _batches(n=4, batch=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 1, 8, 8, generator=g) for _ in range(n)]


def _low_rank_first_conv(model, rank, seed=1):
    """Make features.0 output span exactly ``rank`` channel directions: W = A @ B."""
    g = torch.Generator().manual_seed(seed)
    conv = model.features[0]
    out, cin, kh, kw = conv.weight.shape
    a = torch.randn(out, rank, generator=g)
    b = torch.randn(rank, cin * kh * kw, generator=g)
    with torch.no_grad():
        conv.weight.copy_((a @ b).reshape(out, cin, kh, kw) * 0.3)


def _correlated(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) * torch.logspace(0, -3, d)[None, :]
    return torch.randn(n, d, generator=g) @ mix.T + 3.0


# ------------------------------------------------------------------ statistics


def test_streaming_stats_match_direct_svd():
    x = _correlated(500, 12)
    stats = MembraneStats(12)
    for chunk in x.split(64):
        stats.update(chunk)
    assert stats.count == 500
    direct = pca_explained_variance(x)
    torch.testing.assert_close(stats.explained_variance_ratio(), direct, atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(stats.covariance(), torch.cov(x.double().T), atol=1e-10, rtol=1e-8)
    assert torch.all(direct[:-1] >= direct[1:]) and abs(direct.sum().item() - 1) < 1e-12


def test_merging_halves_equals_whole():
    x = _correlated(300, 7, seed=3)
    a, b = MembraneStats(7).update(x[:120]), MembraneStats(7).update(x[120:])
    a.merge(b)
    assert a.count == 300
    torch.testing.assert_close(
        a.explained_variance_ratio(), pca_explained_variance(x), atol=1e-10, rtol=1e-8
    )
    a.all_reduce()  # no process group: a no-op
    assert a.count == 300
    with pytest.raises(ValueError, match="dimension"):
        a.merge(MembraneStats(3))
    with pytest.raises(ValueError, match=r"\[N, 7\]"):
        a.update(torch.zeros(4, 5))


def test_direct_pca_pads_when_fewer_samples_than_dims():
    ratio = pca_explained_variance(torch.randn(3, 10))
    assert ratio.shape == (10,) and torch.all(ratio[2:] < 1e-12)


def test_collected_samples_are_images_times_positions_by_channels():
    ann = build_ann(SPEC)
    batches = _batches(n=2, batch=5)
    stats = collect_membrane_stats(ann, batches)
    assert list(stats) == ["features.1", "features.4", "classifier.2"]
    assert stats["features.1"].dim == 8 and stats["features.1"].count == 2 * 5 * 8 * 8
    assert stats["features.4"].dim == 16 and stats["features.4"].count == 2 * 5 * 4 * 4
    assert stats["classifier.2"].dim == 32 and stats["classifier.2"].count == 2 * 5
    # the statistics are those of the conv pre-activation, channels as dimensions
    out = torch.cat([ann.features[0](x) for x in batches]).detach()
    samples = out.permute(0, 2, 3, 1).reshape(-1, 8)
    torch.testing.assert_close(stats["features.1"].mean(), samples.double().mean(0))
    assert ann.training  # training flag restored


def test_snn_stats_are_the_time_mean_of_the_lif_input():
    snn = build_snn(SPEC, NEURONS)
    x = _batches(n=1, batch=6)[0]
    seen = {}
    lif = snn.classifier[2]
    handle = lif.register_forward_pre_hook(lambda m, a: seen.setdefault("I", a[0].clone()))
    snn.eval()
    with torch.no_grad():
        snn(x)
    handle.remove()
    stats = collect_membrane_stats(snn, [(x, torch.zeros(6))], progress=False)
    assert list(stats) == ["features.1", "features.4", "classifier.2"]
    assert stats["classifier.2"].count == 6
    torch.testing.assert_close(stats["classifier.2"].mean(), seen["I"].mean(0).double().mean(0))


def test_max_batches_limits_the_pass():
    stats = collect_membrane_stats(build_ann(SPEC), _batches(n=5, batch=2), max_batches=2)
    assert stats["classifier.2"].count == 4


# ------------------------------------------------------------------ width selection


def test_select_width():
    ratio = torch.tensor([0.6, 0.3, 0.0999, 0.0001])
    assert select_width(ratio, 0.5) == 1
    assert select_width(ratio, 0.9) == 2
    assert select_width(ratio, 0.999) == 3
    assert select_width(ratio, 1.0) == 4
    assert select_width([0.0, 0.0], 0.9) == 1  # a dead layer keeps one channel
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="threshold"):
            select_width(ratio, bad)
    with pytest.raises(TypeError, match="threshold"):
        select_width(ratio, "0.9")


@pytest.mark.parametrize("form", ["ann", "snn"])
@pytest.mark.parametrize("rank", [1, 3, 5])
def test_low_rank_layer_gets_its_rank(form, rank):
    model = build_ann(SPEC) if form == "ann" else build_snn(SPEC, NEURONS)
    _low_rank_first_conv(model, rank)
    stats = collect_membrane_stats(model, _batches())
    plan = plan_spatial_pruning(model, stats, threshold=0.999)
    first = plan.layer("features.1")
    assert first.weight_layer == "features.0"
    assert first.original_width == 8 and first.new_width == rank
    assert first.kept_variance == pytest.approx(1.0, abs=1e-9)


# ------------------------------------------------------------------ plans


def _plan(model=None, **kw):
    model = model or build_ann(SPEC)
    _low_rank_first_conv(model, 3)
    stats = collect_membrane_stats(model, _batches())
    return model, stats, plan_spatial_pruning(model, stats, **kw)


def test_plan_overrides():
    model, stats, base = _plan(threshold=0.9)
    _, _, plan = _plan(
        model, threshold=0.9, overrides={"features.0": 2, "classifier.2": 1.0, "features.4": 0.5}
    )
    assert plan.layer("features.1").new_width == 2 and plan.layer("features.1").threshold is None
    assert (
        plan.layer("classifier.2").new_width == 32 and plan.layer("classifier.2").threshold == 1.0
    )
    assert plan.layer("features.4").new_width <= base.layer("features.4").new_width
    assert plan.layer("features.4").threshold == 0.5
    assert plan.threshold == 0.9
    # a fixed width needs no statistics
    partial = {k: v for k, v in stats.items() if k != "features.1"}
    assert plan_spatial_pruning(model, partial, overrides={"features.1": 4}).widths[0] == 4
    with pytest.raises(ValueError, match="no statistics for layer features.1"):
        plan_spatial_pruning(model, partial)


def test_plan_errors_name_the_problem():
    model, stats, _ = _plan()
    with pytest.raises(
        ValueError, match=r"unknown layer 'features\.9'.*features\.1 \(or features\.0\)"
    ):
        plan_spatial_pruning(model, stats, overrides={"features.9": 0.9})
    with pytest.raises(ValueError, match="threshold must be in"):
        plan_spatial_pruning(model, stats, threshold=1.2)
    with pytest.raises(ValueError, match=r"override 'features\.4'"):
        plan_spatial_pruning(model, stats, overrides={"features.4": 0.0})
    with pytest.raises(ValueError, match=r"fixed width must be in \[1, 8\]"):
        plan_spatial_pruning(model, stats, overrides={"features.1": 9})
    with pytest.raises(TypeError, match="float threshold or an int width"):
        plan_spatial_pruning(model, stats, overrides={"features.1": True})
    with pytest.raises(ValueError, match="overridden twice"):
        plan_spatial_pruning(model, stats, overrides={"features.1": 2, "features.0": 3})
    bare = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
    with pytest.raises(ValueError, match="no .spec"):
        plan_spatial_pruning(bare, stats)


def test_plan_rebuilds_a_working_network_and_reports_savings():
    _, _, plan = _plan(threshold=0.99)
    assert isinstance(plan, SpatialPlan)
    pruned = plan.pruned_spec
    assert pruned.widths() == [*plan.widths, 10]
    assert plan.widths[0] == 3
    snn = build_snn(pruned, NEURONS)
    assert snn(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    ann = build_ann(pruned)
    assert ann(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    # the spec-only cost model counts what the built network holds
    params = sum(p.numel() for _, m in weight_layers(ann) for p in m.parameters())
    assert spec_cost(pruned)[0] == params
    c = plan.compression
    assert c.params_before == spec_cost(SPEC)[0] and c.params_after == params
    assert c.params_after < c.params_before and c.macs_after < c.macs_before
    # first conv: 1 * 8 * 9 weights on an 8x8 map
    assert spec_cost(
        VGGSpec(features=[8], classifier=[], in_channels=1, image_size=8, num_classes=1)
    )[1] == (8 * 9 * 64 + 8 * 64)
    md = plan.to_markdown()
    assert "| features.1 | features.0 | conv | 8 | 3 |" in md and "parameters" in md
    d = plan.to_dict()
    assert d["layers"][0]["new_width"] == 3 and d["compression"]["params_after"] == params
    assert len(d["layers"][0]["explained_variance"]) == 8


# ------------------------------------------------------------------ warm start


@pytest.mark.parametrize("form", ["ann", "snn"])
def test_warm_start_copies_the_selected_slices(form):
    spec = VGGSpec(
        features=[8, "P", 16, "P"],
        classifier=[32],
        in_channels=1,
        image_size=8,
        num_classes=10,
        bias=True,
    )
    build = (lambda s: build_ann(s)) if form == "ann" else (lambda s: build_snn(s, NEURONS))
    src = build(spec)
    _low_rank_first_conv(src, 3)
    with torch.no_grad():
        for _, m in weight_layers(src):
            m.bias.normal_()
    stats = collect_membrane_stats(src, _batches())
    plan = plan_spatial_pruning(
        src, stats, threshold=0.99, overrides={"features.4": 5, "classifier.2": 7}
    )
    if form == "snn":
        with torch.no_grad():
            src.features[4].threshold.fill_(0.7)
            src.classifier[2].leak.fill_(0.9)
    dst = build(plan.pruned_spec)
    kept = warm_start_weights(src, dst, stats, plan)

    k0, k1, k2 = kept["features.0"], kept["features.3"], kept["classifier.1"]
    assert len(k0) == 3 and len(k1) == 5 and len(k2) == 7
    assert k0 == sorted(k0) and kept["classifier.4"] == list(range(10))
    s, d = dict(weight_layers(src)), dict(weight_layers(dst))
    # first conv: out-channel rows
    assert torch.equal(d["features.0"].weight[1], s["features.0"].weight[k0[1]])
    assert torch.equal(d["features.0"].bias, s["features.0"].bias[k0])
    # second conv: kept out rows, and only the kept inputs of the first conv
    assert torch.equal(d["features.3"].weight[2], s["features.3"].weight[k1[2]][k0])
    # first linear after flatten: channel-major blocks of H*W = 2*2
    hw = 4
    cols = [c * hw + i for c in k1 for i in range(hw)]
    assert torch.equal(d["classifier.1"].weight, s["classifier.1"].weight[k2][:, cols])
    assert torch.equal(d["classifier.4"].weight, s["classifier.4"].weight[:, k2])
    assert torch.equal(d["classifier.4"].bias, s["classifier.4"].bias)
    # the kept first-conv channels span the low-rank output: rank preserved
    assert torch.linalg.matrix_rank(d["features.0"].weight.flatten(1)).item() == 3
    out = dst(torch.randn(2, 1, 8, 8))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    if form == "snn":
        assert dst.features[4].threshold.item() == pytest.approx(0.7)
        assert dst.classifier[2].leak.item() == pytest.approx(0.9)


def test_warm_start_picks_the_channels_carrying_the_variance():
    # Channels 2 and 5 carry signal, the others are almost silent: they must be kept.
    src = build_ann(SPEC)
    with torch.no_grad():
        src.features[0].weight.mul_(1e-3)
        src.features[0].weight[2] *= 1e3
        src.features[0].weight[5] *= 1e3
    stats = collect_membrane_stats(src, _batches())
    plan = plan_spatial_pruning(src, stats, overrides={"features.1": 2})
    dst = build_ann(plan.pruned_spec)
    kept = warm_start_weights(src, dst, stats, plan)
    assert kept["features.0"] == [2, 5]


def test_warm_start_refuses_a_mismatched_destination():
    src, stats, plan = _plan(threshold=0.99)
    with pytest.raises(ValueError, match="does not fit"):
        warm_start_weights(src, build_ann(SPEC), stats, plan)


# ------------------------------------------------------------------ plot


def test_plot_writes_a_png(tmp_path):
    _, _, plan = _plan(overrides={"classifier.2": 16, "features.4": 0.99})
    path = tmp_path / "plots" / "pca.png"
    fig = plot_explained_variance(plan, path)
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 2
