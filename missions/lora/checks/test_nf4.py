"""Checkpoint `nf4`: blockwise absmax NF4 quantisation, bit for bit against bitsandbytes on CPU.

bitsandbytes.functional.quantize_4bit(w, blocksize=64, quant_type="nf4") gives the packed codes and
the per-block absmax; dequantize_4bit the weights back. Codes, scales and dequantised weights must be
EQUAL, not close: the recipe leaves no freedom (brief, section 5).

Two notes on bitsandbytes 0.50's CPU kernels that shape these checks:
- quantize divides a block by its absmax as w · (1/absmax); w / absmax can differ in the last bit,
  and a last bit can move a value across a decision boundary. The inputs below are drawn so that no
  value lies within 1e-6 of a boundary under either rounding, so both ways of writing it are right.
- the CPU dequantize_4bit is wrong when the last dimension is not a multiple of the block size (it
  assumes blocks never straddle rows); there the expected weights are NF4[code] · absmax computed
  here from bitsandbytes' own codes.
"""
import math

import torch

from lora_check_utils import one_thread
from grader.checks import check_close, expect_close, expect_equal, expect_shape, expect_type, fail, is_close
from grader.seam import learner

BLOCK = 64
# (shape): rows of 2·64, of 3·64 and of 64 (aligned, like every layer of MiniLM and GPT-2); then a
# 7 × 50 = 350 weights (blocks straddle rows, a last block of 30, an even count) and 3·5·9 = 135
# (odd: the last byte holds one code and the pad)
SHAPES = [(24, 128), (10, 192), (9, 64), (7, 50), (3, 5, 9)]


def _bnb():
    import bitsandbytes.functional as F
    return F


def _code():
    from bitsandbytes.backends.utils import _get_4bit_code
    return _get_4bit_code("nf4", torch.device("cpu"))


def _safe(w: torch.Tensor, code: torch.Tensor) -> bool:
    """True if no value of w lies within 1e-6 of an NF4 decision boundary (after scaling by its block's
    absmax, whether written w·(1/absmax) or w/absmax)."""
    flat = w.reshape(-1)
    n = flat.numel()
    nb = math.ceil(n / BLOCK)
    blocks = torch.nn.functional.pad(flat, (0, nb * BLOCK - n)).view(nb, BLOCK)
    am = blocks.abs().amax(1, keepdim=True).clamp(min=1e-38)
    mid = (code[:-1] + code[1:]) / 2
    for x in (blocks * (1.0 / am), blocks / am):
        if (x.reshape(-1)[:n, None] - mid).abs().min() < 1e-6:
            return False
    return True


def _weights(seed, shape, code):
    """Normal weights with a few outliers and one all-zero block when there is room for one."""
    g = torch.Generator().manual_seed(seed)
    while True:
        w = torch.randn(shape, generator=g) * 0.02
        flat = w.view(-1)
        flat[torch.randint(0, flat.numel(), (3,), generator=g)] *= 40      # outliers: one per block at most
        if flat.numel() >= 4 * BLOCK:
            flat[BLOCK:2 * BLOCK] = 0.0                                     # an all-zero block
        if _safe(w, code):
            return w


def _swap_nibbles(p):
    return ((p & 0x0F) << 4) | (p >> 4)


def test_codebook(seed):
    """nf4_code() rebuilds the 16 levels from normal quantiles (brief, section 5)."""
    want = _code()
    got = learner("nf4").nf4_code()
    what = "nf4_code()"
    expect_type(got, torch.Tensor, what=what)
    expect_shape(got, (16,), what=what)
    if got.dtype != torch.float32:
        fail(f"{what}: expected float32 levels, got {got.dtype}")
    # tolerance: the levels are quantiles of N(0, 1) rounded to float32; scipy (bitsandbytes' table) and
    # torch's icdf in float64 then rounded agree to ~2e-7
    check_close(got, want, what=what, atol=5e-7, diagnose=lambda got, want: (
        "looks unsorted: return the levels from -1 to 1" if is_close(got.sort().values, want, atol=5e-7)
        else "looks symmetric (8 levels each side, no exact 0): NF4 has 7 negative levels, 0, and 8 "
             "positive ones" if is_close(got, -got.flip(0), atol=1e-6) else None))


def test_quantize_equals_bitsandbytes(seed):
    F = _bnb()
    code = _code()
    with one_thread():
        cases = []
        for i, shape in enumerate(SHAPES):
            w = _weights(seed * 31 + i, shape, code)
            q, state = F.quantize_4bit(w, blocksize=BLOCK, quant_type="nf4")
            cases.append((w, q.reshape(-1).clone(), state.absmax.clone()))
        quantize = learner("nf4").quantize_nf4
        for w, want_packed, want_absmax in cases:
            n = w.numel()
            what = f"quantize_nf4(w {tuple(w.shape)}, blocksize=64)"
            out = quantize(w.clone(), blocksize=BLOCK)
            if not isinstance(out, tuple) or len(out) != 2:
                fail(f"{what} should return a pair (packed, absmax), got {type(out).__name__}")
            packed, absmax = out
            expect_type(absmax, torch.Tensor, what=f"{what}: absmax")
            n_blocks = math.ceil(n / BLOCK)
            if absmax.numel() == 1 or (absmax.numel() == n_blocks and n_blocks > 1 and
                                       is_close(absmax, torch.full((n_blocks,), float(w.abs().max())), atol=0.0)):
                fail(f"{what}: absmax over the whole tensor instead of per block: expected one scale per "
                     f"block of 64 consecutive weights, {n_blocks} of them; a single outlier would otherwise "
                     "set the scale for every weight")
            expect_shape(absmax, (n_blocks,), what=f"{what}: absmax (one per block of 64)")
            expect_equal(absmax, want_absmax, what=f"{what}: absmax")
            expect_type(packed, torch.Tensor, what=f"{what}: packed")
            if packed.dtype != torch.uint8:
                fail(f"{what}: packed should be uint8 (two 4-bit codes per byte), got {packed.dtype}")
            if packed.numel() == n:
                fail(f"{what}: packed has one byte per weight ({n}); NF4 packs two 4-bit codes per byte: "
                     f"{(n + 1) // 2} bytes")
            expect_shape(packed, ((n + 1) // 2,), what=f"{what}: packed (a flat uint8 tensor of ceil(n/2) bytes)")
            if not is_close(packed, want_packed, atol=0.0):
                if is_close(_swap_nibbles(packed), want_packed, atol=0.0):
                    fail(f"{what}: nibbles in the wrong order: the FIRST code of each pair goes in the HIGH "
                         "nibble, byte = code[2i] << 4 | code[2i+1] (bitsandbytes' layout)")
                uniform = torch.bucketize(_scaled(w, want_absmax), torch.linspace(-1, 1, 16)[:-1] + 1 / 15)
                if is_close(_unpack(packed, n), uniform, atol=0.0):
                    fail(f"{what}: the codes are those of 16 evenly spaced levels; NF4's levels are the "
                         "normal quantiles of the NF4 table (dense near 0, sparse near ±1)")
            expect_equal(packed, want_packed, what=f"{what}: packed codes")


def _scaled(w, absmax):
    n = w.numel()
    nb = absmax.numel()
    blocks = torch.nn.functional.pad(w.reshape(-1), (0, nb * BLOCK - n)).view(nb, BLOCK)
    return (blocks * (1.0 / absmax.clamp(min=1e-38))[:, None]).reshape(-1)[:n]


def _unpack(p, n):
    return torch.stack([p >> 4, p & 0x0F], 1).reshape(-1)[:n].long()


def test_dequantize_equals_bitsandbytes(seed):
    F = _bnb()
    code = _code()
    with one_thread():
        cases = []
        for i, shape in enumerate(SHAPES):
            w = _weights(seed * 31 + i, shape, code)
            q, state = F.quantize_4bit(w, blocksize=BLOCK, quant_type="nf4")
            if shape[-1] % BLOCK == 0:
                want = F.dequantize_4bit(q, state)
            else:    # see the module docstring: NF4[code] · absmax from bitsandbytes' own codes
                n = w.numel()
                vals = torch.nn.functional.pad(code[_unpack(q.reshape(-1), n)], (0, state.absmax.numel() * BLOCK - n))
                want = (vals.view(-1, BLOCK) * state.absmax[:, None]).reshape(-1)[:n].reshape(shape)
            cases.append((shape, q.reshape(-1).clone(), state.absmax.clone(), want))
        dequantize = learner("nf4").dequantize_nf4
        for shape, packed, absmax, want in cases:
            what = f"dequantize_nf4(bitsandbytes' packed codes and absmax, shape={shape}, blocksize=64)"
            got = dequantize(packed.clone(), absmax.clone(), shape, blocksize=BLOCK)
            expect_type(got, torch.Tensor, what=what)
            expect_shape(got, shape, what=what)
            if got.dtype != torch.float32:
                fail(f"{what}: expected float32, got {got.dtype}")
            n = math.prod(shape)
            swapped = torch.nn.functional.pad(_code()[_unpack(_swap_nibbles(packed), n)],
                                              (0, absmax.numel() * BLOCK - n))
            swapped = (swapped.view(-1, BLOCK) * absmax[:, None]).reshape(-1)[:n].reshape(shape)
            # tolerance: none. NF4[code] · absmax is one float32 product per weight
            check_close(got, want, what=what, atol=0.0, diagnose=lambda got, want: (
                "nibbles in the wrong order: the first weight of each pair is in the HIGH nibble"
                if is_close(got, swapped, atol=0.0) else None))
