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


def shutdown() -> None:
    if td.is_available() and td.is_initialized():
        td.destroy_process_group()


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
