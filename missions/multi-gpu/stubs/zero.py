"""ZeRO stage 1: AdamW whose moments are split across the ranks (brief, section 6).

    flatten the trainable parameters (in the order given) into one vector of N elements;
    S = ceil(N / W); rank r owns elements [r·S, min((r+1)·S, N))      (the last shard may be shorter)
    step():  each rank applies AdamW to its own slice (the gradients are averaged beforehand);
             then an all-gather hands every rank every updated slice.

Keep the moments in self.state (a dict): the checks add up the bytes of every tensor in it. The
update is torch.optim.AdamW's (brief, section 6). Not handled: parameter groups, sparse gradients.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist


class ZeroAdamW:
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01):
        raise NotImplementedError("ZeroAdamW.__init__: see brief.md, section 6 (ZeRO)")

    @torch.no_grad()
    def step(self) -> None:
        raise NotImplementedError("ZeroAdamW.step: see brief.md, section 6 (ZeRO)")

    def zero_grad(self, set_to_none: bool = True) -> None:
        raise NotImplementedError("ZeroAdamW.zero_grad: see brief.md, section 6 (ZeRO)")
