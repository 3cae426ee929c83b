"""Time-aware containers and layers.

Convention: inside a spiking network every activation is ``[T, B, ...]``.
Stateless layers (conv, linear, pooling, flatten) see time folded into the
batch, ``[T*B, ...]``, so each runs as one big call; only neurons and the
few time-aware layers here see the time axis.
"""

from __future__ import annotations

import torch
from torch import nn

from snncost.nn.encoders import Encoder


class TemporalModule(nn.Module):
    """Marker base: the module consumes ``[T, B, ...]`` itself (no time folding)."""


class OutputIntegrator(TemporalModule):
    """Non-spiking read-out: logits are the mean over ``T`` of the input current.

    ``logits = (1/T) * sum_t I[t]``; equivalently the membrane of a
    non-leaky, non-firing neuron divided by ``T``.

    The sum runs in time order, ``((I[0] + I[1]) + I[2]) + ...``, then is
    divided by ``T``, as the non-firing neuron (and the simulator) does it.
    ``current.mean(0)`` would be the same number up to rounding, but its
    order of summation depends on the tensor's shape, so the replay could
    not reproduce its logits bit for bit once the currents are not integers
    (e.g. scaled quantized weights).
    """

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        acc = current[0]
        for t in range(1, current.shape[0]):
            acc = acc + current[t]
        return acc / current.shape[0]


class TemporalDropout(TemporalModule):
    """Dropout whose mask is drawn once per sample and kept for all ``T`` steps.

    A fresh mask every step would inject noise the spiking dynamics integrate
    away; one mask per inference drops whole neurons, as ANN dropout does.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        mask = torch.empty_like(x[0]).bernoulli_(1.0 - self.p) / (1.0 - self.p)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _is_temporal(module: nn.Module) -> bool:
    from snncost.nn.neurons import LIF

    return isinstance(module, (TemporalModule, LIF, Encoder, SpikingSequential))


class SpikingSequential(nn.Sequential):
    """``nn.Sequential`` for spiking networks: folds time into the batch.

    Children that are time-aware (encoders, neurons, :class:`TemporalModule`,
    nested :class:`SpikingSequential`) get the ``[T, B, ...]`` tensor; every
    other child gets ``[T*B, ...]`` and its output is unfolded again. When
    the sequence is constant in time (a stride-0 view from
    :class:`~snncost.nn.DirectEncoder`) a stateless child runs once on
    ``[B, ...]`` and the result is re-expanded: identical output, ``T`` times
    less work for the analog first layer.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for module in self:
            if _is_temporal(module):
                x = module(x)
            elif x.dim() >= 2 and x.stride(0) == 0:
                y = module(x[0])
                x = y.unsqueeze(0).expand(x.shape[0], *y.shape)
            else:
                steps, batch = x.shape[0], x.shape[1]
                y = module(x.reshape(steps * batch, *x.shape[2:]))
                x = y.reshape(steps, batch, *y.shape[1:])
        return x

    @property
    def timesteps(self) -> int:
        """``T``, read from the first encoder found (depth-first)."""
        return self.find_encoder().timesteps

    @timesteps.setter
    def timesteps(self, value: int) -> None:
        self.find_encoder().timesteps = value

    def find_encoder(self) -> Encoder:
        for module in self.modules():
            if isinstance(module, Encoder):
                return module
        raise ValueError("this SpikingSequential has no Encoder, so it has no number of timesteps")
