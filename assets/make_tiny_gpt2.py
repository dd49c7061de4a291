"""Build assets/models/tiny-gpt2: a small GPT-2 in Hugging Face format, pretrained here on Shakespeare.

Run once, by hand (about 10 minutes on one CPU core); the outputs are committed.

    python assets/make_tiny_gpt2.py                  # tokenizer, training, evaluation, files, README numbers
    python assets/make_tiny_gpt2.py --steps 20       # a quick trial into /tmp (the assets are left alone)

What it does, in order:
  1. Trains a byte-level BPE vocabulary of 1,024 ids (256 bytes + 767 merges + <|endoftext|>) on
     assets/shakespeare/train.txt with the project's own BPE reference (engine.bpe.trainer).
  2. Writes those merges as a Hugging Face `tokenizers` byte-level BPE (tokenizer.json, loadable with
     AutoTokenizer / PreTrainedTokenizerFast) and checks that it gives exactly engine.bpe's ids on the
     whole validation text.
  3. Builds transformers.GPT2LMHeadModel (GPT-2's own code: Conv1D layers, learned positions,
     LayerNorm, tied embeddings) with the config below and trains it with the engine's loop
     (engine.gpt.train: random windows, AdamW, warmup + cosine, clipping) on the training text.
  4. Measures the validation loss on assets/shakespeare/val.txt (unseen plays) and saves everything
     with save_pretrained, plus eval.json with the numbers tests/test_assets.py checks.
Deterministic on one machine for a fixed seed and thread count; other machines may differ in the
last digits (float summation order), not in the recipe.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
OUT = HERE / "models" / "tiny-gpt2"
EOT = "<|endoftext|>"

VOCAB_SIZE = 1024        # 256 bytes + 767 merges + <|endoftext|>; small: the logits are half the work on a CPU
MODEL = dict(            # GPT2Config fields
    n_positions=256,     # context length (tokens); training windows use all of it
    n_embd=128,          # width d_model
    n_layer=4,           # transformer blocks
    n_head=4,            # attention heads (head size 32)
    activation_function="gelu_new",   # GPT-2's tanh-approximated GELU
    resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,   # no dropout: the model sees the text about once
)
TRAIN = dict(
    steps=600,           # optimizer steps (~2.5M tokens: about 1.2 passes over the training text)
    batch_size=16,       # windows per step: 16 x 256 = 4,096 tokens per step
    lr=2e-3,             # peak learning rate (small models tolerate a large one)
    min_lr=2e-4,         # cosine floor = lr / 10
    warmup_steps=50,     # linear warmup
    weight_decay=0.1,    # on the Conv1D weight matrices only
    beta1=0.9, beta2=0.99,
    grad_clip=1.0,
    seed=1337,
)
EVAL_WINDOWS_QUICK = 32  # the first 32 validation windows: what the test suite re-measures (fast)


# -- tokenizer ------------------------------------------------------------------------------------
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table: bytes that are printable Latin-1
    characters stand for themselves, the other 68 (control codes, space, ...) borrow the characters
    from U+0100 upward in byte order. tokenizers' ByteLevel pre-tokenizer uses the same table."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def train_tokenizer(text: str):
    from engine.bpe.tokenizer import Tokenizer
    from engine.bpe.trainer import train_bpe
    vocab, merges = train_bpe(text, VOCAB_SIZE, [EOT])
    return Tokenizer(vocab, merges, [EOT])


def to_hf_tokenizer(tok):
    """engine.bpe's vocab and merges as a transformers PreTrainedTokenizerFast (byte-level BPE)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    b2u = byte_to_unicode()
    spell = lambda bs: "".join(b2u[b] for b in bs)                       # noqa: E731
    eot_id = tok.special_ids[EOT]
    vocab = {spell(bs): i for i, bs in tok.vocab.items() if i != eot_id} | {EOT: eot_id}
    merges = [(spell(a), spell(b)) for a, b in tok.merges]
    core = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    core.post_processor = processors.ByteLevel(trim_offsets=False)
    core.add_special_tokens([AddedToken(EOT, special=True, normalized=False)])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token=EOT, eos_token=EOT, unk_token=EOT,
                                   model_max_length=MODEL["n_positions"], clean_up_tokenization_spaces=False)


# -- model and training ---------------------------------------------------------------------------
class LossWrapper(nn.Module):
    """What engine.gpt.train expects: model(x, y) -> (logits, mean cross-entropy), model.cfg.block_size."""

    def __init__(self, hf_model):
        super().__init__()
        self.hf = hf_model
        self.cfg = SimpleNamespace(block_size=hf_model.config.n_positions)

    def forward(self, x, y):
        logits = self.hf(input_ids=x).logits                                   # (B, T, V)
        return logits, F.cross_entropy(logits.flatten(0, 1), y.flatten())


def optimizer_for(model, cfg) -> torch.optim.AdamW:
    """AdamW; weight decay on the Conv1D weight matrices only (GPT-2's Conv1D is not nn.Linear, so
    engine.gpt.train.decay_groups would not find them): never on embeddings, biases or LayerNorm."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        is_matrix = p.dim() == 2 and not name.endswith(("wte.weight", "wpe.weight"))
        (decay if is_matrix else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


@torch.no_grad()
def validation_loss(hf_model, ids: torch.Tensor, n_windows: int | None = None, batch: int = 16) -> tuple[float, int]:
    """Mean next-token cross-entropy (nats) over consecutive, non-overlapping windows of n_positions+1
    tokens (the first n_windows of them, or all): every token after a window's first is predicted once.
    Returns (loss, tokens predicted)."""
    T = hf_model.config.n_positions
    n = (len(ids) - 1) // T if n_windows is None else n_windows
    windows = torch.stack([ids[i * T: i * T + T + 1] for i in range(n)])       # (n, T+1)
    hf_model.eval()
    total = 0.0
    for k in range(0, n, batch):
        chunk = windows[k:k + batch]
        logits = hf_model(input_ids=chunk[:, :-1]).logits
        total += F.cross_entropy(logits.flatten(0, 1), chunk[:, 1:].flatten(), reduction="sum").item()
    return total / (n * T), n * T


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=TRAIN["steps"])
    ap.add_argument("--out", default=None, help="output folder (default assets/models/tiny-gpt2; "
                    "a trial with --steps different from the recipe goes to /tmp/tiny-gpt2-trial)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: on a shared 2-core box, 2 threads ran 4x slower)")
    args = ap.parse_args()
    out = Path(args.out) if args.out else (OUT if args.steps == TRAIN["steps"] else Path("/tmp/tiny-gpt2-trial"))
    torch.set_num_threads(args.threads)

    from transformers import GPT2Config, GPT2LMHeadModel

    from engine.gpt.train import TrainConfig, get_lr, train
    from engine.shared.data import load_text

    t0 = time.perf_counter()
    text_train, text_val = load_text("train"), load_text("val")
    tok = train_tokenizer(text_train)
    hf_tok = to_hf_tokenizer(tok)
    val_ids = tok.encode(text_val)
    if hf_tok.backend_tokenizer.encode(text_val).ids != val_ids:
        raise SystemExit("the tokenizers version of the merges disagrees with engine.bpe on val.txt")
    probe = "First Citizen:\nBefore we proceed" + EOT + "any further, hear me speak. caf\u00e9 \u2014 \U0001F600"
    assert hf_tok(probe)["input_ids"] == tok.encode(probe), "tokenizer mismatch on the probe text"
    train_ids = torch.tensor(hf_tok.backend_tokenizer.encode(text_train).ids, dtype=torch.long)
    val_t = torch.tensor(val_ids, dtype=torch.long)
    print(f"tokenizer: {len(tok.vocab)} ids; train {len(train_ids):,} tokens, val {len(val_t):,} tokens "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)

    cfg = TrainConfig(**{**TRAIN, "steps": args.steps, "warmup_steps": min(TRAIN["warmup_steps"], max(1, args.steps // 10))},
                      eval_every=10**9)
    eot_id = tok.special_ids[EOT]
    config = GPT2Config(vocab_size=len(tok.vocab), bos_token_id=eot_id, eos_token_id=eot_id, **MODEL)
    torch.manual_seed(cfg.seed)
    hf_model = GPT2LMHeadModel(config)
    model = LossWrapper(hf_model)
    optimizer = optimizer_for(hf_model, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    n_params = sum(p.numel() for p in hf_model.parameters())
    print(f"model: {n_params:,} parameters; {cfg.steps} steps of {cfg.batch_size * config.n_positions} tokens",
          flush=True)
    t1, log = time.perf_counter(), []

    def on_step(step, loss):
        log.append(loss)
        if (step + 1) % 100 == 0 or step + 1 == cfg.steps:
            recent = sum(log[-100:]) / len(log[-100:])
            print(f"step {step + 1:5d}  train loss {recent:.4f}  lr {get_lr(step, cfg):.2e}  "
                  f"{time.perf_counter() - t1:.0f} s", flush=True)

    train(model, optimizer, train_ids, cfg, generator=gen, on_step=on_step)
    train_s = time.perf_counter() - t1

    val_loss, val_tokens = validation_loss(hf_model, val_t)
    quick_loss, quick_tokens = validation_loss(hf_model, val_t, EVAL_WINDOWS_QUICK)
    print(f"validation loss {val_loss:.4f} nats/token over {val_tokens:,} tokens "
          f"(first {EVAL_WINDOWS_QUICK} windows: {quick_loss:.4f}); training took {train_s:.0f} s", flush=True)

    out.mkdir(parents=True, exist_ok=True)
    hf_model.generation_config.pad_token_id = eot_id
    hf_model.save_pretrained(out, safe_serialization=True)
    hf_tok.save_pretrained(out)
    tok_cfg = json.loads((out / "tokenizer_config.json").read_text())
    tok_cfg["tokenizer_class"] = "PreTrainedTokenizerFast"     # the portable name (v4 and v5)
    (out / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2) + "\n")
    for f in out.iterdir():
        f.chmod(0o644)
    from transformers import AutoTokenizer
    if AutoTokenizer.from_pretrained(out)(text_val[:20000])["input_ids"] != tok.encode(text_val[:20000]):
        raise SystemExit("the saved tokenizer, reloaded with AutoTokenizer, disagrees with engine.bpe")
    torch.manual_seed(0)
    prompt = hf_tok("ROMEO:\n", return_tensors="pt")
    sample = hf_model.generate(**prompt, max_new_tokens=80, do_sample=True, top_k=50, temperature=0.8,
                               pad_token_id=eot_id)
    sample_text = hf_tok.decode(sample[0])
    print("sample:\n" + sample_text, flush=True)
    record = {
        "val_loss": round(val_loss, 6), "val_tokens": val_tokens,
        "val_loss_first_windows": round(quick_loss, 6), "first_windows": EVAL_WINDOWS_QUICK,
        "val_perplexity": round(math.exp(val_loss), 3),
        "train_loss_last_100_steps": round(sum(log[-100:]) / len(log[-100:]), 6),
        "steps": cfg.steps, "tokens_seen": cfg.steps * cfg.batch_size * config.n_positions,
        "train_tokens": len(train_ids), "parameters": n_params, "train_seconds": round(train_s),
        "threads": args.threads, "torch": torch.__version__, "seed": cfg.seed,
        "model": MODEL, "train": {**TRAIN, "steps": cfg.steps}, "vocab_size": len(tok.vocab),
        "sample_prompt": "ROMEO:\n", "sample": sample_text,
    }
    (out / "eval.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}", flush=True)


if __name__ == "__main__":
    main()
