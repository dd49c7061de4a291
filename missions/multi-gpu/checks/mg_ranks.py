"""What each rank runs for the multi-gpu checks (not a test file: pytest does not collect it).

grader.ranks starts every rank as a fresh interpreter and calls one of these as fn(rank, world, spec)
after the import guard is in place. Each builds the reference model (engine.multi_gpu.model: given
code, the same as the learner's copy), calls the learner's code through the seam, and returns plain
tensors and numbers; every verdict is made afterwards in the check process. Imports: torch only
(plus the grader and the given model).
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from engine.multi_gpu.model import ModelConfig, TinyGPT
from grader import ranks
from grader.seam import learner


# -- shared by the checks and the ranks ----------------------------------------------------------
def make_model(cfg: dict, seed: int, frozen: tuple = ()) -> TinyGPT:
    torch.manual_seed(seed)
    model = TinyGPT(ModelConfig(**cfg))
    with torch.no_grad():                       # move every weight off its init (biases, gains too)
        g = torch.Generator().manual_seed(seed + 1)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    for name, p in model.named_parameters():
        if name in frozen:
            p.requires_grad_(False)
    return model


def snapshot(model: torch.nn.Module) -> dict:
    """name -> a copy of the parameter (each Parameter once: the tied head is tok_emb.weight)."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def grads(model: torch.nn.Module) -> dict:
    return {name: (None if p.grad is None else p.grad.detach().clone()) for name, p in model.named_parameters()}


def _loss(model, x, y):
    return model(x, y)[1]


class PlainSGD:
    """p <- p - lr·grad: torch.optim.SGD without momentum, minus the seconds torch.optim spends
    importing its compiler (torch._dynamo) in a fresh process."""

    def __init__(self, params, lr: float):
        self.params, self.lr = [p for p in params if p.requires_grad], lr

    @torch.no_grad()
    def step(self) -> None:
        for p in self.params:
            if p.grad is not None:
                p.sub_(p.grad, alpha=self.lr)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()


# -- checkpoint allreduce -------------------------------------------------------------------------
def allreduce_run(rank: int, world: int, spec: dict) -> dict:
    ar = learner("allreduce")
    model = make_model(spec["cfg"], spec["seed"], spec["frozen"])
    opt = PlainSGD(model.parameters(), lr=spec["lr"])
    out = {"shards": [], "local": [], "grads": [], "params": []}
    for x, y in zip(spec["xs"], spec["ys"]):
        xs, ys = ar.shard_batch(x, rank, world), ar.shard_batch(y, rank, world)
        out["shards"].append(xs)
        opt.zero_grad(set_to_none=True)
        _loss(model, xs, ys).backward()
        out["local"].append(grads(model))
        ranks.collectives().reset()
        ar.average_gradients(model)
        out["calls"] = ranks.collectives().count()
        out["grads"].append(grads(model))
        opt.step()
        out["params"].append(snapshot(model))
    return out


# -- checkpoint ddp -------------------------------------------------------------------------------
def _train(model, wrapper, xs, ys, lr, rank, world, finish=None, log=None):
    """SGD steps on this rank's half of each batch; per step, the all-reduce calls it made."""
    opt = PlainSGD(model.parameters(), lr=lr)
    per_step = []
    for x, y in zip(xs, ys):
        half = x.shape[0] // world
        xr, yr = x[rank * half:(rank + 1) * half], y[rank * half:(rank + 1) * half]
        if log is not None:
            log.reset()
        opt.zero_grad(set_to_none=True)
        _loss(wrapper, xr, yr).backward()
        if finish is not None:
            finish()
        if log is not None:
            per_step.append({"all_reduce": log.count("all_reduce"),
                             "async": log.count("all_reduce", async_op=True),
                             "in_backward": log.count("all_reduce", in_backward=True),
                             "others": [c["name"] for c in log.calls if c["name"] != "all_reduce"]})
        opt.step()
    return per_step


def ddp_run(rank: int, world: int, spec: dict) -> dict:
    out = {}
    # torch's DistributedDataParallel first: the reference this checkpoint is compared with
    model = make_model(spec["cfg"], spec["seed"] + 1000 * rank, spec["frozen"])
    wrapped = torch.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=spec["caps"][0] / 2**20)
    _train(model, wrapped, spec["xs"], spec["ys"], spec["lr"], rank, world)
    out["torch"] = snapshot(model)
    # then the learner's DDP, with each bucket size
    DDP = learner("ddp").DDP
    log = ranks.collectives()
    out["cases"] = []
    for cap in spec["caps"]:
        model = make_model(spec["cfg"], spec["seed"] + 1000 * rank, spec["frozen"])   # rank's own init
        init = snapshot(model)
        ddp = DDP(model, bucket_cap_bytes=cap)
        inner = ddp.module if isinstance(getattr(ddp, "module", None), torch.nn.Module) else model
        after = snapshot(inner)
        steps = _train(inner, ddp, spec["xs"], spec["ys"], spec["lr"], rank, world,
                       finish=ddp.finish_gradient_synchronization, log=log)
        out["cases"].append({"init": init, "after_init": after, "steps": steps, "final": snapshot(inner),
                             "grads": grads(inner)})
    return out


# -- checkpoint accumulation ----------------------------------------------------------------------
def accumulation_run(rank: int, world: int, spec: dict) -> dict:
    DDP = learner("ddp").DDP
    step_fn = learner("accumulation").accumulation_step
    log = ranks.collectives()
    model = make_model(spec["cfg"], spec["seed"], ())
    ddp = DDP(model, bucket_cap_bytes=spec["cap"])
    opt = PlainSGD(model.parameters(), lr=spec["lr"])
    k = spec["k"]
    out = {"steps": []}
    for x, y in zip(spec["xs"], spec["ys"]):
        per_rank = x.shape[0] // world
        xr, yr = x[rank * per_rank:(rank + 1) * per_rank], y[rank * per_rank:(rank + 1) * per_rank]
        mb = per_rank // k
        micro = [(xr[i * mb:(i + 1) * mb], yr[i * mb:(i + 1) * mb]) for i in range(k)]
        marks, losses = [], []

        def loss_fn(model_, x_, y_):
            marks.append(log.count("all_reduce"))       # all-reduces made before this micro-step
            loss = _loss(model_, x_, y_)
            losses.append(loss.item())
            return loss

        log.reset()
        got = step_fn(ddp, opt, micro, loss_fn)
        marks.append(log.count("all_reduce"))
        out["steps"].append({"returned": got, "losses": losses, "marks": marks, "params": snapshot(model)})
    return out


# -- checkpoint zero1 -----------------------------------------------------------------------------
def state_bytes(state) -> int:
    """Bytes of every tensor (not 0-d) reachable in an optimizer's state, each storage counted once."""
    seen, total, stack = set(), 0, [state]
    while stack:
        x = stack.pop()
        if isinstance(x, torch.Tensor):
            if x.dim() > 0:
                s = x.untyped_storage()
                if s.data_ptr() not in seen:
                    seen.add(s.data_ptr())
                    total += s.nbytes()
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, (list, tuple)):
            stack.extend(x)
    return total


def zero_run(rank: int, world: int, spec: dict) -> dict:
    Zero = learner("zero").ZeroAdamW
    model = make_model(spec["cfg"], spec["seed"], ())
    extra = torch.nn.Parameter(torch.linspace(-1.0, 1.0, spec["extra"]))   # an odd count: uneven shards
    params = [*model.parameters(), extra]
    opt = Zero(params, lr=spec["lr"], betas=tuple(spec["betas"]), eps=spec["eps"],
               weight_decay=spec["weight_decay"])
    log = ranks.collectives()
    kinds, first = [], None
    for x, y in zip(spec["xs"], spec["ys"]):
        half = x.shape[0] // world
        loss = _loss(model, x[rank * half:(rank + 1) * half], y[rank * half:(rank + 1) * half]) \
            + 0.1 * (extra ** 2).sum()
        loss.backward()
        for p in params:                                   # stage 1: gradients averaged as in DDP
            dist.all_reduce(p.grad)
            p.grad /= world
        log.reset()
        opt.step()
        kinds.append([c["name"] for c in log.calls])
        opt.zero_grad()
        if first is None:
            first = [p.detach().clone() for p in params]
    state = getattr(opt, "state", None)
    return {"params": [p.detach().clone() for p in params], "first": first, "state_bytes": state_bytes(state),
            "has_state": isinstance(state, dict), "collectives": kinds}


# -- checkpoint accelerate (run by `accelerate launch`; the learner's Accelerator sets up) ---------
def accelerate_run(rank: int, world: int, spec: dict) -> dict:
    from torch.utils.data import TensorDataset

    train = learner("accel_train").train
    model = make_model(spec["cfg"], spec["seed"], ())
    seen = []                                   # the dtype the output head computed in (fp16 under autocast)
    model.head.register_forward_hook(lambda module, inputs, output: seen.append(str(output.dtype)))
    opt = torch.optim.SGD(model.parameters(), lr=spec["lr"])
    train(model, opt, TensorDataset(spec["x"], spec["y"]), batch_size=spec["batch_size"],
          mixed_precision=spec["mixed_precision"])
    # accelerator.prepare wraps this very module object (DDP does not copy it): read it directly
    return {"params": {n: p.detach().float().cpu().clone() for n, p in model.named_parameters()},
            "world": dist.get_world_size() if dist.is_initialized() else 1,
            "rank": dist.get_rank() if dist.is_initialized() else 0, "head_dtype": seen[0] if seen else ""}


# -- bonus tensor_parallel ------------------------------------------------------------------------
def tensor_parallel_run(rank: int, world: int, spec: dict) -> dict:
    tp = learner("tensor_parallel")
    torch.manual_seed(spec["seed"])
    fc, out = torch.nn.Linear(spec["d"], spec["hidden"]), torch.nn.Linear(spec["hidden"], spec["d"])
    log = ranks.collectives()
    col, row = tp.ColumnParallelLinear(fc), tp.RowParallelLinear(out)
    x = spec["x"].clone().requires_grad_()
    log.reset()
    h = col(x)
    y = row(torch.nn.functional.gelu(h))
    forward_calls = log.count()
    (y * spec["w"]).sum().backward()
    return {"h": h.detach(), "y": y.detach(), "x_grad": x.grad, "forward_calls": forward_calls,
            "backward_calls": log.count() - forward_calls,
            "col_w": col.weight.grad, "col_b": None if col.bias is None else col.bias.grad,
            "row_w": row.weight.grad, "row_b": None if row.bias is None else row.bias.grad}


# -- bonus pipeline -------------------------------------------------------------------------------
def mlp_stack(seed: int, widths: list) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    layers = []
    for i in range(len(widths) - 1):
        layers += [torch.nn.Linear(widths[i], widths[i + 1]), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers[:-1])


def pipeline_run(rank: int, world: int, spec: dict) -> dict:
    gpipe = learner("pipeline").gpipe_step
    full = mlp_stack(spec["seed"], spec["widths"])
    cut = [0, *spec["cuts"], len(full)]
    stage = full[cut[rank]:cut[rank + 1]]
    micro = list(zip(spec["xs"], spec["ys"]))
    log = ranks.collectives()
    log.reset()
    loss = gpipe(stage, micro, torch.nn.functional.mse_loss, tuple(spec["activation_shape"]))
    order = [c["name"].removeprefix("i") for c in log.calls]
    return {"grads": {n: p.grad for n, p in stage.named_parameters()},   # a slice keeps the layer numbers
            "loss": loss if loss is None or type(loss) is float or isinstance(loss, torch.Tensor) else repr(loss),
            "order": order}
