"""Multi-process training under ``torchrun`` (DistributedDataParallel).

``torchrun --nproc_per_node=N -m trainers.run ...`` sets ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`init` then joins the process group
(nccl on GPU, gloo on CPU). Without those variables every helper here is a
no-op, so the single-process path has no distributed code in it.

Conventions: each rank trains on its shard of every global batch (the
loaders split the batch, so the global batch size is the configured one),
DDP averages the gradients, only rank 0 writes files and prints, and
statistics that must see all the data (PCA of spatial pruning, training
metrics) are summed across ranks with :func:`all_reduce_sum`.

Faults: every training step each rank's loss goes through
:func:`losses_over_ranks` (one all-reduce) *before* ``backward``, so a
non-finite loss on any rank is known to every rank at the same step, all of
them raise the same :class:`trainers.engine.NonFiniteLossError` naming the
rank(s), and none is left waiting in DDP's gradient all-reduce. They also
meet once more in :func:`shutdown` (see :func:`stop_together`), so each
prints that message before any exits: torchrun terminates the other
workers as soon as it sees the first one exit.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as td
from torch import nn


def requested() -> bool:
    """True when launched by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device_type: str) -> None:
    """Join the process group if torchrun asked for one (idempotent)."""
    if not requested() or td.is_initialized():
        return
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank())
    td.init_process_group(backend=backend)


_stopping_together = False


def stop_together() -> None:
    """Note that every rank is stopping on the same all-reduced decision (a diverged loss).

    Only then does :func:`shutdown` wait for all ranks (a barrier) before it
    leaves the group: each rank has printed its error line by then, so the
    launcher, which terminates the other workers when the first one exits,
    cuts no message short. An error seen by one rank alone never sets this,
    so its shutdown never waits for ranks that will not come.
    """
    global _stopping_together
    _stopping_together = True


def shutdown() -> None:
    global _stopping_together
    if td.is_available() and td.is_initialized():
        if _stopping_together and active():
            td.barrier()
        td.destroy_process_group()
    _stopping_together = False


def active() -> bool:
    return td.is_available() and td.is_initialized() and td.get_world_size() > 1


def rank() -> int:
    return td.get_rank() if active() else 0


def world_size() -> int:
    return td.get_world_size() if active() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if active():
        td.barrier()


def wrap(model: nn.Module) -> nn.Module:
    """``model`` in DistributedDataParallel when distributed, else itself."""
    if not active():
        return model
    device_ids = [model_device(model).index] if model_device(model).type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (no-op single-process); returns it."""
    if active():
        td.all_reduce(tensor, op=td.ReduceOp.SUM)
    return tensor


def mean_over_ranks(values: dict[str, float], weight: float) -> dict[str, float]:
    """Weighted mean of per-rank scalars (``weight``: this rank's sample count)."""
    if not active():
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] * weight for k in keys] + [weight], dtype=torch.float64)
    if td.get_backend() == "nccl":
        t = t.cuda()
    all_reduce_sum(t)
    total = float(t[-1])
    return {k: float(t[i]) / total for i, k in enumerate(keys)}


def losses_over_ranks(loss: torch.Tensor) -> list[float]:
    """Every rank's scalar ``loss``, on every rank (index = rank): the reduced divergence flag.

    One all-reduce (SUM) of a ``world_size``-long float64 vector holding this
    rank's loss at its own index and zeros elsewhere: a sum with zeros is
    exact, so each entry is that rank's loss as it was, NaN and inf included.
    All ranks get the same list, so they all take the same decision.

    Cost, per training step and only under torchrun: one latency-bound
    collective of ``8 * world_size`` bytes (microseconds on NCCL within a
    node, well under a millisecond with gloo on CPU) and one host sync, which
    replaces the ``loss.item()`` sync the single-process loop does for its
    own check. It cannot ride on the step's existing collective, DDP's
    gradient all-reduce: that runs inside ``backward``, and the decision has
    to be taken before it, or a rank that stops would leave the others
    waiting there (and the averaged gradients would already be NaN
    everywhere, without saying whose loss it was). Single-process: no
    collective, ``[loss]``.
    """
    value = loss.detach().to(torch.float64).reshape(())
    if not active():
        return [float(value)]
    flags = torch.zeros(world_size(), dtype=torch.float64, device=value.device)
    flags[rank()] = value
    all_reduce_sum(flags)
    return flags.tolist()
