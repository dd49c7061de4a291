"""Injecting LoRA into a HuggingFace model: find the target modules by name, wrap each one.

    names = inject_lora(model, ["query", "value"], r=8, alpha=16)    # BERT / MiniLM attention
    names = inject_lora(model, ["c_attn", "c_proj"], r=8, alpha=16)   # GPT-2 (Conv1D layers)

A target matches a module whose qualified name is the target or ends with "." + target, the rule
peft uses: "c_proj" matches both `h.0.attn.c_proj` and `h.0.mlp.c_proj`, "query" matches
`encoder.layer.3.attention.self.query`. Everything in the model is frozen first; then each match is
replaced in its parent by a LoRA layer around it (LoRAConv1D for a Conv1D, LoRALinear otherwise), so
the only trainable parameters afterwards are the adapters' A and B. Train a head? Unfreeze it
yourself after injecting (finetune.py does).

Which modules? The LoRA paper adapted only W_q and W_v and found that enough; adapting every linear
layer (attention and MLP) costs more adapter weights and often gains a little.

Not handled: regex targets, per-module ranks, nn.Embedding or nn.Conv2d targets.
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
    if isinstance(targets, str):
        targets = [targets]
    found = [(name, m) for name, m in model.named_modules()
             if name and matches(name, targets) and not isinstance(m, LoRALinear)]
    if not found:
        raise ValueError(f"inject_lora: no module of {type(model).__name__} is named {list(targets)}")
    bad = [f"{name} ({type(m).__name__})" for name, m in found if not isinstance(m, (nn.Linear, Conv1D))
           and not hasattr(m, "in_features")]
    if bad:
        raise ValueError(f"inject_lora: targets must be linear layers; got {bad[:3]}")
    model.requires_grad_(False)                                 # everything frozen ...
    for name, base in found:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        wrap = LoRAConv1D if isinstance(base, Conv1D) else LoRALinear
        setattr(parent, child, wrap(base, r=r, alpha=alpha, dropout=dropout, rslora=rslora))  # ... but A, B
    return [name for name, _ in found]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; a tied tensor counts once."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
