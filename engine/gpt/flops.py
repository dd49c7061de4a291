"""How much arithmetic a training step costs, and how much of the machine it used (MFU).

Per token, a forward pass does about 2 FLOPs per parameter (one multiply, one add) and the backward
pass about twice that, hence 6·N. Attention adds its own matmuls that no parameter accounts for:
q·kᵀ and weights·v, each 2·T·hs FLOPs per head per layer forward, so 12·L·nh·hs·T forward+backward.
This is nanoGPT's (and the PaLM paper's) estimate; it ignores norms, softmax and the causal mask.
"""
from __future__ import annotations

from engine.shared.perf import mfu  # noqa: F401  (tok/s · FLOPs/token / peak; the lab uses the same)


def flops_per_token(n_params: int, n_layer: int, n_head: int, head_dim: int, seq_len: int) -> int:
    """Training FLOPs per token: 6·N + 12·L·H·Q·T (N params, L layers, H heads, Q head size, T context)."""
    return 6 * n_params + 12 * n_layer * n_head * head_dim * seq_len


def model_flops_per_token(model) -> int:
    """flops_per_token for a GPT, counting N without the position table (a lookup, not a matmul)."""
    cfg = model.cfg
    return flops_per_token(model.num_params(non_embedding=True), cfg.n_layer, cfg.n_head,
                           cfg.head_dim, cfg.block_size)


def device_peak_flops(device) -> float:
    """The peak the lab uses for MFU (engine.shared.perf): a GPU's bf16 datasheet peak, or on a CPU an fp32
    matmul probe measured once and cached."""
    from engine.shared.perf import peak_flops
    return peak_flops(str(device))
