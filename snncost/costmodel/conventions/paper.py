"""The paper's convention: operation counts times Horowitz's 45 nm fp32 energies, compute only.

Rules (Chowdhury, Garg & Roy 2021, after Horowitz, ISSCC 2014)::

    E = MACs x 4.6 pJ + ACs x 0.9 pJ

at 45 nm, 32-bit float (a MAC is a 3.7 pJ multiply plus a 0.9 pJ add, an AC
is the add alone). MACs are what an analog (dense) input costs: the
direct-coded first layer of the SNN, counted at every timestep, and every
layer of the ANN. ACs are the SNN's synaptic accumulates (input spikes times
their fan-out). Everything goes into ``LayerEnergy.synaptic_pj``.

Source: S. S. Chowdhury, I. Garg, K. Roy, "Spatio-Temporal Pruning and
Quantization for Low-latency Spiking Neural Networks", IJCNN 2021,
arXiv:2104.12528, and its energy numbers from M. Horowitz, "Computing's
energy problem (and what we can do about it)", ISSCC 2014. We found no
released reference code for the paper's energy estimate. The rule and
constants here follow the paper's text (as also recorded in
``hwprofiles/45nm.yaml``).

What it leaves out: neuron updates (leak, threshold, reset), memory traffic
(weights, membrane potentials, activations), spike routing, address
computation, and pooling. Only the multiply-accumulates and accumulates of
the weight layers are priced.

Where snncost departs from the source:

* Operation counts. Op-count papers of this kind usually take a layer's
  ANN operation count (``k*k*C_in*C_out*H_out*W_out``, padding taps
  included) and, for an SNN layer, scale it by the layer's average input
  spike rate. Here the counts are the replay's: ``macs`` are real-tap (border-exact)
  MACs, and ``synaptic_ops`` are the accumulates the event-driven replay
  actually performed, which respects borders and strides. For a linear
  layer fed by spikes the two agree exactly. For a conv layer they differ
  only at the borders.
* Constants are parameters (``mac_pj``, ``ac_pj``). The defaults are the
  paper's. Weight bit width and number format are ignored, as in the paper,
  which prices every operation at fp32.
"""

from __future__ import annotations

from snncost.costmodel.conventions.base import LayerEnergy
from snncost.sim.counts import RunCounts

NAME = "paper"
SOURCE = (
    "S. S. Chowdhury, I. Garg, K. Roy, 'Spatio-Temporal Pruning and Quantization for "
    "Low-latency Spiking Neural Networks', International Joint Conference on Neural Networks "
    "(IJCNN), 2021, arXiv:2104.12528 (https://arxiv.org/abs/2104.12528); energies per "
    "operation from M. Horowitz, 'Computing's energy problem (and what we can do about it)', "
    "ISSCC 2014, doi:10.1109/ISSCC.2014.6757323 (45 nm, 0.9 V). No released reference "
    "code was found; the rule and constants follow the paper's text (see also "
    "hwprofiles/45nm.yaml)."
)
DESCRIPTION = (
    "Compute only: MACs x 4.6 pJ + ACs x 0.9 pJ (Horowitz 45 nm fp32), no neuron updates or memory."
)

#: Energy of one 32-bit float multiply-accumulate at 45 nm: 3.7 pJ mult + 0.9 pJ add (pJ).
MAC_PJ = 4.6
#: Energy of one 32-bit float accumulate (add) at 45 nm (pJ).
AC_PJ = 0.9


def price(counts: RunCounts, mac_pj: float = MAC_PJ, ac_pj: float = AC_PJ) -> list[LayerEnergy]:
    """Compute energy per inference of each weight layer: ``MACs * mac_pj + ACs * ac_pj``.

    ``MACs`` are ``LayerCounts.macs`` summed over timesteps (the direct-coded
    first SNN layer at every step; every ANN layer once). ``ACs`` are
    ``LayerCounts.synaptic_ops`` summed over timesteps. Both are summed over
    the batch and divided by ``counts.batch_size``. The result is in
    ``synaptic_pj``. The other fields are 0.
    """
    for label, value in (("mac_pj", mac_pj), ("ac_pj", ac_pj)):
        if not value >= 0:
            raise ValueError(f"{label} must be a non-negative energy in pJ, got {value!r}")
    if counts.batch_size <= 0:
        raise ValueError(f"counts.batch_size must be positive, got {counts.batch_size}")
    out = []
    for lc in counts.layers:
        macs = float(lc.macs.sum())
        acs = float(lc.synaptic_ops.sum())
        energy = (macs * mac_pj + acs * ac_pj) / counts.batch_size
        out.append(LayerEnergy(name=lc.name, synaptic_pj=energy))
    return out


__all__ = ["AC_PJ", "DESCRIPTION", "MAC_PJ", "NAME", "SOURCE", "price"]
