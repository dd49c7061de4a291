"""Fast decoding: a lean GPT-2 forward built once from a transformers model, a preallocated KV cache,
and a greedy loop that feeds ONE new token per step.

Why decoding is slow. Generating a token is one matrix-vector product per weight matrix: every
weight is read from memory to do two FLOPs with it. The arithmetic units sit idle waiting for memory,
so time per token ≈ bytes of weights (+ cache) / memory bandwidth, and batch size 1 wastes the chip.
On top of that, at small sizes Python itself is the bottleneck: a step of a 4-layer model is ~40
tiny kernels, and anything done per step that could be done once (transposing weights, splitting
heads, looking up attributes through nn.Module machinery, building masks, re-reading the config) is
paid on every token.

So FastGPT2 does the once-only work in __init__ ("hoisting"): it pulls every tensor it needs out of
the Hugging Face modules into plain Python lists, keeps Conv1D weights in the (in, out) layout that
torch.addmm wants, keeps quantised layers (QuantLinear) as they are (their codes stay small), and
reads the sizes once. forward() is then a straight line of tensor ops per layer.

The stages of a generation:
    prefill  the whole prompt in one forward pass (a matmul-heavy, efficient step); its last logits
             give the first new token. Time to first token (TTFT) is this.
    decode   one token per forward pass, reading the cache; tokens/second is this.

Positions: the new token at step t sits at position cache.pos (GPT-2's learned position table is
indexed by it), and the cache advances by the number of tokens fed.
Not handled: sampling (greedy only: temperature, top-k and top-p are the gpt mission's), batches
with different prompt lengths, stopping at an end-of-text token.
"""
from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from .kvcache import KVCache


class FastGPT2:
    """GPT-2's forward pass for decoding, from a transformers GPT2LMHeadModel (fp32 or quantised)."""

    def __init__(self, hf_model):
        from transformers.pytorch_utils import Conv1D
        cfg = hf_model.config
        self.n_layer, self.n_head = cfg.n_layer, cfg.n_head
        self.d_model = cfg.n_embd
        self.head_dim = cfg.n_embd // cfg.n_head
        self.max_positions = cfg.n_positions
        self.eps = cfg.layer_norm_epsilon
        t = hf_model.transformer
        self.wte = t.wte.weight.detach()                  # (V, C), also the output head (tied)
        self.wpe = t.wpe.weight.detach()                  # (n_positions, C)
        self.ln_f = (t.ln_f.weight.detach(), t.ln_f.bias.detach())

        def linear(layer):
            """A function x (..., in) -> (..., out) for a Conv1D (hoisted: bias and W as addmm wants
            them) or any module (e.g. QuantLinear)."""
            if isinstance(layer, Conv1D):
                w, b = layer.weight.detach(), layer.bias.detach()
                return lambda x: torch.addmm(b, x.reshape(-1, x.size(-1)), w).view(*x.shape[:-1], -1)
            return layer

        self.layers = [dict(ln1=(blk.ln_1.weight.detach(), blk.ln_1.bias.detach()),
                            qkv=linear(blk.attn.c_attn), proj=linear(blk.attn.c_proj),
                            ln2=(blk.ln_2.weight.detach(), blk.ln_2.bias.detach()),
                            fc=linear(blk.mlp.c_fc), fc_proj=linear(blk.mlp.c_proj))
                       for blk in t.h]

    def new_cache(self, max_len: int, batch_size: int = 1) -> KVCache:
        return KVCache(self.n_layer, self.n_head, self.head_dim, max_len, batch_size, dtype=self.wte.dtype)

    @torch.no_grad()
    def forward(self, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """idx (B, T) new tokens at positions cache.pos .. cache.pos + T - 1 -> logits (B, T, V)."""
        B, T = idx.shape
        start = cache.pos
        C, nh, hs = self.d_model, self.n_head, self.head_dim
        x = self.wte[idx] + self.wpe[start:start + T]                  # (B, T, C)
        for i, L in enumerate(self.layers):
            h = F.layer_norm(x, (C,), *L["ln1"], self.eps)
            q, k, v = L["qkv"](h).split(C, dim=-1)                     # (B, T, C) each
            q = q.view(B, T, nh, hs).transpose(1, 2)                   # (B, nh, T, hs)
            k = k.view(B, T, nh, hs).transpose(1, 2)
            v = v.view(B, T, nh, hs).transpose(1, 2)
            k, v = cache.update(i, k, v)                               # (B, nh, start+T, hs): views
            s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))      # (B, nh, T, start+T)
            if T > 1:                                                  # prefill: causal among the new,
                t_k = k.size(-2)                                       # lined up with the END of the keys
                s = s.masked_fill(~torch.ones(T, t_k, dtype=torch.bool).tril(t_k - T), float("-inf"))
            y = torch.softmax(s, dim=-1) @ v                           # (B, nh, T, hs)
            x = x + L["proj"](y.transpose(1, 2).reshape(B, T, C))
            h = F.layer_norm(x, (C,), *L["ln2"], self.eps)
            x = x + L["fc_proj"](F.gelu(L["fc"](h), approximate="tanh"))
        cache.advance(T)
        x = F.layer_norm(x, (C,), *self.ln_f, self.eps)
        return x @ self.wte.T                                          # (B, T, V)

    __call__ = forward


@torch.no_grad()
def generate(model: FastGPT2, prompt: torch.Tensor, max_new_tokens: int,
             max_len: int | None = None) -> tuple[torch.Tensor, dict]:
    """Greedy decoding: prompt (B, T0) int64 -> (tokens (B, T0 + max_new_tokens), stats).

    stats = {"ttft_s": seconds from the call to the first new token, "tok_s": new tokens per second
    after the first (the decode rate), "cache_bytes": the cache's size}. The cache holds max_len
    positions (default: just enough, T0 + max_new_tokens).
    """
    t0 = time.perf_counter()
    B, T0 = prompt.shape
    cache = model.new_cache(max_len or T0 + max_new_tokens, B)
    logits = model(prompt, cache)                                      # prefill
    nxt = logits[:, -1].argmax(dim=-1, keepdim=True)                   # (B, 1)
    out = [prompt, nxt]
    t_first = time.perf_counter()
    for _ in range(max_new_tokens - 1):
        nxt = model(nxt, cache)[:, -1].argmax(dim=-1, keepdim=True)   # decode: one token in
        out.append(nxt)
    t_end = time.perf_counter()
    decoded = max_new_tokens - 1
    stats = {"ttft_s": t_first - t0, "tok_s": decoded / (t_end - t_first) if decoded else 0.0,
             "cache_bytes": cache.nbytes()}
    return torch.cat(out, dim=1), stats
