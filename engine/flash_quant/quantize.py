"""Quantisation: store a float tensor as small integers plus a scale, and compute with them.

Two schemes, for a weight w of shape (out_features, in_features) (nn.Linear's layout):

  absmax (symmetric)   scale = max|w| / qmax,   qmax = 2^(bits-1) - 1 (127 for int8, 7 for 4 bits)
                       q = round(w / scale)  in [-qmax, qmax]            w ≈ q · scale
  zero-point (affine)  lo = min(w, 0), hi = max(w, 0),  scale = (hi - lo) / (2^bits - 1)
                       zero = round(-lo / scale)  (an integer: the code of the real number 0)
                       q = clamp(round(w / scale) + zero, 0, 2^bits - 1)   w ≈ (q - zero) · scale

Rounding is to the nearest integer (torch.round: halves go to even), so every value that is inside
the range is off by at most half a step:   |w - dequantised(w)| <= scale / 2.
The zero point is rounded too, so the real 0 is stored exactly (padding and ReLU zeros stay zero);
lo and hi are widened to include 0 for the same reason.

Who shares a scale (the granularity) decides how big the steps are:
  "tensor"   one scale for everything            scale shape ()
  "channel"  one per output channel (a row)      scale shape (out,)       reduce over dim 1
  "group"    one per group_size consecutive      scale shape (out, in // group_size)
             inputs of each row
A single large value (an outlier) stretches the scale of everyone who shares it, so finer groups
mean smaller errors, at the price of storing more scales.

A group whose values are all 0 gets scale 1 (any scale stores zeros exactly; 0 would divide by 0).
Not handled: asymmetric 4-bit packing (quantized_model.py packs symmetric 4-bit), stochastic rounding.
"""
from __future__ import annotations

import torch

GRANULARITIES = ("tensor", "channel", "group")


def qmax(bits: int) -> int:
    """The largest symmetric code: 127 for 8 bits, 7 for 4 bits."""
    return 2 ** (bits - 1) - 1


def _check_shape(w: torch.Tensor, granularity: str, group_size: int | None) -> None:
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    if w.dim() != 2:
        raise ValueError(f"expected a 2-D weight (out_features, in_features), got shape {tuple(w.shape)}")
    if granularity == "group" and (not group_size or w.size(1) % group_size):
        raise ValueError(f"group_size must divide in_features={w.size(1)}, got {group_size}")


def _shared(w: torch.Tensor, op: str, granularity: str, group_size: int | None) -> torch.Tensor:
    """w.amax or w.amin over each set of values that share one scale: shape (), (out,) or (out, groups)."""
    if granularity == "tensor":
        return getattr(w, op)()
    if granularity == "channel":
        return getattr(w, op)(dim=1)                              # a row = an output channel
    return getattr(w.reshape(w.size(0), -1, group_size), op)(dim=-1)


def expand_scale(s: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A scale (or zero point) of shape (), (out,) or (out, groups), repeated to the weight's shape."""
    if s.dim() == 0:
        return s.expand(shape)
    if s.dim() == 1:
        return s[:, None].expand(shape)
    return s.repeat_interleave(shape[1] // s.size(1), dim=1)


def absmax_quantize(w: torch.Tensor, bits: int = 8, granularity: str = "channel",
                    group_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric quantisation -> (q int8 of w's shape, scale float32 of the granularity's shape)."""
    _check_shape(w, granularity, group_size)
    w = w.float()
    absmax = _shared(w.abs(), "amax", granularity, group_size)
    scale = torch.where(absmax == 0, torch.ones_like(absmax), absmax / qmax(bits))
    q = torch.round(w / expand_scale(scale, w.shape)).clamp(-qmax(bits), qmax(bits))
    return q.to(torch.int8), scale


def zeropoint_quantize(w: torch.Tensor, bits: int = 8, granularity: str = "channel",
                       group_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Affine quantisation -> (q uint8 in [0, 2^bits - 1], scale float32, zero int32), the scale
    and zero point of the granularity's shape."""
    _check_shape(w, granularity, group_size)
    levels = 2 ** bits - 1
    w = w.float()
    lo = _shared(w, "amin", granularity, group_size).clamp(max=0.0)   # the range always includes 0
    hi = _shared(w, "amax", granularity, group_size).clamp(min=0.0)
    scale = torch.where(hi == lo, torch.ones_like(hi), (hi - lo) / levels)
    zero = torch.round(-lo / scale).clamp(0, levels)              # the code that means 0.0
    q = (torch.round(w / expand_scale(scale, w.shape)) + expand_scale(zero, w.shape)).clamp(0, levels)
    return q.to(torch.uint8), scale, zero.to(torch.int32)


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | None = None) -> torch.Tensor:
    """float32 weights back from codes: q · scale, or (q - zero) · scale."""
    codes = q.to(torch.float32)                                   # exact: codes are small integers
    if scale.dim() == 2:                                          # per group: view the groups, no copies
        codes = codes.view(q.size(0), scale.size(1), -1)
        scale, zero = scale[..., None], (None if zero is None else zero[..., None])
    elif scale.dim() == 1:                                        # per output channel (a row)
        scale, zero = scale[:, None], (None if zero is None else zero[:, None])
    if zero is not None:
        codes = codes - zero
    return (codes * scale).view(q.shape)


def int8_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a (M, K) int8 @ b (N, K)ᵀ int8 -> (M, N) int32, accumulated in int32 (a product of two int8
    is at most 2^14, and K of them would overflow int16 or lose digits in float32 for large K)."""
    return a.to(torch.int32) @ b.to(torch.int32).T


def quantized_linear(x: torch.Tensor, w_q: torch.Tensor, w_scale: torch.Tensor) -> torch.Tensor:
    """y = x · wᵀ with both sides in int8: x (M, K) float is quantised per row (one absmax scale per
    token, computed on the fly), w_q (N, K) int8 with per-output-channel scales w_scale (N,).
    Each output is an exact int32 dot product times x_scale[m] · w_scale[n]."""
    x_q, x_scale = absmax_quantize(x, 8, "channel")               # a row of x plays an output channel
    return int8_matmul(x_q, w_q).to(torch.float32) * x_scale[:, None] * w_scale[None, :]
