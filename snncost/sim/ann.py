"""Dense ANN baseline counts from the same graph (LIF -> ReLU), analytically.

For every weight layer of one dense inference: ``macs`` = the dense formula
(conv ``O*Ho*Wo*C*kh*kw``, linear ``out*in``), ``neuron_updates`` = output
elements (the ReLU; the output layer's values), no spikes, no events.
Memory traffic (the convention of :mod:`snncost.sim.counts`, mirrored for
the SNN in :mod:`snncost.sim.replay`):

- each MAC reads one weight (``weight_bits``) and reads and writes one
  accumulator (``activation_bits``), no on-chip reuse;
- each output element's update (bias + ReLU) reads and writes it once;
- each layer reads its input activations once (``activation_bits`` each,
  in ``state_bits_read``) and writes its output activations once
  (``activation_bits`` each, in ``spike_bits_written``: the ANN's
  counterpart of the spike/address traffic).

Counts are multiplied by ``batch_size``; arrays have length 1 (``T = 1``).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from snncost.graph.layergraph import LayerGraph
from snncost.graph.nodes import ConvNode, LIFNode, OutputNode, ReLUNode, WeightNode
from snncost.sim.counts import LayerCounts, RunCounts


def ann_counts(
    graph_or_ann_model: LayerGraph | nn.Module,
    input_shape: tuple[int, ...] | None = None,
    batch_size: int = 1,
    activation_bits: int = 32,
    weight_bits: int | None = None,
) -> RunCounts:
    """Dense counts of the equivalent ANN over ``batch_size`` inferences (``model="ann"``, ``T=1``).

    Accepts a :class:`LayerGraph` (SNN or ANN form; LIF layers count as ReLUs)
    or a torch model (graph built with ``input_shape``). ``weight_bits`` is the
    ANN's weight width for every layer (``number_format`` is ``float`` at 32
    bits, else ``int``); ``None`` (default) keeps each layer's own width and
    format from the graph, so the ANN of a k-bit quantized model has k-bit
    integer weights and a float model fp32 weights.
    """
    if isinstance(graph_or_ann_model, LayerGraph):
        graph = graph_or_ann_model
        if input_shape is not None and tuple(input_shape) != tuple(graph.input.shape):
            raise ValueError(f"input_shape {tuple(input_shape)} differs from the graph's {graph.input.shape}")
    else:
        from snncost.graph.build import build_graph

        graph = build_graph(graph_or_ann_model, input_shape=input_shape)
    nodes = list(graph)
    layers: list[LayerCounts] = []
    n = int(batch_size)
    ab = int(activation_bits)
    for i, node in enumerate(nodes):
        if not isinstance(node, WeightNode):
            continue
        if weight_bits is None:
            wb, fmt = int(node.weight_bits), node.number_format
        else:
            wb = int(weight_bits)
            fmt = "float" if wb == 32 else "int"
        nxt = nodes[i + 1] if i + 1 < len(nodes) else None
        if isinstance(nxt, (LIFNode, ReLUNode)):
            neuron = "relu"
        elif nxt is None or isinstance(nxt, OutputNode):
            neuron = "output"
        else:
            neuron = "output" if not any(isinstance(m, WeightNode) for m in nodes[i + 1 :]) else "relu"
        macs = node.dense_macs * n
        outs = int(np.prod(node.out_shape)) * n
        ins = int(np.prod(node.in_shape)) * n

        def arr(v: int) -> np.ndarray:
            return np.array([v], dtype=np.int64)

        layers.append(
            LayerCounts(
                name=node.name,
                kind="conv" if isinstance(node, ConvNode) else "linear",
                neuron=neuron,
                input_shape=tuple(node.in_shape),
                output_shape=tuple(node.out_shape),
                weight_count=node.weight_count,
                weight_bits=wb,
                number_format=fmt,
                state_bits=ab,
                input_events=arr(0),
                synaptic_ops=arr(0),
                macs=arr(macs),
                neuron_updates=arr(outs),
                output_spikes=arr(0),
                weight_bits_read=arr(macs * wb),
                state_bits_read=arr(macs * ab + outs * ab + ins * ab),
                state_bits_written=arr(macs * ab + outs * ab),
                spike_bits_written=arr(outs * ab),
                leak=1.0,
            )
        )
    if not layers:
        raise ValueError("the graph has no weight layers")
    return RunCounts(model="ann", timesteps=1, batch_size=n, layers=layers)


__all__ = ["ann_counts"]
