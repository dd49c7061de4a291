"""From last-position logits to a next token, and a plain generation loop (brief.md, section 7).

The knobs, applied in this order to logits (B, V): temperature, top-k, top-p; then softmax and one
draw per row.
"""
from __future__ import annotations

import torch


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Logits (..., V) with everything below the k-th largest value set to -inf (ties kept)."""
    raise NotImplementedError("top_k_filter: see brief.md, section 7 (Sampling)")


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Logits (..., V) with everything outside the nucleus of mass p set to -inf.

    Walk the tokens from most to least likely; a token stays if the probability mass of the tokens
    BEFORE it is still below p (so the token that carries the sum across p stays, and the most
    likely token always stays). Return the logits in their original order. p >= 1 keeps every
    token (in float32 the running sum can reach 1.0 before the last tokens: do not cut them).
    """
    raise NotImplementedError("top_p_filter: see brief.md, section 7 (Sampling)")


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token id per row of logits (B, V) -> int64 tensor (B, 1).

    temperature == 0 means greedy (argmax). Otherwise divide by the temperature, apply top_k and
    top_p when given, softmax, and draw with torch.multinomial(probs, 1, generator=generator).
    """
    raise NotImplementedError("sample_next: see brief.md, section 7 (Sampling)")


@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Append max_new_tokens sampled tokens to idx (B, T0) -> (B, T0 + max_new_tokens).

    Each step runs the model on the last model.cfg.block_size tokens (the context can outgrow the
    model) and samples from the logits of the last position.
    """
    raise NotImplementedError("generate: see brief.md, section 7 (Sampling)")
