"""Generation latency of the project's tiny GPT-2 on this machine: float32 / int8 / 4-bit weights,
with and without a KV cache, against transformers' own generate.

    python benchmarks/decode.py                 # prompt of 20 tokens, 100 new tokens, best of 3
    python benchmarks/decode.py --new 200 --prompt 50 --threads 2

For every row: time to first token (TTFT: the prefill of the prompt), decode rate (tokens/s after the
first), the total for all new tokens, and the bytes of the block weights (Conv1D / QuantLinear; the
tied embedding, 0.5 MB, stays float32 in all rows).
    cached    engine.flash_quant.decode.generate: prefill once, then one token per step (KV cache)
    no cache  the same FastGPT2, but every step runs the whole sequence again (a fresh cache each
              time, so the work per token grows with the length)
    hf        transformers' GPT2LMHeadModel.generate(do_sample=False) with its own cache (fp32 only)
Greedy decoding, so every row writes the same tokens as the float32 one (int8 and 4-bit may drift
apart after a while: their logits differ slightly). On a CPU at this size, dequantising int8 / 4-bit
weights each step costs more than the memory it saves; on a GPU, or a model that does not fit in
cache, fewer bytes per weight is what makes decoding faster.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.flash_quant.decode import FastGPT2, generate  # noqa: E402
from engine.flash_quant.quantized_model import quantize_model  # noqa: E402
from engine.shared.models import tiny_gpt2_path  # noqa: E402


def load():
    from transformers import GPT2LMHeadModel
    from transformers.utils import logging
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    return GPT2LMHeadModel.from_pretrained(tiny_gpt2_path()).eval()


def block_weight_bytes(model) -> int:
    total = 0
    for blk in model.transformer.h:
        for mod in (blk.attn.c_attn, blk.attn.c_proj, blk.mlp.c_fc, blk.mlp.c_proj):
            total += sum(t.nbytes for name, t in mod.state_dict().items() if name != "bias")
    return total


@torch.no_grad()
def no_cache(fast: FastGPT2, prompt: torch.Tensor, n: int) -> tuple[torch.Tensor, dict]:
    t0 = time.perf_counter()
    seq = prompt
    ttft = None
    for i in range(n):
        logits = fast(seq, fast.new_cache(seq.size(1)))               # the whole sequence, every step
        seq = torch.cat([seq, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
        if i == 0:
            ttft = time.perf_counter() - t0
    end = time.perf_counter()
    return seq, {"ttft_s": ttft, "tok_s": (n - 1) / (end - t0 - ttft)}


@torch.no_grad()
def hf_generate(model, prompt, n):
    t0 = time.perf_counter()
    model.generate(prompt, max_new_tokens=1, min_new_tokens=1, do_sample=False, pad_token_id=0)
    ttft = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = model.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)
    total = time.perf_counter() - t0
    return out, {"ttft_s": ttft, "tok_s": (n - 1) / max(total - ttft, 1e-9)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompt", type=int, default=20, help="prompt length (tokens of validation text)")
    ap.add_argument("--new", type=int, default=100, help="new tokens to generate")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoTokenizer

    from engine.shared.data import text_path
    tok = AutoTokenizer.from_pretrained(tiny_gpt2_path())
    ids = tok(text_path("val").read_text(encoding="utf-8")[:5000])["input_ids"][:args.prompt]
    prompt = torch.tensor([ids])

    models = {"fp32": load(), "int8": quantize_model(load(), bits=8), "4-bit g32": quantize_model(load(), 4, 32)}
    print(f"tiny GPT-2 ({sum(p.numel() for p in models['fp32'].parameters()):,} parameters), prompt "
          f"{args.prompt} tokens, {args.new} new tokens, greedy, {args.threads} thread(s), best of {args.repeats}")
    head = f"{'weights':>10} {'decoder':>9} | {'block MB':>8} | {'TTFT ms':>8} {'tok/s':>8} {'total s':>8}"
    print(head)
    print("-" * len(head))
    reference_tokens = None
    for name, model in models.items():
        fast = FastGPT2(model)
        runs = [("cached", lambda: generate(fast, prompt, args.new)),
                ("no cache", lambda: no_cache(fast, prompt, args.new))]
        if name == "fp32":
            runs.append(("hf", lambda: hf_generate(model, prompt, args.new)))
        for label, fn in runs:
            fn()                                                       # warm up
            best, stats, tokens = float("inf"), None, None
            for _ in range(args.repeats):
                t = time.perf_counter()
                tokens, s = fn()
                took = time.perf_counter() - t
                if took < best:
                    best, stats = took, s
            if reference_tokens is None:
                reference_tokens = tokens
            same = int((tokens[0, args.prompt:] == reference_tokens[0, args.prompt:]).sum())
            print(f"{name:>10} {label:>9} | {block_weight_bytes(model) / 1e6:8.2f} | "
                  f"{stats['ttft_s'] * 1e3:8.1f} {stats['tok_s']:8.0f} {best:8.3f}"
                  f"   ({same}/{args.new} tokens as fp32 cached)", flush=True)
    c = models["fp32"].config
    from engine.flash_quant.kvcache import kv_cache_bytes
    n = args.prompt + args.new
    print(f"KV cache for {n} positions, float32: 2·{c.n_layer}·{c.n_head}·{c.n_embd // c.n_head}·{n}·4 = "
          f"{kv_cache_bytes(c.n_layer, c.n_head, c.n_embd // c.n_head, n):,} bytes")


if __name__ == "__main__":
    main()
