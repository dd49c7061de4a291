"""Shared helpers for the flash-quant checks (not a test file: pytest does not collect it).

Learner modules come only through grader.seam. Expected values come from plain torch (or engine/)
and are computed before the learner's function runs.
"""
from __future__ import annotations

import contextlib
import math

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from grader.checks import is_close, to_numpy


@contextlib.contextmanager
def one_thread():
    """The shapes here are small: one thread is as fast as two and never stalls on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# -- watching what a function computes ------------------------------------------------------------
_MATMULS = {"mm", "bmm", "addmm", "baddbmm", "addbmm", "_int_mm", "dot", "mv", "addmv"}


class Watch(TorchDispatchMode):
    """Sees every aten op a function runs. Records the largest tensor any op CREATES (views and
    in-place results share memory with an input and are not counted) and the work done: 2·M·N·K
    FLOPs for each matrix product, plus one per element of every other op's output."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False          # no torch.compile here; wrapping for it would import dynamo (2 s)

    def __init__(self):
        super().__init__()
        self.largest, self.largest_shape, self.largest_op = 0, (), ""
        self.work, self.ops = 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops += 1
        name = func.overloadpacket.__name__
        inputs = [a for a in tree_flatten((args, kwargs or {}))[0] if isinstance(a, torch.Tensor)]
        in_ptrs = {a.untyped_storage().data_ptr() for a in inputs if a.numel()}
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            if name in _MATMULS and len(inputs) >= 2:
                a, b = inputs[-2], inputs[-1]
                inner = a.shape[-1] if a.dim() else 1
                self.work += 2 * t.numel() * inner
            else:
                self.work += t.numel()
            fresh = not func.is_view and (not t.numel() or t.untyped_storage().data_ptr() not in in_ptrs)
            if fresh and t.numel() > self.largest:
                self.largest, self.largest_shape, self.largest_op = t.numel(), tuple(t.shape), name
        return out


# -- attention written the obvious way (float64), with this mission's conventions ------------------
def visible_mask(t_q: int, t_k: int, causal: bool) -> torch.Tensor:
    """(t_q, t_k) bool: query i sits at position t_k - t_q + i and sees keys up to there."""
    ones = torch.ones(t_q, t_k, dtype=torch.bool)
    return ones.tril(t_k - t_q) if causal else ones


def attention_by_hand(q, k, v, mask=None):
    """(o, lse) in float64 then cast back: fully masked rows give o = 0 and lse = -inf."""
    dtype = q.dtype
    q, k, v = q.double(), k.double(), v.double()
    s = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    safe = torch.where(torch.isinf(lse), torch.zeros_like(lse), lse)
    p = torch.exp(s - safe[..., None])
    return (p @ v).to(dtype), lse.to(dtype)


def scores_rowmax(q, k, mask=None):
    s = q.double() @ k.double().transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return s.amax(dim=-1).to(q.dtype)


def close(got, want, atol, rtol=0.0) -> bool:
    """Quiet comparison for diagnosing WHICH mistake it is (never the verdict itself); NaN == NaN
    and -inf == -inf count as equal here."""
    if not isinstance(got, torch.Tensor) or type(got) is not torch.Tensor or got.shape != want.shape:
        return False
    g, w = to_numpy(got), to_numpy(want)
    import numpy as np
    same = (np.isnan(g) & np.isnan(w)) | (np.isinf(g) & np.isinf(w) & (np.sign(g) == np.sign(w)))
    g = np.where(same, 0.0, g)
    w = np.where(same, 0.0, w)
    return is_close(g, w, atol=atol, rtol=rtol)


def finite_where_expected(got, want) -> bool:
    """False when got has NaN/inf where want is finite."""
    import numpy as np
    g, w = to_numpy(got), to_numpy(want)
    return bool(np.all(np.isfinite(g) | ~np.isfinite(w)))
