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
Because they are sums, the counts of disjoint batches add up
(:meth:`RunCounts.merge`, also ``a + b``): a test set is costed batch by
batch in bounded memory and gives exactly the counts of one run on the whole.
The layer's shape (geometry, weight count, real taps) travels with the
events so the cost model can build the layer's loop nest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

#: Per-step event arrays of :class:`LayerCounts`: summed when runs merge.
PER_STEP_EVENTS = (
    "input_events",
    "synaptic_ops",
    "synaptic_ops_nonzero",
    "macs",
    "neuron_updates",
    "output_spikes",
)
#: Per-step arrays that a run may lack (None): summed when both runs have them.
OPTIONAL_PER_STEP_EVENTS = ("active_neurons", "nonzero_inputs", "nonzero_input_macs", "elementwise_ops")


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

    def merge(self, other: LayerCounts) -> LayerCounts:
        """This layer's events plus ``other``'s (the same layer over another batch).

        Every field that is not an event count (name, shapes, widths, leak...)
        must be equal; a ``ValueError`` names the one that is not.
        """
        summed = {}
        for f in dataclasses.fields(LayerCounts):
            x, y = getattr(self, f.name), getattr(other, f.name)
            if f.name in PER_STEP_EVENTS or f.name in OPTIONAL_PER_STEP_EVENTS:
                if (x is None) != (y is None):
                    raise ValueError(f"{self.name}: {f.name} is counted in one run and not the other")
                if x is None:
                    continue
                if np.shape(x) != np.shape(y):
                    raise ValueError(f"{self.name}: {f.name} has shapes {np.shape(x)} and {np.shape(y)}")
                summed[f.name] = np.asarray(x) + np.asarray(y)
            elif x != y:
                raise ValueError(
                    f"{self.name}: cannot merge layers with different {f.name}: {x!r} and {y!r}"
                )
        return dataclasses.replace(self, **summed)


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

    def merge(self, other: RunCounts) -> RunCounts:
        """The counts of this run and ``other`` over disjoint batches of the same network.

        Per-step events add up, layer by layer (they are sums over the batch);
        ``batch_size`` and the verified spike counts add up; logits, labels and
        recorded spike trains are concatenated along the batch when both runs
        have them (else dropped); other ``extra`` entries are this run's.
        Runs of different networks, kinds or ``T`` raise a ``ValueError``
        naming the layer and field that differ.
        """
        if not isinstance(other, RunCounts):
            raise TypeError(f"can only merge RunCounts with RunCounts, not {type(other).__name__}")
        for attr in ("model", "timesteps"):
            if getattr(self, attr) != getattr(other, attr):
                raise ValueError(
                    f"cannot merge runs with different {attr}: {getattr(self, attr)!r} "
                    f"and {getattr(other, attr)!r}"
                )
        if [lc.name for lc in self.layers] != [lc.name for lc in other.layers]:
            raise ValueError(
                "cannot merge runs of different networks: layers "
                f"{[lc.name for lc in self.layers]} and {[lc.name for lc in other.layers]}"
            )
        extra = {**other.extra, **self.extra}
        spikes = _concat_spikes(self.extra.get("spikes"), other.extra.get("spikes"))
        if spikes is not None:
            extra["spikes"] = spikes
        else:
            extra.pop("spikes", None)
        return RunCounts(
            model=self.model,
            timesteps=self.timesteps,
            batch_size=self.batch_size + other.batch_size,
            layers=[a.merge(b) for a, b in zip(self.layers, other.layers, strict=True)],
            logits=_concat(self.logits, other.logits),
            labels=_concat(self.labels, other.labels),
            spike_mismatches=_add(self.spike_mismatches, other.spike_mismatches),
            spikes_compared=_add(self.spikes_compared, other.spikes_compared),
            extra=extra,
        )

    __add__ = merge


def _concat(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None or b is None:
        return None
    return np.concatenate([np.asarray(a), np.asarray(b)], axis=0)


def _concat_spikes(a: dict | None, b: dict | None) -> dict | None:
    """Recorded spike trains (name -> ``[T, B, ...]``) of two runs, joined along the batch."""
    if a is None or b is None or a.keys() != b.keys():
        return None
    return {k: np.concatenate([a[k], b[k]], axis=1) for k in a}


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


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
        "zero_weights": node.zero_weights,
    }
