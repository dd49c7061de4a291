"""How much arithmetic a training step costs, and how much of the machine it used (MFU)
(brief.md, section 6.5).
"""
from __future__ import annotations

import time

import torch


def flops_per_token(n_params: int, n_layer: int, n_head: int, head_dim: int, seq_len: int) -> int:
    """Training FLOPs per token (forward + backward): 6·N + 12·L·H·Q·T."""
    raise NotImplementedError("flops_per_token: see brief.md, section 6.5 (FLOPs and MFU)")


def model_flops_per_token(model) -> int:
    """flops_per_token for a GPT, counting N without the position table. Complete."""
    cfg = model.cfg
    return flops_per_token(model.num_params(non_embedding=True), cfg.n_layer, cfg.n_head,
                           cfg.head_dim, cfg.block_size)


def mfu(tokens_per_s: float, flops_per_tok: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved model FLOP/s as a fraction of the peak. Complete."""
    return tokens_per_s * flops_per_tok / peak_flops if peak_flops > 0 else 0.0


def measure_peak_flops(device="cpu", dtype: torch.dtype = torch.float32, n: int = 1024,
                       repeats: int = 6) -> float:
    """Peak FLOP/s measured: the best of a few n×n matmuls (2·n³ FLOPs each). Complete."""
    device = torch.device(device)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    for _ in range(repeats + 1):
        sync()
        t0 = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / min(times[1:])           # the first run warms up and is not counted


def device_peak_flops(device) -> float:
    """The peak the lab uses for MFU (engine.perf): a GPU's bf16 datasheet peak, or on a CPU an fp32
    matmul probe measured once and cached."""
    from engine.perf import peak_flops
    return peak_flops(str(device))
