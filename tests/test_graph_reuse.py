"""Costing the same model again reuses its graph and compiled plan, and never a stale one.

``graph_of`` builds a fresh snapshot each call and returns the model's
previous graph only when the two are identical in every field and array
element; the replay's plan cache (keyed by graph object) then hits. Any
change to the model (an optimizer step in place, a new threshold, other
timesteps) must give a new graph and counts from the changed model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import snncost
import snncost.nn as sn
from snncost.graph import graph_of
from snncost.sim import simulate
from snncost.sim.plan import plan_for


def net(T: int = 3) -> sn.SpikingSequential:
    torch.manual_seed(0)
    return sn.SpikingSequential(
        sn.DirectEncoder(T), nn.Conv2d(2, 6, 3, padding=1, bias=False), sn.LIF(threshold=0.4),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6 * 4 * 4, 5, bias=False), sn.OutputIntegrator(),
    ).eval()  # fmt: skip


SHAPE = (2, 8, 8)


def test_an_unchanged_model_gives_its_graph_and_plan_again():
    model = net()
    g1 = graph_of(model, SHAPE)
    plan = plan_for(g1)
    g2 = graph_of(model, SHAPE)
    assert g2 is g1 and plan_for(g2) is plan


def test_a_weight_changed_in_place_gives_a_new_graph_and_new_counts():
    model, x = net(), torch.rand(4, *SHAPE)
    before = simulate(graph_of(model, SHAPE), x)
    with torch.no_grad():  # what optimizer.step() does: the same tensor, new values
        model[1].weight.mul_(-1.0)
    graph = graph_of(model, SHAPE)
    np.testing.assert_array_equal(graph["1"].weight, model[1].weight.detach().numpy())
    after = simulate(graph, x)
    fresh = simulate(snncost.graph.build_graph(model, SHAPE), x)
    assert after.layers[0].synaptic_ops.sum() != before.layers[0].synaptic_ops.sum() or not np.array_equal(
        after.logits, before.logits
    ), "the change must show in the replay"
    np.testing.assert_array_equal(after.logits, fresh.logits)
    for a, b in zip(after.layers, fresh.layers, strict=True):
        np.testing.assert_array_equal(a.synaptic_ops, b.synaptic_ops)
        np.testing.assert_array_equal(a.output_spikes, b.output_spikes)


def test_a_changed_threshold_or_timesteps_gives_a_new_graph():
    model = net()
    g1 = graph_of(model, SHAPE)
    with torch.no_grad():
        model[2].threshold.fill_(0.5)
    g2 = graph_of(model, SHAPE)
    assert g2 is not g1 and g2["2"].threshold != g1["2"].threshold
    model.timesteps = 5
    g3 = graph_of(model, SHAPE)
    assert g3 is not g2 and g3.timesteps == 5


def test_same_as_compares_every_array_element():
    a = graph_of(net(), SHAPE)
    b = snncost.graph.build_graph(net(), SHAPE)
    assert a is not b and a.same_as(b)
    b["1"].weight = b["1"].weight.copy()
    b["1"].weight[0, 0, 0, 0] += 1e-7
    assert not a.same_as(b)
