"""Fast decoding: a lean GPT-2 forward built once from a transformers model, the KV cache, and a greedy
loop that feeds ONE new token per step (brief.md, section 9).

Do in __init__ everything that does not change from token to token ("hoisting"); forward() should be
a straight line of tensor ops per layer. torch's fused attention (F.scaled_dot_product_attention) is
off limits here: write the attention (over the cache) yourself.
"""
from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from .kvcache import KVCache


class FastGPT2:
    """GPT-2's forward pass for decoding, from a transformers GPT2LMHeadModel whose block layers are
    Conv1D (float32) or your QuantLinear (after quantize_model).

    GPT-2, per block:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
        attn: q, k, v = c_attn(h).split(C, -1); heads of size C // n_head; causal softmax(q·kᵀ/sqrt(hs))·v;
              heads merged; c_proj
        mlp:  c_proj(gelu_tanh(c_fc(h)))      (GPT-2's "gelu_new" = F.gelu(x, approximate="tanh"))
    then ln_f and logits = x · wteᵀ (the output head is tied to the token embedding).
    Conv1D computes x · W + b with W stored (in, out). Positions: x = wte[idx] + wpe[positions].
    """

    def __init__(self, hf_model):
        raise NotImplementedError("FastGPT2.__init__: see brief.md, section 9 (A fast decoder)")

    def new_cache(self, max_len: int, batch_size: int = 1) -> KVCache:
        """A KVCache sized for this model (n_layer, n_head, head_dim), float32."""
        raise NotImplementedError("FastGPT2.new_cache: see brief.md, section 9 (A fast decoder)")

    @torch.no_grad()
    def forward(self, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """idx (B, T) new tokens at positions cache.pos .. cache.pos + T - 1 -> logits (B, T, V);
        writes their keys/values into the cache and advances it by T."""
        raise NotImplementedError("FastGPT2.forward: see brief.md, section 9 (A fast decoder)")

    __call__ = forward


@torch.no_grad()
def generate(model: FastGPT2, prompt: torch.Tensor, max_new_tokens: int,
             max_len: int | None = None) -> tuple[torch.Tensor, dict]:
    """Greedy decoding: prompt (B, T0) int64 -> (tokens (B, T0 + max_new_tokens), stats).

    stats = {"ttft_s": seconds from the call to the first new token (float), "tok_s": new tokens per
    second after the first (float), "cache_bytes": the cache's size (int)}. The cache holds max_len
    positions (default: just enough, T0 + max_new_tokens).
    """
    raise NotImplementedError("generate: see brief.md, section 9 (A fast decoder)")
