"""ZeRO stage 1: AdamW whose moments are split across the ranks (brief, section 6).

Plain data parallelism keeps a full copy of everything on every rank. Adam's two moments (exp_avg
and exp_avg_sq, fp32) are twice the weights and need no copies: the update of element i only reads
element i. So:

    flatten the trainable parameters (in the order given) into one vector of N elements;
    S = ceil(N / W); rank r owns elements [r·S, min((r+1)·S, N))      (the last shard may be shorter)
    step():  each rank applies AdamW to its own slice (with the gradient averaged beforehand);
             then an all-gather hands every rank every updated slice, so all hold the full weights.

Each rank then stores 1/W of the optimizer state: 2·4·S bytes instead of 2·4·N.
The gradients must already be averaged over the ranks when step() runs (DDP or average_gradients):
stage 1 shards only the optimizer state; stage 2 would also reduce-scatter the gradients.

The update is torch.optim.AdamW's, element by element (t counts steps from 1):
    p  <- p · (1 - lr·wd)
    m  <- β1·m + (1-β1)·g          v <- β2·v + (1-β2)·g²
    p  <- p - lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)

Not handled: parameter groups, sparse gradients, parameters of several dtypes or devices,
checkpointing the sharded state.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist


class ZeroAdamW:
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.numel = sum(p.numel() for p in self.params)                    # N
        self.shard_size = math.ceil(self.numel / self.world)                # S
        self.start = min(self.rank * self.shard_size, self.numel)
        self.end = min(self.start + self.shard_size, self.numel)            # this rank: [start, end)
        self.state = {"step": 0, "exp_avg": self._zeros(), "exp_avg_sq": self._zeros()}

    def _zeros(self) -> torch.Tensor:
        """One moment buffer, for this rank's slice only: end - start elements."""
        like = self.params[0]
        return torch.zeros(self.end - self.start, dtype=like.dtype, device=like.device)

    @torch.no_grad()
    def step(self) -> None:
        flat_p = torch.cat([p.reshape(-1) for p in self.params])
        flat_g = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                            for p in self.params])
        p, g = flat_p[self.start:self.end], flat_g[self.start:self.end]     # our slice (views)
        m, v = self.state["exp_avg"], self.state["exp_avg_sq"]
        beta1, beta2 = self.betas
        self.state["step"] += 1
        t = self.state["step"]
        p.mul_(1 - self.lr * self.weight_decay)                             # decoupled weight decay
        m.lerp_(g, 1 - beta1)                                               # m = β1·m + (1-β1)·g
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)                       # v = β2·v + (1-β2)·g²
        denom = (v.sqrt() / math.sqrt(1 - beta2 ** t)).add_(self.eps)
        p.addcdiv_(m, denom, value=-self.lr / (1 - beta1 ** t))
        # everyone contributes its updated slice (padded to S) and receives all of them
        mine = torch.zeros(self.shard_size, dtype=flat_p.dtype, device=flat_p.device)
        mine[:self.end - self.start] = p
        everything = torch.empty(self.shard_size * self.world, dtype=flat_p.dtype, device=flat_p.device)
        dist.all_gather_into_tensor(everything, mine)
        offset = 0
        for param in self.params:
            n = param.numel()
            param.copy_(everything[offset:offset + n].view_as(param))
            offset += n

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()
