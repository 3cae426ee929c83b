"""ANN baseline events from the same graph (LIF -> ReLU): analytic, or counted on real inputs.

For every weight layer of one inference: ``macs`` = the real-tap
(border-exact) MACs of a dense pass, ``neuron_updates`` = output elements
(the ReLU; the output layer's values), no spikes. The shape facts
(:func:`snncost.sim.counts.layer_shape_facts`) also carry the padded-tap
count, for the cost model's ``count_padding`` option.

Given ``inputs``, the ANN is also *run* (PyTorch, on the graph's own
weights) to count what a **zero-skipping** ANN accelerator performs:
``nonzero_inputs`` (nonzero input activations of each layer) and
``nonzero_input_macs`` (real-tap MACs whose activation is nonzero:
``conv2d(x != 0, ones)`` summed, times the output channels). Memory
traffic and widths are the cost model's (:mod:`snncost.costmodel`).

Graphs that are not chains get the replay's extra rows in ANN form: a
``merge`` row per add/concat on activations (one element-wise op per
output element of an add) and a ``neuron`` row (``relu``/``output``) per
activation fed by a merge or a pool rather than one weight layer. A
spike-only join (SEW-ResNet's ``and``/``iand``) becomes an ``add`` in the
ANN form: the ANN ResNet that such an SNN is compared with adds its
shortcut.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from snncost.graph.layergraph import LayerGraph
from snncost.graph.merges import merge_rule
from snncost.graph.nodes import (
    ConvNode,
    FlattenNode,
    LIFNode,
    MergeNode,
    OutputNode,
    PoolNode,
    ReLUNode,
    WeightNode,
)
from snncost.sim.counts import LayerCounts, RunCounts, layer_shape_facts


def _graph_of(graph_or_ann_model: LayerGraph | nn.Module, input_shape) -> LayerGraph:
    if isinstance(graph_or_ann_model, LayerGraph):
        graph = graph_or_ann_model
        if input_shape is not None and tuple(input_shape) != tuple(graph.input.shape):
            raise ValueError(f"input_shape {tuple(input_shape)} differs from the graph's {graph.input.shape}")
        return graph
    from snncost.graph.build import build_graph

    return build_graph(graph_or_ann_model, input_shape=input_shape)


def _integrator(graph: LayerGraph, node: WeightNode) -> tuple[str, str | None]:
    """What integrates a weight layer's output in the ANN, and the node that does it.

    Following the single path out of the layer through pools and flatten: a
    LIF or ReLU gives ``relu`` (its activation), the read-out or the end of
    the graph ``output``, another weight layer ``relu`` (as a chain always
    counted it), a merge or a fork ``none`` (a ``neuron`` row integrates it
    after the merge).
    """
    g = graph.nx
    name = node.name
    while True:
        succs = list(g.successors(name))
        if not succs:
            return "output", None
        if len(succs) != 1 or g.in_degree(succs[0]) != 1:
            return "none", None
        name = succs[0]
        nxt = graph[name]
        if isinstance(nxt, (LIFNode, ReLUNode)):
            return "relu", name
        if isinstance(nxt, OutputNode):
            return "output", name
        if isinstance(nxt, WeightNode):
            return "relu", None
        if not isinstance(nxt, (PoolNode, FlattenNode)):
            return "none", None


def _fed_by_merge(graph: LayerGraph, name: str) -> bool:
    """Whether a node's input comes from a merge (through pools and flatten): then its
    activation is work of its own (a ``neuron`` row), not part of a weight layer's row."""
    preds = list(graph.nx.predecessors(name))
    while len(preds) == 1:
        node = graph[preds[0]]
        if isinstance(node, MergeNode):
            return True
        if not isinstance(node, (PoolNode, FlattenNode)):
            return False
        preds = list(graph.nx.predecessors(node.name))
    return False


def _run_ann(graph: LayerGraph, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every node's activation when the graph runs as an ANN (ReLU for every LIF)."""
    vals: dict[str, torch.Tensor] = {}
    for node in graph:
        preds = [vals[p] for p in graph.nx.predecessors(node.name)]
        h = preds[0] if preds else x.to(torch.float32)
        if isinstance(node, WeightNode):
            w = torch.from_numpy(np.asarray(node.effective_weight, np.float32))
            b = None if node.bias is None else torch.from_numpy(np.asarray(node.bias, np.float32))
            if isinstance(node, ConvNode):
                h = F.conv2d(h.reshape(len(h), *node.in_shape), w, b, stride=node.stride, padding=node.padding)
            else:
                h = F.linear(h.reshape(len(h), -1), w, b)
        elif isinstance(node, PoolNode):
            h = (F.avg_pool2d if node.kind == "avg" else F.max_pool2d)(h, node.kernel)
        elif isinstance(node, FlattenNode):
            h = h.reshape(len(h), -1)
        elif isinstance(node, (LIFNode, ReLUNode)):
            h = torch.relu(h)
        elif isinstance(node, MergeNode):
            # AND/IAND exist on spikes only: the ANN twin joins those branches with an add, as
            # the ANN ResNet that a SEW-ResNet is compared with does
            ann_node = node if node.op in ("add", "concat") else dataclasses.replace(node, op="add")
            h = merge_rule(ann_node).apply([vals[n] for n in node.inputs], lambda xs: torch.cat(list(xs), dim=1))
        vals[node.name] = h
    return vals


def _nonzero_activity(graph: LayerGraph, x: torch.Tensor) -> dict[str, tuple[int, int]]:
    """Run the graph as an ANN (ReLU for every LIF); per weight layer ``(nonzero inputs, their MACs)``."""
    out: dict[str, tuple[int, int]] = {}
    with torch.no_grad():
        vals = _run_ann(graph, x)
        for node in graph.weight_layers():
            (src,) = graph.nx.predecessors(node.name)
            nz = (vals[src] != 0).to(torch.float32)
            if isinstance(node, ConvNode):
                nz = nz.reshape(len(nz), *node.in_shape)
                taps = F.conv2d(
                    nz.sum(1, keepdim=True), torch.ones(1, 1, *node.kernel_size),
                    stride=node.stride, padding=node.padding,
                )  # fmt: skip
            else:
                taps = nz.reshape(len(nz), -1).sum(1)
            out[node.name] = (int(nz.sum()), int(taps.sum()) * node.out_features)
    return out


def ann_counts(
    graph_or_ann_model: LayerGraph | nn.Module,
    input_shape: tuple[int, ...] | None = None,
    batch_size: int = 1,
    inputs: torch.Tensor | np.ndarray | None = None,
) -> RunCounts:
    """Events of the equivalent ANN over ``batch_size`` inferences (``model="ann"``, ``T=1``).

    Accepts a :class:`LayerGraph` (SNN or ANN form; LIF layers count as ReLUs)
    or a torch model (graph built with ``input_shape``). Each layer keeps the
    graph's weight width and format; the cost model decides the baseline's
    precision. With ``inputs`` (analog ``[B, ...]``), ``batch_size`` is their
    number and the zero-skipping counts are measured on them.
    """
    graph = _graph_of(graph_or_ann_model, input_shape)
    activity = None
    if inputs is not None:
        x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs)
        batch_size = len(x)
        activity = _nonzero_activity(graph, x)
    n = int(batch_size)
    layers: list[LayerCounts] = []
    integrators = {w.name: _integrator(graph, w) for w in graph.weight_layers()}
    integrated = {by for _, by in integrators.values() if by is not None}

    def arr(v: int) -> np.ndarray:
        return np.array([v], dtype=np.int64)

    fmt = "int" if all(w.number_format == "int" for w in graph.weight_layers()) else "float"
    bits = max((int(w.weight_bits) for w in graph.weight_layers()), default=32)
    for node in graph:
        size = int(np.prod(node.out_shape)) if node.out_shape else 0
        if isinstance(node, WeightNode):
            nz_in = nz_macs = None
            if activity is not None:
                nz_in, nz_macs = (arr(v) for v in activity[node.name])
            integrator = integrators[node.name][0]
            layers.append(
                LayerCounts(
                    name=node.name,
                    neuron=integrator,
                    input_events=arr(0),
                    synaptic_ops=arr(0),
                    synaptic_ops_nonzero=arr(0),
                    macs=arr(node.real_macs * n),
                    neuron_updates=arr(0 if integrator == "none" else int(np.prod(node.out_shape)) * n),
                    output_spikes=arr(0),
                    leak=1.0,
                    analog=True,
                    nonzero_inputs=nz_in,
                    nonzero_input_macs=nz_macs,
                    **layer_shape_facts(node),
                )
            )
            continue
        common = {"name": node.name, "input_shape": tuple(node.out_shape), "output_shape": tuple(node.out_shape),
                  "weight_count": 0, "weight_bits": bits, "number_format": fmt, "input_events": arr(0),
                  "synaptic_ops": arr(0), "synaptic_ops_nonzero": arr(0), "macs": arr(0), "output_spikes": arr(0),
                  "analog": True}  # fmt: skip
        if isinstance(node, MergeNode):
            ops = 0 if node.op == "concat" else size * n
            layers.append(LayerCounts(kind="merge", neuron="none", neuron_updates=arr(0), merge_op=node.op,
                                      elementwise_ops=arr(ops), **common))  # fmt: skip
        elif isinstance(node, (LIFNode, ReLUNode, OutputNode)) and node.name not in integrated and _fed_by_merge(graph, node.name):
            neuron = "output" if isinstance(node, OutputNode) else "relu"
            layers.append(LayerCounts(kind="neuron", neuron=neuron, neuron_updates=arr(size * n), **common))
    if not layers:
        raise ValueError("the graph has no weight layers")
    return RunCounts(model="ann", timesteps=1, batch_size=n, layers=layers)


__all__ = ["ann_counts"]
