"""Data parallelism in its plainest form: split the batch, average the gradients (brief, section 2).

Every rank holds the same model. Rank r takes its own slice of the global batch, runs forward and
backward on it alone, and then the ranks average their gradients with one all-reduce per parameter:

    g = (g_0 + g_1 + ... + g_{W-1}) / W

Not handled: batches that do not split evenly, parameters on different devices.
"""
from __future__ import annotations

import torch
import torch.distributed as dist


def shard_batch(batch: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank `rank`'s contiguous slice of `batch` along dim 0: rows [rank·B/W, (rank+1)·B/W).

    batch: (B, ...) with B divisible by world -> (B/W, ...). Raise ValueError otherwise.
    """
    raise NotImplementedError("shard_batch: see brief.md, section 2 (Data parallelism)")


def average_gradients(model: torch.nn.Module) -> None:
    """After loss.backward() on every rank: replace each parameter's .grad by its mean over the ranks.

    Skip parameters whose .grad is None (frozen ones). dist.all_reduce adds; the mean is yours.
    """
    raise NotImplementedError("average_gradients: see brief.md, section 2 (Data parallelism)")


def ring_allreduce_bytes(n_bytes: int, world: int) -> int:
    """Bytes each rank SENDS in a ring all-reduce of an n_bytes buffer over `world` ranks (an int).

    Raise ValueError for world < 1, n_bytes < 0, or n_bytes not divisible by world.
    """
    raise NotImplementedError("ring_allreduce_bytes: see brief.md, section 2 (What an all-reduce costs)")
