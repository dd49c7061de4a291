"""Helpers for the multi-gpu checks in the check process (not a test file: pytest does not collect it).

Expected values come from one process and torch (or engine.multi_gpu where noted); the learner's
values come back from the ranks (grader.ranks) as plain tensors. One launch per checkpoint: the
first check of a file starts the ranks and the others read the same results (`once`).
"""
from __future__ import annotations

import torch

from grader.checks import check_close, expect_equal, fail, is_close
from mg_ranks import PlainSGD, grads, make_model, snapshot

# the model every distributed check trains: small enough for a busy 2-core machine
CFG = dict(vocab_size=32, block_size=8, n_layer=2, n_head=2, d_model=16)
WORLD = 2

_cache: dict = {}


def once(key: str, compute):
    """compute() the first time (the ranks' launch), the same value or exception afterwards."""
    if key not in _cache:
        try:
            _cache[key] = ("ok", compute())
        except BaseException as e:  # noqa: BLE001 - every check of the file reports the same failure
            _cache[key] = ("error", e)
    kind, value = _cache[key]
    if kind == "error":
        raise value
    return value


def first_seed(key: str, seed: int) -> int:
    """The seed of the file's first check: the one its launch used (each check gets its own seed)."""
    return once(f"{key}/seed", lambda: seed)


def token_batches(seed: int, steps: int, batch: int, cfg: dict = CFG):
    g = torch.Generator().manual_seed(seed)
    T, V = cfg["block_size"], cfg["vocab_size"]
    xs = [torch.randint(V, (batch, T), generator=g) for _ in range(steps)]
    ys = [torch.randint(V, (batch, T), generator=g) for _ in range(steps)]
    return xs, ys


def single_process_sgd(seed: int, xs, ys, lr: float, frozen: tuple = (), cfg: dict = CFG,
                       grad_scale: float = 1.0) -> dict:
    """What W ranks must reproduce: one process, the whole batch each step, plain SGD.
    grad_scale multiplies every gradient (to recognise a mistake that scales them)."""
    model = make_model(cfg, seed, frozen)
    opt = PlainSGD(model.parameters(), lr=lr)
    out = {"init": snapshot(model), "grads": [], "params": []}
    for x, y in zip(xs, ys):
        opt.zero_grad(set_to_none=True)
        model(x, y)[1].backward()
        if grad_scale != 1.0:
            for p in model.parameters():
                if p.grad is not None:
                    p.grad *= grad_scale
        out["grads"].append(grads(model))
        opt.step()
        out["params"].append(snapshot(model))
    return out


def same_params(got: dict, want: dict, what: str, *, atol: float, rtol: float, diagnose=None) -> None:
    """Every parameter of `want` (name -> tensor) in `got`, close; diagnose(name, got_t, want_t) may
    name a classic mistake."""
    if type(got) is not dict:
        fail(f"{what}: the ranks returned no parameters")
    expect_equal(sorted(got), sorted(want), what=f"{what}: parameter names")
    for name, w in want.items():
        g = got[name]
        if w is None or g is None:
            expect_equal(g is None, w is None, what=f"{what}: {name} has a gradient")
            continue
        check_close(g, w, what=f"{what}: {name}", atol=atol, rtol=rtol,
                    diagnose=(lambda g_, w_, n=name: diagnose(n, g_, w_)) if diagnose else None)


def close(a, b, atol: float, rtol: float = 0.0) -> bool:
    """is_close for a hypothesis in a diagnosis (never a verdict by itself)."""
    return a is not None and b is not None and is_close(a, b, atol=atol, rtol=rtol)


# -- measuring what training holds (checkpoint memory) ----------------------------------------------
class _Held:
    """What a pack hook hands autograd instead of the tensor: when autograd drops it (after the
    backward of the op that saved it), its storage is no longer held for backward."""
    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor):
        self.tensor = tensor


def activation_peak(model, idx, targets) -> int:
    """The most bytes autograd holds for backward at any moment of one forward + backward (each
    storage counted once; parameters and buffers are not activations)."""
    import weakref

    weights = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    live: dict = {}            # storage -> [bytes, how many saved tensors use it]
    now = peak = 0

    def release(key):
        nonlocal now
        live[key][1] -= 1
        if live[key][1] == 0:
            now -= live.pop(key)[0]

    def pack(t):
        nonlocal now, peak
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key in weights or storage.nbytes() == 0:
            return t
        held = _Held(t)
        if key in live:
            live[key][1] += 1
        else:
            live[key] = [storage.nbytes(), 1]
            now += storage.nbytes()
            peak = max(peak, now)
        weakref.finalize(held, release, key)
        return held

    def unpack(x):
        return x.tensor if type(x) is _Held else x

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        _, loss = model(idx, targets)
        loss.backward()
    return peak


def optimizer_state_bytes(opt) -> int:
    """Bytes of the per-parameter tensors in a torch optimizer's state (the 0-d step counters aside)."""
    return sum(v.nbytes for state in opt.state.values() for v in state.values()
               if isinstance(v, torch.Tensor) and v.dim() > 0)
