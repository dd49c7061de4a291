"""Injecting LoRA into a HuggingFace model by module name (brief.md, section 4).

    names = inject_lora(model, ["query", "value"], r=8, alpha=16)    # BERT / MiniLM attention
    names = inject_lora(model, ["c_attn", "c_proj"], r=8, alpha=16)   # GPT-2 (Conv1D layers)

A target matches a module whose qualified name is the target or ends with "." + target (peft's
rule, `matches` below). Freeze the whole model, then replace each match in its parent by a LoRA
layer around it: LoRAConv1D for a transformers Conv1D, LoRALinear otherwise.
"""
from __future__ import annotations

import torch.nn as nn
from transformers.pytorch_utils import Conv1D

from .conv1d import LoRAConv1D
from .lora_linear import LoRALinear


def matches(name: str, targets) -> bool:
    """True if the qualified module name is one of `targets` or ends with "." + one of them."""
    return any(name == t or name.endswith("." + t) for t in targets)


def inject_lora(model: nn.Module, targets, r: int, alpha: float, dropout: float = 0.0,
                rslora: bool = False) -> list[str]:
    """Freeze `model` and replace every target module by a LoRA layer around it, in place.

    Returns the qualified names replaced, in model order. Raises ValueError if nothing matched or a
    match is not a linear layer (nothing is changed then).
    """
    raise NotImplementedError("inject_lora: see brief.md, section 4 (Injecting into a HuggingFace model)")


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; a tied tensor counts once."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
