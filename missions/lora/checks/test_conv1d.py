"""Checkpoint `conv1d`: LoRA around a real transformers Conv1D (GPT-2's layer, weight (in, out)).

Compared with peft's LoRA layer with fan_in_fan_out=True, on NON-square layers: with in == out a
missing transpose lines up by accident, so the square case is checked through delta_weight() alone.
"""
import math

import torch

from lora_check_utils import (adapter_of, conv1d, copy_module, max_abs, one_thread, peft_linear,
                              set_adapter, trainable_names)
from grader.checks import check_close, expect_equal, expect_shape, expect_type, fail, is_close
from grader.seam import learner

# tolerance: float32 layers of width <= 96, the same products as peft's in another order
ATOL, RTOL = 1e-5, 1e-5

# (in, out, r, alpha): GPT-2's c_attn is (C, 3C), c_fc (C, 4C), mlp c_proj (4C, C): all non-square
SHAPES = [(32, 96, 4, 8.0), (64, 16, 8, 16.0), (24, 40, 2, 4.0)]


def _layer(base, r, alpha):
    return learner("conv1d").LoRAConv1D(base, r=r, alpha=alpha)


def _shape_hint(layer, what, n_in, n_out, r):
    A = getattr(layer, "A", None)
    if isinstance(A, torch.Tensor) and n_in != n_out and tuple(A.shape) == (r, n_out):  # raw-ok: picks the message; adapter_of decides next
        fail(f"{what}: A has shape {tuple(A.shape)}: in and out were read the nn.Linear way. Conv1D "
             f"stores its weight as (in, out) = {(n_in, n_out)}, the transpose of nn.Linear's (out, in), "
             f"so in = weight.shape[0]; A must be (r, in) = {(r, n_in)}")


def test_shapes_and_init(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        for n_in, n_out, r, alpha in SHAPES:
            base = conv1d(g, n_in, n_out)
            x = torch.randn(2, 7, n_in, generator=g)
            want = copy_module(base)(x).detach()
            layer = _layer(base, r, alpha)
            what = f"LoRAConv1D(Conv1D(nf={n_out}, nx={n_in}), r={r}) (in={n_in}, out={n_out})"
            _shape_hint(layer, what, n_in, n_out, r)
            adapter_of(layer, what, r, n_in, n_out)
            expect_equal(sorted(trainable_names(layer)), ["A", "B"],
                         what=f"{what}: the parameters that require grad (the Conv1D must be frozen)")
            got = layer(x)
            expect_type(got, torch.Tensor, what=what)
            # tolerance: B = 0 adds exact zeros; 1e-6 allows another (correct) summation order
            check_close(got, want, what=f"{what} at initialisation", atol=1e-6, diagnose=lambda g_, w_: (
                "B random at init?" if max_abs(layer.B.detach(), "B") > 0 else None))


def test_matches_peft(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        cases = []
        for n_in, n_out, r, alpha in SHAPES:
            base = conv1d(g, n_in, n_out)
            A = torch.randn(r, n_in, generator=g) / math.sqrt(n_in)
            B = torch.randn(n_out, r, generator=g) * 0.5
            x = torch.randn(3, 5, n_in, generator=g)
            want = peft_linear(base, r, alpha, A, B, fan_in_fan_out=True)(x).detach()
            cases.append((base, A, B, x, r, alpha, want))
        for base, A, B, x, r, alpha, want in cases:
            n_in, n_out = A.shape[1], B.shape[0]
            layer = _layer(copy_module(base), r, alpha)
            what = f"LoRAConv1D(Conv1D(nf={n_out}, nx={n_in}), r={r}, alpha={alpha:g}) with given A, B"
            _shape_hint(layer, what, n_in, n_out, r)
            adapter_of(layer, what, r, n_in, n_out)
            set_adapter(layer, A, B)
            layer.eval()
            got = layer(x)
            expect_type(got, torch.Tensor, what=what)
            check_close(got, want, what=what, atol=ATOL, rtol=RTOL)


def test_delta_weight_transposed(seed):
    """delta_weight() is (s·B·A)ᵀ, Conv1D's (in, out) layout, also when in == out (the trap)."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        cases = []
        for n_in, n_out, r, alpha in SHAPES + [(48, 48, 4, 8.0)]:     # the last: square, like attn c_proj
            base = conv1d(g, n_in, n_out)
            A = torch.randn(r, n_in, generator=g) / math.sqrt(n_in)
            B = torch.randn(n_out, r, generator=g) * 0.5
            want = peft_linear(base, r, alpha, A, B, fan_in_fan_out=True).get_delta_weight("default").detach()
            cases.append((base, A, B, r, alpha, want))
        for base, A, B, r, alpha, want in cases:
            n_in, n_out = A.shape[1], B.shape[0]
            layer = _layer(copy_module(base), r, alpha)
            what = f"LoRAConv1D(Conv1D(nf={n_out}, nx={n_in}), r={r}, alpha={alpha:g}).delta_weight()"
            _shape_hint(layer, what, n_in, n_out, r)
            adapter_of(layer, what, r, n_in, n_out)
            set_adapter(layer, A, B)
            got = layer.delta_weight()
            expect_type(got, torch.Tensor, what=what)
            if tuple(got.shape) == (n_out, n_in) and n_in != n_out:
                fail(f"{what}: shape {tuple(got.shape)} is nn.Linear's (out, in); Conv1D's weight is "
                     f"(in, out) = {(n_in, n_out)}: the update must be transposed, (s·B·A)ᵀ")
            expect_shape(got, (n_in, n_out), what=f"{what} (in, out)")
            # tolerance: an r-term float32 sum per entry
            check_close(got, want, what=what, atol=1e-6, rtol=1e-5, diagnose=lambda got, want: (
                "Conv1D without the transpose: this is s·B·A in nn.Linear's (out, in) layout, which "
                "only fits because this layer is square. Return (s·B·A)ᵀ"
                if is_close(got, want.T, atol=1e-6, rtol=1e-5) else
                "looks like B·A without the scaling s = α/r, transposed"
                if is_close(got, (B @ A).T, atol=1e-6, rtol=1e-5) else None))
