"""LoRA on a causal language model: teach the project's tiny GPT-2 (trained on Shakespeare) to write
like a film critic, without touching a single one of its weights.

    model = GPT2LMHeadModel.from_pretrained(tiny_gpt2_path()); tok = AutoTokenizer.from_pretrained(...)
    before = lm_loss(model, tok, reviews["validation"]["text"])          # ~5.5 nats: Shakespeare's model
    adapt(model, tok, reviews["train"]["text"], steps=150)               # LoRA r=8 on c_attn, c_proj, c_fc
    after = lm_loss(model, tok, reviews["validation"]["text"])           # lower: the critic's words are learned

The new domain is the movie-review sentences (modern English prose, words Shakespeare never used).
The base stays bit-identical: every change lives in the adapters, so unmerging them (or simply
dropping the adapter file) gives back the Shakespeare model exactly.

Not handled: packing several sentences per row (each sentence is its own row, padded), sampling.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .inject import inject_lora

TARGETS = ("c_attn", "c_proj", "c_fc")      # every projection of GPT-2's blocks (all Conv1D)


def _batch(tokenizer, texts, max_length: int):
    """ids (B, T) and mask (B, T) of the texts, each followed by the end-of-text token, right-padded."""
    eos = tokenizer.eos_token_id
    rows = [tokenizer(t)["input_ids"][: max_length - 1] + [eos] for t in texts]
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), eos, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


def _loss(model, ids, mask):
    """Mean next-token cross-entropy over the real (unpadded) target positions."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]      # predicts tokens 1..T-1
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)               # padding is ignored
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)


@torch.no_grad()
def lm_loss(model, tokenizer, texts, batch_size: int = 64, max_length: int = 64) -> float:
    """Mean next-token cross-entropy (nats per token) of `model` on `texts`, in eval mode."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(texts), batch_size):
        ids, mask = _batch(tokenizer, texts[i:i + batch_size], max_length)
        n = int(mask[:, 1:].sum())
        total += float(_loss(model, ids, mask)) * n
        count += n
    model.train(was_training)
    return total / count


def adapt(model, tokenizer, texts, steps: int = 150, r: int = 8, alpha: float = 16.0, lr: float = 3e-3,
          batch_size: int = 32, max_length: int = 64, seed: int = 0) -> list[float]:
    """Inject LoRA into every Conv1D of the GPT-2 blocks and train it on `texts`; returns the losses."""
    torch.manual_seed(seed)
    inject_lora(model, TARGETS, r=r, alpha=alpha)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for step in range(steps):
        idx = torch.randint(0, len(texts), (batch_size,), generator=g).tolist()
        ids, mask = _batch(tokenizer, [texts[i] for i in idx], max_length)
        loss = _loss(model, ids, mask)
        for group in optimizer.param_groups:             # cosine from lr to lr/10
            group["lr"] = lr * (0.55 + 0.45 * math.cos(math.pi * step / steps))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses
