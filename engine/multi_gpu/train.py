"""Train the small GPT on 2 processes with your DDP, and stream each rank's numbers (given code).

    llm-lab train multi-gpu            # the lab calls main(steps=..., metrics=...)
    python -m multi_gpu.train          # from your workspace: prints a line every 20 steps

This process starts `world` rank processes (fork on Linux: they inherit your package as imported;
spawn elsewhere), waits for them and writes the metrics. Each rank samples the SAME global batch
(one seeded generator), trains on its own half with DDP (ddp.py), and times its step and the
time spent waiting for gradients (finish_gradient_synchronization: the communication backward did
not hide). Rank 0 gathers every rank's numbers each step and sends them here; one `step` record per
step carries them:

    loss            mean of the ranks' losses (the global batch's loss)
    tokens          tokens in the global batch (the writer turns them into tok_s, in total)
    world, backend  how many ranks, gloo or nccl
    ranks           [{"rank", "loss", "tok_s", "mem_rss", "mem_alloc", "comm_ms", "step_ms", "mem_device"}, ...]
                    mem_rss: this process's resident memory (bytes); mem_alloc: CUDA allocator
                    bytes; mem_device: the GPU's used memory, as NVML counts it (both 0 on CPU);
                    comm_ms: waiting for the all-reduce; step_ms: the whole step

Not handled: several machines, resuming a run.
"""
from __future__ import annotations

import math
import os
import queue
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from .allreduce import shard_batch
from .ddp import DDP
from .model import ModelConfig, TinyGPT, num_params


def char_dataset(block_size: int, *, n_windows: int, seed: int, split: str = "train"):
    """n_windows random windows of the shipped Shakespeare, as a TensorDataset of (x, y) pairs with
    y = x shifted by one character (the 84-character vocabulary of mission gpt)."""
    from torch.utils.data import TensorDataset

    data, _ = encoded_text(split)
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(len(data) - block_size - 1, (n_windows,), generator=g)
    offsets = starts[:, None] + torch.arange(block_size)
    return TensorDataset(data[offsets], data[offsets + 1])


def encoded_text(split: str = "train") -> tuple[torch.Tensor, list[str]]:
    """The corpus as int64 character ids, and the characters (the vocabulary, sorted)."""
    from engine.shared.data import text_path

    chars = sorted(set(text_path("train").read_text(encoding="utf-8")))
    text = text_path(split).read_text(encoding="utf-8")
    index = {c: i for i, c in enumerate(chars)}
    return torch.tensor([index.get(c, 0) for c in text], dtype=torch.long), chars


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _rank(rank: int, world: int, port: int, backend: str, steps: int, batch_size: int, lr: float,
          out: "mp.Queue") -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)                  # one core per rank: two ranks share a 2-core box
    device = torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")
    if backend == "nccl":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=rank, world_size=world)
    try:
        _train_rank(rank, world, backend, device, steps, batch_size, lr, out)
    except Exception as e:                    # the parent says which rank failed, and how (a stop from
        out.put({"type": "error", "rank": rank, "kind": type(e).__name__, "message": str(e)[:500]})
        raise                                 # the lab, SIGINT to every process, is no failure)
    finally:
        dist.destroy_process_group()


def _train_rank(rank, world, backend, device, steps, batch_size, lr, out) -> None:
    """The training loop of one rank; rank 0 sends every step's numbers (all ranks') to `out`."""
    cfg = ModelConfig()
    torch.manual_seed(1000 + rank)        # different inits: DDP's broadcast must make them equal
    model = DDP(TinyGPT(cfg).to(device), bucket_cap_bytes=256 * 1024)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    data, _ = encoded_text("train")
    val, _ = encoded_text("val")
    g = torch.Generator().manual_seed(1337)               # the same batches on every rank
    T = cfg.block_size
    for step in range(steps):
        t0 = time.perf_counter()
        starts = torch.randint(len(data) - T - 1, (batch_size,), generator=g)
        offsets = starts[:, None] + torch.arange(T)
        x = shard_batch(data[offsets], rank, world).to(device)
        y = shard_batch(data[offsets + 1], rank, world).to(device)
        lr_now = lr * min(1.0, (step + 1) / 20) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for group in optimizer.param_groups:
            group["lr"] = lr_now
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t1 = time.perf_counter()
        model.finish_gradient_synchronization()
        comm = time.perf_counter() - t1
        optimizer.step()
        if backend == "nccl":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        alloc = torch.cuda.memory_allocated(device) if backend == "nccl" else 0
        free, total = torch.cuda.mem_get_info(device) if backend == "nccl" else (0, 0)
        mine = torch.tensor([loss.item(), x.numel() / dt, _rss(), alloc, comm * 1e3, dt * 1e3, total - free],
                            dtype=torch.float64, device=device)
        every = [torch.empty_like(mine) for _ in range(world)]
        dist.all_gather(every, mine)
        record = {"type": "step", "step": step, "lr": lr_now, "tokens": batch_size * T,
                  "ranks": [{"rank": r, "loss": v[0].item(), "tok_s": v[1].item(), "mem_rss": int(v[2]),
                             "mem_alloc": int(v[3]), "comm_ms": v[4].item(), "step_ms": v[5].item(),
                             "mem_device": int(v[6])}
                            for r, v in enumerate(every)]}
        if (step + 1) % 50 == 0 or step == steps - 1:
            with torch.no_grad():
                vs = torch.randint(len(val) - T - 1, (8,), generator=torch.Generator().manual_seed(step))
                vo = vs[:, None] + torch.arange(T)
                record["val_loss"] = model(val[vo].to(device), val[vo + 1].to(device))[1].item()
        if rank == 0:
            out.put(record)
    if rank == 0:
        out.put({"type": "done"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(steps: int = 300, metrics=None, *, world: int = 2, batch_size: int = 16, lr: float = 3e-3) -> dict:
    """Run `world` DDP ranks for `steps` steps; write metrics (an engine.shared.telemetry
    MetricsWriter, or None) from this process. Returns {"loss": last global loss, "val_loss": ...}."""
    if batch_size % world:
        raise ValueError(f"batch_size={batch_size} does not split over {world} ranks")
    backend = "nccl" if torch.cuda.device_count() >= world else "gloo"
    cfg = ModelConfig()
    if metrics is not None:
        metrics.start(n_params=num_params(TinyGPT(cfg)), n_layer=cfg.n_layer, n_head=cfg.n_head,
                      d_model=cfg.d_model, block_size=cfg.block_size, vocab_size=cfg.vocab_size,
                      device="cuda" if backend == "nccl" else "cpu", world=world, backend=backend)
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    out = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_rank, args=(r, world, port, backend, steps, batch_size, lr, out), daemon=True)
             for r in range(world)]
    for p in procs:
        p.start()
    last: dict = {}
    try:
        while True:
            try:
                record = out.get(timeout=1.0)
            except queue.Empty:
                dead = [r for r, p in enumerate(procs) if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"rank {dead[0]} stopped (exit code {procs[dead[0]].exitcode}); "
                                       "its error is printed above")
                if all(p.exitcode == 0 for p in procs):
                    raise RuntimeError("the ranks ended without finishing the run")
                continue
            if record["type"] == "done":
                break
            if record["type"] == "error":
                if record["kind"] == "NotImplementedError":
                    raise NotImplementedError(f"rank {record['rank']}: {record['message']}")
                raise RuntimeError(f"rank {record['rank']}: {record['kind']}: {record['message']}")
            ranks = record["ranks"]
            loss = sum(r["loss"] for r in ranks) / len(ranks)
            last = {"loss": loss, "val_loss": record.get("val_loss", last.get("val_loss"))}
            if metrics is not None:
                # tok_s from the ranks' own clocks (records reach this process in bursts)
                metrics.step(record["step"], loss=loss, lr=record["lr"], tokens=record["tokens"],
                             tok_s=record["tokens"] / (max(r["step_ms"] for r in ranks) / 1e3),
                             world=world, backend=backend, ranks=ranks,
                             comm_ms=max(r["comm_ms"] for r in ranks))
                if "val_loss" in record:
                    metrics.eval(record["step"], record["val_loss"])
            elif record["step"] % 20 == 0 or "val_loss" in record:
                print(f"step {record['step']:4d}  loss {loss:.3f}  " + "  ".join(
                    f"rank {r['rank']}: {r['tok_s']:.0f} tok/s, comm {r['comm_ms']:.1f} ms" for r in ranks)
                    + (f"  val {record['val_loss']:.3f}" if "val_loss" in record else ""), flush=True)
        for p in procs:
            p.join(timeout=30)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)
    return last


if __name__ == "__main__":
    main()
