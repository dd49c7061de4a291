"""A small DistributedDataParallel: broadcast once, then all-reduce gradients in buckets while
backward is still running (brief, sections 3 and 4).

    model = DDP(TinyGPT(cfg), bucket_cap_bytes=64 * 1024)
    loss = model(x, y)[1]
    loss.backward()                            # buckets are all-reduced as their gradients appear ...
    model.finish_gradient_synchronization()    # ... and waited for here, before optimizer.step()

1. Construction: every rank copies rank 0's parameters and buffers (broadcast), so the replicas
   start equal; with equal gradients and the same optimizer they stay equal.
2. Buckets: the parameters that need a gradient, in REVERSE order of module.parameters() (backward
   meets the last layers first), are grouped greedily: a bucket is closed when the next parameter
   would take it over bucket_cap_bytes (a parameter larger than the cap gets a bucket alone). One
   all-reduce per bucket: a few large messages instead of one small message per tensor.
3. Overlap: a hook on each parameter fires once its gradient is fully accumulated
   (register_post_accumulate_grad_hook: a tied parameter fires once, after both uses). When the
   last gradient of a bucket arrives, the bucket is flattened and all_reduce(async_op=True) starts;
   backward carries on with earlier layers while the bytes travel.
4. finish_gradient_synchronization(): wait for every bucket, divide by the world size, copy the
   averages back into each .grad. A bucket that never filled (a parameter got no gradient this
   step) is reduced here with zeros for the missing gradients, so every rank makes the same calls.
no_sync(): a context in which backward only accumulates locally (gradient accumulation, section 5).

Not handled: parameters on several devices, buckets that change between steps (torch rebuilds them
after the first step in the order gradients actually arrived), find_unused_parameters' graph walk.
"""
from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist
import torch.nn as nn


def make_buckets(params: list[nn.Parameter], cap_bytes: int) -> list[list[nn.Parameter]]:
    """Group params (in the order given) greedily into buckets of at most cap_bytes each."""
    buckets, current, size = [], [], 0
    for p in params:
        nbytes = p.numel() * p.element_size()
        if current and size + nbytes > cap_bytes:
            buckets.append(current)
            current, size = [], 0
        current.append(p)
        size += nbytes
    if current:
        buckets.append(current)
    return buckets


class DDP(nn.Module):
    def __init__(self, module: nn.Module, bucket_cap_bytes: int = 1 << 20):
        super().__init__()
        self.module = module
        self.world = dist.get_world_size()
        with torch.no_grad():                       # 1. everyone starts from rank 0's weights
            for t in [*module.parameters(), *module.buffers()]:
                dist.broadcast(t, src=0)
        trainable = [p for p in module.parameters() if p.requires_grad]
        self.buckets = make_buckets(list(reversed(trainable)), bucket_cap_bytes)   # 2.
        self._bucket_of = {id(p): i for i, bucket in enumerate(self.buckets) for p in bucket}
        self._ready = [0] * len(self.buckets)      # gradients arrived so far, per bucket
        self._pending: dict[int, tuple] = {}       # bucket -> (async handle, flat buffer)
        self.require_backward_grad_sync = True     # False inside no_sync()
        for p in trainable:
            p.register_post_accumulate_grad_hook(self._grad_ready)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    # -- during backward -------------------------------------------------------------------------
    def _grad_ready(self, p: nn.Parameter) -> None:
        if not self.require_backward_grad_sync:
            return                                  # accumulating: keep the gradient local
        b = self._bucket_of[id(p)]
        self._ready[b] += 1
        if self._ready[b] == len(self.buckets[b]):
            self._launch(b)                         # 3. the bucket is complete: start sending it

    def _launch(self, b: int) -> None:
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for p in self.buckets[b]])
        self._pending[b] = (dist.all_reduce(flat, op=dist.ReduceOp.SUM, async_op=True), flat)

    # -- after backward --------------------------------------------------------------------------
    def finish_gradient_synchronization(self) -> None:
        """Wait for every bucket's all-reduce and write the averaged gradients back. Call after
        loss.backward() and before optimizer.step()."""
        if not self.require_backward_grad_sync:
            return
        for b in range(len(self.buckets)):
            if b not in self._pending:
                self._launch(b)                     # never filled: reduce it now, same on every rank
        for b, (handle, flat) in sorted(self._pending.items()):
            handle.wait()
            flat /= self.world                      # 4. sum -> mean
            offset = 0
            for p in self.buckets[b]:
                n = p.numel()
                p.grad = flat[offset:offset + n].view_as(p).clone()
                offset += n
        self._pending.clear()
        self._ready = [0] * len(self.buckets)

    @contextlib.contextmanager
    def no_sync(self):
        """Inside: backward accumulates into .grad with no communication at all."""
        before = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = before
