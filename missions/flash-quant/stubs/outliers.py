"""LLM.int8(): keep the few outlier features in floating point, quantise everything else to int8
(brief.md, section 6.4). Bonus.

    O = { k : max_m |x[m, k]| > threshold }        the outlier features (columns of x)
    y = x[:, O] · w[:, O]ᵀ (float)  +  vector-wise int8 product of x[:, ~O] and w[:, ~O]
"""
from __future__ import annotations

import torch

from .quantize import absmax_quantize, quantized_linear


def outlier_features(x: torch.Tensor, threshold: float = 6.0) -> torch.Tensor:
    """Boolean (K,): True for the input features (columns of x (M, K)) holding any |value| > threshold."""
    raise NotImplementedError("outlier_features: see brief.md, section 6.4 (Outliers)")


def int8_matmul_with_outliers(x: torch.Tensor, w: torch.Tensor, threshold: float = 6.0) -> torch.Tensor:
    """x (M, K) float @ w (N, K)ᵀ float -> (M, N) float32: the outlier features in float32, the rest
    through quantized_linear (one int8 scale per row of x and per output channel of w)."""
    raise NotImplementedError("int8_matmul_with_outliers: see brief.md, section 6.4 (Outliers)")
