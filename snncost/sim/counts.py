"""What a replay counts: the contract between the simulator and the cost model.

The simulator (event-driven SNN replay) and the ANN baseline counter both
produce a :class:`RunCounts`: one :class:`LayerCounts` per weight layer (conv
or linear) in forward order, plus, in graphs that are not chains, one per
merge and per neuron layer fed by a merge (``kind`` ``merge``/``neuron``). They hold **events only**: what happened
(spikes arrived, accumulates performed, neurons updated), never memory
traffic, word widths or prices. Turning events into accesses per memory
level is the cost model's business (:mod:`snncost.costmodel`), because it
depends on a dataflow and a chip, not on the network.

Event arrays are per timestep (length ``T``; ``T = 1`` for an ANN) and
summed over the batch; divide by ``batch_size`` for "per inference".
The layer's shape (geometry, weight count, real taps) travels with the
events so the cost model can build the layer's loop nest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np


@dataclass
class LayerCounts:
    """Per-timestep events of one layer, plus the shape facts the cost model needs.

    ``name`` is the module path of the layer (e.g. ``features.0``). ``kind``:
    ``conv``/``linear`` for a weight layer; ``neuron`` for a neuron layer (or
    read-out) whose input is not one weight layer's current (it follows a
    merge or a pool: its own updates and spikes; weight fields zero);
    ``merge`` for a :class:`~snncost.graph.nodes.MergeNode` (``merge_op``;
    ``elementwise_ops`` per step, its event inputs in ``input_events`` and the
    spikes it hands on in ``output_spikes``, both with multiplicity).
    ``neuron`` says what integrates the layer's output (``lif`` spiking
    layer, ``relu`` in an ANN, ``output`` for the non-spiking read-out,
    ``none`` when the current flows on into a merge or a pool and a
    ``neuron`` row integrates it later).
    ``analog`` is True when the layer's input is dense analog values (the
    direct-coded first layer of an SNN, every ANN layer): it performs MACs.
    ``charge``, ``reset``, ``reset_value`` and ``leak`` are the neuron kind
    (:class:`~snncost.graph.nodes.LIFNode`), what the cost model prices a
    neuron update by.
    """

    name: str
    kind: Literal["conv", "linear", "neuron", "merge"]
    neuron: Literal["lif", "relu", "output", "none"]
    input_shape: tuple[int, ...]  # per sample, e.g. (C, H, W)
    output_shape: tuple[int, ...]
    weight_count: int
    weight_bits: int
    number_format: Literal["int", "float"]
    input_events: np.ndarray  # nonzero inputs that arrived as events; 0 for analog input
    synaptic_ops: np.ndarray  # accumulates actually performed (AC), border-exact
    synaptic_ops_nonzero: np.ndarray  # of those, ACs whose weight is nonzero
    macs: np.ndarray  # multiply-accumulates on real input taps (analog input), border-exact
    neuron_updates: np.ndarray  # membrane / activation updates
    output_spikes: np.ndarray  # spikes emitted (0 for ``output``/``relu``)
    leak: float = 1.0  # 1.0 = IF (no leak multiply needed)
    charge: str = "leak"  # LIFNode.charge
    reset: str = "soft"  # LIFNode.reset
    reset_value: float = 0.0
    analog: bool = False
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    real_macs: int = 0  # MACs of one dense pass on real taps (per sample)
    padded_macs: int = 0  # MACs of one dense pass counting padding taps (per sample)
    nonzero_weight_macs: int = 0  # real taps whose weight is nonzero (per sample)
    zero_weights: int = 0  # weights equal to 0 (pruned or quantized to 0)
    # SNN: neurons that received synaptic input in the step (the others only leak); None: all did
    active_neurons: np.ndarray | None = None
    # ANN only, counted on real inputs (None when the ANN was counted without data):
    nonzero_inputs: np.ndarray | None = None  # nonzero input activations
    nonzero_input_macs: np.ndarray | None = None  # real-tap MACs whose activation is nonzero
    # merge rows only
    merge_op: str = ""
    elementwise_ops: np.ndarray | None = None  # per step: element-wise operations (0 for concat)

    @property
    def is_weight_layer(self) -> bool:
        return self.kind in ("conv", "linear")

    @property
    def neurons(self) -> int:
        return int(np.prod(self.output_shape))

    @property
    def inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def timesteps(self) -> int:
        return len(self.synaptic_ops)


@dataclass
class RunCounts:
    """Events of one replay (SNN) or one dense pass (ANN) over ``batch_size`` inputs."""

    model: Literal["snn", "ann"]
    timesteps: int
    batch_size: int
    layers: list[LayerCounts]
    logits: np.ndarray | None = None  # [batch, classes] when produced by a replay
    labels: np.ndarray | None = None
    # spike disagreements with the PyTorch forward pass, when verified
    spike_mismatches: int | None = None
    spikes_compared: int | None = None
    extra: dict = field(default_factory=dict)

    def per_inference(self, attr: str) -> dict[str, float]:
        """Total of ``attr`` over time, per input, for every layer."""
        return {lc.name: float(getattr(lc, attr).sum()) / self.batch_size for lc in self.layers}


def layer_shape_facts(node) -> dict:
    """The shape fields of :class:`LayerCounts` for a conv/linear graph node."""
    from snncost.graph.nodes import ConvNode

    conv = isinstance(node, ConvNode)
    return {
        "kind": "conv" if conv else "linear",
        "input_shape": tuple(node.in_shape),
        "output_shape": tuple(node.out_shape),
        "weight_count": node.weight_count,
        "weight_bits": int(node.weight_bits),
        "number_format": node.number_format,
        "kernel": tuple(node.kernel_size) if conv else (1, 1),
        "stride": tuple(node.stride) if conv else (1, 1),
        "padding": tuple(node.padding) if conv else (0, 0),
        "real_macs": node.real_macs,
        "padded_macs": node.dense_macs,
        "nonzero_weight_macs": node.nonzero_weight_macs,
        "zero_weights": int((np.asarray(node.weight) == 0).sum()),
    }
