"""Reference GPT for the `gpt` mission: a decoder-only transformer written from scratch.

Read in this order: config -> attention (+ rope) -> norm -> block -> model -> sample -> kvcache ->
train (flops and tokenizer are helpers). Every file is the hand-written path the checks compare
against. The speed path (torch's fused attention and LayerNorm kernels, the same parameters) lives
beside it in fast.py, for benchmarks/gpt_train.py; nothing here imports it.
"""
