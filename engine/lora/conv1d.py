"""LoRA for HuggingFace's Conv1D: GPT-2's projections (c_attn, c_proj, c_fc).

Despite the name, transformers.pytorch_utils.Conv1D is a linear layer stored the other way round:

    nn.Linear   weight (out, in)    y = x · Wᵀ + b
    Conv1D      weight (in, out)    y = x · W  + b        (nx = in, nf = out)

The adapter itself does not care how the base stores its weight: A is still (r, in), B (out, r) and
the update is s·B·A·x. Two places do care: reading in/out from the weight's shape, and folding the
update into the weight (merge.py), where Conv1D needs (s·B·A)ᵀ. The trap: when in == out (GPT-2's
attention c_proj is 768 × 768) the untransposed shapes line up and nothing fails; the merged model is
just wrong. Non-square layers (c_attn 768 -> 2304) expose it.

Not handled: Conv1D layers whose weight is not 2-D.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .lora_linear import LoRALinear


class LoRAConv1D(LoRALinear):
    """LoRALinear around a transformers Conv1D (weight (in, out))."""

    @staticmethod
    def features(base: nn.Module) -> tuple[int, int]:
        in_features, out_features = base.weight.shape        # Conv1D: (in, out), the transpose of Linear
        return in_features, out_features

    def delta_weight(self) -> torch.Tensor:
        """s·B·A transposed to Conv1D's (in, out) layout."""
        return (self.scaling * (self.B @ self.A)).T
