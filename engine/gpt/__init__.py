"""Reference GPT for the `gpt` mission: a decoder-only transformer written from scratch.

Read in this order: config -> attention (+ rope) -> norm -> block -> model -> sample -> kvcache ->
train (flops and tokenizer are helpers). Everything the checks run is the hand-written path;
GPTConfig(fused=True) swaps in torch's fused attention/LayerNorm kernels for long training runs
(`python -m engine.gpt.train`, `llm-lab train gpt --impl reference`).
"""
