"""Gradient accumulation with data parallelism: k micro-batches, one synchronisation (brief, section 5).

A batch too large for memory is cut into k micro-batches. Backward on each adds into .grad, so after
k of them .grad holds the SUM of k mean-gradients: dividing each micro-batch loss by k turns that
sum into the mean over the whole batch, the gradient one large batch would give.

With DDP, each backward would all-reduce every bucket, k times the traffic for nothing: only the
final, accumulated gradient needs averaging across ranks. So the first k-1 backward passes run
inside model.no_sync() and only the last one communicates:

    micro-step 1 .. k-1:   with model.no_sync(): (loss_i / k).backward()     # local only
    micro-step k:          (loss_k / k).backward(); model.finish_gradient_synchronization()
    then                   optimizer.step(); optimizer.zero_grad()

Not handled: micro-batches of different sizes (each would need weighting by its size), gradient
clipping (it would go between the synchronisation and the step).
"""
from __future__ import annotations

import contextlib

import torch


def accumulation_step(model, optimizer: torch.optim.Optimizer, micro_batches, loss_fn) -> float:
    """One optimizer step over k micro-batches. Returns the mean of the k micro-batch losses.

    model: a DDP (ddp.py) with no_sync() and finish_gradient_synchronization().
    micro_batches: a list of k (x, y) pairs; loss_fn(model, x, y) -> a scalar loss tensor (the mean
    over that micro-batch). The gradients are zeroed at the end, ready for the next step.
    """
    k = len(micro_batches)
    if k == 0:
        raise ValueError("accumulation_step needs at least one micro-batch")
    total = 0.0
    for i, (x, y) in enumerate(micro_batches):
        last = i == k - 1
        with (contextlib.nullcontext() if last else model.no_sync()):
            loss = loss_fn(model, x, y)
            (loss / k).backward()            # k scaled backward passes add up to the batch mean
        total += loss.item()
    model.finish_gradient_synchronization()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total / k
