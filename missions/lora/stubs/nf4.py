"""NF4: 4-bit NormalFloat quantisation, blockwise with absmax scales (brief.md, section 5).

    quantise one block of 64 weights w:
        absmax = max |w|                     one fp32 scale per block
        x      = w · (1 / absmax)            now in [-1, 1]
        code   = index of the NF4 level nearest to x   (0..15, 4 bits; ties to the lower level)
    pack: two codes per byte, the first in the HIGH nibble:  byte = code[2i] << 4 | code[2i+1]
    dequantise: w' = NF4[code] · absmax

Conventions (bitsandbytes' quantize_4bit / dequantize_4bit; the checks compare bit for bit): flatten
row-major, blocks of `blocksize` consecutive values, a last shorter block gets its own absmax, an odd
count is padded with one 0.0 (code 7) before packing, an all-zero block has absmax 0.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# The 16 NF4 levels as bitsandbytes stores them (float32), lowest first. nf4_code() derives them.
NF4 = torch.tensor([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
], dtype=torch.float32)

# Where the outermost levels sit: the quantiles 1 - δ (and δ) of N(0, 1), not ±infinity (which a
# quantile 1.0 would be), with δ = (1/32 + 1/30) / 2, between the halves' steps of 1/32 and 1/30.
OFFSET = 0.9677083


def nf4_code(offset: float = OFFSET) -> torch.Tensor:
    """The 16 NF4 levels from normal quantiles, normalised to [-1, 1], sorted (float32)."""
    raise NotImplementedError("nf4_code: see brief.md, section 5 (NF4)")


def quantize_nf4(w: torch.Tensor, blocksize: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """w (any shape, float) -> (packed uint8 (ceil(n/2),), absmax float32 (ceil(n/blocksize),))."""
    raise NotImplementedError("quantize_nf4: see brief.md, section 5 (NF4)")


def dequantize_nf4(packed: torch.Tensor, absmax: torch.Tensor, shape, blocksize: int = 64) -> torch.Tensor:
    """The float32 weights of `shape` that quantize_nf4 encoded: NF4[code] · absmax of its block."""
    raise NotImplementedError("dequantize_nf4: see brief.md, section 5 (NF4)")
