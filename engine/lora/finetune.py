"""Fine-tuning MiniLM for sentiment with LoRA: real model, real sentences, a few minutes of CPU.

    model, tok = build_classifier(FinetuneConfig())           # MiniLM + LoRA on query/value + a head
    train_classifier(model, tok, movie_reviews()["train"], FinetuneConfig())
    accuracy(model, tok, movie_reviews()["validation"])       # ~0.8 after a few minutes on a laptop CPU

The encoder is sentence-transformers' all-MiniLM-L6-v2 (a 6-layer BERT, 22.7M weights); the task is
the movie-review sentences of engine.shared.corpora (label 1 if the human raters' mean valence was
positive). The classifier mean-pools the encoder's last hidden states over the real tokens (the way
MiniLM was trained to make sentence embeddings) and maps the 384 numbers to 2 logits.

Four ways to train the same classifier (`mode`), the comparison of brief.md section 8:
    probe  backbone frozen, only the head learns           (770 weights)
    lora   LoRA on query/value + the head                   (~74k weights, 0.33 %)
    qlora  the same, with every encoder nn.Linear in NF4    (qlora.py)
    full   every weight learns                              (22.7M)

Not handled: sentence pairs, more than 2 classes in the data helpers, learning-rate schedules other
than warmup + linear decay, mixed precision.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .inject import inject_lora
from .qlora import quantize_linears


@dataclass
class FinetuneConfig:
    mode: str = "lora"                  # "lora", "qlora", "probe" (head only) or "full"
    r: int = 8                          # LoRA rank
    alpha: float = 16.0                 # LoRA scale numerator: s = alpha / r = 2
    dropout: float = 0.1                # dropout on the adapters' input (and before the head)
    targets: tuple = ("query", "value") # the LoRA paper's choice: W_q and W_v of every layer
    lr: float = 2e-3                    # peak learning rate (LoRA; other modes want others, see LRS)
    batch_size: int = 32                # sentences per step
    steps: int = 150                    # optimizer steps (4,800 sentences: 0.6 of an epoch)
    warmup: int = 15                    # linear warmup steps, then linear decay to 0
    max_length: int = 64                # tokens per sentence (the longest one has 72; 95 % <= 46)
    weight_decay: float = 0.0           # none: the adapters are small and start at zero
    seed: int = 0                       # initialisation of A and the head, and the batch order


# The learning rate each mode trains well with here (full fine-tuning moves 22.7M pretrained weights:
# a LoRA-sized step would wreck them; a frozen backbone needs a large step to move the head alone).
LRS = {"probe": 1e-2, "lora": 2e-3, "qlora": 2e-3, "full": 5e-5}


class SentimentClassifier(nn.Module):
    """encoder (a HuggingFace BertModel) -> mean over real tokens -> dropout -> Linear(hidden, 2)."""

    def __init__(self, encoder: nn.Module, n_classes: int = 2, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, n_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids and 0/1 mask -> (B, n_classes) logits."""
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, C)
        mask = attention_mask.unsqueeze(-1).to(h.dtype)                                        # (B, T, 1)
        pooled = (h * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)                        # (B, C)
        return self.head(self.dropout(pooled))


def build_classifier(cfg: FinetuneConfig = FinetuneConfig()):
    """(model, tokenizer): pretrained MiniLM, prepared for cfg.mode, with a fresh trainable head."""
    from transformers import AutoModel, AutoTokenizer
    from engine.shared.models import minilm_path

    torch.manual_seed(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    encoder = AutoModel.from_pretrained(minilm_path())
    if cfg.mode == "qlora":
        quantize_linears(encoder)                          # every encoder Linear -> frozen NF4
    if cfg.mode in ("lora", "qlora"):
        inject_lora(encoder, cfg.targets, r=cfg.r, alpha=cfg.alpha, dropout=cfg.dropout)
    elif cfg.mode == "probe":
        encoder.requires_grad_(False)
    elif cfg.mode != "full":
        raise ValueError(f"FinetuneConfig.mode must be lora, qlora, probe or full, got {cfg.mode!r}")
    model = SentimentClassifier(encoder, dropout=cfg.dropout)      # the head: new, trainable
    return model, tokenizer


def encode(tokenizer, texts, max_length: int = 64) -> dict[str, torch.Tensor]:
    """{"input_ids": (B, T), "attention_mask": (B, T)}, padded to the longest text in the batch."""
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def lr_at(step: int, cfg: FinetuneConfig) -> float:
    """Linear warmup to cfg.lr over cfg.warmup steps, then linear decay to 0 at cfg.steps."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    return cfg.lr * max(0.0, (cfg.steps - step) / max(1, cfg.steps - cfg.warmup))


def train_classifier(model: nn.Module, tokenizer, train_split, cfg: FinetuneConfig = FinetuneConfig(),
                     on_step=None) -> list[float]:
    """AdamW on the trainable parameters only, cross-entropy, cfg.steps batches drawn without
    replacement (a new permutation each epoch). on_step(step, loss, acc, lr, seconds, tokens) after each
    step (acc: the batch's accuracy; tokens: real, unpadded tokens in the batch).
    Returns the losses."""
    import time
    texts, labels = list(train_split["text"]), torch.tensor(train_split["label"])
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    g = torch.Generator().manual_seed(cfg.seed)
    order, pos, losses = torch.randperm(len(texts), generator=g), 0, []
    model.train()
    for step in range(cfg.steps):
        t0 = time.perf_counter()
        if pos + cfg.batch_size > len(order):
            order, pos = torch.randperm(len(texts), generator=g), 0
        idx = order[pos:pos + cfg.batch_size]
        pos += cfg.batch_size
        batch = encode(tokenizer, [texts[i] for i in idx], cfg.max_length)
        logits = model(**batch)
        loss = F.cross_entropy(logits, labels[idx])
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if on_step is not None:
            acc = (logits.argmax(-1) == labels[idx]).float().mean().item()
            tokens = int(batch["attention_mask"].sum())
            on_step(step, losses[-1], acc, lr_at(step, cfg), time.perf_counter() - t0, tokens)
    model.eval()
    return losses


@torch.no_grad()
def accuracy(model: nn.Module, tokenizer, split, batch_size: int = 128, max_length: int = 64) -> float:
    """Fraction of `split` (a Dataset with text and label) whose argmax logit is the label (eval mode)."""
    was_training = model.training
    model.eval()
    texts, labels = list(split["text"]), torch.tensor(split["label"])
    correct = 0
    for i in range(0, len(texts), batch_size):
        logits = model(**encode(tokenizer, texts[i:i + batch_size], max_length))
        correct += int((logits.argmax(-1) == labels[i:i + batch_size]).sum())
    model.train(was_training)
    return correct / len(texts)


def run(cfg: FinetuneConfig = FinetuneConfig(), split: str = "validation", on_step=None) -> dict:
    """Build, train and evaluate one mode; returns figures for the brief's table."""
    import time
    from engine.shared.corpora import movie_reviews
    from .inject import count_parameters

    data = movie_reviews()
    model, tok = build_classifier(cfg)
    trainable, total = count_parameters(model)
    t0 = time.perf_counter()
    losses = train_classifier(model, tok, data["train"], cfg, on_step=on_step)
    seconds = time.perf_counter() - t0
    return {"mode": cfg.mode, "trainable": trainable, "total": total, "steps": cfg.steps,
            "train_seconds": round(seconds, 1), "final_loss": sum(losses[-20:]) / len(losses[-20:]),
            "accuracy": accuracy(model, tok, data[split])}


if __name__ == "__main__":
    import argparse
    import dataclasses

    p = argparse.ArgumentParser(description="Fine-tune MiniLM on the movie-review sentences.")
    p.add_argument("--mode", default="lora", choices=["lora", "qlora", "probe", "full"])
    p.add_argument("--steps", type=int, default=FinetuneConfig.steps)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--split", default="validation")
    a = p.parse_args()
    cfg = dataclasses.replace(FinetuneConfig(), mode=a.mode, steps=a.steps, lr=a.lr or LRS[a.mode])
    print(run(cfg, a.split, on_step=lambda s, l, acc, lr, dt, tokens: s % 25 == 0 and print(
        f"step {s:4d} loss {l:.3f} acc {acc:.2f} lr {lr:.2e} {dt * 1000:.0f} ms", flush=True)))
