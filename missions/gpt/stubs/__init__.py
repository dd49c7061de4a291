"""Your GPT, written from scratch. brief.md is the guide; work through the files in this order:

    attention.py   scaled_dot_product_attention, MultiHeadAttention     (checkpoints attention, mha)
    norm.py        LayerNorm (+ RMSNorm, bonus)                         (checkpoint block)
    block.py       MLP, Block (+ SwiGLU, bonus)                         (checkpoint block)
    model.py       GPT                                                  (checkpoint model)
    train.py       batches, schedule, optimizer, checkpoints, the loop  (checkpoint train)
    flops.py       flops_per_token                                      (checkpoint train)
    sample.py      top-k, top-p, temperature, generate                  (checkpoint sampling)
    kvcache.py     KVCache, generate_cached                             (checkpoint kvcache)
    rope.py        rotary position embeddings                           (bonus checkpoint rope)

config.py and tokenizer.py are complete. Import siblings relatively (from .config import GPTConfig).
"""
