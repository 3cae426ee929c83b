"""The ``spikesim`` convention: SpikeSim's energy per PE cycle times dense crossbar PE cycles."""

import math

import pytest
import torch

from snncost.costmodel.conventions import spikesim
from snncost.graph import build_graph
from snncost.models import NeuronConfig, VGGSpec, build_snn
from snncost.sim import simulate
from snncost.sim.counts import RunCounts

# Hand-computed from ela_spikesim.py's constants for kernel 3, crossbar 64, RRAM:
# 19.64*8 + 4.64 + 1.274*4 + 8*(9*1.76423 + 8*(2.03084 + 0.094245)) + 8*16*1.15e-6 + 8*0.2 + 397
E_RRAM_K3_X64 = 828.4861472


def test_energy_per_pe_cycle_reproduces_spikesim():
    assert spikesim.energy_per_pe_cycle(3, 64, "rram") == pytest.approx(
        E_RRAM_K3_X64, rel=0, abs=1e-9
    )
    assert spikesim.energy_per_pe_cycle((3, 3), 64, "RRAM") == spikesim.energy_per_pe_cycle(
        3, 64, "rram"
    )
    # SRAM only changes the crossbar term: (X/8) * k*k * (671.089 - 1.76423)
    sram = E_RRAM_K3_X64 + 8 * 9 * (671.089 - 1.76423)
    assert spikesim.energy_per_pe_cycle(3, 64, "sram") == pytest.approx(sram, rel=1e-12)
    # kernel 1, crossbar 128 (16 ADC groups), by hand
    by_hand = (
        157.12 + 4.64 + 5.096 + 16 * (1.76423 + 16 * 2.125085) + 16 * 16 * 1.15e-6 + 16 * 0.2 + 397
    )
    assert spikesim.energy_per_pe_cycle(1, 128, "rram") == pytest.approx(by_hand, rel=1e-12)


def test_breakdown_sums_to_pe_cycle_energy():
    for kernel, crossbar, device in [(3, 64, "rram"), ((1, 1), 128, "sram"), ((5, 3), 32, "rram")]:
        parts = spikesim.pe_cycle_breakdown(kernel, crossbar, device)
        assert sum(parts.values()) == pytest.approx(
            spikesim.energy_per_pe_cycle(kernel, crossbar, device), rel=1e-13
        )
    assert spikesim.pe_cycle_breakdown(3)["neuron"] == pytest.approx(5.096)


def test_pe_cycles_reproduce_spikesim_vgg9_example():
    # the VGG9/CIFAR10 lists at the bottom of ela_spikesim.py (post-pool out_dim, 7 convs, T = 5)
    in_ch = [3, 64, 64, 128, 128, 256, 256]
    out_ch = [64, 64, 128, 128, 256, 256, 256]
    out_dim = [32, 16, 16, 8, 8, 8, 4]
    cycles = [
        spikesim.pe_cycles(i, o, d * d, 64) for i, o, d in zip(in_ch, out_ch, out_dim, strict=True)
    ]
    assert cycles == [1024, 256, 512, 256, 512, 1024, 256]
    total = sum(cycles) * spikesim.energy_per_pe_cycle(3, 64, "rram") * 5
    assert total == pytest.approx(15906934.02624, rel=1e-12)  # what compute_energy prints


@pytest.fixture(scope="module")
def tiny_run():
    torch.manual_seed(0)
    spec = VGGSpec(
        features=[12, "P", 20], classifier=[24], in_channels=3, image_size=8, num_classes=10
    )
    model = build_snn(spec, NeuronConfig(timesteps=3, threshold=0.5)).eval()
    graph = build_graph(model, (3, 8, 8))
    x = torch.rand(4, 3, 8, 8)
    return graph, simulate(graph, x), x


def test_price_on_replay_matches_hand_cycles(tiny_run):
    _, counts, _ = tiny_run
    assert counts.model == "snn" and counts.timesteps == 3
    X = 8
    # By hand, crossbar 8:
    #   conv 3->12 on 8x8 (3x3):       ceil(3/8)*ceil(12/8)*64 = 1*2*64 = 128
    #   conv 12->20 on 4x4 after pool: ceil(12/8)*ceil(20/8)*16 = 2*3*16 = 96
    #   fc 20*4*4=320 -> 24:           ceil(320/8)*ceil(24/8) = 40*3 = 120
    #   fc 24 -> 10 (read-out):        ceil(24/8)*ceil(10/8) = 3*2 = 6
    hand_cycles = [128, 96, 120, 6]
    hand_kernels = [3, 3, 1, 1]
    assert [spikesim.layer_pe_cycles(lc, X) for lc in counts.layers] == hand_cycles

    priced = spikesim.price(counts, crossbar=X, device="rram")
    assert [e.name for e in priced] == [lc.name for lc in counts.layers]
    for e, cyc, k in zip(priced, hand_cycles, hand_kernels, strict=True):
        expected = cyc * 3 * spikesim.energy_per_pe_cycle(k, X, "rram")
        assert e.total_pj == pytest.approx(expected, rel=1e-12)
        assert e.neuron_pj == pytest.approx(cyc * 3 * 1.274 * 4.0, rel=1e-12)
        assert e.addressing_pj == 0.0


def test_dense_crossbar_ignores_activity_and_batch(tiny_run):
    graph, counts, x = tiny_run
    silent = simulate(graph, torch.zeros(2, 3, 8, 8))  # no spikes at all, other batch size
    assert sum(float(lc.output_spikes.sum()) for lc in silent.layers) < sum(
        float(lc.output_spikes.sum()) for lc in counts.layers
    )
    a = [e.total_pj for e in spikesim.price(counts)]
    b = [e.total_pj for e in spikesim.price(silent)]
    assert a == b


def test_defaults_and_rejections(tiny_run):
    _, counts, _ = tiny_run
    default = spikesim.price(counts)
    explicit = spikesim.price(counts, crossbar=64, device="rram")
    assert default == explicit
    with pytest.raises(ValueError, match="SNNs only"):
        spikesim.price(RunCounts(model="ann", timesteps=1, batch_size=1, layers=[]))
    with pytest.raises(ValueError, match="device"):
        spikesim.price(counts, device="pcm")
    for bad in (0, 60, 64.0, True):
        with pytest.raises(ValueError, match="crossbar"):
            spikesim.energy_per_pe_cycle(3, bad, "rram")


def test_module_metadata():
    assert spikesim.NAME == "spikesim"
    assert (
        "SpikeSim" in spikesim.SOURCE
        and "Intelligent-Computing-Lab-Yale/SpikeSim" in spikesim.SOURCE
    )
    assert spikesim.DESCRIPTION and "\n" not in spikesim.DESCRIPTION
    assert math.isclose(spikesim.CROSSBAR_PJ["rram"], 1.76423)
