"""multi-gpu's checks pass correct code written in other styles than the reference.

Written from the brief alone, deliberately unlike engine/multi_gpu: one flattened all-reduce with
ReduceOp.AVG for all gradients; a DDP that pre-divides, keeps buckets as index lists and waits at the
end of backward through a callback queued on autograd's engine (its finish call only copies back); an
accumulation loop that zeroes gradients first; a ZeRO optimizer that subclasses torch.optim.Optimizer,
keeps a 0-d step tensor and gathers with the list form of all_gather; a memory bill in floats. The
reference's other modules fill the rest of the package. One grade, one seed.
"""
from __future__ import annotations

from tests.helpers import grade, missions, workspace_with_reference

MISSION = next(m for m in missions() if m.id == "multi-gpu")

ALLREDUCE = '''
import torch
import torch.distributed as dist


def shard_batch(batch, rank, world):
    if batch.shape[0] % world != 0:
        raise ValueError("uneven batch")
    return torch.chunk(batch, world, dim=0)[rank]


def average_gradients(model):
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.AVG)
    for g, part in zip(grads, flat.split([g.numel() for g in grads])):
        g.copy_(part.view_as(g))


def ring_allreduce_bytes(n_bytes, world):
    if world < 1 or n_bytes < 0 or n_bytes % world:
        raise ValueError("bad sizes")
    chunk = n_bytes // world
    reduce_scatter = (world - 1) * chunk
    all_gather = (world - 1) * chunk
    return reduce_scatter + all_gather
'''

DDP = '''
import contextlib

import torch
import torch.distributed as dist
from torch import nn


def make_buckets(params, cap_bytes):
    out = [[]]
    used = 0
    for p in params:
        size = p.numel() * p.element_size()
        if out[-1] and used + size > cap_bytes:
            out.append([])
            used = 0
        out[-1].append(p)
        used += size
    return out if out[-1] else []


class DDP(nn.Module):
    def __init__(self, module, bucket_cap_bytes=1 << 20):
        super().__init__()
        self.module = module
        self.world = dist.get_world_size()
        for p in module.parameters():
            dist.broadcast(p.data, src=0)
        for b in module.buffers():
            dist.broadcast(b.data, src=0)
        params = [p for p in module.parameters() if p.requires_grad][::-1]
        self.buckets = make_buckets(params, bucket_cap_bytes)
        self.where = {}
        for i, bucket in enumerate(self.buckets):
            for p in bucket:
                self.where[p] = i
        self.missing = [len(b) for b in self.buckets]
        self.inflight = []
        self.waiting = False
        self.syncing = True
        for p in params:
            p.register_post_accumulate_grad_hook(self.on_grad)

    def forward(self, *a, **k):
        return self.module(*a, **k)

    def on_grad(self, p):
        if not self.syncing:
            return
        i = self.where[p]
        self.missing[i] -= 1
        if self.missing[i] == 0:
            flat = torch.cat([q.grad.flatten() / self.world for q in self.buckets[i]])
            self.inflight.append((i, flat, dist.all_reduce(flat, async_op=True)))
            if not self.waiting:
                self.waiting = True
                torch.autograd.Variable._execution_engine.queue_callback(self.wait_all)

    def wait_all(self):
        for _, _, work in self.inflight:
            work.wait()
        self.waiting = False

    def finish_gradient_synchronization(self):
        if not self.syncing:
            return
        for i, flat, work in self.inflight:
            work.wait()
            sizes = [q.numel() for q in self.buckets[i]]
            for q, piece in zip(self.buckets[i], flat.split(sizes)):
                q.grad.copy_(piece.view_as(q))
        self.inflight = []
        self.missing = [len(b) for b in self.buckets]

    @contextlib.contextmanager
    def no_sync(self):
        old, self.syncing = self.syncing, False
        try:
            yield
        finally:
            self.syncing = old
'''

ACCUMULATION = '''
import contextlib


def accumulation_step(model, optimizer, micro_batches, loss_fn):
    optimizer.zero_grad()
    k = len(micro_batches)
    seen = []
    for n, (x, y) in enumerate(micro_batches, start=1):
        ctx = model.no_sync() if n < k else contextlib.nullcontext()
        with ctx:
            loss = loss_fn(model, x, y)
            loss.div(k).backward()
        seen.append(float(loss.detach()))
    model.finish_gradient_synchronization()
    optimizer.step()
    return sum(seen) / k
'''

ZERO = '''
import torch
import torch.distributed as dist


class ZeroAdamW(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__([p for p in params if p.requires_grad],
                         dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.me, self.world = dist.get_rank(), dist.get_world_size()
        self.flat_params = self.param_groups[0]["params"]
        total = sum(p.numel() for p in self.flat_params)
        per = -(-total // self.world)
        self.lo, self.hi, self.per, self.total = min(self.me * per, total), min(self.me * per + per, total), per, total
        self.state["shard"] = {"step": torch.tensor(0.0), "exp_avg": torch.zeros(self.hi - self.lo),
                               "exp_avg_sq": torch.zeros(self.hi - self.lo)}

    @torch.no_grad()
    def step(self, closure=None):
        g = self.param_groups[0]
        b1, b2 = g["betas"]
        st = self.state["shard"]
        st["step"] += 1
        t = st["step"].item()
        params = torch.nn.utils.parameters_to_vector(self.flat_params)
        grads = torch.cat([p.grad.reshape(-1) for p in self.flat_params])
        w, d = params[self.lo:self.hi].clone(), grads[self.lo:self.hi]
        w *= 1 - g["lr"] * g["weight_decay"]
        st["exp_avg"].mul_(b1).add_((1 - b1) * d)
        st["exp_avg_sq"].mul_(b2).add_((1 - b2) * d * d)
        m_hat = st["exp_avg"] / (1 - b1 ** t)
        v_hat = st["exp_avg_sq"] / (1 - b2 ** t)
        w -= g["lr"] * m_hat / (v_hat.sqrt() + g["eps"])
        padded = torch.cat([w, w.new_zeros(self.per - w.numel())])
        pieces = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(pieces, padded)
        torch.nn.utils.vector_to_parameters(torch.cat(pieces)[:self.total], self.flat_params)
'''

MEMORY = '''
import math


def count_params(cfg):
    d, v, t, n = cfg.d_model, cfg.vocab_size, cfg.block_size, cfg.n_layer
    attention = (3 * d * d + 3 * d) + (d * d + d)
    mlp = (4 * d * d + 4 * d) + (4 * d * d + d)
    norms = 2 * (2 * d)
    return v * d + t * d + n * (attention + mlp + norms) + 2 * d


def activation_values(cfg, batch_size, seq_len, checkpointing):
    tokens = batch_size * seq_len
    per_block = tokens * cfg.d_model * 16.0 + cfg.n_head * batch_size * seq_len ** 2
    head = tokens * (2.0 * cfg.d_model + cfg.vocab_size)
    if not checkpointing:
        return cfg.n_layer * per_block + head
    return cfg.n_layer * tokens * cfg.d_model + max(per_block, head)


def training_memory(cfg, *, batch_size, seq_len, mixed_precision=False, checkpointing=False,
                    zero_stage=0, world=1):
    P = count_params(cfg)
    share = math.ceil(P / world)
    per_param = {"weights": 2.0, "gradients": 2.0, "optimizer": 12.0} if mixed_precision else \\
        {"weights": 4.0, "gradients": 4.0, "optimizer": 8.0}
    sharded_from = {"optimizer": 1, "gradients": 2, "weights": 3}
    bill = {"params": P}
    for part, nbytes in per_param.items():
        bill[part] = nbytes * (share if zero_stage >= sharded_from[part] else P)
    bill["activations"] = (2.0 if mixed_precision else 4.0) * activation_values(cfg, batch_size, seq_len,
                                                                                checkpointing)
    bill["total"] = bill["weights"] + bill["gradients"] + bill["optimizer"] + bill["activations"]
    return bill


def fits(cfg, gpu_bytes, **setup):
    return bool(training_memory(cfg, **setup)["total"] <= gpu_bytes)
'''


def test_other_styles_pass(tmp_path):
    ws = workspace_with_reference(tmp_path, MISSION)
    pkg = ws.package_dir(MISSION)
    for name, text in [("allreduce.py", ALLREDUCE), ("ddp.py", DDP), ("accumulation.py", ACCUMULATION),
                       ("zero.py", ZERO), ("memory.py", MEMORY)]:
        (pkg / name).write_text(text)
    run = grade(MISSION, ws, checkpoints=["allreduce", "ddp", "accumulation", "zero1", "memory"], seed=7)
    bad = [(r.checkpoint, r.status, r.message) for r in run.results if r.status != "passed"]
    assert not bad, bad

