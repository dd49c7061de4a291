"""LoRA for HuggingFace's Conv1D, GPT-2's projection layer (brief.md, section 3).

transformers.pytorch_utils.Conv1D is a linear layer stored the other way round:

    nn.Linear   weight (out, in)    y = x · Wᵀ + b
    Conv1D      weight (in, out)    y = x · W  + b        (nx = in, nf = out; no in_features attribute)

A is still (r, in) and B (out, r). Only two things change: where in/out come from, and the layout of
delta_weight() (merge adds it to Conv1D's (in, out) weight).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .lora_linear import LoRALinear


class LoRAConv1D(LoRALinear):
    """LoRALinear around a transformers Conv1D (weight (in, out))."""

    @staticmethod
    def features(base: nn.Module) -> tuple[int, int]:
        """(in, out) of a Conv1D, read from its weight."""
        raise NotImplementedError("LoRAConv1D.features: see brief.md, section 3 (GPT-2's Conv1D)")

    def delta_weight(self) -> torch.Tensor:
        """s·B·A in Conv1D's (in, out) layout."""
        raise NotImplementedError("LoRAConv1D.delta_weight: see brief.md, section 3 (GPT-2's Conv1D)")
