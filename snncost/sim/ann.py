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
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from snncost.graph.layergraph import LayerGraph
from snncost.graph.nodes import (
    ConvNode,
    FlattenNode,
    InputNode,
    LIFNode,
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


def _neuron_kind(nodes: list, i: int) -> str:
    nxt = nodes[i + 1] if i + 1 < len(nodes) else None
    if isinstance(nxt, (LIFNode, ReLUNode)):
        return "relu"
    if nxt is None or isinstance(nxt, OutputNode):
        return "output"
    return "output" if not any(isinstance(m, WeightNode) for m in nodes[i + 1 :]) else "relu"


def _nonzero_activity(graph: LayerGraph, x: torch.Tensor) -> dict[str, tuple[int, int]]:
    """Run the graph as an ANN (ReLU for every LIF); per weight layer ``(nonzero inputs, their MACs)``."""
    out: dict[str, tuple[int, int]] = {}
    h = x.to(torch.float32)
    with torch.no_grad():
        for node in graph:
            if isinstance(node, InputNode):
                continue
            if isinstance(node, WeightNode):
                w = torch.from_numpy(np.asarray(node.effective_weight, np.float32))
                b = None if node.bias is None else torch.from_numpy(np.asarray(node.bias, np.float32))
                nz = (h != 0).to(torch.float32)
                if isinstance(node, ConvNode):
                    h = h.reshape(len(h), *node.in_shape)
                    nz = nz.reshape(h.shape)
                    taps = F.conv2d(
                        nz.sum(1, keepdim=True), torch.ones(1, 1, *node.kernel_size),
                        stride=node.stride, padding=node.padding,
                    )  # fmt: skip
                    h = F.conv2d(h, w, b, stride=node.stride, padding=node.padding)
                else:
                    h = h.reshape(len(h), -1)
                    taps = nz.reshape(len(h), -1).sum(1)
                    h = F.linear(h, w, b)
                out[node.name] = (int(nz.sum()), int(taps.sum()) * node.out_features)
            elif isinstance(node, PoolNode):
                pool = F.avg_pool2d if node.kind == "avg" else F.max_pool2d
                h = pool(h, node.kernel)
            elif isinstance(node, FlattenNode):
                h = h.reshape(len(h), -1)
            elif isinstance(node, (LIFNode, ReLUNode)):
                h = torch.relu(h)
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
    nodes = list(graph)
    n = int(batch_size)
    layers: list[LayerCounts] = []

    def arr(v: int) -> np.ndarray:
        return np.array([v], dtype=np.int64)

    for i, node in enumerate(nodes):
        if not isinstance(node, WeightNode):
            continue
        nz_in = nz_macs = None
        if activity is not None:
            nz_in, nz_macs = (arr(v) for v in activity[node.name])
        layers.append(
            LayerCounts(
                name=node.name,
                neuron=_neuron_kind(nodes, i),
                input_events=arr(0),
                synaptic_ops=arr(0),
                synaptic_ops_nonzero=arr(0),
                macs=arr(node.real_macs * n),
                neuron_updates=arr(int(np.prod(node.out_shape)) * n),
                output_spikes=arr(0),
                leak=1.0,
                analog=True,
                nonzero_inputs=nz_in,
                nonzero_input_macs=nz_macs,
                **layer_shape_facts(node),
            )
        )
    if not layers:
        raise ValueError("the graph has no weight layers")
    return RunCounts(model="ann", timesteps=1, batch_size=n, layers=layers)


__all__ = ["ann_counts"]
