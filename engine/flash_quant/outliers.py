"""LLM.int8(): keep the few outlier features in floating point, quantise everything else to int8.

Past a few billion parameters, transformers grow a handful of hidden features whose activations are
20-100x larger than the rest, in almost every token (Dettmers et al., 2022). With one absmax scale per
token row, such a feature sets the scale for the whole row: a row holding a 60 next to values of
about 1 gets steps of 60/127 ≈ 0.5, and the ordinary values are rounded to 0, ±0.5, ±1: most of their
information is gone.

The fix is a split by feature (by column of x, i.e. by input dimension k of w):

    O      = { k : max_m |x[m, k]| > threshold }          the outlier features (threshold 6.0)
    y      = x[:, O] · w[:, O]ᵀ                           in float: few columns, cheap
           + int8 product of x[:, ~O] and w[:, ~O]        vector-wise: one scale per row of x
                                                          and one per output channel of w

The int8 part no longer sees the outliers, so its scales are small again.
Not handled: the sparse decomposition of the weights' own outliers, fp16 kernels, batching over (B, T).
"""
from __future__ import annotations

import torch

from .quantize import absmax_quantize, quantized_linear


def outlier_features(x: torch.Tensor, threshold: float = 6.0) -> torch.Tensor:
    """Boolean (K,): True for the input features (columns of x (M, K)) holding any |value| > threshold."""
    return (x.abs() > threshold).any(dim=0)


def int8_matmul_with_outliers(x: torch.Tensor, w: torch.Tensor, threshold: float = 6.0) -> torch.Tensor:
    """x (M, K) float @ w (N, K)ᵀ float -> (M, N) float32, LLM.int8()-style: the outlier features in
    float32, the rest through vector-wise int8 (quantize.quantized_linear)."""
    outl = outlier_features(x, threshold)                         # (K,)
    y = x[:, outl].float() @ w[:, outl].float().T                 # the outliers, exactly
    rest = ~outl
    w_q, w_scale = absmax_quantize(w[:, rest], 8, "channel")      # one scale per output channel
    return y + quantized_linear(x[:, rest].float(), w_q, w_scale)
