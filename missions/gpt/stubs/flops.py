"""How much arithmetic a training step costs, and how much of the machine it used (MFU)
(brief.md, section 6.5).
"""
from __future__ import annotations

from engine.shared.perf import mfu  # noqa: F401  (tok/s · FLOPs/token / peak; the lab uses the same)


def flops_per_token(n_params: int, n_layer: int, n_head: int, head_dim: int, seq_len: int) -> int:
    """Training FLOPs per token (forward + backward): 6·N + 12·L·H·Q·T."""
    raise NotImplementedError("flops_per_token: see brief.md, section 6.5 (FLOPs and MFU)")


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
