"""The model's shape and switches, in one plain dataclass.

Every module of the GPT reads what it needs from a `GPTConfig`. The defaults are nanoGPT's small CPU
setting for character-level Shakespeare; the four switches at the bottom (`pos`, `norm`, `mlp`,
`n_kv_head`) turn the 2019-style GPT-2 block into a 2023-style Llama-like block one piece at a time.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GPTConfig:
    vocab_size: int = 84         # how many distinct tokens (V); 84 characters in the shipped corpus
    block_size: int = 64         # the longest context the model can see (the largest T)
    n_layer: int = 4             # how many transformer blocks are stacked (L)
    n_head: int = 4              # attention heads per block (nh); d_model must divide evenly
    d_model: int = 128           # width of the residual stream (C); each head gets C // nh (hs)
    dropout: float = 0.0         # dropout on embeddings and on each residual branch; 0 = off
    bias: bool = True            # whether Linear layers and LayerNorm carry a bias
    norm_eps: float = 1e-5       # added under the square root in LayerNorm / RMSNorm
    # -- variants (each one is a bonus checkpoint) ----------------------------------------------
    pos: str = "learned"         # "learned": a position embedding table; "rope": rotary q/k
    rope_base: float = 10000.0   # RoPE: the base of the geometric ladder of rotation speeds
    norm: str = "layernorm"      # "layernorm" or "rmsnorm"
    mlp: str = "gelu"            # "gelu": Linear-GELU-Linear; "swiglu": gated SiLU unit
    n_kv_head: int | None = None  # grouped-query attention: heads for k and v (None = n_head)

    def __post_init__(self):
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_head={self.n_head}")
        if self.kv_heads < 1 or self.n_head % self.kv_heads:
            raise ValueError(f"n_head={self.n_head} is not a multiple of n_kv_head={self.n_kv_head}")
        if self.pos not in ("learned", "rope"):
            raise ValueError(f"pos must be 'learned' or 'rope', got {self.pos!r}")
        if self.norm not in ("layernorm", "rmsnorm"):
            raise ValueError(f"norm must be 'layernorm' or 'rmsnorm', got {self.norm!r}")
        if self.mlp not in ("gelu", "swiglu"):
            raise ValueError(f"mlp must be 'gelu' or 'swiglu', got {self.mlp!r}")
        if self.pos == "rope" and self.head_dim % 2:
            raise ValueError(f"RoPE needs an even head size, got {self.head_dim}")

    @property
    def head_dim(self) -> int:
        """hs: the width of one attention head."""
        return self.d_model // self.n_head

    @property
    def kv_heads(self) -> int:
        """How many distinct key/value heads there are (n_head unless grouped-query attention)."""
        return self.n_head if self.n_kv_head is None else self.n_kv_head

    @property
    def mlp_hidden(self) -> int:
        """Width of the MLP's hidden layer.

        GELU: 4·C, as in GPT-2. SwiGLU has three matrices instead of two, so its hidden width is
        scaled by 2/3 to keep the parameter count about the same, then rounded up to a multiple of 8.
        """
        if self.mlp == "gelu":
            return 4 * self.d_model
        hidden = (2 * 4 * self.d_model) // 3
        return (hidden + 7) // 8 * 8
