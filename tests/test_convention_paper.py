"""The ``paper`` convention (Chowdhury, Garg & Roy 2021): MACs x 4.6 pJ + ACs x 0.9 pJ, compute only."""

from __future__ import annotations

import pytest

from snncost.costmodel.conventions import paper
from snncost.costmodel.conventions.base import LayerEnergy
from snncost.sim.counts import RunCounts


@pytest.fixture(scope="module")
def runs(tiny_vgg_runs):
    """A real replay of a tiny direct-coded VGG (T=4, 3 inputs) and its ANN (tests/conftest.py)."""
    return tiny_vgg_runs


def test_module_interface():
    assert paper.NAME == "paper"
    assert "2104.12528" in paper.SOURCE and "Horowitz" in paper.SOURCE
    assert paper.DESCRIPTION and "\n" not in paper.DESCRIPTION
    assert (paper.MAC_PJ, paper.AC_PJ) == (4.6, 0.9)


def test_hand_built_layer_1000_acs_10_macs_is_946_pj(linear_layer):
    counts = RunCounts("snn", 2, 1, [linear_layer("fc", 5, 2, acs=[500, 500], macs=[5, 5], T=2)])
    (le,) = paper.price(counts)
    assert isinstance(le, LayerEnergy) and le.name == "fc"
    assert le.synaptic_pj == pytest.approx(946.0, rel=1e-12)  # 1000 x 0.9 + 10 x 4.6
    assert (le.neuron_pj, le.memory_pj, le.addressing_pj) == (0.0, 0.0, 0.0)
    assert le.total_pj == le.synaptic_pj
    # per inference: the same events spread over a batch of 4 cost a quarter each
    batch = RunCounts("snn", 2, 4, [linear_layer("fc", 5, 2, acs=[500, 500], macs=[5, 5], T=2)])
    assert paper.price(batch)[0].synaptic_pj == pytest.approx(946.0 / 4, rel=1e-12)


def test_parameters_and_errors(linear_layer):
    counts = RunCounts("snn", 1, 1, [linear_layer("fc", 5, 2, acs=[100], macs=[10], T=1)])
    assert paper.price(counts, mac_pj=1.0, ac_pj=0.0)[0].synaptic_pj == pytest.approx(10.0)
    with pytest.raises(ValueError, match="mac_pj"):
        paper.price(counts, mac_pj=-1.0)
    with pytest.raises(ValueError, match="ac_pj"):
        paper.price(counts, ac_pj=float("nan"))
    with pytest.raises(ValueError, match="batch_size"):
        paper.price(RunCounts("snn", 1, 0, counts.layers))


def test_real_snn_and_ann_totals(runs):
    snn, ann = runs
    for counts in (snn, ann):
        acs = sum(float(lc.synaptic_ops.sum()) for lc in counts.layers)
        macs = sum(float(lc.macs.sum()) for lc in counts.layers)
        energies = paper.price(counts)
        assert [e.name for e in energies] == [lc.name for lc in counts.layers]
        total = sum(e.total_pj for e in energies)
        assert total == pytest.approx((acs * 0.9 + macs * 4.6) / counts.batch_size, rel=1e-12)
        assert all(e.neuron_pj == e.memory_pj == e.addressing_pj == 0.0 for e in energies)
    # SNN: only the direct-coded first layer does MACs, at every one of its T steps
    first = snn.layers[0]
    assert first.analog and float(first.synaptic_ops.sum()) == 0
    assert float(first.macs.sum()) == snn.timesteps * float(ann.layers[0].macs.sum())
    assert paper.price(snn)[0].synaptic_pj == pytest.approx(
        4.6 * snn.timesteps * ann.layers[0].real_macs, rel=1e-12
    )
    assert all(float(lc.macs.sum()) == 0 for lc in snn.layers[1:])
    # ANN: every layer is MACs only, one dense pass per inference
    for lc, e in zip(ann.layers, paper.price(ann), strict=True):
        assert e.synaptic_pj == pytest.approx(4.6 * lc.real_macs, rel=1e-12)
