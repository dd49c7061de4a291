"""Functions that tests/test_ranks.py runs on real ranks (each rank imports this module by name)."""
from __future__ import annotations

import os
import signal
import time

import torch
import torch.distributed as dist


def sum_of_ranks(rank, world, base):
    from grader import ranks
    t = torch.tensor([float(base + rank)])
    dist.all_reduce(t)
    work = dist.all_reduce(torch.ones(3), async_op=True)
    work.wait()
    log = ranks.collectives()
    return {"sum": t, "pid": os.getpid(), "calls": log.count("all_reduce"), "async": log.count(async_op=True),
            "omp": os.environ.get("OMP_NUM_THREADS"), "threads": torch.get_num_threads()}


def one_rank_dies(rank, world):
    with open(os.path.join(os.environ["TMPDIR"], f"victim-{rank}.pid"), "w") as f:
        f.write(str(os.getpid()))
    if rank == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    dist.all_reduce(torch.ones(1))      # rank 0 waits here for a peer that is gone
    return 0


def one_rank_hangs(rank, world):
    with open(os.path.join(os.environ["TMPDIR"], f"victim-{rank}.pid"), "w") as f:
        f.write(str(os.getpid()))
    if rank == 1:
        time.sleep(3600)                 # never reaches the collective
    dist.all_reduce(torch.ones(1))
    return 0


def one_rank_not_implemented(rank, world):
    if rank == 1:
        raise NotImplementedError("average_gradients: see brief.md")
    dist.all_reduce(torch.ones(1))
    return 0


def one_rank_raises(rank, world):
    if rank == 0:
        raise ValueError("shapes do not match")
    dist.barrier()
    return 0


def returns_an_object(rank, world):
    return object()


def accel_fn(rank, world, base):
    from accelerate import Accelerator
    acc = Accelerator(cpu=True)
    t = torch.tensor([float(base + acc.process_index)])
    dist.all_reduce(t)
    return {"sum": t, "index": acc.process_index, "n": acc.num_processes, "type": str(acc.distributed_type)}
