"""The VGG family: shapes, ANN<->SNN weight transfer, custom widths."""

import pytest
import torch

from snncost.models import (
    CFGS,
    NeuronConfig,
    VGGSpec,
    build_ann,
    build_snn,
    transfer_weights,
    weight_layers,
)


@pytest.mark.parametrize("arch", ["vgg5", "vgg9", "vgg11", "vgg-tiny"])
def test_forward_shapes(arch):
    size = 8 if arch == "vgg-tiny" else 32
    spec = VGGSpec.from_arch(arch, image_size=size, in_channels=3, num_classes=7)
    x = torch.randn(2, 3, size, size)
    assert build_ann(spec)(x).shape == (2, 7)
    assert build_snn(spec, NeuronConfig(timesteps=2))(x).shape == (2, 7)


def test_vgg16_layer_count():
    spec = VGGSpec.from_arch("vgg16")
    assert len(weight_layers(build_ann(spec))) == 16


def test_weight_transfer_round_trip():
    spec = VGGSpec.from_arch("vgg5", bias=True)
    ann, snn, back = build_ann(spec), build_snn(spec), build_ann(spec)
    transfer_weights(ann, snn)
    transfer_weights(snn, back)
    for (n1, a), (n2, b) in zip(weight_layers(ann), weight_layers(back), strict=False):
        assert n1 == n2
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_weight_transfer_names_the_mismatch():
    small = VGGSpec.from_arch("vgg5")
    wide = small.with_widths([32, 128, 128, 1024])
    with pytest.raises(ValueError, match=r"features\.0\.weight: shape"):
        transfer_weights(build_ann(wide), build_snn(small))


def test_with_widths_rebuilds_smaller():
    spec = VGGSpec.from_arch("vgg9")
    small = spec.with_widths([8, 8, 16, 16, 32, 32, 32, 64])
    assert small.widths() == [8, 8, 16, 16, 32, 32, 32, 64, 10]
    assert build_snn(small, NeuronConfig(timesteps=1))(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_bad_specs_are_named():
    with pytest.raises(ValueError, match=r"features\[1\]"):
        VGGSpec(features=[8, "X"], classifier=[4])
    with pytest.raises(ValueError, match="unknown arch"):
        VGGSpec.from_arch("vgg7")
    with pytest.raises(ValueError, match="below 1px"):
        VGGSpec(features=[8, "P", "P", "P", "P"], classifier=[], image_size=8)


def test_snn_timesteps_settable_and_max_pool():
    spec = VGGSpec(features=[4, "P"], classifier=[], in_channels=1, image_size=4, pool="max")
    snn = build_snn(spec, NeuronConfig(timesteps=3, encoding="poisson"))
    assert snn.timesteps == 3
    snn.timesteps = 5
    assert snn(torch.rand(2, 1, 4, 4)).shape == (2, 10)
    assert set(CFGS) >= {"vgg5", "vgg9", "vgg11", "vgg16"}
