"""Double quantisation: the NF4 block scales, quantised again (bonus; brief.md, section 7.2).

    offset   = mean(absmax)                       one fp32 number (a 0-d tensor)
    c        = absmax - offset
    per block of 256 scales:  absmax2 = max |c|   one fp32 second-level scale per block
    code8    = index of the level of dynamic_code() nearest to c · (1 / absmax2)   (uint8; ties low)
    back:      absmax ≈ dynamic_code()[code8] · absmax2 + offset
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def dynamic_code() -> torch.Tensor:
    """The 256 levels of the signed 8-bit dynamic map, sorted, float32: 0, ±1, and for each decade
    10^-6 .. 10^0 a group of linearly spaced levels, 2^e of them in decade e (finer for larger numbers)."""
    levels = [0.0, 1.0]
    for e in range(7):
        edges = torch.linspace(0.1, 1, 2 ** e + 1)
        mids = (edges[:-1] + edges[1:]) / 2                 # 2^e levels between 0.1 and 1 ...
        levels += (10.0 ** (e - 6) * mids).tolist()          # ... scaled into decade e
        levels += (-(10.0 ** (e - 6)) * mids).tolist()
    return torch.tensor(sorted(levels), dtype=torch.float32)


def double_quantize(absmax: torch.Tensor, blocksize: int = 256):
    """absmax (n,) fp32 -> (codes uint8 (n,), absmax2 fp32 (ceil(n/blocksize),), offset 0-d fp32)."""
    raise NotImplementedError("double_quantize: see brief.md, section 7.2 (Double quantisation)")


def double_dequantize(codes: torch.Tensor, absmax2: torch.Tensor, offset: torch.Tensor,
                      blocksize: int = 256) -> torch.Tensor:
    """The fp32 scales back: dynamic_code()[code] · absmax2 of its block + offset."""
    raise NotImplementedError("double_dequantize: see brief.md, section 7.2 (Double quantisation)")
