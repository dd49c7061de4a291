"""Weight-only quantisation of a real model: every Linear/Conv1D in the blocks keeps int8 (or 4-bit)
codes plus scales, and turns them back into float32 weights only for its own matmul.

Weight-only means activations stay float: the point is memory. A decoder reads every weight once per
generated token, so on hardware where decoding is limited by memory bandwidth, fewer bytes per weight
is directly more tokens per second; and a model that did not fit now does.

    int8, one scale per output channel     8 bits + 32/in_features bits per weight   ≈ 4x smaller
    4-bit, one scale per group of 32       4 bits + 32/32 bits per weight             = 6.4x smaller

4-bit codes (symmetric, q in [-7, 7]) go two to a byte: q + 8 (1 … 15) in a nibble, column 2j in the
low four bits and column 2j + 1 in the high four.

GPT-2's Conv1D stores its weight as (in_features, out_features) and computes x·W + b; nn.Linear stores
(out_features, in_features) and computes x·Wᵀ + b. A "per output channel" scale is per COLUMN of a
Conv1D weight: transpose it first, or the scales run along the wrong axis.

Not handled: quantised activations (see quantize.quantized_linear), GPTQ/AWQ-style error-correcting
rounding, the embedding and the output head (tied in GPT-2; they stay float32).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .quantize import absmax_quantize, dequantize


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """int8 codes in [-7, 7] of shape (out, in) -> uint8 (out, in // 2), two codes per byte."""
    u = (q.to(torch.int16) + 8).to(torch.uint8)                 # 1 … 15: fits in four bits
    return u[:, 0::2] | (u[:, 1::2] << 4)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """uint8 (out, in // 2) -> int8 codes (out, in): the inverse of pack_int4."""
    q = torch.empty(packed.size(0), 2 * packed.size(1), dtype=torch.int8, device=packed.device)
    q[:, 0::2] = packed & 0x0F                                    # the low nibbles: even columns
    q[:, 1::2] = packed >> 4                                      # the high nibbles: odd columns
    return q - 8


class QuantLinear(nn.Module):
    """y = x · dequantised(W)ᵀ + b with W stored quantised.

    Buffers (the state_dict, and what the memory bill adds up):
        qweight  bits=8: int8 (out, in)      bits=4: uint8 (out, in // 2), two codes per byte
        scales   float32 (out,) per output channel (group_size=None), or (out, in // group_size)
        bias     float32 (out,), or absent
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, bits: int = 8,
                 group_size: int | None = None):
        """weight (out_features, in_features) float, nn.Linear's layout."""
        super().__init__()
        if bits not in (4, 8):
            raise ValueError(f"bits must be 8 or 4, got {bits}")
        if bits == 4 and not group_size:
            raise ValueError("4-bit weights need a group_size (one scale per output channel loses too much)")
        self.bits, self.group_size = bits, group_size
        self.in_features, self.out_features = weight.size(1), weight.size(0)
        granularity = "group" if group_size else "channel"
        q, scales = absmax_quantize(weight.detach(), bits, granularity, group_size)
        self.register_buffer("qweight", pack_int4(q) if bits == 4 else q)
        self.register_buffer("scales", scales)
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())

    def dequantized_weight(self) -> torch.Tensor:
        """(out, in) float32: the weight the layer computes with."""
        q = unpack_int4(self.qweight) if self.bits == 4 else self.qweight
        return dequantize(q, self.scales)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.dequantized_weight(), self.bias)


def _linear_layers(model: nn.Module):
    """(parent, attribute name, layer) for every Conv1D / nn.Linear inside the transformer blocks."""
    from transformers.pytorch_utils import Conv1D
    blocks = model.transformer.h if hasattr(model, "transformer") else model.model.layers
    for block in blocks:
        for parent in block.modules():
            for name, child in parent.named_children():
                if isinstance(child, (Conv1D, nn.Linear)):
                    yield parent, name, child


@torch.no_grad()
def quantize_model(model: nn.Module, bits: int = 8, group_size: int | None = None) -> nn.Module:
    """Swap every Conv1D / nn.Linear in the model's blocks for a QuantLinear, in place; returns model.
    The token embedding and the (tied) output head stay float32."""
    from transformers.pytorch_utils import Conv1D
    for parent, name, layer in list(_linear_layers(model)):
        weight = layer.weight.T if isinstance(layer, Conv1D) else layer.weight   # -> (out, in)
        setattr(parent, name, QuantLinear(weight, layer.bias, bits, group_size))
    return model
