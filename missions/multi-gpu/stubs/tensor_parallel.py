"""Tensor parallelism, Megatron style: one Linear layer's matrix split across the ranks (brief, section 9).

ColumnParallelLinear(linear): this rank keeps rows [r·out/W, (r+1)·out/W) of linear.weight (and that
slice of the bias); x (..., in) -> its slice of the output features (..., out/W).
RowParallelLinear(linear): this rank keeps columns [r·in/W, (r+1)·in/W) of linear.weight and the
whole bias; its slice of the input features (..., in/W) -> the whole output (..., out).
Both keep their tensors as nn.Parameters named weight and bias. The gradients must come out right:
write the communication as autograd functions (torch.autograd.Function) with a forward and a
backward. Not handled: splits that do not divide evenly.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


class ColumnParallelLinear(nn.Module):
    """This rank's share of `linear`'s output features: x (..., in) -> y_r (..., out/W)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        raise NotImplementedError("ColumnParallelLinear: see brief.md, section 9 (Tensor parallelism)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("ColumnParallelLinear.forward: see brief.md, section 9")


class RowParallelLinear(nn.Module):
    """This rank's share of `linear`'s input features: x_r (..., in/W) -> y (..., out), summed."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        raise NotImplementedError("RowParallelLinear: see brief.md, section 9 (Tensor parallelism)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("RowParallelLinear.forward: see brief.md, section 9")
