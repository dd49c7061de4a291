"""Gradient accumulation with data parallelism: k micro-batches, one synchronisation (brief, section 5).

Not handled: micro-batches of different sizes, gradient clipping.
"""
from __future__ import annotations

import contextlib

import torch


def accumulation_step(model, optimizer: torch.optim.Optimizer, micro_batches, loss_fn) -> float:
    """One optimizer step over k micro-batches. Returns the mean of the k micro-batch losses (a float).

    model: a DDP (ddp.py) with no_sync() and finish_gradient_synchronization().
    micro_batches: a list of k (x, y) pairs; loss_fn(model, x, y) -> a scalar loss tensor (the mean
    over that micro-batch); call it once per micro-batch. Zero the gradients after the step.
    """
    raise NotImplementedError("accumulation_step: see brief.md, section 5 (Gradient accumulation)")
