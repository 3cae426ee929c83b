"""Dataflows: the rules that turn one layer's events into accesses per memory level per tensor.

A rule table (:data:`DATAFLOWS`) maps each name to a function
``(LayerWork, NetworkContext) -> list[Access]``. docs/cost_model.md states
every rule and its source; in short:

``no-reuse`` (snncost 0.1's convention, kept to compare with earlier figures)
    Every AC or MAC reads its weight and reads and writes its accumulator;
    inputs are read once per pass; each array lives in the smallest level
    that holds it alone. Despite its name it is not an upper bound of the
    loop-nest dataflows (docs/cost_model.md, section 3).
``weight-stationary`` / ``output-stationary`` (Timeloop-style reuse)
    The layer is a loop nest tiled over the shared hierarchy by
    :func:`snncost.costmodel.mapper.map_layer`; reads, fills and updates per
    level and tensor are counted exactly by :func:`snncost.costmodel.nest.analyze`.
    An SNN runs the same nest once per timestep with zero-skipping: the
    innermost accesses follow the ACs actually performed, spikes move as
    address events in proportion to the input events, weight tiles and
    membrane tiles move as in the dense nest (membranes are state: every
    visit reads them back).
``neuromorphic`` (SNN cores: weights resident in core SRAM)
    Each AC reads one weight and reads and writes one membrane in the
    layer's own cores (memory is distributed: a layer's arrays live in the
    smallest level that holds that layer's); each neuron update reads and
    writes its membrane; each spike is one address event written by its
    source and read by its target.

Homes of the loop-nest dataflows (one shared hierarchy,
:func:`~snncost.costmodel.accesses.home_level`): the weights of the whole network (resident across inferences when they fit
on chip), the membranes of the whole network (resident across steps), and
each layer's input plus output maps (handed from layer to layer). Accesses
above a tensor's home are not made: the data already live there.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

from snncost.costmodel.accesses import Access, Widths, address_bits, home_level
from snncost.costmodel.mapper import map_layer
from snncost.costmodel.nest import ConvProblem, analyze
from snncost.costmodel.options import CostOptions
from snncost.hardware.profile import HardwareProfile, MemoryLevel, ProfileError
from snncost.sim.counts import LayerCounts

# nest tensor name -> accesses tensor name
_NEST_TENSORS = {"weights": "weights", "inputs": "inputs", "outputs": "state"}


@dataclass(frozen=True)
class LayerWork:
    """One layer's events per inference, after the options (padding, zero weights, first layer)."""

    counts: LayerCounts
    steps: int  # T of the run
    acs: float  # accumulates performed
    acs_all: float  # accumulates before skipping zero weights
    macs: float  # multiply-accumulates performed
    mac_passes: float  # dense passes the MACs correspond to (T, 1, or a zero-skipping fraction)
    updates: float
    active: float  # updates of neurons that received synaptic input (the rest only leak)
    spikes: float
    events: float  # input events (SNN)
    weight_fraction: float  # stored fraction of the weights (nonzero share when skipping zeros)
    elementwise: float = 0.0  # merge rows: element-wise operations


@dataclass(frozen=True)
class NetworkContext:
    """What a dataflow needs to know about the network and the chip."""

    network: str  # "snn" / "ann"
    profile: HardwareProfile
    levels: list[MemoryLevel]
    widths: Widths
    weights_home: int
    state_home: int
    options: CostOptions

    def weight_bits(self, lc: LayerCounts) -> int:
        return int(self.widths.weights or lc.weight_bits)

    def level(self, i: int) -> str:
        return self.levels[i].name


def problem_of(lc: LayerCounts) -> ConvProblem:
    """The layer's loop-nest problem (a linear layer is a 1x1 conv on a 1x1 map)."""
    if lc.kind == "linear":
        return ConvProblem.linear(lc.neurons, lc.inputs)
    c, h, w = lc.input_shape
    k, p, q = lc.output_shape
    return ConvProblem(
        K=k, C=c, R=lc.kernel[0], S=lc.kernel[1], P=p, Q=q, H=h, W=w,
        stride=tuple(lc.stride), padding=tuple(lc.padding),
    )  # fmt: skip


def _own_home(net: NetworkContext, size_bytes: int) -> int:
    """No-reuse placement, the profile's own rule (:meth:`HardwareProfile.memory_level_for`):
    the smallest SRAM that holds the array alone, else the smallest DRAM that does; an array
    no level holds goes to the outermost one."""
    try:
        return net.levels.index(net.profile.memory_level_for(size_bytes))
    except ProfileError:
        return len(net.levels) - 1


# ---------------------------------------------------------------------- no-reuse
def no_reuse(work: LayerWork, net: NetworkContext) -> list[Access]:
    """Every op reads its weight and reads/writes its accumulator; arrays placed by own size."""
    lc = work.counts
    wb, sb = net.weight_bits(lc), net.widths.state
    n = lc.neurons
    w_home = _own_home(net, math.ceil(lc.weight_count * wb * work.weight_fraction / 8))
    ops = work.acs + work.macs
    if net.network == "ann":
        ab = net.widths.inputs
        s_home = _own_home(net, math.ceil(max(lc.inputs, n) * ab / 8))
        o_home = _own_home(net, math.ceil(n / 8))
        return [
            Access(net.level(w_home), "weights", ops, 0.0, wb),
            Access(net.level(s_home), "state", ops + work.updates, ops + work.updates, ab),
            Access(net.level(s_home), "inputs", lc.inputs * work.mac_passes, 0.0, ab),
            Access(net.level(o_home), "outputs", 0.0, work.updates, ab),
        ]
    s_home = _own_home(net, math.ceil(n * sb / 8))
    out = [
        Access(net.level(w_home), "weights", ops, 0.0, wb),
        Access(net.level(s_home), "state", ops + work.updates, ops + work.updates, sb),
    ]
    if lc.analog:
        out.append(Access(net.level(s_home), "inputs", lc.inputs * work.mac_passes, 0.0, sb))
    if work.spikes:
        p_home = _own_home(net, math.ceil(n / 8))
        out.append(Access(net.level(p_home), "outputs", 0.0, work.spikes, address_bits(n)))
    return out


# ---------------------------------------------------------------------- neuromorphic
def neuromorphic(work: LayerWork, net: NetworkContext) -> list[Access]:
    """Weights resident in core SRAM, membranes in local SRAM, spikes as address events.

    Memory is distributed: every layer sits in cores of its own, so a layer's
    weights and membranes live in the smallest level that holds *that
    layer's* weights (membranes), not a monolithic memory holding the network.
    """
    if net.network != "snn":
        raise ValueError("the neuromorphic dataflow describes SNN cores; cost the ANN with another")
    lc = work.counts
    n, sb, wb = lc.neurons, net.widths.state, net.weight_bits(lc)
    ops = work.acs + work.macs
    w_home = net.level(home_level(net.levels, lc.weight_count * work.weight_fraction * wb))
    s_home = net.level(home_level(net.levels, n * sb))
    act_home = net.level(home_level(net.levels, lc.inputs + n))  # one step's spike maps, 1 bit a neuron
    out = [
        Access(w_home, "weights", ops, 0.0, wb),
        Access(s_home, "state", ops + work.updates, ops + work.updates, sb),
    ]
    if lc.analog:
        out.append(Access(act_home, "inputs", lc.inputs * work.mac_passes, 0.0, net.widths.inputs))
    elif work.events:
        out.append(Access(act_home, "inputs", work.events, 0.0, address_bits(lc.inputs)))
    if work.spikes:
        out.append(Access(act_home, "outputs", 0.0, work.spikes, address_bits(n)))
    return out


# ---------------------------------------------------------------------- loop-nest dataflows
def _nest(lc: LayerCounts, dataflow: str, net: NetworkContext, input_bits: int, steps_inside: int = 1):
    """The layer's mapped loop nest; ``steps_inside`` timesteps share each input/output tile."""
    caps = tuple((m.name, None if m.size_bytes is None else m.size_bytes * 8) for m in net.levels)
    bits = (net.weight_bits(lc), input_bits * steps_inside, net.widths.state * steps_inside)
    return _mapped_nest(problem_of(lc), dataflow, caps, bits)


@functools.lru_cache(maxsize=4096)
def _mapped_nest(problem: ConvProblem, dataflow: str, caps: tuple, bits: tuple):
    """Mapping and access counts depend only on shapes, widths and the chip: computed once.

    A report prices the same layers several times (the SNN, its silent twin
    for break-even, each ANN baseline, each profile), so this cache removes
    most of the pricing time.
    """
    named = dict(zip(("weights", "inputs", "outputs"), bits, strict=True))
    return analyze(problem, map_layer(problem, dataflow, list(caps), named))


def _tensor_homes(lc: LayerCounts, net: NetworkContext, input_bits: int) -> dict[str, int]:
    maps_bits = lc.inputs * input_bits + lc.neurons * (
        net.widths.outputs if net.network == "ann" else 1
    )
    act_home = home_level(net.levels, maps_bits)
    state_home = net.state_home if net.network == "snn" else act_home
    return {"weights": net.weights_home, "inputs": act_home, "outputs": state_home}


def nest_accesses(work: LayerWork, net: NetworkContext, dataflow: str) -> list[Access]:
    """Timeloop-style counts of the layer's loop nest under ``dataflow``, scaled by the events.

    The nest is counted once for one dense pass; each kind of traffic is then
    scaled by how many dense passes it stands for: innermost operand traffic
    by the ops performed (ACs or MACs over the real taps), spike traffic by
    the input events, tile traffic by the passes.

    An event-driven SNN layer can order its ``T`` steps two ways, and the
    cheaper one is used (what a designer would pick):

    - *steps outside the nest*: the whole nest runs once per step; weight and
      membrane tiles move ``T`` times (membranes hold state, so every visit
      reads them back);
    - *steps inside the nest*: each weight tile, while resident, is applied
      to the events of all ``T`` steps; it moves once, but every input and
      output tile holds ``T`` steps (the mapper sizes tiles for that) and the
      partial currents of every step move like an ANN's partial sums.
    """
    lc = work.counts
    if net.network == "snn" and not lc.analog and work.steps > 1:
        options = [_nest_accesses(work, net, dataflow, inside) for inside in (False, True)]
        return min(options, key=lambda accesses: _energy(accesses, net))
    return _nest_accesses(work, net, dataflow, False)


def _energy(accesses: list[Access], net: NetworkContext) -> float:
    by_name = {m.name: m for m in net.levels}
    return sum(
        (a.reads * by_name[a.level].read_pj_per_bit + a.writes * by_name[a.level].write_pj_per_bit) * a.bits
        for a in accesses
    )


def _nest_accesses(work: LayerWork, net: NetworkContext, dataflow: str, steps_inside: bool) -> list[Access]:
    lc = work.counts
    snn = net.network == "snn"
    events_in = snn and not lc.analog
    in_bits = 1 if events_in else net.widths.inputs
    nest = _nest(lc, dataflow, net, in_bits, work.steps if steps_inside else 1)
    homes = _tensor_homes(lc, net, in_bits)
    names = [m.name for m in net.levels]
    ops_passes = (work.acs + work.macs) / max(1, lc.real_macs)
    in_passes = work.events / max(1, lc.inputs) if events_in else work.mac_passes
    tile_passes = float(work.steps) if events_in else work.mac_passes
    weight_passes = 1.0 if steps_inside else tile_passes
    membrane_state = snn and not steps_inside  # accumulate into membranes, not partial currents
    wf = work.weight_fraction
    wb = net.weight_bits(lc)
    out: list[Access] = []
    for li, name in enumerate(names):
        inner = li == 0
        below_home = {t: li < homes[t] for t in homes}
        if li <= homes["weights"]:
            a = nest[name]["weights"]
            reads = a.reads * (ops_passes if inner else weight_passes * wf)
            fills = a.fills * wf * weight_passes if below_home["weights"] else 0.0
            out.append(Access(name, "weights", reads, fills, wb))
        if li <= homes["inputs"]:
            a = nest[name]["inputs"]
            bits = address_bits(lc.inputs) if events_in else net.widths.inputs
            reads = a.reads * (ops_passes if inner else in_passes)
            fills = a.fills * in_passes if below_home["inputs"] else 0.0
            out.append(Access(name, "inputs", reads, fills, bits))
        if li <= homes["outputs"]:
            a = nest[name]["outputs"]
            drains = nest[names[li + 1]]["outputs"].updates if below_home["outputs"] else 0
            if membrane_state:  # membranes hold state: every visit reads them back, first ones included
                updates = work.acs + work.macs if inner else a.updates * tile_passes
                fills = drains * tile_passes
                out.append(Access(name, "state", updates, updates + fills, net.widths.state))
            else:
                scale = ops_passes if inner else tile_passes
                fills = a.fills * tile_passes if below_home["outputs"] else 0.0
                bits = net.widths.state
                if not snn and li == homes["outputs"] and not inner and a.reads == 0:
                    bits = net.widths.outputs  # final activations: no partial sum ever spilled
                out.append(Access(name, "state", a.reads * scale, a.updates * scale + fills, bits))
    if snn:
        # each step's neuron update reads and writes every membrane at its home; output
        # spikes are written as address events where the next layer reads its input
        state_home, act_home = names[homes["outputs"]], names[homes["inputs"]]
        out.append(Access(state_home, "state", work.updates, work.updates, net.widths.state))
        if work.spikes:
            out.append(Access(act_home, "outputs", 0.0, work.spikes, address_bits(lc.neurons)))
    return [a for a in out if a.reads or a.writes]


def _nest_dataflow(name: str) -> Callable[[LayerWork, NetworkContext], list[Access]]:
    def rule(work: LayerWork, net: NetworkContext) -> list[Access]:
        return nest_accesses(work, net, name)

    rule.__name__ = name.replace("-", "_")
    rule.__doc__ = f"Loop-nest reuse counted as Timeloop does, {name} mapping."
    return rule


#: name -> rule; the one place a dataflow is looked up.
DATAFLOWS: dict[str, Callable[[LayerWork, NetworkContext], list[Access]]] = {
    "no-reuse": no_reuse,
    "weight-stationary": _nest_dataflow("weight-stationary"),
    "output-stationary": _nest_dataflow("output-stationary"),
    "neuromorphic": neuromorphic,
}

#: dataflows an ANN can run on (the neuromorphic one describes SNN cores).
ANN_DATAFLOWS = ("no-reuse", "weight-stationary", "output-stationary")


def check_dataflow(name: str, network: str = "snn") -> str:
    """``name`` if known (for ``network``), else a ValueError listing the valid names."""
    valid = tuple(DATAFLOWS) if network == "snn" else ANN_DATAFLOWS
    if name not in valid:
        raise ValueError(f"unknown dataflow {name!r} for the {network.upper()}; choose one of {', '.join(valid)}")
    return name


def resolve_dataflows(profile: HardwareProfile, options: CostOptions) -> tuple[str, str]:
    """``(SNN dataflow, ANN dataflow)``: the options', else the profile's default; an ANN
    facing a neuromorphic SNN runs weight-stationary (a conventional accelerator)."""
    snn = check_dataflow(options.dataflow or profile.default_dataflow, "snn")
    ann = options.ann_dataflow or (snn if snn in ANN_DATAFLOWS else "weight-stationary")
    return snn, check_dataflow(ann, "ann")


__all__ = [
    "ANN_DATAFLOWS",
    "DATAFLOWS",
    "LayerWork",
    "NetworkContext",
    "check_dataflow",
    "problem_of",
    "resolve_dataflows",
]
