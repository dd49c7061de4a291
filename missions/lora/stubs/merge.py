"""Merging: fold the adapter into the base weight for zero-latency inference, and take it out again
(brief.md, section 6).

    merge:    W ← W + delta_weight()      (s·B·A, already in the base's layout)   then merged = True
    unmerge:  W ← W − delta_weight()                                               then merged = False

Change layer.base.weight in place, under torch.no_grad().
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .lora_linear import LoRALinear


def merge(layer: LoRALinear) -> None:
    """Fold s·B·A into layer.base.weight; afterwards forward is the base layer alone."""
    raise NotImplementedError("merge: see brief.md, section 6 (Merging)")


def unmerge(layer: LoRALinear) -> None:
    """Take s·B·A back out of layer.base.weight; forward adds the adapter again."""
    raise NotImplementedError("unmerge: see brief.md, section 6 (Merging)")


def lora_layers(model: nn.Module) -> list[tuple[str, LoRALinear]]:
    """Every LoRA layer in `model`, with its qualified name."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, LoRALinear)]


def merge_all(model: nn.Module) -> int:
    """Merge every LoRA layer of `model`; returns how many."""
    raise NotImplementedError("merge_all: see brief.md, section 6 (Merging)")


def unmerge_all(model: nn.Module) -> int:
    """Unmerge every LoRA layer of `model`; returns how many."""
    raise NotImplementedError("unmerge_all: see brief.md, section 6 (Merging)")
