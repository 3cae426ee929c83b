"""Input encoders: turn a static batch ``[B, ...]`` into a ``[T, B, ...]`` sequence."""

from __future__ import annotations

import torch
from torch import nn


class Encoder(nn.Module):
    """Base class: holds the number of timesteps ``T`` of the whole network.

    Temporal pruning changes ``T`` between training stages; the encoder is
    the one place that knows it (see :meth:`snncost.nn.SpikingSequential.timesteps`).
    """

    kind = "base"

    def __init__(self, timesteps: int) -> None:
        super().__init__()
        self.timesteps = timesteps

    @property
    def timesteps(self) -> int:
        return self._timesteps

    @timesteps.setter
    def timesteps(self, value: int) -> None:
        if int(value) < 1:
            raise ValueError(f"timesteps must be >= 1, got {value}")
        self._timesteps = int(value)

    def extra_repr(self) -> str:
        return f"timesteps={self.timesteps}"


class DirectEncoder(Encoder):
    """Direct (analog) input: the same image at every step, ``x[t] = x``.

    Returns a stride-0 *view* (no copy); :class:`SpikingSequential` notices
    the stride and runs time-invariant layers once instead of ``T`` times,
    so the first conv costs one call, as it does in hardware that reuses the
    analog MACs (the simulator still counts the MACs of every step).
    """

    kind = "direct"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(0).expand(self.timesteps, *x.shape)


class PoissonEncoder(Encoder):
    """Poisson rate coding with signed spikes.

    At each step a pixel fires with probability ``min(1, gain * |x|)`` and
    the spike carries the sign of ``x`` (so normalised inputs with negative
    values are coded too): ``s[t] = sign(x) * Bernoulli(min(1, gain*|x|))``.
    Pass a ``generator`` to make the spike trains reproducible.
    """

    kind = "poisson"

    def __init__(self, timesteps: int, gain: float = 1.0) -> None:
        super().__init__(timesteps)
        if not gain > 0:
            raise ValueError(f"Poisson gain must be > 0, got {gain}")
        self.gain = gain
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = (self.gain * x.abs()).clamp(max=1.0)
        p = p.unsqueeze(0).expand(self.timesteps, *x.shape)
        rnd = torch.rand(p.shape, device=x.device, dtype=x.dtype, generator=self.generator)
        return (rnd < p).to(x.dtype) * torch.sign(x)

    def extra_repr(self) -> str:
        return f"timesteps={self.timesteps}, gain={self.gain:g}"
