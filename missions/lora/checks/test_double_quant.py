"""Bonus checkpoint `double_quant`: the NF4 scales quantised again, against bitsandbytes
(quantize_4bit(..., compress_statistics=True): offset, second-level absmax, 8-bit codes).

bitsandbytes' CPU kernel finds the nearest 8-bit level with an approximate binary search: about 1
scale in 500 lands on a neighbour of the nearest level. So the codes are compared exactly with the
nearest level (computed here, the brief's rule), and with bitsandbytes' codes by agreement (>= 98 %)
and by value (a disagreeing pair of levels is never further apart than one step of the coarsest
decade, 0.9/64 of absmax2). Offset, second-level scales and the dequantised
scales are compared with bitsandbytes directly.
"""
import torch

from lora_check_utils import one_thread
from grader.checks import (as_float, check_close, expect_between, expect_close, expect_equal, expect_shape,
                           expect_type, fail, to_numpy)
from grader.seam import learner


def _case(seed, rows, cols):
    import bitsandbytes.functional as F
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g) * 0.02
    q, plain = F.quantize_4bit(w, blocksize=64, quant_type="nf4")
    _, nested = F.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=True)
    back = F.dequantize_blockwise(nested.absmax, nested.state2) + nested.offset
    return plain.absmax.clone(), nested, back


def _nearest(absmax, offset, absmax2, block=256):
    code = learner_free_dynamic_code()
    c = absmax - offset
    n = c.numel()
    nb = absmax2.numel()
    x = (torch.nn.functional.pad(c, (0, nb * block - n)).view(nb, block) * (1.0 / absmax2)[:, None]).reshape(-1)[:n]
    return torch.bucketize(x, (code[:-1] + code[1:]) / 2).to(torch.uint8)


def learner_free_dynamic_code():
    import bitsandbytes.functional as F
    return F.create_dynamic_map(signed=True)


def test_dynamic_code_is_bitsandbytes(seed):
    want = learner_free_dynamic_code()
    got = learner("double_quant").dynamic_code()
    expect_equal(got, want, what="dynamic_code() vs bitsandbytes.functional.create_dynamic_map(signed=True)")


def test_double_quantize(seed):
    with one_thread():
        cases = [_case(seed, 384, 64 * 24), _case(seed + 1, 96, 64 * 7)]    # 144 and 7 blocks of 256 scales (the last partial)
        dq = learner("double_quant")
        for absmax, nested, back in cases:
            n = absmax.numel()
            what = f"double_quantize(absmax of {n} blocks, blocksize=256)"
            out = dq.double_quantize(absmax.clone(), blocksize=256)
            if not isinstance(out, tuple) or len(out) != 3:
                fail(f"{what} should return (codes, absmax2, offset)")
            codes, absmax2, offset = out
            off = as_float(offset, what=f"{what}: offset")
            # tolerance: a mean of n fp32 numbers; summation order may move the last bits
            expect_close(off, float(nested.offset), what=f"{what}: offset (the mean of absmax)", atol=0.0, rtol=1e-6)
            expect_type(absmax2, torch.Tensor, what=f"{what}: absmax2")
            expect_shape(absmax2, tuple(nested.state2.absmax.shape), what=f"{what}: absmax2 (one per 256 scales)")
            # tolerance: max |absmax - offset| inherits the offset's last-bit freedom
            expect_close(absmax2, nested.state2.absmax, what=f"{what}: absmax2", atol=1e-9, rtol=1e-5)
            expect_type(codes, torch.Tensor, what=f"{what}: codes")
            if codes.dtype != torch.uint8:
                fail(f"{what}: codes should be uint8 (8 bits per scale), got {codes.dtype}")
            expect_shape(codes, (n,), what=f"{what}: codes")
            nearest = _nearest(absmax, torch.tensor(off), torch.Tensor.detach(absmax2).clone())
            expect_equal(codes, nearest, what=f"{what}: codes (the nearest level of dynamic_code(), ties low)")
            theirs = to_numpy(nested.absmax).astype(int)
            mine = to_numpy(codes).astype(int)
            agree = float((theirs == mine).mean())
            # tolerance: bitsandbytes' approximate search differs on 0.1-0.75 % of the scales (120 cases
            # measured); 2 % leaves room, and a wrong rounding rule disagrees on far more
            expect_between(agree, 0.98, 1.0, what=f"{what}: share of codes equal to bitsandbytes'",
                           why="bitsandbytes' approximate search differs on well under 1 % of the scales")
            levels = to_numpy(learner_free_dynamic_code())
            gap = float(abs(levels[theirs] - levels[mine]).max())
            # tolerance: one step of the top decade, 0.9/64 = 0.0140625, plus float slack
            expect_between(gap, 0.0, 0.0141, what=f"{what}: largest distance between your level and "
                           "bitsandbytes' (in units of absmax2)", why="a neighbouring level at most")


def test_double_dequantize(seed):
    with one_thread():
        cases = [_case(seed, 384, 64 * 24), _case(seed + 1, 96, 64 * 7)]
        dq = learner("double_quant")
        for absmax, nested, want in cases:
            what = f"double_dequantize(bitsandbytes' codes, absmax2, offset) for {absmax.numel()} scales"
            got = dq.double_dequantize(nested.absmax.clone(), nested.state2.absmax.clone(),
                                       nested.offset.clone(), blocksize=256)
            expect_type(got, torch.Tensor, what=what)
            # tolerance: code · absmax2 + offset, one float32 product and one sum per scale
            check_close(got, want, what=what, atol=1e-9, rtol=1e-6)
            # and the round trip is close to the original scales: one 8-bit level of the centred values
            expect_close(got, absmax, what=f"{what} vs the original absmax", atol=float(nested.state2.absmax.max()) * 0.02)
