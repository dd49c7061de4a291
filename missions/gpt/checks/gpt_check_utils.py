"""Shared helpers for the gpt mission's checks (not a test file: pytest does not collect it).

Reference modules come from engine.gpt; learner modules only ever come through grader.seam, and each
test computes its expected values before it first asks for a learner module. Every verdict goes
through grader.checks (expect_equal, check_close, expect_between, ...) after the learner's value is
reduced to a plain tensor, array or built-in; the torch/numpy comparisons here only pick which
classic mistake a failure message names.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses

import torch

from engine.gpt.config import GPTConfig as RefConfig
from engine.gpt.kvcache import KVCache as RefKVCache
from grader.checks import (as_int, check_close, expect, expect_equal, expect_shape, expect_type, fail,
                           is_close)

# Diagnosis only: a wrong-formula hypothesis "explains" an output when it matches it to 1e-4, ten
# times the float32 noise of any formula here and a hundred times below the gap between hypotheses.
HYPOTHESIS_TOL = 1e-4


@contextlib.contextmanager
def one_thread():
    """These models are tiny: one thread is as fast as two, and never stalls on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def ref_config(**kw) -> RefConfig:
    return RefConfig(**kw)


def learner_config(**kw):
    """The learner's GPTConfig with the same values (config.py is given code, identical to ours)."""
    from grader.seam import learner
    LearnerConfig = learner("config").GPTConfig
    fields = {f.name for f in dataclasses.fields(LearnerConfig)}
    return LearnerConfig(**{k: v for k, v in kw.items() if k in fields})


def randomize_(module: torch.nn.Module, seed: int, std: float = 0.3) -> torch.nn.Module:
    """Move every parameter away from its init (gains away from 1, biases away from 0), so that a
    missing weight or bias, or a swapped one, shows in the output. Tied weights move once."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():          # parameters() yields a tied tensor only once
            p.add_(torch.randn(p.shape, generator=g) * std)
    return module


def load_reference_weights(mod, state: dict, what: str) -> None:
    """The learner's module must have exactly the reference's parameter layout; then the reference's
    weights are loaded into it (strict). The message names missing, extra and mis-shaped entries."""
    if not isinstance(mod, torch.nn.Module):
        fail(f"{what} should be a torch.nn.Module, got {type(mod).__name__}")
    want = {k: tuple(int(d) for d in v.shape) for k, v in state.items()}
    try:
        got = {str(k): tuple(int(d) for d in v.shape) for k, v in mod.state_dict().items()}
    except (AttributeError, TypeError) as e:
        fail(f"{what}: its state_dict() is not a mapping of names to tensors ({e})")
    missing = [k for k in want if k not in got]
    unexpected = [k for k in got if k not in want]
    wrong = [f"{k}: yours {got[k]}, expected {v}" for k, v in want.items() if k in got and got[k] != v]
    if missing or unexpected or wrong:
        layout = ", ".join(f"{k} {v}" for k, v in list(want.items())[:12])
        parts = ([f"missing {missing[:6]}"] if missing else []) + \
                ([f"unexpected {unexpected[:6]}"] if unexpected else []) + \
                ([f"wrong shapes {wrong[:4]}"] if wrong else [])
        fail(f"{what}: its parameters do not follow the layout in brief.md ({'; '.join(parts)}). "
             f"Expected: {layout}{' ...' if len(want) > 12 else ''}")
    expect_equal(got, want, what=f"{what}: parameter names and shapes")
    mod.load_state_dict(state, strict=True)


def expect_tensor(x, shape, what: str, dtype: torch.dtype | None = None) -> None:
    """x is a plain torch.Tensor of this shape (and dtype)."""
    expect_type(x, torch.Tensor, what=what)
    expect_shape(x, tuple(shape), what=what)
    if dtype is not None:
        expect_equal(str(x.dtype), str(dtype), what=f"{what}: dtype")


def expect_pair(out, what: str):
    """forward(...) returns (logits, loss): a tuple of two."""
    expect_type(out, tuple, what=what)
    expect_equal(len(out), 2, what=f"{what}: the number of items returned, (logits, loss)")
    return out


class RopeAtZeroCache:
    """The reference's cache, except that attention reads pos = 0: new tokens are rotated as if they
    sat at position 0 (a cache that ignores the rotation positions). For diagnosis only."""

    def __init__(self, cfg, batch_size: int, max_len: int):
        self.inner = RefKVCache(cfg, batch_size, max_len=max_len)

    @property
    def pos(self) -> int:
        return 0

    def update(self, layer, k, v):
        return self.inner.update(layer, k, v)

    def advance(self, n: int) -> None:
        self.inner.advance(n)


def round_robin_twin(ref_model: torch.nn.Module) -> torch.nn.Module:
    """A copy of a GQA reference model that computes what the same weights give when query head h
    reads kv head h % nkv (k.repeat, tiled) instead of h // group (repeat_interleave).

    Head outputs are concatenated and projected, so permuting the query heads together with the
    matching columns of out_proj changes nothing but which kv head each query head reads: tiled
    head h moves to slot (h % nkv) · group + h // nkv, where repeat_interleave serves kv head h % nkv.
    """
    twin = copy.deepcopy(ref_model)
    for block in twin.blocks:
        attn = block.attn
        nh, nkv, hs = attn.n_head, attn.n_kv_head, attn.head_dim
        group = nh // nkv
        slot = [(h % nkv) * group + h // nkv for h in range(nh)]
        order = [0] * nh
        for h, j in enumerate(slot):
            order[j] = h                                   # slot j holds tiled head order[j]
        rows = torch.cat([torch.arange(h * hs, (h + 1) * hs) for h in order])
        with torch.no_grad():
            attn.q_proj.weight.copy_(attn.q_proj.weight[rows])
            if attn.q_proj.bias is not None:
                attn.q_proj.bias.copy_(attn.q_proj.bias[rows])
            attn.out_proj.weight.copy_(attn.out_proj.weight[:, rows])
    return twin


# Cached decoding compared with recomputing the whole prefix. Tolerance: cached and full forward
# passes do the same float32 arithmetic in different groupings (attention over a growing key set);
# observed differences ~1e-6 on logits of size ~1-3, so 1e-4 abs + 1e-4 rel.
CACHE_ATOL, CACHE_RTOL = 1e-4, 1e-4


def expect_cache_pos(cache, want: int, what: str) -> None:
    pos = getattr(cache, "pos", None)
    expect(pos is not None, f"{what}: the cache has no attribute pos (how many positions it holds)")
    expect_equal(as_int(pos, what=f"{what}: cache.pos"), want,
                 what=f"{what}: cache.pos, the number of positions stored (call cache.advance(T) once "
                      "per forward pass, after all layers; a KV cache not advancing its position "
                      "treats every new token as position 0)")


def decode_and_compare(mine, cache, seq, t0: int, want, what: str, suspects=()):
    """Prefill seq[:, :t0] through `mine` with `cache`, then feed one token at a time; every logit
    must match `want` (B, T, V), the reference's logits of the whole sequence at once.
    suspects: (logits (B, T, V), message) of classic mistakes, to name the one that matches."""
    B, T, V = want.shape

    def diagnose_at(t_slice):
        def diagnose(got, _want):
            for wrong, message in suspects:
                if is_close(got, wrong[:, t_slice], atol=CACHE_ATOL, rtol=CACHE_RTOL):
                    return message
            return None
        return diagnose

    with torch.no_grad():
        logits, _ = expect_pair(mine(seq[:, :t0], cache=cache), f"{what}: GPT(prompt, cache=cache)")
    expect_tensor(logits, (B, t0, V), f"{what}: prefill logits, GPT(prompt {(B, t0)}, cache=cache)")
    check_close(logits, want[:, :t0], what=f"{what}: prefill logits, GPT(prompt {(B, t0)}, cache=cache)",
                atol=CACHE_ATOL, rtol=CACHE_RTOL, diagnose=diagnose_at(slice(0, t0)))
    expect_cache_pos(cache, t0, f"{what}: after a forward pass of {t0} tokens")
    for t in range(t0, T):
        step = f"{what}: decode step {t - t0}, GPT(token at position {t}, cache=cache)"
        with torch.no_grad():
            logits, _ = expect_pair(mine(seq[:, t:t + 1], cache=cache), step)
        expect_tensor(logits, (B, 1, V), f"{step}: logits")
        check_close(logits, want[:, t:t + 1], what=f"{step}: logits vs recomputing the whole prefix",
                    atol=CACHE_ATOL, rtol=CACHE_RTOL, diagnose=diagnose_at(slice(t, t + 1)))
        expect_cache_pos(cache, t + 1, step)
