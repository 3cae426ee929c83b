"""SpikeSim: a fixed energy per processing-element (PE) cycle on a compute-in-memory crossbar chip.

Rules (SpikeSim's energy-latency-area engine, ``compute_energy``). A PE holds
``k*k`` crossbars of ``X x X`` cells, one per kernel tap; crossbar rows take
input channels and columns take output channels. Eight columns share one ADC
through an 8:1 MUX, so a PE has ``X/8`` ADCs. One PE cycle costs::

    E_pe = H-tree + memory fetch + LIF module
           + (X/8) * (k*k * e_xbar[device] + (X/8) * (ADC + MUX))
           + (X/8) * 16 * subtractor + (X/8) * temporal buffer + tile buffer

(all in pJ, 65 nm constants; ``e_xbar`` is 1.76423 pJ for RRAM, 671.089 pJ
for SRAM). A layer takes ``ceil(C_in/X) * ceil(C_out/X) * H_out * W_out`` PE
cycles per timestep, and its energy is ``cycles * E_pe * T``. Kernel 3,
crossbar 64, RRAM gives 828.4861472 pJ per PE cycle.

Input sparsity: none. A crossbar reads all its rows at once, and SpikeSim
prices every PE cycle of every timestep, whether or not a spike arrived.
Its NICE engine feeds the real spikes to the crossbars, but only to model
accuracy under non-idealities; the energy never uses them. So this module
reads only the layers' shapes and ``counts.timesteps``, never the replay's
events. The energy per inference does not depend on activity or on
``batch_size``.

Source: Moitra et al., "SpikeSim: An end-to-end Compute-in-Memory Hardware
Evaluation Tool for Benchmarking Spiking Neural Networks", IEEE TCAD 42(11),
2023 (arXiv:2210.12899). Reference code:
github.com/Intelligent-Computing-Lab-Yale/SpikeSim, file
``SNN_train_infer_quantization_ela/ela_spikesim.py`` (``compute_energy``).

What it leaves out: programming the weights into the crossbars, off-chip
(DRAM) traffic, static or leakage energy, crossbar non-idealities (handled
by NICE, which affects accuracy, not energy), and weight precision. The ELA
maps one output channel to one column and never reads the weight bit
width, so ``weight_bits`` is ignored here too.

Where snncost departs from the source:

* Kernel per layer. The ELA uses one global ``k`` (3 for its VGG9). Here
  each layer uses its own ``kh*kw``. A linear layer is priced as a 1x1
  kernel with a single output position: ``ceil(F_in/X) * ceil(F_out/X)``
  cycles per timestep. The ELA's VGG9 example lists only the 7 conv layers
  and leaves out the FC layers. The non-spiking read-out layer is priced
  the same way, LIF module included, because the source has no cheaper
  PE cycle.
* Output size. ``H_out * W_out`` is the conv's own output map, before any
  pooling: the crossbars have to compute every position. The ELA's VGG9
  example gives the post-pool size for layers followed by a pooling (for
  example, 16 for the 32x32 conv2). That is 4x fewer cycles on those
  layers. :func:`pe_cycles` reproduces the example when given its lists.
* Like the ELA, every layer is charged for ``T`` timesteps. That includes
  the direct-coded first layer, whose static input the software model
  convolves only once.

Ambiguities kept as in the source: the SRAM crossbar energy (671.089 pJ) is
the same number as the SRAM crossbar *area* in ``compute_area``, and the
``k*k`` crossbar term is multiplied by ``X/8`` together with the ADC/MUX
term. Both are reproduced exactly.

ANNs: the paper compares against 4-bit ANNs on the same kind of chip, but the
released ELA has no ANN energy model, so :func:`price` raises ``ValueError``
for ``counts.model == "ann"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from snncost.costmodel.conventions.base import LayerEnergy
from snncost.sim.counts import LayerCounts, RunCounts

NAME = "spikesim"
SOURCE = (
    "Moitra, Bhattacharjee, Kuang, Krishnan, Cao, Panda, 'SpikeSim: An end-to-end "
    "Compute-in-Memory Hardware Evaluation Tool for Benchmarking Spiking Neural Networks', "
    "IEEE Trans. Computer-Aided Design of Integrated Circuits and Systems 42(11), 2023 "
    "(arXiv:2210.12899); reference implementation "
    "https://github.com/Intelligent-Computing-Lab-Yale/SpikeSim "
    "SNN_train_infer_quantization_ela/ela_spikesim.py (compute_energy)"
)
DESCRIPTION = (
    "Compute-in-memory crossbar chip: fixed energy per PE cycle (crossbar, ADC, LIF, "
    "buffers, H-tree) times dense PE cycles per timestep; input sparsity is not exploited"
)

# Crossbar read energy per kernel tap per ADC group, pJ (``xbar_ar`` in compute_energy).
CROSSBAR_PJ: dict[str, float] = {"rram": 1.76423, "sram": 671.089}
ADC_PJ = 2.03084  # one ADC conversion
MUX_PJ = 0.094245  # 8:1 column multiplexer
SUBTRACTOR_PJ = 1.15e-6  # shift-and-subtract of the negative-weight correction (x16 per ADC)
TEMPORAL_BUFFER_PJ = 0.2  # per ADC
TILE_BUFFER_PJ = 397.0
HTREE_PJ = 19.64 * 8  # H-tree interconnect (the NoC) per PE cycle
MEMORY_FETCH_PJ = 4.64
NEURON_PJ = 1.274 * 4.0  # LIF/IF module per PE cycle
COLUMNS_PER_ADC = 8


def _kernel_taps(kernel: int | Sequence[int]) -> int:
    if isinstance(kernel, int):
        kh = kw = kernel
    else:
        kh, kw = (int(v) for v in kernel)
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel = {kernel!r}: sizes must be >= 1")
    return kh * kw


def _check_crossbar(crossbar: int) -> int:
    if (
        not isinstance(crossbar, int)
        or isinstance(crossbar, bool)
        or crossbar < COLUMNS_PER_ADC
        or crossbar % COLUMNS_PER_ADC
    ):
        raise ValueError(
            f"crossbar = {crossbar!r}: must be a positive multiple of {COLUMNS_PER_ADC} "
            f"({COLUMNS_PER_ADC} columns share one ADC)"
        )
    return crossbar


def _crossbar_pj(device: str) -> float:
    key = str(device).lower()
    if key not in CROSSBAR_PJ:
        raise ValueError(f"device = {device!r}: choose one of {sorted(CROSSBAR_PJ)}")
    return CROSSBAR_PJ[key]


def pe_cycle_breakdown(
    kernel: int | Sequence[int], crossbar: int = 64, device: str = "rram"
) -> dict[str, float]:
    """Energy of one PE cycle by component, pJ.

    The keys are ``crossbar``, ``adc``, ``mux``, ``subtractor`` (the in-memory
    dot product and its digitisation), ``neuron`` (the LIF module), and
    ``htree``, ``memory_fetch``, ``temporal_buffer``, ``tile_buffer`` (data
    movement).
    """
    taps = _kernel_taps(kernel)
    groups = _check_crossbar(crossbar) / COLUMNS_PER_ADC
    xbar = _crossbar_pj(device)
    return {
        "crossbar": groups * taps * xbar,
        "adc": groups * groups * ADC_PJ,
        "mux": groups * groups * MUX_PJ,
        "subtractor": groups * 16 * SUBTRACTOR_PJ,
        "neuron": NEURON_PJ,
        "htree": HTREE_PJ,
        "memory_fetch": MEMORY_FETCH_PJ,
        "temporal_buffer": groups * TEMPORAL_BUFFER_PJ,
        "tile_buffer": TILE_BUFFER_PJ,
    }


def energy_per_pe_cycle(
    kernel: int | Sequence[int], crossbar: int = 64, device: str = "rram"
) -> float:
    """SpikeSim's energy of one PE cycle, pJ (828.4861472 for kernel 3, crossbar 64, RRAM).

    ``kernel`` is ``k`` (a ``k x k`` kernel) or ``(kh, kw)``. The terms are summed in
    the source's order, so the result matches it to the last bit.
    """
    taps = _kernel_taps(kernel)
    groups = _check_crossbar(crossbar) / COLUMNS_PER_ADC
    pe = taps * _crossbar_pj(device) + groups * (ADC_PJ + MUX_PJ)
    return (
        HTREE_PJ
        + MEMORY_FETCH_PJ
        + NEURON_PJ
        + groups * pe
        + groups * 16 * SUBTRACTOR_PJ
        + groups * TEMPORAL_BUFFER_PJ
        + TILE_BUFFER_PJ
    )


def pe_cycles(in_channels: int, out_channels: int, out_positions: int, crossbar: int = 64) -> int:
    """PE cycles of one layer for one timestep and one input.

    The result is ``ceil(in_channels/X) * ceil(out_channels/X) * out_positions``, where
    ``out_positions`` is ``H_out * W_out`` (1 for a linear layer).
    """
    _check_crossbar(crossbar)
    return (
        math.ceil(in_channels / crossbar) * math.ceil(out_channels / crossbar) * int(out_positions)
    )


def layer_geometry(layer: LayerCounts) -> tuple[int, int, int, tuple[int, int]]:
    """``(in_channels, out_channels, out_positions, kernel)`` of a layer as SpikeSim maps it."""
    if layer.kind == "conv":
        c_in = int(layer.input_shape[0])
        c_out = int(layer.output_shape[0])
        positions = math.prod(int(v) for v in layer.output_shape[1:])
        kernel = (int(layer.kernel[0]), int(layer.kernel[1]))
    else:  # linear: a 1x1 kernel with one output position
        c_in = math.prod(int(v) for v in layer.input_shape)
        c_out = math.prod(int(v) for v in layer.output_shape)
        positions = 1
        kernel = (1, 1)
    return c_in, c_out, positions, kernel


def layer_pe_cycles(layer: LayerCounts, crossbar: int = 64) -> int:
    """PE cycles of ``layer`` for one timestep and one input (see :func:`pe_cycles`)."""
    c_in, c_out, positions, _ = layer_geometry(layer)
    return pe_cycles(c_in, c_out, positions, crossbar)


def price(counts: RunCounts, crossbar: int = 64, device: str = "rram") -> list[LayerEnergy]:
    """SpikeSim's energy of every weight layer, pJ per inference.

    Each layer costs ``layer_pe_cycles * T * E_pe``. The parts of ``E_pe`` are split
    this way: ``synaptic_pj`` is crossbar + ADC + MUX + subtractor, ``neuron_pj`` is
    the LIF module, and ``memory_pj`` is H-tree + memory fetch + temporal and tile
    buffers. Raises ``ValueError`` for an ANN (``counts.model != "snn"``).
    """
    if counts.model != "snn":
        raise ValueError(
            f"cost_model={NAME!r} prices SNNs only (got counts.model={counts.model!r}): "
            "SpikeSim's released energy engine has no ANN model"
        )
    _check_crossbar(crossbar)
    _crossbar_pj(device)
    timesteps = int(counts.timesteps)
    out = []
    for layer in counts.layers:
        _, _, _, kernel = layer_geometry(layer)
        parts = pe_cycle_breakdown(kernel, crossbar, device)
        cycles = layer_pe_cycles(layer, crossbar) * timesteps
        synaptic = parts["crossbar"] + parts["adc"] + parts["mux"] + parts["subtractor"]
        memory = (
            parts["htree"] + parts["memory_fetch"] + parts["temporal_buffer"] + parts["tile_buffer"]
        )
        out.append(
            LayerEnergy(
                name=layer.name,
                synaptic_pj=cycles * synaptic,
                neuron_pj=cycles * parts["neuron"],
                memory_pj=cycles * memory,
            )
        )
    return out
