"""Pipeline parallelism with GPipe's schedule: one stage of layers per rank (brief, section 9).

Not handled: the 1F1B schedule, interleaved stages, micro-batches of different shapes.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn


def bubble_fraction(stages: int, micro_batches: int) -> float:
    """The share of a GPipe pass each rank spends idle, for p stages and m micro-batches."""
    raise NotImplementedError("bubble_fraction: see brief.md, section 9 (Pipeline parallelism)")


def gpipe_step(stage: nn.Module, micro_batches: list, loss_fn, activation_shape) -> float | None:
    """One forward-backward pass of the pipeline (no optimizer step): gradients land in .grad.

    stage: this rank's layers. micro_batches: the same list of m (x, y) pairs on every rank (rank 0
    reads the x's, the last rank the y's). loss_fn(output, y) -> mean loss of one micro-batch.
    activation_shape: the shape of the tensors passed between stages (the same for all).
    All m forwards first, then all m backwards (dist.send / dist.recv between neighbours).
    Returns the batch's mean loss (a float) on the last rank, None on the others.
    """
    raise NotImplementedError("gpipe_step: see brief.md, section 9 (Pipeline parallelism)")
