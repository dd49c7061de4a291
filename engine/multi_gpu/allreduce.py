"""Data parallelism in its plainest form: split the batch, average the gradients (brief, section 2).

Every rank holds the same model. Rank r takes its own slice of the global batch, runs forward and
backward on it alone, and then the ranks average their gradients with one all-reduce per parameter:

    g = (g_0 + g_1 + ... + g_{W-1}) / W

Because the loss is a mean over the batch, the mean of the W half-batch gradients is exactly the
full-batch gradient (when the slices are the same size), so every rank then takes the same optimizer
step and the replicas never drift apart. all_reduce(SUM) adds; dividing by W is our job.

Not handled: batches that do not split evenly (the slices would weigh differently), parameters
that are on different devices.
"""
from __future__ import annotations

import torch
import torch.distributed as dist


def shard_batch(batch: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank `rank`'s contiguous slice of `batch` along dim 0: rows [rank·B/W, (rank+1)·B/W).

    batch: (B, ...) with B divisible by world -> (B/W, ...). Raises ValueError otherwise.
    """
    B = batch.shape[0]
    if B % world:
        raise ValueError(f"a batch of {B} rows does not split evenly over {world} ranks")
    per_rank = B // world
    return batch[rank * per_rank:(rank + 1) * per_rank]


def average_gradients(model: torch.nn.Module) -> None:
    """After loss.backward() on every rank: replace each parameter's .grad by its mean over the ranks.

    Parameters without a gradient (frozen, or unused this step) are skipped; model.parameters()
    yields a tied Parameter once, so it is averaged once.
    """
    world = dist.get_world_size()
    for p in model.parameters():
        if p.grad is None:
            continue
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)   # every rank now holds the sum ...
        p.grad /= world                                 # ... and the mean after this


def ring_allreduce_bytes(n_bytes: int, world: int) -> int:
    """Bytes each rank sends in a ring all-reduce of an n_bytes buffer: 2·(W-1)/W · n_bytes.

    The buffer is cut into W chunks. Reduce-scatter: W-1 steps, each rank sends one chunk to its
    right neighbour and adds the chunk it receives; after them each rank owns one fully summed chunk.
    All-gather: W-1 more steps pass the summed chunks around. 2·(W-1) chunks of n/W bytes each, so
    the traffic per rank barely grows with W (it tends to 2·n). With one rank nothing is sent.
    Integer bytes: n_bytes must be divisible by world.
    """
    if world < 1 or n_bytes < 0:
        raise ValueError(f"need world >= 1 and n_bytes >= 0, got world={world}, n_bytes={n_bytes}")
    if n_bytes % world:
        raise ValueError(f"{n_bytes} bytes do not split into {world} equal chunks")
    return 2 * (world - 1) * (n_bytes // world)
