"""The same training loop, written once for Hugging Face Accelerate (brief, section 8).

    accelerate launch --multi_gpu --num_processes 2 -m multi_gpu.accel_train

Accelerate reads the launcher's environment (RANK, WORLD_SIZE, ...), initialises the process group,
wraps the model in torch's DistributedDataParallel, gives each process its own share of every
batch, and (with mixed_precision="fp16") runs forward in half precision and scales the loss:
    accelerator = Accelerator(...)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    ... accelerator.backward(loss) instead of loss.backward() ...

On a machine without GPUs: `accelerate launch --cpu --num_processes 2` starts ONE process, and
`--multi_gpu` with a plain Accelerator() starts two processes that each believe they are alone
(both rank 0, no gradient sync). What works: `--multi_gpu` AND Accelerator(cpu=True), which makes
Accelerate use the gloo backend over CPU processes. Hence cpu=not torch.cuda.is_available().

Not handled: gradient accumulation through accelerator.accumulate, checkpointing with
accelerator.save_state, DeepSpeed/FSDP plugins.
"""
from __future__ import annotations

import os

import torch
from torch.utils.data import DataLoader, Dataset


def train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, dataset: Dataset, *,
          batch_size: int, mixed_precision: str = "no") -> torch.nn.Module:
    """One pass over `dataset` (in order, no shuffling), each process taking batch_size examples per
    step; model(x, y) returns (logits, loss). Returns the trained model, unwrapped."""
    raise NotImplementedError("train: see brief.md, section 8 (Accelerate)")


def main(steps: int = 50) -> None:
    """A small run on the shipped Shakespeare: `accelerate launch --multi_gpu --num_processes 2
    -m multi_gpu.accel_train` (add `--mixed_precision fp16` on GPUs)."""
    from .model import ModelConfig, TinyGPT
    from .train import char_dataset

    cfg = ModelConfig()
    torch.manual_seed(0)
    model = TinyGPT(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    dataset = char_dataset(cfg.block_size, n_windows=steps * 16, seed=0)
    model = train(model, optimizer, dataset, batch_size=8)
    if int(os.environ.get("RANK", "0")) == 0:
        x, y = dataset[0]
        print(f"trained {steps} steps; loss on the first window {model(x[None], y[None])[1].item():.3f}")


if __name__ == "__main__":
    main()
