"""flash-quant's checks pass correct code written in other styles than the reference.

The reference passing proves little about solutions nobody here wrote. These are written from the
brief alone, in a deliberately different style: torch.split / einsum instead of slicing and @, scores
scaled after the product instead of q before it, `x * (q_max / absmax)` instead of `x / scale`, a
logaddexp-style lse, a KV cache that keeps per-layer views. The reference's other modules fill the
rest of the package. Graded on two fixed seeds, cheap checkpoints only (no model loading).
"""
from __future__ import annotations

import shutil

import pytest

from grader import workspace
from tests.helpers import grade, missions

MISSION = next(m for m in missions() if m.id == "flash-quant")

ONLINE_SOFTMAX = '''
import torch

NEG_INF = float("-inf")


def safe_max(m):
    """m with -inf replaced by 0: what to subtract before exp() so that a row (or block) that is
    entirely -inf gives exp(-inf - 0) = 0 instead of exp(NaN)."""
    return torch.where(m == NEG_INF, torch.zeros_like(m), m)


def online_softmax_stats(x, block_size):
    run_max = x.new_full(x.shape[:-1], NEG_INF)
    run_sum = x.new_zeros(x.shape[:-1])
    for chunk in torch.split(x, block_size, dim=-1):
        chunk_max = chunk.max(dim=-1).values
        new_max = torch.maximum(run_max, chunk_max)
        ref = new_max.nan_to_num(neginf=0.0)
        run_sum = run_sum * (run_max - ref).exp() + (chunk - ref.unsqueeze(-1)).exp().sum(dim=-1)
        run_max = new_max
    return run_max, run_sum


def online_softmax(x, block_size):
    m, l = online_softmax_stats(x, block_size)
    e = (x - m.nan_to_num(neginf=0.0).unsqueeze(-1)).exp()
    return torch.where(l.unsqueeze(-1) > 0, e / l.clamp_min(1e-30).unsqueeze(-1), torch.zeros_like(e))
'''

TILED = '''
import math

import torch


def flash_attention_forward(q, k, v, causal=False, block_q=64, block_k=64):
    *lead, n_q, d = q.shape
    n_k = k.shape[-2]
    shift = n_k - n_q
    outs, lses = [], []
    for q_start in range(0, n_q, block_q):
        qb = q[..., q_start:q_start + block_q, :]
        rows = qb.shape[-2]
        best = torch.full((*lead, rows), float("-inf"), dtype=q.dtype)
        total = torch.zeros((*lead, rows), dtype=q.dtype)
        out = torch.zeros((*lead, rows, d), dtype=q.dtype)
        last_key = min(n_k, shift + q_start + rows) if causal else n_k   # exclusive
        for k_start in range(0, max(last_key, 0), block_k):
            kb = k[..., k_start:k_start + block_k, :]
            vb = v[..., k_start:k_start + block_k, :]
            s = torch.einsum("...qd,...kd->...qk", qb, kb) / math.sqrt(d)
            if causal:
                qpos = torch.arange(q_start, q_start + rows)[:, None] + shift
                kpos = torch.arange(k_start, k_start + kb.shape[-2])[None, :]
                s = torch.where(kpos <= qpos, s, torch.full_like(s, float("-inf")))
            new_best = torch.maximum(best, s.max(dim=-1).values)
            ref = new_best.nan_to_num(neginf=0.0)
            w = torch.exp(s - ref[..., None])
            fix = torch.exp(best - ref)
            total = total * fix + w.sum(-1)
            out = out * fix[..., None] + torch.einsum("...qk,...kd->...qd", w, vb)
            best = new_best
        outs.append(out / torch.where(total > 0, total, torch.ones_like(total))[..., None])
        lses.append(torch.where(total > 0, best + total.log(), torch.full_like(total, float("-inf"))))
    return torch.cat(outs, dim=-2), torch.cat(lses, dim=-1)
'''

QUANTIZE = '''
import torch

GRANULARITIES = ("tensor", "channel", "group")


def qmax(bits):
    """The largest symmetric code: 127 for 8 bits, 7 for 4 bits."""
    return 2 ** (bits - 1) - 1


def expand_scale(s, shape):
    """A scale (or zero point) of shape (), (out,) or (out, groups), repeated to the weight's shape."""
    if s.dim() == 0:
        return s.expand(shape)
    if s.dim() == 1:
        return s[:, None].expand(shape)
    return s.repeat_interleave(shape[1] // s.size(1), dim=1)


def _groups(w, granularity, group_size):
    if granularity == "tensor":
        return w.flatten()[None, :]
    if granularity == "channel":
        return w
    return w.unflatten(1, (-1, group_size)).flatten(0, 1)


def _unshape(x, w, granularity, group_size):
    if granularity == "tensor":
        return x.reshape(())
    if granularity == "channel":
        return x
    return x.reshape(w.shape[0], -1)


def absmax_quantize(w, bits=8, granularity="channel", group_size=None):
    w = w.float()
    g = _groups(w, granularity, group_size)
    top = g.abs().max(dim=1).values
    top = torch.where(top > 0, top, torch.full_like(top, qmax(bits)))
    codes = (g * (qmax(bits) / top)[:, None]).round().clamp(-qmax(bits), qmax(bits))
    scale = _unshape(top / qmax(bits), w, granularity, group_size)
    return codes.reshape(w.shape).to(torch.int8), scale


def zeropoint_quantize(w, bits=8, granularity="channel", group_size=None):
    w = w.float()
    top_code = 2 ** bits - 1
    g = _groups(w, granularity, group_size)
    lo = torch.clamp(g.min(dim=1).values, max=0.0)
    hi = torch.clamp(g.max(dim=1).values, min=0.0)
    scale = (hi - lo) / top_code
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zero = torch.round(-lo / scale).clamp(0, top_code)
    codes = (torch.round(g / scale[:, None]) + zero[:, None]).clamp(0, top_code)
    return (codes.reshape(w.shape).to(torch.uint8), _unshape(scale, w, granularity, group_size),
            _unshape(zero, w, granularity, group_size).to(torch.int32))


def dequantize(q, scale, zero=None):
    shape = tuple(q.shape)
    x = q.to(torch.int32)
    if zero is not None:
        x = x - expand_scale(zero, shape)
    return x.float() * expand_scale(scale, shape)


def int8_matmul(a, b):
    return torch.matmul(a.int(), b.int().t())


def quantized_linear(x, w_q, w_scale):
    x = x.float()
    sx = x.abs().amax(dim=1) / 127
    sx = torch.where(sx > 0, sx, torch.ones_like(sx))
    xq = torch.round(x / sx[:, None]).clamp(-127, 127).to(torch.int8)
    return int8_matmul(xq, w_q).float() * torch.outer(sx, w_scale)
'''

STYLES = {"online_softmax.py": ONLINE_SOFTMAX, "tiled_attention.py": TILED, "quantize.py": QUANTIZE}


@pytest.mark.parametrize("seed", [12, 1929194197])
def test_other_styles_pass(tmp_path, seed):
    ws, _, _ = workspace.init(tmp_path / "ws", [MISSION])
    pkg = ws.package_dir(MISSION)
    for src in MISSION.reference_dir.glob("*.py"):
        shutil.copyfile(src, pkg / src.name)
    for name, text in STYLES.items():
        (pkg / name).write_text(text.lstrip())
    run = grade(MISSION, ws, checkpoints=["online_softmax", "tiled_attention", "int8"], seed=seed)
    for r in run.results:
        assert r.status == "passed", f"{r.checkpoint} (seed {seed}): {r.status}: {r.message}"
