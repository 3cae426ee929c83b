"""ANN-to-SNN conversion by layer-wise threshold balancing.

The SNN gets the ANN's weights unchanged; each spiking layer's threshold is
then set, in forward order, to a high percentile (default 99.9th) of the
input current that layer receives *in the SNN* over ``T`` steps on training
data, with the thresholds of all earlier layers already fixed (Sengupta et
al. 2019; Rathi et al. 2020, the initialisation Chowdhury et al. 2021 use).
A percentile rather than the maximum ignores rare outliers, which would set
the threshold so high that the layer barely fires at small ``T``.
"""

from __future__ import annotations

import torch
from torch import nn

from snncost.models import spiking_layers, transfer_weights
from trainers.data import BatchLoader

_MAX_SAMPLES = 2_000_000


class _StopForward(Exception):
    pass


def percentile(values: torch.Tensor, q: float) -> float:
    """The ``q``-th percentile (0-100) of a large tensor (subsampled beyond 2M values)."""
    flat = values.flatten().float()
    if flat.numel() > _MAX_SAMPLES:
        gen = torch.Generator(device="cpu").manual_seed(0)
        idx = torch.randint(0, flat.numel(), (_MAX_SAMPLES,), generator=gen).to(flat.device)
        flat = flat[idx]
    k = max(1, min(flat.numel(), round(q / 100.0 * flat.numel())))
    return flat.kthvalue(k).values.item()


@torch.no_grad()
def convert(
    ann: nn.Module,
    snn: nn.Module,
    loader: BatchLoader,
    percentile_q: float = 99.9,
    batches: int = 4,
) -> list[float]:
    """Copy ``ann``'s weights into ``snn`` and balance its thresholds; returns them."""
    transfer_weights(ann, snn)
    snn.eval()
    layers = spiking_layers(snn)
    thresholds = []
    for _name, lif in layers:
        currents: list[torch.Tensor] = []

        def record(_m, inputs, _currents=currents):
            _currents.append(inputs[0].detach())
            raise _StopForward

        handle = lif.register_forward_pre_hook(record)
        try:
            for i, (x, _) in enumerate(loader):
                if i >= batches:
                    break
                try:
                    snn(x)
                except _StopForward:
                    pass
        finally:
            handle.remove()
        theta = percentile(torch.cat([c.flatten() for c in currents]), percentile_q)
        if not theta > 0:  # a dead layer: keep it able to fire at all
            theta = max(float(torch.cat([c.flatten() for c in currents]).max()), 1e-2)
        lif.threshold.fill_(theta)
        thresholds.append(theta)
    return thresholds
