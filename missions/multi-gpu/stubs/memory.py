"""The memory bill of training a GPT, before you rent the GPU (brief, section 7).

Bytes per rank for the model of model.py trained with AdamW: weights, gradients, optimizer state
and activations, in fp32 or mixed precision, with ZeRO stage 0-3 across `world` ranks, with or
without activation checkpointing. The conventions the checks use are in brief.md, section 7.
Not handled: temporaries inside an op, the CUDA context, the allocator's fragmentation.
"""
from __future__ import annotations

import math

from .model import ModelConfig


def count_params(cfg: ModelConfig) -> int:
    """P for TinyGPT(cfg), each Parameter once (the head is the tied token embedding)."""
    raise NotImplementedError("count_params: see brief.md, section 7 (The memory bill)")


def activation_values(cfg: ModelConfig, batch_size: int, seq_len: int, checkpointing: bool) -> int:
    """How many values autograd keeps for backward at its peak (a helper for training_memory)."""
    raise NotImplementedError("activation_values: see brief.md, section 7 (Activations)")


def training_memory(cfg: ModelConfig, *, batch_size: int, seq_len: int, mixed_precision: bool = False,
                    checkpointing: bool = False, zero_stage: int = 0, world: int = 1) -> dict:
    """Bytes per rank: {"params", "weights", "gradients", "optimizer", "activations", "total"}, all ints
    ("params" is P, a count; "total" adds the four byte figures). batch_size is per rank."""
    raise NotImplementedError("training_memory: see brief.md, section 7 (The memory bill)")


def fits(cfg: ModelConfig, gpu_bytes: int, **setup) -> bool:
    """Does training_memory(cfg, **setup)["total"] fit in gpu_bytes?"""
    raise NotImplementedError("fits: see brief.md, section 7 (Will it fit?)")
