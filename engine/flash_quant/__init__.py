"""Reference for the `flash-quant` mission: fast attention and cheap weights, written from scratch.

Read in this order:
    online_softmax     a softmax in one pass over blocks (running max, rescaled running sum)
    tiled_attention    the FlashAttention-2 forward in plain PyTorch: never builds the T×T scores
    backward           its backward, recomputing the scores from the saved logsumexp (bonus)
    triton_attention   the same forward as a Triton kernel (interpreted on a CPU, compiled on a GPU)
    quantize           absmax and zero-point quantisation, per tensor / channel / group; int8 matmul
    outliers           LLM.int8()'s mixed-precision outlier split (bonus)
    quantized_model    weight-only int8 and 4-bit layers swapped into a real GPT-2
    kvcache            a preallocated key/value cache and its size formula
    decode             a lean GPT-2 decoding loop: prefill once, then one token per step

Nothing here imports triton or transformers at package import: those load only in the modules that
need them.
"""
