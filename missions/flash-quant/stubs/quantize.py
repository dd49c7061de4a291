"""Quantisation: store a float tensor as small integers plus a scale, and compute with them
(brief.md, section 6).

Weights are (out_features, in_features), nn.Linear's layout. Conventions the checks use:
  absmax     scale = max|w| / qmax (qmax = 2^(bits-1) - 1), q = round(w / scale), int8 codes
  zero-point lo = min(w, 0), hi = max(w, 0), scale = (hi - lo) / (2^bits - 1),
             zero = round(-lo / scale) (int32), q = clamp(round(w / scale) + zero, 0, 2^bits - 1) (uint8)
  granularity "tensor" -> scale shape (); "channel" -> (out,), one per ROW; "group" -> (out, in // group_size)
  a set of values that are all 0 gets scale 1.
"""
from __future__ import annotations

import torch

GRANULARITIES = ("tensor", "channel", "group")


def qmax(bits: int) -> int:
    """The largest symmetric code: 127 for 8 bits, 7 for 4 bits."""
    return 2 ** (bits - 1) - 1


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
    raise NotImplementedError("absmax_quantize: see brief.md, section 6 (Quantisation)")


def zeropoint_quantize(w: torch.Tensor, bits: int = 8, granularity: str = "channel",
                       group_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Affine quantisation -> (q uint8 in [0, 2^bits - 1], scale float32, zero int32), the scale
    and zero point of the granularity's shape."""
    raise NotImplementedError("zeropoint_quantize: see brief.md, section 6 (Quantisation)")


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | None = None) -> torch.Tensor:
    """float32 weights back from codes: q · scale, or (q - zero) · scale (expand_scale helps)."""
    raise NotImplementedError("dequantize: see brief.md, section 6 (Quantisation)")


def int8_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a (M, K) int8 @ b (N, K)ᵀ int8 -> (M, N) int32, accumulated in int32."""
    raise NotImplementedError("int8_matmul: see brief.md, section 6.3 (Integer matmul)")


def quantized_linear(x: torch.Tensor, w_q: torch.Tensor, w_scale: torch.Tensor) -> torch.Tensor:
    """y = x · wᵀ with both sides in int8: quantise x (M, K) float per row (absmax / 127, one scale
    per token), int8_matmul with w_q (N, K) int8, then multiply by x_scale[m] · w_scale[n] -> (M, N)
    float32."""
    raise NotImplementedError("quantized_linear: see brief.md, section 6.3 (Integer matmul)")
