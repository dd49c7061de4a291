"""Tensor parallelism, Megatron style: one Linear layer's matrix split across the ranks (brief, section 9).

y = x·Wᵀ + b with W of shape (out, in). Two ways to cut it over W ranks:

Column-parallel (split the OUTPUT features): rank r keeps rows [r·out/W, (r+1)·out/W) of W and the
same slice of b, sees the whole input x, and produces its slice of y's features. Forward needs no
communication. Backward: each rank's dL/dx covers only its slice of the outputs, so the true dL/dx
is the SUM over ranks: an all-reduce, done by an autograd function that is the identity forward
and all-reduces backward (Megatron's "f").

Row-parallel (split the INPUT features): rank r keeps columns [r·in/W, (r+1)·in/W) of W and receives
the matching slice of x (exactly what a column-parallel layer before it produced). Each rank's
x_r·W_rᵀ is a partial sum of y: an all-reduce forward (identity backward: Megatron's "g") makes the
whole y, and the bias is added once, after the sum.

An MLP as column-parallel fc -> gelu (elementwise, works on slices) -> row-parallel out needs one
all-reduce forward and one backward, whatever the width.
Not handled: sequence parallelism, splits that do not divide evenly, parallel embeddings.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


class _CopyToParallel(torch.autograd.Function):
    """Forward: x unchanged (every rank uses all of it). Backward: sum dL/dx over the ranks."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class _ReduceFromParallel(torch.autograd.Function):
    """Forward: sum the ranks' partial outputs. Backward: each rank's part gets the whole dL/dy."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad


def _my_slice(n: int) -> slice:
    rank, world = dist.get_rank(), dist.get_world_size()
    if n % world:
        raise ValueError(f"{n} features do not split evenly over {world} ranks")
    size = n // world
    return slice(rank * size, (rank + 1) * size)


class ColumnParallelLinear(nn.Module):
    """This rank's share of `linear`'s output features: x (..., in) -> y_r (..., out/W)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        rows = _my_slice(linear.out_features)
        self.weight = nn.Parameter(linear.weight.detach()[rows].clone())                 # (out/W, in)
        self.bias = nn.Parameter(linear.bias.detach()[rows].clone()) if linear.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(_CopyToParallel.apply(x), self.weight, self.bias)


class RowParallelLinear(nn.Module):
    """This rank's share of `linear`'s input features: x_r (..., in/W) -> y (..., out), summed."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        cols = _my_slice(linear.in_features)
        self.weight = nn.Parameter(linear.weight.detach()[:, cols].clone())              # (out, in/W)
        self.bias = nn.Parameter(linear.bias.detach().clone()) if linear.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _ReduceFromParallel.apply(F.linear(x, self.weight))    # partial sums -> the whole y
        return y + self.bias if self.bias is not None else y       # the bias once, after the sum
