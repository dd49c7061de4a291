"""A small DistributedDataParallel: broadcast once, then all-reduce gradients in buckets while
backward is still running (brief, sections 3 and 4).

    model = DDP(TinyGPT(cfg), bucket_cap_bytes=64 * 1024)
    loss = model(x, y)[1]
    loss.backward()                            # buckets are all-reduced as their gradients appear ...
    model.finish_gradient_synchronization()    # ... and waited for here, before optimizer.step()

The rules the checks hold you to (brief, section 3):
- after DDP(module) every rank holds rank 0's parameters (and buffers);
- buckets: the parameters with requires_grad, in REVERSE order of module.parameters(), grouped
  greedily: close a bucket when the next parameter would take it over bucket_cap_bytes (a parameter
  larger than the cap gets a bucket of its own); ONE all-reduce per bucket per backward;
- each bucket's all-reduce starts during backward (a gradient hook), with async_op=True;
- finish_gradient_synchronization() waits for them and leaves the MEAN gradient in every .grad;
- frozen parameters get no gradient; a tied parameter (one Parameter used twice) is reduced once.
no_sync() is for checkpoint accumulation (brief, section 5).
"""
from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist
import torch.nn as nn


def make_buckets(params: list[nn.Parameter], cap_bytes: int) -> list[list[nn.Parameter]]:
    """Group params (in the order given) greedily into buckets of at most cap_bytes each."""
    raise NotImplementedError("make_buckets: see brief.md, section 3 (Buckets)")


class DDP(nn.Module):
    def __init__(self, module: nn.Module, bucket_cap_bytes: int = 1 << 20):
        super().__init__()
        raise NotImplementedError("DDP.__init__: see brief.md, section 3 (A DDP of your own)")

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def finish_gradient_synchronization(self) -> None:
        """Wait for every bucket's all-reduce and write the averaged gradients back. Call after
        loss.backward() and before optimizer.step()."""
        raise NotImplementedError("finish_gradient_synchronization: see brief.md, section 4 (Overlap)")

    @contextlib.contextmanager
    def no_sync(self):
        """Inside: backward accumulates into .grad with no communication at all."""
        raise NotImplementedError("DDP.no_sync: see brief.md, section 5 (Gradient accumulation)")
        yield
