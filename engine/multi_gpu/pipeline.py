"""Pipeline parallelism with GPipe's schedule: one stage of layers per rank (brief, section 9).

The model is cut into W consecutive stages, stage r on rank r. A batch is cut into m micro-batches
that flow through the stages like cars through a car wash:

    forward:   rank r receives micro-batch i's activations from rank r-1 (rank 0 reads the input),
               runs its layers, sends the result to rank r+1 (the last rank computes the loss)
    backward:  once ALL m forwards are done (GPipe's flush), the same in reverse: rank r receives
               dL/d(its output) from rank r+1, backpropagates through its layers, sends dL/d(its
               input) to rank r-1. Gradients of the m micro-batches add up in .grad.

Each micro-batch loss is divided by m, so the accumulated gradient is the full batch's mean.
With p stages and m micro-batches every rank idles for p-1 of the m+p-1 time slots of each pass
(it waits for the pipeline to fill, then to drain): the bubble, (p-1)/(m+p-1). More micro-batches
shrink it, at the price of more activations held until the backward pass.

Not handled: the 1F1B schedule (PipeDream: backward starts as soon as possible, which caps the
activations held at p micro-batches), interleaved stages, micro-batches of different shapes.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn


def bubble_fraction(stages: int, micro_batches: int) -> float:
    """The share of a GPipe pass each rank spends idle: (p - 1) / (m + p - 1)."""
    if stages < 1 or micro_batches < 1:
        raise ValueError(f"need stages >= 1 and micro_batches >= 1, got {stages}, {micro_batches}")
    return (stages - 1) / (micro_batches + stages - 1)


def gpipe_step(stage: nn.Module, micro_batches: list, loss_fn, activation_shape) -> float | None:
    """One forward-backward pass of the pipeline (no optimizer step): gradients land in .grad.

    stage: this rank's layers. micro_batches: the same list of m (x, y) pairs on every rank (rank 0
    reads the x's, the last rank the y's). loss_fn(output, y) -> mean loss of one micro-batch.
    activation_shape: the shape of the tensors passed between stages (the same for all).
    Returns the batch's mean loss on the last rank, None on the others.
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    first, last = rank == 0, rank == world - 1
    m = len(micro_batches)
    inputs, outputs = [], []
    for x, y in micro_batches:                                  # all forwards ...
        if first:
            inp = x
        else:
            inp = torch.empty(activation_shape, device=x.device,
                              dtype=x.dtype if x.is_floating_point() else torch.float32)
            dist.recv(inp, src=rank - 1)
            inp.requires_grad_()                                # we need dL/d(input) to send back
        out = stage(inp)
        if last:
            out = loss_fn(out, y) / m                           # m micro-losses add up to the mean
        else:
            dist.send(out.detach(), dst=rank + 1)
        inputs.append(inp)
        outputs.append(out)
    for i in reversed(range(m)):                                # ... then all backwards
        if last:
            outputs[i].backward()
        else:
            grad = torch.empty_like(outputs[i])
            dist.recv(grad, src=rank + 1)
            outputs[i].backward(grad)
        if not first:
            dist.send(inputs[i].grad, dst=rank - 1)
    return sum(out.item() for out in outputs) if last else None
