"""The FlashAttention-2 forward as a Triton kernel (brief.md, section 5).

Write a @triton.jit kernel that computes one block of BLOCK_M queries of one (batch, head) - the
same online-softmax loop over key/value tiles as tiled_attention.py, with tl.load / tl.dot /
tl.store - and a launcher, triton_attention, that allocates the outputs and launches a grid of
(ceil(T_q / block_m), B·H) programs.

On a CPU the checks set TRITON_INTERPRET=1 before importing this module, so the kernel runs in
Triton's interpreter (numpy; use float32). To try it yourself on a CPU:
    TRITON_INTERPRET=1 python -c "import flash_quant.triton_attention"
Conventions (as in tiled_attention.py): causal lines the queries up with the END of the keys
(offset = T_k - T_q); a query that sees no key gets o = 0 and lse = -inf.
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl


# your @triton.jit kernel goes here


def triton_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                     block_m: int = 64, block_n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the kernel: q (B, H, T_q, d), k and v (B, H, T_k, d) -> o (B, H, T_q, d) in q's dtype,
    lse (B, H, T_q) float32. d is a power of two >= 16 (tl.arange and tl.dot need it); the blocks are
    >= 16 (tl.dot's smallest tile). T_q and T_k need NOT be multiples of the blocks. Pass the tensors'
    strides to the kernel rather than assuming they are contiguous."""
    raise NotImplementedError("triton_attention: see brief.md, section 5 (A Triton kernel)")
