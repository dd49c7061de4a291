"""The memory bill of training a GPT, before you rent the GPU (brief, section 7).

Per rank, in bytes, for the model of model.py trained with AdamW:

                      fp32            mixed precision (fp16/bf16 compute, fp32 master copy)
    weights           4·P             2·P   (the 16-bit copy forward and backward use)
    gradients         4·P             2·P
    optimizer state   8·P (m, v)      12·P  (fp32 master weights 4 + m 4 + v 4)
    activations       4·values        2·values   (values: what autograd keeps for backward)

    2 + 2 + 12 = 16 bytes per parameter in mixed precision: a 7B model needs 112 GB before a
    single activation, more than one 80 GB card.

ZeRO across W ranks splits (each rank keeps ceil(P/W) of the elements of what is sharded):
    stage 1: the optimizer state     stage 2: + the gradients     stage 3: + the weights
Activations are never sharded by ZeRO: each rank runs forward on its own micro-batch.

Activation values for a batch of B sequences of T tokens (the table in model.py's docstring):
    one block   16·B·T·C + nh·B·T²          (the nh·B·T² attention weights grow with T squared)
    the head    2·B·T·C + B·T·V             (ln_f's input and output, then the logits)
    no checkpointing: L·block + head
    checkpointing:    L·B·T·C (each block's input) + max(block, head): backward runs the head
                      first (its tensors are freed), then recomputes one block at a time.
Not handled: buffers and temporaries inside an op (cuBLAS workspaces, the softmax's scratch), the
CUDA context (~0.5 GB), the allocator's fragmentation, dropout masks, the token ids.
"""
from __future__ import annotations

import math

from .model import ModelConfig


def count_params(cfg: ModelConfig) -> int:
    """P for TinyGPT(cfg): embeddings (the head is tied: no extra matrix) + L blocks + ln_f."""
    C = cfg.d_model
    per_block = (2 * C                      # ln1: weight and bias
                 + 3 * C * C + 3 * C        # qkv
                 + C * C + C                # proj
                 + 2 * C                    # ln2
                 + 4 * C * C + 4 * C        # fc
                 + 4 * C * C + C)           # out      -> 12·C² + 13·C
    return cfg.vocab_size * C + cfg.block_size * C + cfg.n_layer * per_block + 2 * C


def activation_values(cfg: ModelConfig, batch_size: int, seq_len: int, checkpointing: bool) -> int:
    """How many values autograd keeps for backward at its peak (see the module docstring)."""
    B, T, C = batch_size, seq_len, cfg.d_model
    block = 16 * B * T * C + cfg.n_head * B * T * T
    head = 2 * B * T * C + B * T * cfg.vocab_size
    if checkpointing:
        return cfg.n_layer * B * T * C + max(block, head)
    return cfg.n_layer * block + head


def training_memory(cfg: ModelConfig, *, batch_size: int, seq_len: int, mixed_precision: bool = False,
                    checkpointing: bool = False, zero_stage: int = 0, world: int = 1) -> dict:
    """Bytes per rank: {"params", "weights", "gradients", "optimizer", "activations", "total"}
    ("params" is P, a count; "total" adds the four byte figures). batch_size is per rank."""
    if zero_stage not in (0, 1, 2, 3) or world < 1:
        raise ValueError(f"zero_stage must be 0..3 and world >= 1, got {zero_stage}, {world}")
    P = count_params(cfg)
    shard = math.ceil(P / world)                          # elements of a sharded tensor per rank
    if mixed_precision:
        w, g, o, a = 2, 2, 12, 2                          # 16-bit copy, 16-bit grads, master + m + v
    else:
        w, g, o, a = 4, 4, 8, 4
    weights = w * (shard if zero_stage >= 3 else P)
    gradients = g * (shard if zero_stage >= 2 else P)
    optimizer = o * (shard if zero_stage >= 1 else P)
    activations = a * activation_values(cfg, batch_size, seq_len, checkpointing)
    return {"params": P, "weights": weights, "gradients": gradients, "optimizer": optimizer,
            "activations": activations, "total": weights + gradients + optimizer + activations}


def fits(cfg: ModelConfig, gpu_bytes: int, **setup) -> bool:
    """Does training_memory(cfg, **setup)["total"] fit in gpu_bytes?"""
    return training_memory(cfg, **setup)["total"] <= gpu_bytes
