"""Weight-only quantisation of a real model: every Conv1D in GPT-2's blocks becomes a QuantLinear that
keeps int8 (or packed 4-bit) codes plus float32 scales (brief.md, section 7).

GPT-2's Conv1D stores its weight as (in_features, out_features) and computes x·W + b; QuantLinear
takes nn.Linear's layout (out_features, in_features): transpose a Conv1D's weight first.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .quantize import absmax_quantize, dequantize


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """int8 codes in [-7, 7] of shape (out, in) -> uint8 (out, in // 2), two codes per byte:
    q + 8 of column 2j in the low four bits, of column 2j + 1 in the high four."""
    raise NotImplementedError("pack_int4: see brief.md, section 7.2 (Four bits)")


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """uint8 (out, in // 2) -> int8 codes (out, in): the inverse of pack_int4."""
    raise NotImplementedError("unpack_int4: see brief.md, section 7.2 (Four bits)")


class QuantLinear(nn.Module):
    """y = x · dequantised(W)ᵀ + b with W stored quantised (symmetric absmax codes, quantize.py).

    Buffers (register_buffer; the state_dict, and what the memory check adds up):
        qweight  bits=8: int8 (out, in)      bits=4: uint8 (out, in // 2), two codes per byte
        scales   float32 (out,) per output channel (group_size=None), or (out, in // group_size)
        bias     float32 (out,), or None
    Keep no float copy of the weight.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, bits: int = 8,
                 group_size: int | None = None):
        """weight (out_features, in_features) float, nn.Linear's layout. bits is 8 or 4 (4 needs a
        group_size)."""
        super().__init__()
        raise NotImplementedError("QuantLinear.__init__: see brief.md, section 7 (A quantised model)")

    def dequantized_weight(self) -> torch.Tensor:
        """(out, in) float32: the weight the layer computes with."""
        raise NotImplementedError("QuantLinear.dequantized_weight: see brief.md, section 7 (A quantised model)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("QuantLinear.forward: see brief.md, section 7 (A quantised model)")


@torch.no_grad()
def quantize_model(model: nn.Module, bits: int = 8, group_size: int | None = None) -> nn.Module:
    """Swap every Conv1D (transformers.pytorch_utils.Conv1D) and nn.Linear inside the model's blocks for a
    QuantLinear, in place; return the model. The blocks are model.transformer.h for GPT-2 and
    model.model.layers for a Llama-style model (SmolLM2). The embeddings and the (tied) output head
    stay float32."""
    raise NotImplementedError("quantize_model: see brief.md, section 7 (A quantised model)")
