"""Turning the model's last-position logits into a next token, and a plain generation loop.

The three knobs, applied in this order to logits (B, V):
    temperature  divide the logits by t: t < 1 sharpens the distribution, t > 1 flattens it, t = 0
                 means "always take the most likely token" (greedy)
    top_k        keep the k highest logits, set the rest to -inf
    top_p        keep the smallest set of most likely tokens whose probabilities add up to at least
                 p (the "nucleus"), set the rest to -inf
then softmax and draw one token per row.
"""
from __future__ import annotations

import torch


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Logits (..., V) with everything below the k-th largest value set to -inf (ties are kept)."""
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]           # (..., 1): the k-th largest
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Logits (..., V) with everything outside the nucleus of mass p set to -inf.

    Walk the tokens from most to least likely, adding up their probabilities. A token stays if the
    mass of the tokens *before* it is still below p; so the token that carries the sum across p
    stays too, and the most likely token always stays. p >= 1 keeps every token: in float32 the
    running sum can reach 1.0 while tokens are left, and `mass_before >= 1.0` would cut them.
    """
    if p >= 1.0:
        return logits                                              # the whole distribution
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs              # mass strictly before each token
    remove = mass_before >= p                                      # the tail beyond the nucleus
    sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)  # unsort


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token id per row of logits (B, V) -> LongTensor (B, 1)."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)                 # greedy
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Append max_new_tokens sampled tokens to idx (B, T0), recomputing the whole prefix each step.

    The context is cropped to the last block_size tokens, so this can run for ever (see kvcache.py
    for the fast version).
    """
    for _ in range(max_new_tokens):
        context = idx[:, -model.cfg.block_size:]
        logits, _ = model(context)                                 # (B, T, V)
        nxt = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)
        idx = torch.cat([idx, nxt], dim=1)
    return idx
