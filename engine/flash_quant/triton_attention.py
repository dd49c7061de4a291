"""The FlashAttention-2 forward as a Triton kernel.

Triton's model: you write the program for ONE tile, and launch a grid of programs. Here a program
owns one block of BLOCK_M queries of one (batch, head); the grid is (ceil(T_q / BLOCK_M), B·H).
Inside, everything is a block: `tl.arange(0, BLOCK_M)` is a vector of row indices, pointers are
base + row·stride + col·stride arrays, `tl.load` reads a whole tile into fast on-chip memory (SRAM /
registers on a GPU), `tl.dot` multiplies two tiles on the tensor cores, `tl.store` writes a tile back.
The loop over key/value blocks is the same online-softmax loop as tiled_attention.py; only q, one K
tile, one V tile and the running m, l, acc are ever on chip, and the scores never go to HBM.

Ragged edges: T need not be a multiple of the block. The last tiles hang over the end, so every load
and store carries a mask (rows >= T are not read, `other=0.0` fills them) and scores of key columns
>= T_k are set to -inf before the softmax.

Causal: query i sits at position offset + i (offset = T_k - T_q, lined up with the END of the keys);
the key loop stops after the block's last visible key, and tiles crossing the diagonal are masked.

Interpreter: with TRITON_INTERPRET=1 set BEFORE this module is imported, @triton.jit runs the kernel
in Python with numpy on CPU tensors (slow, exact for float32; numpy has no bfloat16, so use float32 or
float16 there). Without it, Triton compiles the kernel for the GPU and the tensors must be on CUDA.
Not handled: head sizes that are not a power of two >= 16, dropout, the backward pass.
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl


@triton.jit
def _flash_forward_kernel(Q, K, V, O, LSE,
                          stride_qb, stride_qh, stride_qt, stride_qd,
                          stride_kb, stride_kh, stride_kt, stride_kd,
                          stride_vb, stride_vh, stride_vt, stride_vd,
                          stride_ob, stride_oh, stride_ot, stride_od,
                          stride_lb, stride_lh, stride_lt,
                          H, T_Q, T_K, OFFSET, SCALE,
                          HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                          CAUSAL: tl.constexpr):
    pid_m = tl.program_id(0)                       # which block of queries
    pid_bh = tl.program_id(1)                      # which (batch, head)
    b = pid_bh // H
    h = pid_bh % H
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)    # (BLOCK_M,) query indices of this program
    cols0 = tl.arange(0, BLOCK_N)                     # (BLOCK_N,) key offsets inside a tile
    dims = tl.arange(0, HEAD_DIM)                     # (HEAD_DIM,)
    row_ok = rows < T_Q

    q_ptrs = Q + b * stride_qb + h * stride_qh + rows[:, None] * stride_qt + dims[None, :] * stride_qd
    q = tl.load(q_ptrs, mask=row_ok[:, None], other=0.0)        # (BLOCK_M, HEAD_DIM), stays on chip
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)   # running max
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)                 # running sum
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)       # running unnormalised output

    hi = T_K
    if CAUSAL:                                     # keys after this block's last query are hidden
        hi = tl.minimum(T_K, OFFSET + (pid_m + 1) * BLOCK_M)
    for start in range(0, hi, BLOCK_N):
        cols = start + cols0
        kv_mask = cols[:, None] < T_K
        k_ptrs = K + b * stride_kb + h * stride_kh + cols[:, None] * stride_kt + dims[None, :] * stride_kd
        v_ptrs = V + b * stride_vb + h * stride_vh + cols[:, None] * stride_vt + dims[None, :] * stride_vd
        k = tl.load(k_ptrs, mask=kv_mask, other=0.0)                   # (BLOCK_N, HEAD_DIM)
        s = tl.dot(q, tl.trans(k)) * SCALE                              # (BLOCK_M, BLOCK_N), fp32
        visible = cols[None, :] < T_K
        if CAUSAL:
            visible = visible & (cols[None, :] <= OFFSET + rows[:, None])
        s = tl.where(visible, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        shift = tl.where(m_new == float("-inf"), 0.0, m_new)           # fully masked rows: no NaN
        p = tl.exp(s - shift[:, None])
        alpha = tl.exp(m_i - shift)
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_ptrs, mask=kv_mask, other=0.0)                   # (BLOCK_N, HEAD_DIM)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new

    acc = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]
    o_ptrs = O + b * stride_ob + h * stride_oh + rows[:, None] * stride_ot + dims[None, :] * stride_od
    tl.store(o_ptrs, acc.to(O.dtype.element_ty), mask=row_ok[:, None])
    lse_ptrs = LSE + b * stride_lb + h * stride_lh + rows * stride_lt
    tl.store(lse_ptrs, m_i + tl.log(l_i), mask=row_ok)


def triton_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                     block_m: int = 64, block_n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the kernel: q (B, H, T_q, d), k and v (B, H, T_k, d) -> o (B, H, T_q, d) in q's dtype,
    lse (B, H, T_q) float32. d must be a power of two >= 16 (tl.arange and tl.dot need it); the
    blocks must be >= 16 (tl.dot's smallest tile)."""
    B, H, t_q, d = q.shape
    t_k = k.size(2)
    if k.shape != (B, H, t_k, d) or v.shape != k.shape:
        raise ValueError(f"expected k, v of shape (B, H, T_k, d) = {(B, H, t_k, d)}, got {tuple(k.shape)}, "
                         f"{tuple(v.shape)}")
    if d < 16 or d & (d - 1):
        raise ValueError(f"head size must be a power of two >= 16, got {d}")
    o = torch.empty_like(q)
    lse = torch.empty((B, H, t_q), dtype=torch.float32, device=q.device)
    grid = (triton.cdiv(t_q, block_m), B * H)
    _flash_forward_kernel[grid](
        q, k, v, o, lse,
        *q.stride(), *k.stride(), *v.stride(), *o.stride(), *lse.stride(),
        H, t_q, t_k, t_k - t_q, 1.0 / math.sqrt(d),
        HEAD_DIM=d, BLOCK_M=block_m, BLOCK_N=block_n, CAUSAL=causal)
    return o, lse
