"""Checkpoint `qlora`: a frozen NF4 base (LinearNF4) under the learner's fp32 LoRA layer.

Outputs equal dequantise-then-LoRA computed here from bitsandbytes' own quantisation; gradients
reach only A and B (and the input); the base's storage is MEASURED from the tensors the module
holds; and the whole layer agrees with bitsandbytes' Linear4bit wrapped by peft's LoRA.
"""
import math
import warnings

import torch
import torch.nn as nn

from lora_check_utils import adapter_of, copy_module, linear, one_thread, set_adapter, trainable_names
from grader.checks import (check_close, expect, expect_between, expect_equal, expect_shape, expect_type,
                           fail, is_close)
from grader.seam import learner

# (in, out): rows that are multiples of the 64-block, out not a multiple of 32 on purpose
SHAPES = [(128, 48), (192, 80)]
# tolerance: x · dequant(W)ᵀ with the same fp32 weights; matmul kernels may sum in another order
# (observed <= 2e-6 at these widths); a wrong weight moves outputs by 1e-2 or more
ATOL, RTOL = 1e-5, 1e-5


def _bnb_dequant(w):
    import bitsandbytes.functional as F
    q, state = F.quantize_4bit(w.detach(), blocksize=64, quant_type="nf4")
    return F.dequantize_4bit(q, state)


def _nf4(lin):
    LinearNF4 = learner("qlora").LinearNF4
    return LinearNF4.from_linear(lin)


def _tensor_bytes(module: nn.Module) -> tuple[int, list[str]]:
    """Bytes of every tensor the module holds (parameters, buffers and plain tensor attributes of it
    and its children), each storage counted once; plus the names of float tensors as large as W."""
    seen, total, big = set(), 0, []
    for mod_name, mod in module.named_modules():
        found = [(f"{mod_name}.{k}".lstrip("."), v) for k, v in vars(mod).items() if isinstance(v, torch.Tensor)]
        found += [(f"{mod_name}.{k}".lstrip("."), v) for k, v in mod._parameters.items() if v is not None]
        found += [(f"{mod_name}.{k}".lstrip("."), v) for k, v in mod._buffers.items() if v is not None]
        for name, t in found:
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key in seen:
                continue
            seen.add(key)
            total += storage.nbytes()
            if t.is_floating_point() and t.numel() >= 1000:
                big.append(f"{name} {tuple(t.shape)} {t.dtype}")
    return total, big


def test_forward_is_dequantise_then_linear(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        for n_in, n_out in SHAPES:
            lin = linear(g, n_in, n_out)
            x = torch.randn(3, 4, n_in, generator=g)
            want = torch.nn.functional.linear(x, _bnb_dequant(lin.weight), lin.bias).detach()
            layer = _nf4(copy_module(lin))
            what = f"LinearNF4.from_linear(nn.Linear({n_in}, {n_out}))"
            for attr, value in (("in_features", n_in), ("out_features", n_out)):
                expect_equal(getattr(layer, attr, None), value, what=f"{what}.{attr}")
            got = layer(x)
            expect_type(got, torch.Tensor, what=f"{what}(x {tuple(x.shape)})")
            check_close(got, want, what=f"{what}(x {tuple(x.shape)}) vs x · dequant(W)ᵀ + b (bitsandbytes' "
                        "NF4 round trip)", atol=ATOL, rtol=RTOL, diagnose=lambda got, want: (
                            "this is the unquantised layer's output: the weight must go through NF4"
                            if is_close(got, lin(x).detach(), atol=1e-6) else None))


def test_storage_half_a_byte_per_weight(seed):
    """Measured: the bytes of every tensor the layer holds, per weight of W (bias excluded)."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        n_in, n_out = 384, 96
        lin = linear(g, n_in, n_out)
        layer = _nf4(lin)
        del lin
        what = f"LinearNF4.from_linear(nn.Linear({n_in}, {n_out}))"
        total, big = _tensor_bytes(layer)
        if big:
            fail(f"{what} still holds full-precision tensors as large as the weight: {big[:3]}. "
                 "The base stores only the packed codes (uint8) and the block scales")
        per_weight = (total - 4 * n_out) / (n_in * n_out)             # the fp32 bias is not a weight
        # tolerance: codes 0.5 byte + fp32 scales 4/64 = 0.5625 byte per weight; the upper end leaves
        # room for a few small extras (a stored shape, the blocksize) but not for a second copy of W
        expect_between(per_weight, 0.5, 0.6, what=f"{what}: measured bytes per weight",
                       why="NF4 is 4 bits per weight plus one fp32 absmax per 64 weights: 0.5625 byte")


def _qlora(lin, r, alpha):
    LoRALinear = learner("lora_linear").LoRALinear
    return LoRALinear(_nf4(lin), r=r, alpha=alpha)


def test_qlora_forward_and_gradients(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        r, alpha = 8, 16.0
        for n_in, n_out in SHAPES:
            lin = linear(g, n_in, n_out)
            A = torch.randn(r, n_in, generator=g) / math.sqrt(n_in)
            B = torch.randn(n_out, r, generator=g) * 0.3
            x = torch.randn(6, n_in, generator=g)
            w_out = torch.randn(6, n_out, generator=g)
            Wq = _bnb_dequant(lin.weight)
            want = (torch.nn.functional.linear(x, Wq, lin.bias) + (alpha / r) * x @ A.T @ B.T).detach()
            want_gx = (w_out @ Wq + (alpha / r) * w_out @ B @ A).detach()      # ∂L/∂x through both paths
            layer = _qlora(copy_module(lin), r, alpha)
            what = f"LoRALinear(LinearNF4(nn.Linear({n_in}, {n_out})), r={r}, alpha={alpha:g})"
            adapter_of(layer, what, r, n_in, n_out)
            set_adapter(layer, A, B)
            expect_equal(sorted(trainable_names(layer)), ["A", "B"],
                         what=f"{what}: the parameters that require grad (the NF4 base must be frozen)")
            xg = x.clone().requires_grad_(True)
            got = layer(xg)
            expect_type(got, torch.Tensor, what=what)
            check_close(got, want, what=f"{what}: output vs dequantise-then-LoRA", atol=ATOL, rtol=RTOL)
            (got * w_out).sum().backward()
            base_grads = [n for n, p in layer.base.named_parameters() if p.grad is not None]
            if base_grads:
                fail(f"{what}: gradients reach the base ({base_grads}); only A and B may be trained")
            for name in ("A", "B"):
                expect(getattr(layer, name).grad is not None, f"{what}: {name}.grad is None after backward")
            expect(xg.grad is not None, f"{what}: no gradient reached the input x; the layers below "
                   "need it (dequantise with ordinary torch ops, do not detach x)")
            # tolerance: float32 products of width <= 192
            check_close(torch.Tensor.detach(xg.grad), want_gx, what=f"{what}: ∂L/∂x", atol=1e-4, rtol=1e-4)


def test_matches_bitsandbytes_linear4bit_under_peft(seed):
    """The same layer as bitsandbytes' Linear4bit wrapped by peft's LoRA (the QLoRA stack people use)."""
    import bitsandbytes as bnb
    from peft import LoraConfig
    from peft.tuners.lora.bnb import Linear4bit as PeftLoraLinear4bit
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        r, alpha = 4, 8.0
        n_in, n_out = SHAPES[1]
        lin = linear(g, n_in, n_out)
        A = torch.randn(r, n_in, generator=g) / math.sqrt(n_in)
        B = torch.randn(n_out, r, generator=g) * 0.3
        x = torch.randn(5, n_in, generator=g).requires_grad_(True)   # the training path of matmul_4bit
        q = bnb.nn.Linear4bit(n_in, n_out, bias=True, compute_dtype=torch.float32, quant_type="nf4")
        q.weight = bnb.nn.Params4bit(lin.weight.detach().clone(), requires_grad=False, quant_type="nf4",
                                     blocksize=64, compress_statistics=False)   # plain NF4, fp32 scales
        q.bias = nn.Parameter(lin.bias.detach().clone(), requires_grad=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = PeftLoraLinear4bit(q.to("cpu"), "default", config=LoraConfig(r=r, lora_alpha=alpha,
                                        lora_dropout=0.0), r=r, lora_alpha=alpha)
        with torch.no_grad():
            theirs.lora_A["default"].weight.copy_(A)
            theirs.lora_B["default"].weight.copy_(B)
        theirs.train()
        want = theirs(x).detach()
        layer = _qlora(copy_module(lin), r, alpha)
        what = f"LoRALinear(LinearNF4(nn.Linear({n_in}, {n_out})), r={r}, alpha={alpha:g})"
        adapter_of(layer, what, r, n_in, n_out)
        set_adapter(layer, A, B)
        got = layer(x)
        expect_type(got, torch.Tensor, what=what)
        expect_shape(got, tuple(want.shape), what=what)
        check_close(got, want, what=f"{what} vs peft's LoRA on bitsandbytes' Linear4bit", atol=ATOL, rtol=RTOL)
