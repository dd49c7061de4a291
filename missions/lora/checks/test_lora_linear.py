"""Checkpoint `lora_linear`: the LoRA layer around a frozen nn.Linear.

Compared with peft's own LoRA layer (peft.tuners.lora.layer.Linear) given the same base, A and B;
the initialisation, the frozen base, the gradients at the start and the dropout are checked on
their own, each with a case built so that one classic mistake shows by itself.
"""
import math

import numpy as np
import torch
import torch.nn as nn

from lora_check_utils import (adapter_of, copy_module, linear, max_abs, one_thread, peft_linear,
                              scaled_guess, set_adapter, trainable_names)
from grader.checks import (check_close, expect, expect_between, expect_close, expect_equal,
                           expect_shape, expect_type, fail, is_close, to_numpy)
from grader.seam import learner

# tolerance: float32 layers of width <= 96; peft and a hand-written layer differ only in the order
# of the additions (observed <= 5e-7); real mistakes (a wrong scale, a missing term) move outputs by
# 1e-2 or more.
ATOL, RTOL = 1e-5, 1e-5

# (in, out, r, alpha): non-square on purpose (a transposed A or B cannot hide), r from 1 to 16.
SHAPES = [(40, 24, 4, 8.0), (24, 56, 8, 16.0), (96, 32, 16, 8.0), (17, 9, 1, 3.0)]


def _layer(base, r, alpha, **kw):
    return learner("lora_linear").LoRALinear(base, r=r, alpha=alpha, **kw)


def test_init_B_zero_A_kaiming(seed):
    """B starts at zero, A is Kaiming-uniform like nn.Linear's weight: U(-1/√in, 1/√in)."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        n_in, n_out, r = 256, 48, 8
        torch.manual_seed(seed)
        layer = _layer(linear(g, n_in, n_out), r=r, alpha=16.0)
        what = f"LoRALinear(nn.Linear({n_in}, {n_out}), r={r}, alpha=16)"
        A, B = adapter_of(layer, what, r, n_in, n_out)
        a_max, b_max = max_abs(A, f"{what}: A"), max_abs(B, f"{what}: B")
        if b_max > 0 and a_max == 0:
            fail(f"{what}: A starts at zero and B random: the brief's convention is the other way round "
                 "(A Kaiming-uniform, B zeros), as in the LoRA paper and peft")
        if b_max > 0:
            fail(f"{what}: B is not zero at initialisation (max |B| = {b_max:.3g}): B random at init "
                 "means B·A ≠ 0, so the layer no longer starts as the pretrained one. Start B at zeros")
        if a_max == 0:
            fail(f"{what}: A and B are both zero at initialisation: then the gradients of A and of B "
                 "are both zero (each is multiplied by the other) and the adapter never learns. "
                 "A must be random (Kaiming-uniform), only B starts at zero")
        bound = 1 / math.sqrt(n_in)
        # tolerance: Kaiming-uniform with a=√5 draws from U(-bound, bound) exactly; 1e-6 is float slack
        expect_between(a_max, 0.0, bound * (1 + 1e-6), what=f"{what}: max |A|",
                       why=f"A should be uniform in ±1/√in = ±{bound:.4f} (nn.init.kaiming_uniform_ "
                           "with a=math.sqrt(5), nn.Linear's own init)")
        std = float(np.std(to_numpy(A, what=f"{what}: A")))
        # tolerance: the std of 2048 uniform draws is bound/√3 within ~1 % (one standard error);
        # ±20 % is 20 standard errors, so only a different distribution lands outside
        expect_between(std, 0.8 * bound / math.sqrt(3), 1.2 * bound / math.sqrt(3),
                       what=f"{what}: standard deviation of A",
                       why="U(-1/√in, 1/√in) has standard deviation 1/√(3·in): A looks drawn from "
                           "another distribution or scale than nn.Linear's Kaiming-uniform")


def test_output_at_init_equals_base(seed):
    """At initialisation (B = 0) the layer computes exactly what the frozen base computes."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        for n_in, n_out, r, alpha in SHAPES:
            base = linear(g, n_in, n_out)
            x = torch.randn(3, 5, n_in, generator=g)
            want = copy_module(base)(x).detach()
            layer = _layer(base, r=r, alpha=alpha)
            what = f"LoRALinear(nn.Linear({n_in}, {n_out}), r={r}) at initialisation, x {tuple(x.shape)}"
            adapter_of(layer, what, r, n_in, n_out)
            got = layer(x)
            expect_type(got, torch.Tensor, what=what)
            # tolerance: with B = 0 the adapter adds exact zeros; 1e-6 only allows a learner who adds
            # the update to W before one matmul (a different but correct summation order)
            check_close(got, want, what=what, atol=1e-6, diagnose=lambda got, want: (
                "the output differs from the base layer's although B·A should be zero: B random at "
                "init?" if max_abs(layer.B.detach(), "B") > 0 else None))


def _cases(seed):
    g = torch.Generator().manual_seed(seed)
    for n_in, n_out, r, alpha in SHAPES:
        base = linear(g, n_in, n_out)
        A = torch.randn(r, n_in, generator=g) / math.sqrt(n_in)
        B = torch.randn(n_out, r, generator=g) * 0.5          # a trained-looking, non-zero B
        x = torch.randn(4, 3, n_in, generator=g)
        yield base, A, B, x, r, alpha


def _compare_with_peft(seed, rslora: bool):
    with one_thread():
        cases = list(_cases(seed))
        wants = []
        for base, A, B, x, r, alpha in cases:                # expected values first, from peft
            wants.append(peft_linear(base, r, alpha, A, B, rslora=rslora)(x).detach())
        for (base, A, B, x, r, alpha), want in zip(cases, wants):
            n_in, n_out = A.shape[1], B.shape[0]
            layer = _layer(copy_module(base), r=r, alpha=alpha, rslora=rslora) if rslora else \
                _layer(copy_module(base), r=r, alpha=alpha)
            what = (f"LoRALinear(nn.Linear({n_in}, {n_out}), r={r}, alpha={alpha:g}"
                    f"{', rslora=True' if rslora else ''}) with given A, B; x {tuple(x.shape)}")
            adapter_of(layer, what, r, n_in, n_out)
            set_adapter(layer, A, B)
            layer.eval()
            got = layer(x)
            expect_type(got, torch.Tensor, what=what)
            base_out = base(x).detach()
            BAx = x @ A.T @ B.T
            right = f"α/√r = {alpha / math.sqrt(r):g}" if rslora else f"α/r = {alpha / r:g}"
            candidates = [(alpha, f"the update is scaled by α = {alpha:g} instead of {right}"),
                          (r / alpha, f"the update is scaled by r/α instead of {right}"),
                          (1.0, f"the update is not scaled at all: multiply B·A·x by {right}")]
            candidates += [(alpha / r, "rslora=True should scale by α/√r (rank-stabilised), not α/r")] \
                if rslora else [(alpha / math.sqrt(r), "scaled by α/√r: that is rsLoRA; the default is α/r")]
            candidates += [(0.0, "the output ignores the adapter: y should be base(x) + s·B·A·x")]
            check_close(got, want, what=what, atol=ATOL, rtol=RTOL,
                        diagnose=lambda got, want: scaled_guess(got, base_out, BAx, candidates))
            expect_close(as_scaling(layer, what), alpha / math.sqrt(r) if rslora else alpha / r,
                         what=f"{what}: layer.scaling", atol=1e-12)   # tolerance: one float division


def as_scaling(layer, what):
    from grader.checks import as_float
    if not hasattr(layer, "scaling"):
        fail(f"{what}: no attribute `scaling` (the brief keeps s = α/r in self.scaling; merge needs it)")
    return as_float(layer.scaling, what=f"{what}: layer.scaling")


def test_matches_peft(seed):
    _compare_with_peft(seed, rslora=False)


def test_rslora_matches_peft(seed):
    _compare_with_peft(seed, rslora=True)


def test_delta_weight_matches_peft(seed):
    """delta_weight() is s·B·A, (out, in): the update merging will add to W."""
    with one_thread():
        cases = list(_cases(seed))
        wants = [peft_linear(b, r, al, A, B).get_delta_weight("default").detach()
                 for b, A, B, x, r, al in cases]
        for (base, A, B, x, r, alpha), want in zip(cases, wants):
            layer = _layer(copy_module(base), r=r, alpha=alpha)
            what = f"LoRALinear(nn.Linear({A.shape[1]}, {B.shape[0]}), r={r}, alpha={alpha:g}).delta_weight()"
            adapter_of(layer, what, r, A.shape[1], B.shape[0])
            set_adapter(layer, A, B)
            got = layer.delta_weight()
            expect_type(got, torch.Tensor, what=what)
            expect_shape(got, tuple(want.shape), what=f"{what} (out, in)")
            # tolerance: an r-term float32 sum per entry, in any order
            check_close(got, want, what=what, atol=1e-6, rtol=1e-5, diagnose=lambda got, want: (
                "looks like B·A without the scaling s = α/r" if is_close(got, B @ A, atol=1e-6, rtol=1e-5)
                else None))


def test_only_A_and_B_train(seed):
    """The base is frozen: after a backward pass only A and B have gradients."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        base = linear(g, 40, 24)
        layer = _layer(base, r=4, alpha=8.0)
        what = "LoRALinear(nn.Linear(40, 24), r=4, alpha=8)"
        adapter_of(layer, what, 4, 40, 24)
        names = trainable_names(layer)
        frozen_wrong = [n for n in names if n not in ("A", "B")]
        if frozen_wrong:
            fail(f"{what}: the base layer is not frozen: {frozen_wrong} require grad. Only A and B may "
                 "train; call requires_grad_(False) on the base layer in __init__")
        expect_equal(sorted(names), ["A", "B"], what=f"{what}: the parameters that require grad")
        layer(torch.randn(6, 40, generator=g)).pow(2).sum().backward()
        expect(base.weight.grad is None and (base.bias is None or base.bias.grad is None),
               f"{what}: the base layer received a gradient; it must stay frozen")


def test_gradients_at_init(seed):
    """At the start B gets a gradient (A·x ≠ 0) and A gets none (B = 0): the adapter can learn."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        n_in, n_out, r, alpha = 40, 24, 4, 8.0
        base = linear(g, n_in, n_out)
        x = torch.randn(6, n_in, generator=g)
        w_out = torch.randn(6, n_out, generator=g)          # loss = Σ w_out ⊙ y: dL/dy = w_out
        layer = _layer(base, r=r, alpha=alpha)
        what = f"LoRALinear(nn.Linear({n_in}, {n_out}), r={r}, alpha={alpha:g}) at initialisation"
        A, _ = adapter_of(layer, what, r, n_in, n_out)
        A = A.clone()
        (layer(x) * w_out).sum().backward()
        for name in ("A", "B"):
            if getattr(layer, name).grad is None:
                fail(f"{what}: {name}.grad is None after backward: is {name} used in forward, and does it "
                     "require grad?")
        want_B = (alpha / r) * w_out.T @ (x @ A.T)          # ∂L/∂B = s · (dL/dy)ᵀ (A·x)
        gb = torch.Tensor.detach(layer.B.grad)
        if max_abs(gb, "B.grad") == 0:
            fail(f"{what}: B's gradient is zero at the start. With A random it should be s·(dL/dy)ᵀ·(A·x); "
                 "if A and B are both zero, neither can ever learn")
        # tolerance: float32 products of width 40; real mistakes differ by a factor
        check_close(gb, want_B, what=f"{what}: B.grad", atol=1e-5, rtol=1e-4,
                    diagnose=lambda got, want: ("B.grad is α times too large: scaling α instead of α/r?"
                                                if is_close(got, want * r, atol=1e-4, rtol=1e-4) else None))
        # tolerance: exactly zero: ∂L/∂A = s · Bᵀ(dL/dy) xᵀ with B = 0
        expect_close(torch.Tensor.detach(layer.A.grad), torch.zeros(r, n_in), what=f"{what}: A.grad "
                     "(zero at the first step, because B = 0)", atol=0.0)


def test_dropout_on_adapter_path_only(seed):
    """Dropout drops input features of the adapter only; the frozen path never sees it."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        n, p = 6, 0.5
        base = linear(g, n, 5)
        x = torch.randn(64, n, generator=g)
        want = copy_module(base)(x).detach()
        layer = _layer(base, r=n, alpha=float(n), dropout=p)      # s = α/r = 1
        what = f"LoRALinear(nn.Linear({n}, 5), r={n}, alpha={n}, dropout={p}) in train mode"
        adapter_of(layer, what, n, n, 5)
        layer.train()
        torch.manual_seed(seed)
        got = layer(x)
        # tolerance: with B = 0 the adapter adds exact zeros (see test_output_at_init_equals_base)
        check_close(got, want, what=f"{what}, B = 0 (so the output must be the base's, dropout or not)",
                    atol=1e-6, diagnose=lambda got, want: (
                        "dropout is on the base path: the frozen layer must see x untouched; apply "
                        "dropout only to the adapter's input (B·A·dropout(x))"))
        # Now A = I and B = all ones: every output of the adapter is the sum of the kept, rescaled
        # inputs of its row, the same number in all 5 columns.
        set_adapter(layer, torch.eye(n), torch.ones(5, n))
        got = layer(x)
        expect_type(got, torch.Tensor, what=what)
        u = to_numpy(got, what=what) - to_numpy(want)          # (64, 5): the adapter's part
        spread = float((u.max(axis=1) - u.min(axis=1)).max())
        # tolerance: float32 sums of 6 terms
        expect_between(spread, 0.0, 1e-4, what=f"{what} with A = I, B = ones: largest spread of the "
                       "adapter's output across one row", why="with B = ones every output column gets "
                       "the same sum, so dropout must be applied to x before A, not after B")
        xs = to_numpy(x)
        masks = np.array([[(m >> i) & 1 for i in range(n)] for m in range(2 ** n)], dtype=float)
        sums = xs @ masks.T / (1 - p)                          # (64, 64): every possible kept subset
        nearest = np.abs(sums - u[:, :1]).min(axis=1)
        # tolerance: float32 sums of 6 terms; a subset sum not rescaled by 1/(1-p) misses by ~|x|
        expect_between(float(nearest.max()), 0.0, 1e-4, what=f"{what}: adapter output vs every "
                       "possible kept subset of the inputs", why="each adapter output should be the sum of "
                       "some inputs divided by (1 - p): inverted dropout on x (nn.Dropout does this)")
        dropped = int((np.abs(u[:, 0] - xs.sum(axis=1)) > 1e-4).sum())
        expect_between(dropped, 1, None, what=f"{what}: rows where dropout removed something",
                       why="in train mode with p = 0.5 some inputs must be dropped (is dropout applied?)")
        layer.eval()
        got = layer(x)
        expect_type(got, torch.Tensor, what=what)
        # tolerance: float32 sums of 6 terms
        expect_close(got, want + torch.tensor(xs.sum(axis=1, keepdims=True), dtype=torch.float32).expand(64, 5),
                     what=f"{what.replace('train', 'eval')}: no dropout in eval mode", atol=1e-4)
