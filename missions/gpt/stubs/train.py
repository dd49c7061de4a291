"""Training the GPT: batches, AdamW with decay groups, warmup + cosine schedule, clipping, checkpoints
(brief.md, section 6). TrainConfig and main() are complete; write the functions that raise.

    llm-lab train gpt                                  # runs main() below, with the Train screen
    python -m gpt.train --steps 2000                   # the same from your workspace folder
    python -m gpt.train --tokenizer bpe                # your bpe mission's tokenizer instead of chars

`main(steps=..., metrics=...)` is what `llm-lab train gpt` calls; it writes the metrics stream
(engine.shared.telemetry) that the Train screen draws.
"""
from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn as nn

from .config import GPTConfig
from .flops import model_flops_per_token
from .model import GPT
from .sample import generate
from .tokenizer import encode_corpus, make_tokenizer, vocab_size_of


@dataclass
class TrainConfig:
    steps: int = 2000            # optimizer steps in the whole run (the cosine ends here)
    batch_size: int = 12         # sequences per step (B); tokens per step = B · block_size
    lr: float = 1e-3             # peak learning rate, reached at the end of warmup
    min_lr: float = 1e-4         # the floor the cosine decays to (lr / 10 is the usual choice)
    warmup_steps: int = 100      # linear ramp from ~0 to lr; Adam's early steps are noisy
    weight_decay: float = 0.1    # AdamW decay, applied to Linear weight matrices only
    beta1: float = 0.9           # Adam's momentum on the gradient
    beta2: float = 0.99          # Adam's momentum on the squared gradient (0.99: small batches)
    grad_clip: float = 1.0       # rescale the whole gradient if its norm exceeds this (0 = off)
    eval_every: int = 250        # steps between validation estimates
    eval_batches: int = 20       # batches averaged per validation estimate
    seed: int = 1337             # model init and batch sampling


# -- data -----------------------------------------------------------------------------------------
def get_batch(data: torch.Tensor, batch_size: int, block_size: int,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """B random windows of the token stream: x = data[i : i+T], y = data[i+1 : i+T+1] (each (B, T)).

    y is x shifted left by one: at every position the target is the token that comes next.
    """
    raise NotImplementedError("get_batch: see brief.md, section 6.1 (Batches)")


# -- optimisation ---------------------------------------------------------------------------------
def get_lr(step: int, cfg: TrainConfig) -> float:
    """Learning rate at `step` (0-based): linear warmup, then a cosine from lr down to min_lr.

        step < warmup:            lr · (step + 1) / warmup
        warmup <= step <= steps:  min_lr + (lr - min_lr) · ½(1 + cos(π · (step - warmup) / (steps - warmup)))
        step > steps:             min_lr
    """
    raise NotImplementedError("get_lr: see brief.md, section 6.3 (The schedule)")


def decay_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(decay, no_decay): weight matrices of nn.Linear layers decay; nothing else does.

    Biases and norm gains are scales and offsets, and pulling them to 0 only hurts. Embedding rows
    are looked up, not multiplied: most rows get no gradient in a step, and decay would shrink rare
    tokens towards zero. The tied lm_head weight *is* the token embedding, so it does not decay.
    """
    raise NotImplementedError("decay_groups: see brief.md, section 6.2 (AdamW)")


def configure_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with two parameter groups (weight_decay on the first, 0 on the second)."""
    raise NotImplementedError("configure_optimizer: see brief.md, section 6.2 (AdamW)")


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               lr: float, grad_clip: float) -> float:
    """One update: set every group's lr, forward, zero_grad, backward, clip the global gradient norm
    to grad_clip (only when grad_clip > 0; BEFORE optimizer.step()), step. Returns the loss (a float)."""
    raise NotImplementedError("train_step: see brief.md, section 6.4 (One step)")


@torch.no_grad()
def estimate_loss(model: nn.Module, data: torch.Tensor, batch_size: int, block_size: int,
                  n_batches: int, generator: torch.Generator | None = None) -> float:
    """Mean of model(x, y)[1] over n_batches batches from get_batch, as a float: in eval mode (no
    dropout), no gradients; afterwards the model is back in the mode it was in."""
    raise NotImplementedError("estimate_loss: see brief.md, section 6.4 (One step)")


# -- checkpoints ----------------------------------------------------------------------------------
def save_checkpoint(path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int,
                    generator: torch.Generator | None = None) -> None:
    """Everything needed to continue exactly: weights, Adam's moments, the step (which fixes the
    learning-rate schedule: it is a pure function of the step), and the random number generators."""
    raise NotImplementedError("save_checkpoint: see brief.md, section 6.6 (Checkpoints)")


def load_checkpoint(path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    generator: torch.Generator | None = None) -> int:
    """Restore what save_checkpoint wrote (weights, optimizer state, torch's RNG state, the
    generator's state); returns the step to continue from."""
    raise NotImplementedError("load_checkpoint: see brief.md, section 6.6 (Checkpoints)")


# -- the loop -------------------------------------------------------------------------------------
def train(model: nn.Module, optimizer: torch.optim.Optimizer, train_data: torch.Tensor,
          cfg: TrainConfig, *, start_step: int = 0, stop_step: int | None = None,
          generator: torch.Generator | None = None, on_step=None) -> list[float]:
    """Run steps start_step .. stop_step-1 (default: to cfg.steps). Returns the training losses.

    Each step: a batch from get_batch(train_data, cfg.batch_size, model.cfg.block_size, generator),
    then train_step with the lr of get_lr(step, cfg). Put the model in train mode first.
    on_step(step, loss) is called after every step (logging, evaluation, checkpoints).
    """
    raise NotImplementedError("train: see brief.md, section 6.4 (One step)")


def main(steps: int | None = None, metrics=None, *, tokenizer="char", model_cfg: GPTConfig | None = None,
         train_cfg: TrainConfig | None = None, out_dir: str | None = None, resume: bool = False,
         device: str | None = None, sample_tokens: int = 200) -> dict:
    """Train on the shipped Shakespeare corpus and stream metrics.

    steps: optimizer steps (default TrainConfig.steps). metrics: an engine.shared.telemetry.MetricsWriter
    (None: write nowhere). tokenizer: "char" (default), "bpe" (the bpe mission's Tokenizer, trained
    on the corpus first) or any object with encode/decode/vocab_size. out_dir: where ckpt.pt goes
    (default: next to the metrics file; None and no metrics file: no checkpoint). resume: continue
    from out_dir/ckpt.pt. Returns {"val_loss": ..., "step": ...}.
    """
    from engine.shared.data import load_text
    from engine.shared.telemetry import MetricsWriter

    metrics = metrics if metrics is not None else MetricsWriter(None)
    tcfg = train_cfg or TrainConfig()
    if steps is not None:
        tcfg = replace(tcfg, steps=steps, warmup_steps=min(tcfg.warmup_steps, max(1, steps // 10)))
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))

    text_train, text_val = load_text("train"), load_text("val")
    tok = make_tokenizer(tokenizer, text_train)
    train_data = torch.from_numpy(encode_corpus(tok, text_train)).to(device)
    val_data = torch.from_numpy(encode_corpus(tok, text_val)).to(device)
    # fused=True: the engine may use torch's fused kernels (attention, LayerNorm, one qkv matmul)
    mcfg = replace(model_cfg or GPTConfig(), vocab_size=vocab_size_of(tok))

    torch.manual_seed(tcfg.seed)
    model = GPT(mcfg).to(device)
    optimizer = configure_optimizer(model, tcfg)
    gen = torch.Generator().manual_seed(tcfg.seed)      # batches: drawn on the CPU, any device
    eval_gen_seed = tcfg.seed + 1                       # the same val batches at every evaluation
    if out_dir is None and getattr(metrics, "path", None) is not None:
        out_dir = str(metrics.path.parent)
    ckpt = Path(out_dir) / "ckpt.pt" if out_dir else None
    start = load_checkpoint(ckpt, model, optimizer, gen) if resume and ckpt and ckpt.exists() else 0

    # The writer derives the rest: tok/s from the wall time between steps (evaluation excluded),
    # MFU from flops_per_token and the device's peak, and the GPU allocator's memory.
    metrics.start(n_params=model.num_params(), n_layer=mcfg.n_layer, n_head=mcfg.n_head,
                  d_model=mcfg.d_model, head_dim=mcfg.head_dim, block_size=mcfg.block_size,
                  flops_per_token=model_flops_per_token(model), device=str(device),
                  tokenizer=str(tokenizer), vocab_size=mcfg.vocab_size,
                  start_step=start, steps=tcfg.steps)
    tokens_per_step = tcfg.batch_size * mcfg.block_size
    result = {"val_loss": float("nan"), "step": start}

    def evaluate(step: int) -> None:
        g = torch.Generator().manual_seed(eval_gen_seed)
        val = estimate_loss(model, val_data, tcfg.batch_size, mcfg.block_size, tcfg.eval_batches, g)
        metrics.eval(step, val)
        result.update(val_loss=val, step=step)
        prompt = torch.tensor([tok.encode("\n")], dtype=torch.long, device=device)
        g_sample = torch.Generator(device=device).manual_seed(step)
        out = generate(model, prompt, sample_tokens, temperature=0.8, generator=g_sample)
        metrics.sample(step, tok.decode(out[0, 1:].tolist()))
        model.train()
        if ckpt is not None:
            save_checkpoint(ckpt, model, optimizer, step, gen)      # step = the next step to run

    def on_step(step: int, loss: float) -> None:
        metrics.step(step, loss, lr=get_lr(step, tcfg), tokens=tokens_per_step)
        if (step + 1) % tcfg.eval_every == 0 or step + 1 == tcfg.steps:
            evaluate(step + 1)

    train(model, optimizer, train_data, tcfg, start_step=start, generator=gen, on_step=on_step)
    metrics.end("done", f"val loss {result['val_loss']:.4f} after {result['step']} steps")
    return result


def _cli() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--tokenizer", default="char", choices=["char", "bpe"])
    p.add_argument("--metrics", default=None, help="metrics.jsonl path (default: $LLM_LAB_METRICS)")
    p.add_argument("--out-dir", default=None)
    p.add_argument("--resume", action="store_true")
    args = p.parse_args()
    from engine.shared.perf import peak_flops
    from engine.shared.telemetry import METRICS_ENV, MetricsWriter
    path = args.metrics or os.environ.get(METRICS_ENV)
    impl = "reference" if (__package__ or "").startswith("engine.") else "mine"
    writer = MetricsWriter(path, mission="gpt", impl=impl, peak_flops=peak_flops if path else None)
    result = main(args.steps, writer, tokenizer=args.tokenizer, out_dir=args.out_dir, resume=args.resume)
    print(f"val loss {result['val_loss']:.4f} at step {result['step']}")


if __name__ == "__main__":
    _cli()
