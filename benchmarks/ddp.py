"""Data-parallel training throughput on this machine: 1 rank against 2, and what buckets and overlap buy.

    python benchmarks/ddp.py                  # ~2 minutes on a 2-core CPU
    python benchmarks/ddp.py --steps 10 --rounds 3 --layers 4 --width 128

Every variant trains the mission's small GPT (engine.multi_gpu.model, bigger than the checks' one:
4 layers, width 128, block 64) on the same global batch of 16 sequences, with plain SGD, and reports
tokens/s of the whole job (global batch tokens / median step time):

    1 process, 2 threads   the whole machine in one process (torch's intra-op threads)
    1 process, 1 thread    one core: what each rank gets below
    (both run by rank 0 inside the same rotation while rank 1 waits, so all rows share the load)
    2 ranks: per-parameter all-reduce after backward (allreduce.average_gradients: no buckets,
             no overlap)
    2 ranks: engine DDP, buckets, no overlap (every bucket sent from finish_gradient_synchronization)
    2 ranks: engine DDP, one bucket per parameter, overlap
    2 ranks: engine DDP, 256 KB buckets, overlap (the learner's DDP of checkpoint ddp)
    2 ranks: torch DistributedDataParallel, 256 KB buckets
and the ratio of the learner-style DDP to torch's (>= 1: not slower). The ranks are 2 processes
(torch.multiprocessing, gloo, one thread each) that run all the 2-rank variants in rotating rounds,
each timed by its median step, so a busy machine slows them alike.

Measured on the 2-core development VM (torch 2.13 CPU, shared with other jobs): see the table in
the commit that last changed this file, or run it.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.multi_gpu.allreduce import average_gradients  # noqa: E402
from engine.multi_gpu.ddp import DDP  # noqa: E402
from engine.multi_gpu.model import ModelConfig, TinyGPT, num_params  # noqa: E402

BATCH = 16


class NoOverlapDDP(DDP):
    """The same buckets, but nothing is sent until finish_gradient_synchronization()."""

    def _grad_ready(self, p):
        pass


def _batches(cfg: ModelConfig, n: int):
    g = torch.Generator().manual_seed(0)
    return [(torch.randint(cfg.vocab_size, (BATCH, cfg.block_size), generator=g),
             torch.randint(cfg.vocab_size, (BATCH, cfg.block_size), generator=g)) for _ in range(n)]


def _step(model, x, y, lr, sync=None, finish=None):
    model.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    if sync is not None:
        sync()
    if finish is not None:
        finish()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.sub_(p.grad, alpha=lr)


def _time(fn, batches) -> list[float]:
    times = []
    for x, y in batches:
        t0 = time.perf_counter()
        fn(x, y)
        times.append(time.perf_counter() - t0)
    return times


def _rank(rank: int, world: int, port: int, cfg: ModelConfig, steps: int, rounds: int, out) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    per = BATCH // world
    whole = _batches(cfg, steps)
    batches = [(x[rank * per:(rank + 1) * per], y[rank * per:(rank + 1) * per]) for x, y in whole]

    def make(kind):
        torch.manual_seed(0)
        model = TinyGPT(cfg)
        if kind.startswith("1 process"):        # rank 0 alone on the whole batch; rank 1 waits
            threads = 2 if "2 threads" in kind else 1

            def alone(x, y):
                torch.set_num_threads(threads)
                try:
                    _step(model, *whole[alone.i % len(whole)], 1e-3)
                finally:
                    torch.set_num_threads(1)
                alone.i += 1
            alone.i = 0
            return alone if rank == 0 else (lambda x, y: None)
        if kind == "average_gradients":
            return lambda x, y: _step(model, x, y, 1e-3, sync=lambda: average_gradients(model))
        if kind == "torch DDP":
            wrapped = torch.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.25)
            return lambda x, y: _step(wrapped, x, y, 1e-3)
        cls, cap = {"DDP, buckets, no overlap": (NoOverlapDDP, 256 * 1024),
                    "DDP, a bucket per parameter": (DDP, 1),
                    "DDP, 256 KB buckets": (DDP, 256 * 1024)}[kind]
        ddp = cls(model, bucket_cap_bytes=cap)
        return lambda x, y: _step(ddp, x, y, 1e-3, finish=ddp.finish_gradient_synchronization)

    kinds = ["1 process, 2 threads", "1 process, 1 thread", "average_gradients", "DDP, buckets, no overlap",
             "DDP, a bucket per parameter", "DDP, 256 KB buckets", "torch DDP"]
    steps_of = {k: make(k) for k in kinds}
    for k in kinds:
        _time(steps_of[k], batches[:2])                                   # warm-up
    times = {k: [] for k in kinds}
    for r in range(rounds):
        for k in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:        # rotate the order each round
            dist.barrier()
            times[k] += _time(steps_of[k], batches)
    if rank == 0:
        out.put({k: BATCH * cfg.block_size / statistics.median(v) for k, v in times.items()})
    dist.destroy_process_group()


def two_ranks(cfg: ModelConfig, steps: int, rounds: int) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_rank, args=(r, 2, port, cfg, steps, rounds, out)) for r in range(2)]
    for p in procs:
        p.start()
    result = out.get(timeout=1800)
    for p in procs:
        p.join(timeout=60)
    return result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8, help="timed steps per variant per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--width", type=int, default=128)
    args = ap.parse_args(argv)
    cfg = ModelConfig(n_layer=args.layers, n_head=4, d_model=args.width)
    n = num_params(TinyGPT(cfg))
    print(f"model: {args.layers} layers, width {args.width}, block {cfg.block_size}, {n / 1e6:.2f}M parameters "
          f"({4 * n / 2**20:.1f} MiB of fp32 gradients per step); global batch {BATCH} x {cfg.block_size} tokens; "
          f"{os.cpu_count()} CPU cores", flush=True)
    ranks = two_ranks(cfg, args.steps, args.rounds)
    labels = {"1 process, 2 threads": "1 process, 2 threads (the whole machine)",
              "1 process, 1 thread": "1 process, 1 thread (one core, as each rank gets)",
              "average_gradients": "2 ranks: per-parameter all-reduce after backward",
              "DDP, buckets, no overlap": "2 ranks: DDP, 256 KB buckets, no overlap",
              "DDP, a bucket per parameter": "2 ranks: DDP, a bucket per parameter, overlap",
              "DDP, 256 KB buckets": "2 ranks: DDP, 256 KB buckets, overlap (learner-style)",
              "torch DDP": "2 ranks: torch DistributedDataParallel, 256 KB buckets"}
    rows = [(labels[k], v) for k, v in ranks.items()]
    base = ranks["1 process, 1 thread"]
    print("\n| variant | tokens/s | vs 1 process, 1 thread |\n|---|---:|---:|")
    for name, tok_s in rows:
        print(f"| {name} | {tok_s:,.0f} | {tok_s / base:.2f} |")
    print(f"\nlearner-style DDP / torch DDP: {ranks['DDP, 256 KB buckets'] / ranks['torch DDP']:.2f}")


if __name__ == "__main__":
    main()
