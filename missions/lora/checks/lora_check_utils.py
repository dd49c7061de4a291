"""Shared helpers for the lora mission's checks (not a test file: pytest does not collect it).

peft and bitsandbytes are imported lazily, only by the checks that compare against them (they take
seconds to import). Learner modules only ever come through grader.seam.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn as nn

from grader.checks import fail, to_numpy


@contextlib.contextmanager
def one_thread():
    """These layers are small: one thread is as fast as two and never stalls on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def linear(g: torch.Generator, n_in: int, n_out: int, bias: bool = True) -> nn.Linear:
    """An nn.Linear with weights drawn from g (so every seed gets different ones)."""
    layer = nn.Linear(n_in, n_out, bias=bias)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(n_out, n_in, generator=g) / math.sqrt(n_in))
        if bias:
            layer.bias.copy_(torch.randn(n_out, generator=g) * 0.1)
    return layer


def conv1d(g: torch.Generator, n_in: int, n_out: int):
    """A real transformers Conv1D (weight (in, out)) with weights drawn from g."""
    from transformers.pytorch_utils import Conv1D
    layer = Conv1D(n_out, n_in)                      # Conv1D(nf=out, nx=in)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(n_in, n_out, generator=g) / math.sqrt(n_in))
        layer.bias.copy_(torch.randn(n_out, generator=g) * 0.1)
    return layer


def copy_module(m: nn.Module) -> nn.Module:
    """A deep copy, so that the learner's layer and the one we compare with never share a tensor."""
    import copy
    return copy.deepcopy(m)


def adapter_of(layer, what: str, r: int, n_in: int, n_out: int):
    """layer.A (r, in) and layer.B (out, r), as the brief names them, checked for type and shape."""
    from grader.checks import expect_shape, expect_type
    for name in ("A", "B"):
        if not hasattr(layer, name):
            fail(f"{what}: has no attribute {name}; the brief (section 2) names the adapter's two "
                 "matrices self.A (r, in) and self.B (out, r), both nn.Parameter")
        expect_type(getattr(layer, name), nn.Parameter, what=f"{what}: {name}")
    A, B = torch.Tensor.detach(layer.A), torch.Tensor.detach(layer.B)
    if tuple(A.shape) == (n_in, r) and n_in != r:
        fail(f"{what}: A has shape {tuple(A.shape)}, the transpose of the brief's layout: A is (r, in) "
             f"= {(r, n_in)}, like an nn.Linear(in, r) weight")
    expect_shape(A, (r, n_in), what=f"{what}: A (r, in)")
    if tuple(B.shape) == (r, n_out) and n_out != r:
        fail(f"{what}: B has shape {tuple(B.shape)}, the transpose of the brief's layout: B is (out, r) "
             f"= {(n_out, r)}, like an nn.Linear(r, out) weight")
    expect_shape(B, (n_out, r), what=f"{what}: B (out, r)")
    return A, B


def set_adapter(layer, A: torch.Tensor, B: torch.Tensor) -> None:
    """Write given values into the learner's A and B (in place, keeping their Parameters)."""
    with torch.no_grad():
        layer.A.copy_(A)
        layer.B.copy_(B)


def trainable_names(module: nn.Module) -> list[str]:
    return [n for n, p in module.named_parameters() if p.requires_grad]


def peft_linear(base: nn.Module, r: int, alpha: float, A: torch.Tensor, B: torch.Tensor, *,
                rslora: bool = False, fan_in_fan_out: bool = False):
    """peft's own LoRA layer around a copy of `base`, with the given A and B, in eval mode."""
    import warnings
    from peft import LoraConfig
    from peft.tuners.lora.layer import Linear as PeftLoraLinear
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, use_rslora=rslora,
                        fan_in_fan_out=fan_in_fan_out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = PeftLoraLinear(copy_module(base), "default", config, r=r, lora_alpha=alpha)
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(A)
        layer.lora_B["default"].weight.copy_(B)
    return layer.eval()


def scaled_guess(got, base_out, BAx, candidates):
    """Which scale c makes got == base_out + c·BAx? Returns the candidate's label or None."""
    from grader.checks import is_close
    for c, label in candidates:
        if is_close(got, base_out + c * BAx, atol=1e-4, rtol=1e-4):
            return label
    return None


def max_abs(x, what: str) -> float:
    """max |x| of a learner tensor, as a plain float (0.0 for an empty one)."""
    a = to_numpy(x, what=what)
    return float(abs(a).max()) if a.size else 0.0
