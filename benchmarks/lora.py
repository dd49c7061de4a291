"""Fine-tuning MiniLM on CPU: full fine-tuning vs LoRA vs QLoRA, and our LoRA vs peft's.

    python benchmarks/lora.py                      # both parts, a few minutes on 2 cores
    python benchmarks/lora.py --steps 8 --threads 1 --part modes

Part 1 (modes): one training step (forward, backward, AdamW) of engine.lora.finetune's classifier
(all-MiniLM-L6-v2 + mean pooling + a 2-way head) on a fixed batch of 32 real movie-review sentences,
for each mode in a fresh child process (so that peak memory belongs to that mode alone):
    full    every weight trains
    lora    LoRA r=8 on query/value + the head (engine.lora)
    qlora   the same, every encoder nn.Linear in NF4 (engine.lora.qlora.LinearNF4)
    probe   only the head (for scale)
It prints the median step time, the tensors the step keeps alive, counted exactly (weights by dtype,
gradients, AdamW's two moments), and the process's peak resident memory (ru_maxrss, which includes
the Python/torch runtime and activations).

Part 2 (peft): the same LoRA fine-tuning step with engine.lora's hand-written layers and with
peft's get_peft_model (same LoraConfig, same adapter values: the outputs are checked equal first),
timed in rotating rounds; the ratio ours / peft (<= 1 means not slower).

Measured on the 2-core development VM (torch 2.13 CPU, shared with other jobs): see the figures in
the commit that last changed this file, or run it.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH = 32


def _batch():
    import torch
    from engine.shared.corpora import movie_reviews
    from engine.lora.finetune import encode
    from transformers import AutoTokenizer
    from engine.shared.models import minilm_path
    split = movie_reviews()["train"]
    tok = AutoTokenizer.from_pretrained(minilm_path())
    texts, labels = list(split["text"][:BATCH]), torch.tensor(split["label"][:BATCH])
    return encode(tok, texts, 64), labels


def _tensor_bytes(tensors) -> int:
    seen, total = set(), 0
    for t in tensors:
        if t is None:
            continue
        s = t.untyped_storage()
        if s.data_ptr() not in seen:
            seen.add(s.data_ptr())
            total += s.nbytes()
    return total


def child(mode: str, steps: int, threads: int) -> dict:
    """One mode: build, warm up, time `steps` steps; report times and memory."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    from engine.lora.finetune import FinetuneConfig, build_classifier
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    batch, labels = _batch()
    model, _ = build_classifier(FinetuneConfig(mode=mode, dropout=0.0))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(**batch), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    weights = _tensor_bytes(list(model.parameters()) + list(model.buffers()))
    grads = _tensor_bytes([p.grad for p in params])
    adam = _tensor_bytes([v for st in opt.state.values() for v in st.values() if torch.is_tensor(v) and v.dim() > 0])
    return {"mode": mode, "step_s": statistics.median(times), "trainable": sum(p.numel() for p in params),
            "weights_mb": weights / 2**20, "grads_mb": grads / 2**20, "adam_mb": adam / 2**20,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "start_rss_mb": rss0 / 1024, "tokens": int(batch["attention_mask"].sum())}


def run_modes(steps: int, threads: int) -> list[dict]:
    rows = []
    for mode in ("full", "lora", "qlora", "probe"):
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--steps", str(steps),
                              "--threads", str(threads)], capture_output=True, text=True, cwd=ROOT)
        line = [l for l in out.stdout.splitlines() if l.startswith("{")]
        if out.returncode != 0 or not line:
            raise RuntimeError(f"{mode}: {out.stderr[-2000:]}")
        rows.append(json.loads(line[-1]))
        print(f"  measured {mode}", file=sys.stderr, flush=True)
    return rows


def print_modes(rows: list[dict]) -> None:
    full = next(r for r in rows if r["mode"] == "full")
    print(f"\nMiniLM (22.7M) classifier, batch {BATCH} sentences ({rows[0]['tokens']} real tokens), one "
          "AdamW step; memory counted from the tensors, plus the process peak")
    print(f"| mode  | trainable  | step (s) | vs full | weights MB | grads MB | Adam MB | state MB | peak RSS MB |")
    print(f"|-------|-----------:|---------:|--------:|-----------:|---------:|--------:|---------:|------------:|")
    for r in rows:
        state = r["weights_mb"] + r["grads_mb"] + r["adam_mb"]
        print(f"| {r['mode']:<5} | {r['trainable']:>10,} | {r['step_s']:8.2f} | {r['step_s'] / full['step_s']:6.2f}x | "
              f"{r['weights_mb']:10.1f} | {r['grads_mb']:8.1f} | {r['adam_mb']:7.1f} | {state:8.1f} | "
              f"{r['peak_rss_mb']:11.0f} |")


def run_peft(steps: int, threads: int) -> dict:
    """Our LoRA vs peft's in the same MiniLM step, rotating rounds, medians."""
    import warnings
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel
    from engine.lora.finetune import SentimentClassifier
    from engine.lora.inject import inject_lora
    from engine.shared.models import minilm_path
    batch, labels = _batch()

    def ours():
        enc = AutoModel.from_pretrained(minilm_path())
        inject_lora(enc, ["query", "value"], r=8, alpha=16.0)
        return SentimentClassifier(enc, dropout=0.0)

    def theirs():
        enc = AutoModel.from_pretrained(minilm_path())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            enc = get_peft_model(enc, LoraConfig(r=8, lora_alpha=16, target_modules=["query", "value"],
                                                  lora_dropout=0.0))
        return SentimentClassifier(enc.base_model.model, dropout=0.0)

    torch.manual_seed(0)
    a, b = ours(), theirs()
    with torch.no_grad():                                 # the same adapters and head in both
        g = torch.Generator().manual_seed(0)
        for name, m in a.encoder.named_modules():
            if hasattr(m, "A") and hasattr(m, "B"):
                p = b.encoder.get_submodule(name)
                m.A.copy_(torch.randn(m.A.shape, generator=g) / 20)
                m.B.copy_(torch.randn(m.B.shape, generator=g) / 20)
                p.lora_A["default"].weight.copy_(m.A)
                p.lora_B["default"].weight.copy_(m.B)
        b.head.load_state_dict(a.head.state_dict())
        diff = (a(**batch) - b(**batch)).abs().max().item()
    if diff > 1e-4:
        raise AssertionError(f"our LoRA and peft's disagree before timing: max |Δlogit| = {diff:.3g}")
    models = {"ours": a, "peft": b}
    opts = {k: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-5) for k, m in models.items()}
    times = {k: [] for k in models}
    for i in range(steps + 2):
        for k in (("ours", "peft") if i % 2 == 0 else ("peft", "ours")):
            m, opt = models[k], opts[k]
            m.train()
            t0 = time.perf_counter()
            loss = F.cross_entropy(m(**batch), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i >= 2:
                times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"ours_s": med["ours"], "peft_s": med["peft"], "ratio": med["ours"] / med["peft"], "max_logit_diff": diff,
            "trainable_ours": sum(p.numel() for p in a.parameters() if p.requires_grad),
            "trainable_peft": sum(p.numel() for p in b.parameters() if p.requires_grad)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=6, help="timed steps per mode (after 2 warm-up steps)")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--part", choices=["modes", "peft", "all"], default="all")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child, a.steps, a.threads)))
        return 0
    import torch
    print(f"torch {torch.__version__}, {a.threads} thread(s), {a.steps} timed steps each")
    if a.part in ("modes", "all"):
        print_modes(run_modes(a.steps, a.threads))
    if a.part in ("peft", "all"):
        r = run_peft(a.steps, a.threads)
        print(f"\nLoRA r=8 on query/value, one MiniLM training step: ours {r['ours_s']:.3f} s, peft "
              f"{r['peft_s']:.3f} s, ratio ours/peft = {r['ratio']:.2f} (trainable {r['trainable_ours']:,} vs "
              f"{r['trainable_peft']:,}; logits equal to {r['max_logit_diff']:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
