"""NF4: 4-bit NormalFloat quantisation, blockwise with absmax scales (the QLoRA paper, section 3).

Pretrained weights are roughly normally distributed around zero. NF4 spends its 16 levels where a
normal distribution puts its mass: level j is a quantile of N(0, 1), rescaled so the extremes are
±1. Exactly 0 is one of the levels (padding and zero weights stay exact), which makes the code
asymmetric: 8 positive levels, 7 negative, and zero.

    quantise one block of 64 weights w:
        absmax = max |w|                     one fp32 scale per block
        x      = w · (1 / absmax)            now in [-1, 1]
        code   = index of the NF4 level nearest to x   (0..15, 4 bits)
    pack: two codes per byte, the first in the high nibble:  byte = code[2i] << 4 | code[2i+1]
    dequantise: w' = NF4[code] · absmax

Storage per weight: 4 bits + 32/64 bits of scale = 0.5 + 0.0625 bytes, against 4 for fp32.
Why blocks? One huge weight would otherwise set the scale for the whole tensor and squash every
other weight into the few levels around zero; with blocks of 64 an outlier only costs its own block.

Conventions (those of bitsandbytes' quantize_4bit / dequantize_4bit, so the results are equal):
the tensor is flattened row-major and cut into blocks of `blocksize` consecutive values; a last,
shorter block gets its own absmax; an odd count is padded with one 0.0 (code 7) before packing;
nearest ties go to the lower level; an all-zero block has absmax 0 and decodes to zeros.

Not handled: FP4 (the other 4-bit type of bitsandbytes), codes stored in dtypes other than uint8.
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
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
    positive = normal.icdf(torch.linspace(offset, 0.5, 9, dtype=torch.float64)[:-1])   # 8 levels > 0
    negative = -normal.icdf(torch.linspace(offset, 0.5, 8, dtype=torch.float64)[:-1])  # 7 levels < 0
    levels = torch.cat([negative, torch.zeros(1, dtype=torch.float64), positive]).sort().values
    return (levels / levels.max()).float()


def quantize_nf4(w: torch.Tensor, blocksize: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """w (any shape, float) -> (packed uint8 (ceil(n/2),), absmax float32 (ceil(n/blocksize),))."""
    if not w.is_floating_point():
        raise TypeError(f"quantize_nf4: expected a float tensor of weights, got {w.dtype}")
    if blocksize <= 0:
        raise ValueError(f"quantize_nf4: blocksize must be positive, got {blocksize}")
    flat = w.detach().reshape(-1).float()
    n = flat.numel()
    n_blocks = math.ceil(n / blocksize)
    blocks = F.pad(flat, (0, n_blocks * blocksize - n)).view(n_blocks, blocksize)   # zeros: no effect on absmax
    absmax = blocks.abs().amax(dim=1)                                  # (n_blocks,) one scale per block
    x = (blocks * (1.0 / absmax.clamp(min=1e-38))[:, None]).clamp(-1, 1)
    midpoints = (NF4[:-1] + NF4[1:]) / 2                               # the 15 decision boundaries
    codes = torch.bucketize(x.reshape(-1)[:n], midpoints).to(torch.uint8)   # nearest level, ties low
    if n % 2:
        codes = torch.cat([codes, torch.tensor([7], dtype=torch.uint8)])     # pad with the code of 0.0
    packed = (codes[0::2] << 4) | codes[1::2]                          # first code in the high nibble
    return packed, absmax


def unpack_codes(packed: torch.Tensor, n: int) -> torch.Tensor:
    """The first n 4-bit codes of a packed uint8 tensor, in order (int64)."""
    high, low = packed >> 4, packed & 0x0F
    return torch.stack([high, low], dim=1).reshape(-1)[:n].long()


def dequantize_nf4(packed: torch.Tensor, absmax: torch.Tensor, shape, blocksize: int = 64) -> torch.Tensor:
    """The float32 weights of `shape` that quantize_nf4 encoded: NF4[code] · absmax of its block."""
    n = math.prod(shape)
    if packed.numel() * 2 < n or absmax.numel() * blocksize < n:
        raise ValueError(f"dequantize_nf4: {packed.numel()} bytes and {absmax.numel()} scales cannot hold "
                         f"{n} weights of shape {tuple(shape)} in blocks of {blocksize}")
    values = NF4[unpack_codes(packed, n)]                              # (n,) levels in [-1, 1]
    n_blocks = absmax.numel()
    blocks = F.pad(values, (0, n_blocks * blocksize - n)).view(n_blocks, blocksize)
    return (blocks * absmax[:, None]).reshape(-1)[:n].reshape(shape)
