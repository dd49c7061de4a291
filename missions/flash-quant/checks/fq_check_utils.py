"""Shared helpers for the flash-quant checks (not a test file: pytest does not collect it).

Learner modules come only through grader.seam. Expected values come from plain torch (or engine/)
and are computed before the learner's function runs.
"""
from __future__ import annotations

import contextlib
import math
import os

import torch

# Triton compiles or interprets a kernel when @triton.jit runs, i.e. when the module holding it is
# imported. Every check file imports this module before any learner module, so on a machine without
# CUDA the interpreter is chosen here, before a learner's package (or its __init__) can import its kernel.
if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"
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
        self.work, self.ops, self.matmuls, self.matmul_names = 0, 0, 0, []

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
                self.matmuls += 1
                self.matmul_names.append(name)
                a = inputs[-2]
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


def block_suspects(t_q, t_k, bq, bk):
    """Causal masks that are off by one block, as tiled code gets them wrong (True = visible)."""
    i = torch.arange(t_q)[:, None] + (t_k - t_q)          # query positions
    j = torch.arange(t_k)[None, :]
    qb_start = (torch.arange(t_q)[:, None] // bq) * bq + (t_k - t_q)   # first position of i's block
    qb_end = qb_start + bq                                  # one past its last position
    return [
        ((j < qb_start), "the key tiles stop one block early (the tile on the diagonal is skipped)"),
        ((j <= i) | ((j >= qb_end) & (j < qb_end + bk)),
         "one key tile past the diagonal is visited without a mask"),
        ((j < qb_end), "the tile on the diagonal is not masked inside (each query sees its whole block)"),
        ((j <= i + bk), "the mask is shifted one block to the right"),
        ((j <= i - bk), "the mask is shifted one block to the left"),
    ]


def unrescaled_output(q, k, v, causal, bq, bk):
    """The classic tiled mistake, by hand (float64): l is rescaled when the max moves, acc is not."""
    t_q, t_k, d = q.size(-2), k.size(-2), q.size(-1)
    mask = visible_mask(t_q, t_k, causal)
    s_all = q.double() @ k.double().transpose(-2, -1) / d ** 0.5
    s_all = s_all.masked_fill(~mask, float("-inf"))
    out = torch.zeros(q.shape, dtype=torch.float64)
    for qs in range(0, t_q, bq):
        m = torch.full(q[..., qs:qs + bq, 0].shape, float("-inf"), dtype=torch.float64)
        l = torch.zeros_like(m)
        acc = torch.zeros(q[..., qs:qs + bq, :].shape, dtype=torch.float64)
        for ks in range(0, t_k, bk):
            s = s_all[..., qs:qs + bq, ks:ks + bk]
            m_new = torch.maximum(m, s.amax(-1))
            shift = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
            p = torch.exp(s - shift[..., None])
            l = l * torch.exp(m - shift) + p.sum(-1)
            acc = acc + p @ v[..., ks:ks + bk, :].double()
            m = m_new
        out[..., qs:qs + bq, :] = acc / torch.where(l == 0, torch.ones_like(l), l)[..., None]
    return out.to(q.dtype)


def diagnose_attention(q, k, v, causal, bq, bk):
    """A check_close diagnose for an attention output: names the classic tiled mistakes."""
    def diagnose(got, want):
        t_q, t_k = q.size(-2), k.size(-2)
        if close(got, unrescaled_output(q, k, v, causal, bq, bk), atol=1e-4, rtol=1e-4):
            return ("looks like the running output is not rescaled when the max changes: acc must be "
                    "multiplied by exp(m_old - m_new) exactly like l")
        if causal:
            for mask, why in block_suspects(t_q, t_k, bq, bk):
                if close(got, attention_by_hand(q, k, v, mask)[0], atol=1e-4, rtol=1e-4):
                    return f"looks like the causal mask is off by one block: {why}"
            if close(got, attention_by_hand(q, k, v, None)[0], atol=1e-4, rtol=1e-4):
                return "looks like the causal mask is missing: every query sees every key"
            ones = torch.ones(t_q, t_k, dtype=torch.bool)
            if t_q != t_k and close(got, attention_by_hand(q, k, v, ones.tril())[0], atol=1e-4, rtol=1e-4):
                return ("with fewer queries than keys, query i sits at position T_k - T_q + i: line the "
                        "mask up with the END of the keys")
        elif close(got, attention_by_hand(q, k, v, visible_mask(q.size(-2), k.size(-2), True))[0],
                   atol=1e-4, rtol=1e-4):
            return "with causal=False every query sees every key; looks like the mask is applied anyway"
        return None
    return diagnose


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


# -- the project's pretrained tiny GPT-2 (transformers, real Conv1D) and Shakespeare it has not seen ---
_MODEL_CACHE: dict = {}


def tiny_gpt2():
    """A fresh float32 copy of the project's tiny GPT-2 (GPT2LMHeadModel, eval mode, eager attention)."""
    import copy
    if "model" not in _MODEL_CACHE:
        from transformers import GPT2LMHeadModel
        from transformers.utils import logging as hf_logging

        from engine.shared.models import tiny_gpt2_path
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        _MODEL_CACHE["model"] = GPT2LMHeadModel.from_pretrained(
            tiny_gpt2_path(), attn_implementation="eager").eval()
    return copy.deepcopy(_MODEL_CACHE["model"])


def val_tokens(n_tokens: int = 6000):
    """The first n_tokens of the validation text (unseen plays), with the model's own tokenizer."""
    if "val" not in _MODEL_CACHE:
        from transformers import AutoTokenizer

        from engine.shared.data import text_path
        from engine.shared.models import tiny_gpt2_path
        tok = AutoTokenizer.from_pretrained(tiny_gpt2_path())
        text = text_path("val").read_text(encoding="utf-8")[:60_000]
        _MODEL_CACHE["val"] = torch.tensor(tok(text)["input_ids"], dtype=torch.long)
    ids = _MODEL_CACHE["val"]
    if len(ids) < n_tokens:   # raw-ok: the check's own data, not a verdict on learner code
        raise RuntimeError(f"only {len(ids)} validation tokens in the first 60,000 characters")
    return ids[:n_tokens]


@torch.no_grad()
def val_loss(model, windows: int = 8, length: int = 128) -> float:
    """Mean next-token cross-entropy (nats) of a transformers causal LM on fixed validation windows."""
    ids = val_tokens(windows * (length + 1))
    batch = ids.view(windows, length + 1)
    logits = model(input_ids=batch[:, :-1]).logits
    return float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten()))


def tensor_bytes(module) -> int:
    """Bytes of every tensor a module keeps: its state_dict (parameters and buffers) and any tensor
    stored as a plain attribute, each storage counted once."""
    seen, total = set(), 0
    tensors = list(module.state_dict(keep_vars=True).values())
    tensors += [v for v in vars(module).values() if isinstance(v, torch.Tensor)]
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            continue
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total
