"""Merging: fold the adapter into the base weight for zero-latency inference, and take it out again.

    merge:    W ← W + s·B·A        (in the base's layout: delta_weight() transposes for Conv1D)
    unmerge:  W ← W − s·B·A

A merged layer is a plain linear layer again: one matmul, no extra latency, no extra memory. The
`merged` flag tells forward not to add the update a second time. Unmerging restores W up to float
rounding (W + d − d is not always bit-identical to W in float32; the difference is ~1 ulp of W).

Not handled: merging into a quantised base (LinearNF4): dequantise, merge, and re-quantise is a
lossy round trip, so QLoRA adapters are merged into a full-precision copy of the base instead.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .lora_linear import LoRALinear


@torch.no_grad()
def merge(layer: LoRALinear) -> None:
    """Fold s·B·A into layer.base.weight; afterwards forward is the base layer alone."""
    if layer.merged:
        raise RuntimeError("merge: this LoRA layer is already merged")
    layer.base.weight += layer.delta_weight()
    layer.merged = True


@torch.no_grad()
def unmerge(layer: LoRALinear) -> None:
    """Take s·B·A back out of layer.base.weight; forward adds the adapter again."""
    if not layer.merged:
        raise RuntimeError("unmerge: this LoRA layer is not merged")
    layer.base.weight -= layer.delta_weight()
    layer.merged = False


def lora_layers(model: nn.Module) -> list[tuple[str, LoRALinear]]:
    """Every LoRA layer in `model`, with its qualified name."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, LoRALinear)]


def merge_all(model: nn.Module) -> int:
    """Merge every LoRA layer of `model`; returns how many."""
    layers = lora_layers(model)
    for _, layer in layers:
        merge(layer)
    return len(layers)


def unmerge_all(model: nn.Module) -> int:
    """Unmerge every LoRA layer of `model`; returns how many."""
    layers = lora_layers(model)
    for _, layer in layers:
        unmerge(layer)
    return len(layers)
