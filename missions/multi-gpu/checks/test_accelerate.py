"""Checkpoint `accelerate`: the learner's train() with Accelerator, launched the way they would launch it:
`accelerate launch --multi_gpu --num_processes 2 ...` (on a machine without GPUs the launch sees
none, and the script's Accelerator(cpu=True) makes the two processes one gloo group). Both processes
must end with the weights of one process that trains on each global batch (2 × batch_size
sequences); mixed precision (fp16 with loss scaling) is checked on CUDA GPUs only (untested here:
the development machines have no GPU)."""
import pytest
import torch

import mg_ranks
from grader import ranks
from grader.checks import as_int, expect_close, expect_equal, expect_finite, fail
from mg_utils import CFG, close, first_seed, once, same_params, single_process_sgd

# tolerance: float32, summation order only (observed <= 1.2e-7 on weights up to ~1.3 after 4 SGD
# steps). Training on the wrong batches or without gradient sync is off by 1e-2 or more.
ATOL, RTOL = 1e-6, 1e-4
WORLD, PER_PROCESS, N, LR = 2, 2, 16, 0.5


def _data(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(CFG["vocab_size"], (N, CFG["block_size"]), generator=g)
    y = torch.randint(CFG["vocab_size"], (N, CFG["block_size"]), generator=g)
    return x, y


def _expected(seed, x, y, per_step):
    xs = [x[i:i + per_step] for i in range(0, N, per_step)]
    ys = [y[i:i + per_step] for i in range(0, N, per_step)]
    return single_process_sgd(seed, xs, ys, LR)


def _launch(seed, mixed_precision="no", world=WORLD, gpus=False):
    x, y = _data(seed)
    spec = {"cfg": CFG, "seed": seed, "x": x, "y": y, "lr": LR, "batch_size": PER_PROCESS,
            "mixed_precision": mixed_precision}
    return ranks.run_accelerate(mg_ranks.accelerate_run, world=world, args=(spec,),
                                mixed_precision=mixed_precision, gpus=gpus)


def _results(seed):
    seed = first_seed("accelerate", seed)

    def compute():
        x, y = _data(seed)
        return _expected(seed, x, y, WORLD * PER_PROCESS), _launch(seed)
    return once("accelerate", compute)


def test_two_processes_that_know_about_each_other(seed):
    _, got = _results(seed)
    for rank, r in enumerate(got):
        world = as_int(r["world"], what=f"the world size process {rank} saw")
        if world != WORLD:
            fail(f"process {rank} of `accelerate launch --multi_gpu --num_processes 2` ran alone (it saw a world "
                 f"of {world}): on a machine without GPUs, Accelerator() must be told cpu=True, else "
                 "each process thinks it is the only one (both are rank 0, no gradient sync)")
    expect_equal(sorted(as_int(r["rank"], what="a process's rank") for r in got), list(range(WORLD)),
                 what="the ranks of the two processes")


def test_weights_equal_one_process_on_the_global_batches(seed):
    want, got = _results(seed)
    seed = first_seed("accelerate", seed)
    x, y = _data(seed)
    for rank, r in enumerate(got):
        def diagnose(name, g, w, rank=rank):
            alone = once("accelerate-alone", lambda: _expected(seed, x, y, PER_PROCESS))
            if close(g, alone["params"][-1][name], ATOL, RTOL):
                return ("the weights are those of ONE process walking through every batch of the dataset: "
                        "the DataLoader was not passed through accelerator.prepare, so both processes saw "
                        "the same batches")
            other = got[1 - rank]["params"]
            if other is not None and not close(g, other[name], ATOL, RTOL):
                return ("the two processes ended with different weights: the model was not prepared "
                        "(accelerator.prepare wraps it in DistributedDataParallel, which averages gradients)")
            return None
        same_params(r["params"], want["params"][-1],
                    f"process {rank}: weights after one pass ({N // (WORLD * PER_PROCESS)} steps of "
                    f"{WORLD} × {PER_PROCESS} sequences) vs one process on the global batches",
                    atol=ATOL, rtol=RTOL, diagnose=diagnose)


def test_mixed_precision_fp16_on_gpu(seed):
    """fp16 autocast really on, the processes still in step, the weights trained and finite. (Not equal
    to float32 training: the loss scaler may skip the first steps while it finds its scale.)"""
    gpus = torch.cuda.device_count()
    if gpus == 0:
        pytest.skip("fp16 mixed precision with loss scaling needs a CUDA GPU; this machine has none "
                    "(the float32 checks above ran on CPU processes)")
    seed = first_seed("accelerate", seed)
    world = min(WORLD, gpus)
    init = mg_ranks.make_model(CFG, seed, ())
    start = {n: p.detach().clone() for n, p in init.named_parameters()}
    got = once("accelerate-fp16", lambda: _launch(seed, "fp16", world=world, gpus=True))
    for rank, r in enumerate(got):
        if r["head_dtype"] != "torch.float16":
            fail(f"process {rank}: under mixed_precision='fp16' the model's matmuls ran in {r['head_dtype'] or 'no'} "
                 "precision: pass mixed_precision to Accelerator(...)")
        for name, w in r["params"].items():
            expect_finite(w, what=f"process {rank}: {name} after fp16 training")
            if rank > 0:
                # tolerance: none needed, DDP keeps the replicas identical; 1e-6 allows for nothing else
                expect_close(w, got[0]["params"][name], what=f"process {rank} vs process 0: {name} after fp16 "
                             "training (the gradient sync keeps replicas equal)", atol=1e-6)
        moved = [n for n, w in r["params"].items() if not close(w, start[n], 1e-6)]
        if not moved:
            fail(f"process {rank}: no weight changed in fp16 training: every step was skipped (inf/NaN gradients "
                 "each time?) or optimizer.step() is never called")
