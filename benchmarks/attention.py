"""Attention on this machine: the tiled (FlashAttention-2) forward in plain PyTorch against torch's
SDPA and the obvious version that builds the T×T scores, as the sequence grows; and, on a GPU, the
Triton kernel against SDPA (and flash-attn when installed) in TFLOP/s.

    python benchmarks/attention.py                          # CPU: T = 512 … 8192, a few minutes
    python benchmarks/attention.py --lengths 512 1024 2048  # a quicker sweep
    python benchmarks/attention.py --gpu                    # the Triton table (needs CUDA)

CPU table (B=1, H=4, d=64, float32, causal, one thread): for each T and each implementation, the
best of --repeats wall times and the peak extra memory of the call. Each measurement runs in a fresh
child process, which reports its peak resident memory (ru_maxrss) minus what it held before the
call, so one run's allocations cannot hide another's. Expect:
    naive   scores = q·kᵀ (B·H·T² floats: 1 GiB at T = 8192), softmax, @ v: memory grows as T²
    tiled   engine.flash_quant.tiled_attention, blocks of 256: memory grows as T (one tile of scores)
    sdpa    torch.nn.functional.scaled_dot_product_attention (a fused, tiled C++ kernel on CPU too)
The tiled version is Python-level tiling: correct and lean in memory, slower than SDPA's C++ loop.

GPU table (B=4, H=16, d=64, float16): Triton kernel (engine.flash_quant.triton_attention) vs SDPA,
causal and not, T = 1024 … 8192, in TFLOP/s (4·B·H·T²·d FLOPs, halved when causal).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time, math
import torch
torch.set_num_threads(1)
sys.path.insert(0, {root!r})
from engine.flash_quant.tiled_attention import flash_attention_forward
impl, T, repeats = {impl!r}, {T}, {repeats}
B, H, d = 1, 4, 64
g = torch.Generator().manual_seed(0)
q, k, v = (torch.randn(B, H, T, d, generator=g) for _ in range(3))

def naive():
    s = (q @ k.transpose(-2, -1)) / math.sqrt(d)
    s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(s, -1) @ v

fn = {{"naive": naive,
       "tiled": lambda: flash_attention_forward(q, k, v, causal=True, block_q=256, block_k=256)[0],
       "sdpa": lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)}}[impl]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
best = float("inf")
for _ in range(repeats):
    t = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - t)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({{"s": best, "mib": peak / 1024}}))
"""


def cpu_table(lengths, repeats):
    print(f"{'T':>6} | {'naive s':>8} {'MiB':>7} | {'tiled s':>8} {'MiB':>7} | {'sdpa s':>8} {'MiB':>7}")
    print("-" * 66)
    for T in lengths:
        row = []
        for impl in ("naive", "tiled", "sdpa"):
            code = CHILD.format(root=str(ROOT), impl=impl, T=T, repeats=repeats)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 env={**os.environ, "OMP_NUM_THREADS": "1"})
            if out.returncode != 0:
                row.append(("failed", ""))
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            row.append((f"{r['s']:.3f}", f"{r['mib']:.0f}"))
        print(f"{T:>6} | " + " | ".join(f"{a:>8} {b:>7}" for a, b in row), flush=True)


def gpu_table(lengths):
    import torch
    import torch.nn.functional as F
    from triton.testing import do_bench

    from engine.flash_quant.triton_attention import triton_attention
    try:
        from flash_attn import flash_attn_func
    except ImportError:
        flash_attn_func = None
    print(f"GPU: {torch.cuda.get_device_name()}")
    head = f"{'T':>6} {'causal':>6} | {'triton':>8} {'sdpa':>8}" + (f" {'flash-attn':>10}" if flash_attn_func else "") \
        + " | triton/sdpa   (TFLOP/s)"
    print(head)
    print("-" * len(head))
    B, H, d = 4, 16, 64
    for T in lengths:
        q, k, v = (torch.randn(B, H, T, d, device="cuda", dtype=torch.float16) for _ in range(3))
        for causal in (False, True):
            flops = 4 * B * H * T * T * d * (0.5 if causal else 1.0)
            o, _ = triton_attention(q, k, v, causal=causal)
            ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            err = (o - ref).abs().max().item()
            t_tri = do_bench(lambda: triton_attention(q, k, v, causal=causal))
            t_sdpa = do_bench(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal))
            line = f"{T:>6} {str(causal):>6} | {flops / t_tri / 1e9:8.1f} {flops / t_sdpa / 1e9:8.1f}"
            if flash_attn_func:
                qt, kt, vt = (x.transpose(1, 2).contiguous() for x in (q, k, v))
                t_fa = do_bench(lambda: flash_attn_func(qt, kt, vt, causal=causal))
                line += f" {flops / t_fa / 1e9:10.1f}"
            print(line + f" | {t_sdpa / t_tri:5.2f}x   max |Δ| {err:.1e}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[512, 1024, 2048, 4096, 8192])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--gpu", action="store_true", help="the Triton table (needs a CUDA GPU)")
    args = ap.parse_args()
    if args.gpu:
        sys.path.insert(0, str(ROOT))
        gpu_table(args.lengths if args.lengths != [512, 1024, 2048, 4096, 8192] else [1024, 2048, 4096, 8192])
    else:
        cpu_table(args.lengths, args.repeats)


if __name__ == "__main__":
    main()
