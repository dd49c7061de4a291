"""The training job of `llm-lab train lora`: fine-tune MiniLM with LoRA on the movie-review sentences
and stream loss, accuracy, tokens/s and memory to the Train screen.

    main(steps=300, metrics=writer)      LoRA r=8 on query/value + a head, FinetuneConfig's defaults
    python -m engine.lora.train --steps 300 --mode qlora

Every step writes loss, the batch's accuracy, lr and tokens (the writer derives tokens/s); every
EVAL_EVERY steps and at the end, the accuracy on the first 300 validation sentences (as an eval
record: val_loss is the validation cross-entropy, val_acc the accuracy). The adapter (and head) is
saved next to the metrics file as adapter.pt, a few hundred KB.

With `--model smollm2` (`llm-lab train lora --model smollm2 [--mode qlora]`) the same LoRA and
QLoRA code tunes SmolLM2-135M-Instruct on question/answer pairs instead (engine/shared/lora_chat.py,
with your inject_lora, quantize_linears, count_parameters and save_adapter), and the screen
shows its answers before and after.

Not handled: resuming a stopped run.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch
import torch.nn.functional as F

EVAL_EVERY = 100
EVAL_SENTENCES = 300


def _validate(model, tok, split, max_length: int) -> tuple[float, float]:
    """(cross-entropy, accuracy) on `split`, in eval mode, then back to train mode."""
    from .finetune import encode
    model.eval()
    texts, labels = list(split["text"]), torch.tensor(split["label"])
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(texts), 100):
            logits = model(**encode(tok, texts[i:i + 100], max_length))
            loss_sum += float(F.cross_entropy(logits, labels[i:i + 100], reduction="sum"))
            correct += int((logits.argmax(-1) == labels[i:i + 100]).sum())
    model.train()
    return loss_sum / len(texts), correct / len(texts)


def flops_per_token(model, mode: str, seq_len: int, trainable: int) -> float:
    """Training FLOPs per token of the classifier, counted for what a LoRA step really does.

    forward: 2 FLOPs per weight of every encoder matmul (N_mm) + attention's q·kᵀ and weights·v
    (4·L·C·T); backward to the inputs: twice the forward (the gradient has to reach the lowest
    adapter); backward to the weights: only for what trains (2 per trainable weight, all of N_mm in
    full fine-tuning). A probe never backpropagates into the encoder. Embeddings are lookups, not
    matmuls: they count nothing (6·N with N = all parameters would overstate a LoRA step by ~3x).
    """
    from engine.shared.perf import matmul_weights
    n_mm = matmul_weights(model.encoder)
    c = model.encoder.config
    attn = 4 * c.num_hidden_layers * c.hidden_size * seq_len
    forward = 2 * n_mm + attn
    if mode == "probe":
        return float(forward)
    weights = 2 * n_mm if mode == "full" else 2 * trainable
    return float(forward + 2 * forward + weights)


def main(steps: int | None = None, metrics=None, *, mode: str = "lora", model: str = "minilm",
         out_dir: str | None = None) -> dict:
    """Fine-tune and stream metrics; returns {"val_acc": ..., "val_loss": ..., "adapter_bytes": ...}
    (model "smollm2": lora_chat.tune's {"before": ..., "after": ..., "adapter_bytes": ...})."""
    if model == "smollm2":
        from engine.shared.lora_chat import tune
        from .adapter import save_adapter
        from .inject import count_parameters, inject_lora
        from .qlora import quantize_linears
        return tune(steps or 150, metrics, mode=mode, out_dir=out_dir, inject_lora=inject_lora,
                    count_parameters=count_parameters, quantize_linears=quantize_linears, save_adapter=save_adapter)
    if model != "minilm":
        raise ValueError(f"model must be minilm or smollm2, got {model!r}")
    from engine.shared.corpora import movie_reviews
    from engine.shared.telemetry import MetricsWriter
    from .adapter import save_adapter
    from .finetune import LRS, FinetuneConfig, build_classifier, train_classifier
    from .inject import count_parameters

    metrics = metrics if metrics is not None else MetricsWriter(None)
    cfg = FinetuneConfig(mode=mode, lr=LRS[mode])
    if steps is not None:
        cfg = dataclasses.replace(cfg, steps=steps, warmup=min(cfg.warmup, max(1, steps // 10)))
    data = movie_reviews()
    val = data["validation"].select(range(EVAL_SENTENCES))
    model, tok = build_classifier(cfg)
    trainable, total = count_parameters(model)
    cfg_enc = model.encoder.config
    metrics.start(n_params=total, trainable_params=trainable, trainable_pct=round(100 * trainable / total, 3),
                  n_layer=cfg_enc.num_hidden_layers, n_head=cfg_enc.num_attention_heads,
                  d_model=cfg_enc.hidden_size, block_size=cfg.max_length, device="cpu",
                  flops_per_token=flops_per_token(model, mode, cfg.max_length, trainable),
                  flops_counted="3 × forward + 2 per trained weight" if mode != "probe" else "forward only",
                  model="all-MiniLM-L6-v2", mode=mode, r=cfg.r, alpha=cfg.alpha, steps=cfg.steps)
    result = {"val_acc": float("nan"), "val_loss": float("nan"), "adapter_bytes": 0}
    t_start = time.perf_counter()

    def evaluate(step: int) -> None:
        val_loss, val_acc = _validate(model, tok, val, cfg.max_length)
        metrics.eval(step, val_loss, val_acc=val_acc)
        result.update(val_loss=val_loss, val_acc=val_acc)

    def on_step(step, loss, acc, lr, seconds, tokens):
        metrics.step(step, loss=loss, lr=lr, accuracy=acc, tokens=tokens,
                     dt_ms=seconds * 1000, elapsed_s=time.perf_counter() - t_start)
        if (step + 1) % EVAL_EVERY == 0 and step + 1 < cfg.steps:
            evaluate(step + 1)

    train_classifier(model, tok, data["train"], cfg, on_step=on_step)
    evaluate(cfg.steps)
    if out_dir is None and getattr(metrics, "path", None) is not None:
        out_dir = str(metrics.path.parent)
    if out_dir:
        result["adapter_bytes"] = save_adapter(model, Path(out_dir) / "adapter.pt")
    return result


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description="Fine-tune MiniLM on movie-review sentiment with LoRA.")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--mode", default="lora", choices=["lora", "qlora", "probe", "full"])
    p.add_argument("--model", default="minilm", choices=["minilm", "smollm2"])
    p.add_argument("--out-dir", default=None)
    a = p.parse_args()
    print(main(a.steps, mode=a.mode, model=a.model, out_dir=a.out_dir))
