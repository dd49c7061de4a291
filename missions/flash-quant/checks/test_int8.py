"""Checkpoint `int8`: absmax and zero-point quantisation per tensor / output channel / group, their
error bounds, the int8 matmul with int32 accumulation, and an int8 linear layer."""
import numpy as np
import torch

from fq_check_utils import close, one_thread
from grader.checks import (check_close, expect_between, expect_equal, expect_shape, expect_type, fail,
                           to_numpy)
from grader.seam import learner

# tolerance: a scale is one float32 division of a max by 127 (or 255): ~1 ulp apart however it is
# written; a wrong statistic (mean, wrong axis) is off by 2x or more.
SCALE_RTOL = 1e-6
# tolerance: |w - dequantised| <= scale/2 holds exactly in real arithmetic; float32 rounding of
# w/scale and q·scale adds ~1e-7 relative, so allow 0.5 + 1e-4 steps (a wrong rounding or a clipped
# value costs a whole step or more).
HALF_STEP = 0.5 + 1e-4
GRANULARITIES = [("tensor", None, ()), ("channel", None, ("out",)), ("group", 16, ("out", "groups"))]


def _scale_shape(w, granularity, group):
    return {"tensor": (), "channel": (w.size(0),), "group": (w.size(0), w.size(1) // (group or 1))}[granularity]


def _shared(w, op, granularity, group):
    if granularity == "tensor":
        return getattr(w, op)()
    if granularity == "channel":
        return getattr(w, op)(dim=1)
    return getattr(w.reshape(w.size(0), -1, group), op)(dim=-1)


def _expand(s, shape):
    s = torch.as_tensor(s)
    if s.dim() == 0:
        return s.expand(shape)
    if s.dim() == 1:
        return s[:, None].expand(shape)
    return s.repeat_interleave(shape[1] // s.size(1), dim=1)


def _weight(g, out=24, inp=64):
    """Rows of very different sizes and a few outliers: every granularity gets different scales."""
    w = torch.randn(out, inp, generator=g) * (2.0 ** torch.arange(out) % 7)[:, None].clamp(min=0.25)
    w[int(torch.randint(0, out, (1,), generator=g)), int(torch.randint(0, inp, (1,), generator=g))] = 30.0
    return w


def _scale_diagnose(w, granularity, group, levels):
    def diagnose(got, want):
        mean = _shared(w.abs(), "mean", granularity, group) / levels
        if close(got, mean, atol=0.0, rtol=1e-4):
            return ("the scale looks like mean(|w|) / qmax: use the absmax (the largest |w|), or every "
                    "value above the mean is clipped")
        if granularity == "channel" and w.size(0) == w.size(1):
            if close(got, w.abs().amax(dim=0) / levels, atol=0.0, rtol=1e-4):
                return ("per-channel scales over the wrong axis: an output channel is a ROW of the "
                        "(out_features, in_features) weight, so reduce over dim=1 (the inputs)")
        return None
    return diagnose


def _check_scale_shape(scale, w, granularity, group, what):
    expect_type(scale, torch.Tensor, what=f"{what} -> scale")
    want = _scale_shape(w, granularity, group)
    if granularity == "channel" and tuple(scale.shape) == (w.size(1),) and w.size(0) != w.size(1):
        fail(f"{what} -> scale has shape {tuple(scale.shape)}, one per INPUT feature: per-channel scales "
             f"over the wrong axis (one per output channel = per row: shape {want})")
    expect_shape(scale, want, what=f"{what} -> scale")


def _check_bound(w, deq, scale, what):
    """max |w - dequantised| / scale <= 1/2 for every element."""
    err = np.abs(to_numpy(w) - to_numpy(deq)) / to_numpy(_expand(scale, tuple(w.shape)))
    expect_between(float(err.max()), 0.0, HALF_STEP, what=f"{what}: max |w - dequantize(...)| in steps of scale",
                   why="round to the nearest code: no value may be off by more than half a step")


def test_absmax(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        mod = learner("quantize")
        for bits in (8, 4):
            w = _weight(g)
            for granularity, group, _ in GRANULARITIES:
                what = f"absmax_quantize(w (24, 64), bits={bits}, granularity={granularity!r}, group_size={group})"
                want_scale = _shared(w.abs(), "amax", granularity, group) / (2 ** (bits - 1) - 1)
                out = mod.absmax_quantize(w.clone(), bits=bits, granularity=granularity, group_size=group)
                if not (type(out) is tuple and len(out) == 2):
                    fail(f"{what}: expected a tuple (q, scale), got {type(out).__name__}")
                q, scale = out
                expect_type(q, torch.Tensor, what=f"{what} -> q")
                if q.dtype != torch.int8:
                    fail(f"{what} -> q: expected dtype torch.int8, got {q.dtype}")
                expect_shape(q, tuple(w.shape), what=f"{what} -> q")
                _check_scale_shape(scale, w, granularity, group, what)
                check_close(scale, want_scale, what=f"{what} -> scale (absmax / {2 ** (bits - 1) - 1})",
                            atol=0.0, rtol=SCALE_RTOL,
                            diagnose=_scale_diagnose(w, granularity, group, 2 ** (bits - 1) - 1))
                qn = to_numpy(q)
                expect_between(float(np.abs(qn).max()), 0, 2 ** (bits - 1) - 1,
                               what=f"{what} -> max |q|", why="symmetric codes live in [-qmax, qmax]")
                deq = mod.dequantize(q, scale)
                expect_type(deq, torch.Tensor, what=f"dequantize(q, scale) after {what}")
                check_close(deq, q.float() * _expand(scale, tuple(w.shape)), what=f"dequantize(q, scale) "
                            f"after {what} (q · scale)", atol=0.0, rtol=1e-6)
                _check_bound(w, deq, scale, what)


def test_per_channel_axis_on_a_square_weight(seed):
    """Square, with rows and columns of very different sizes: the wrong axis cannot hide in the shape."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(32, 32, generator=g) * torch.logspace(-1, 1, 32)[:, None] \
            * torch.logspace(1, -1, 32)[torch.randperm(32, generator=g)][None, :]
        mod = learner("quantize")
        what = "absmax_quantize(w (32, 32), bits=8, granularity='channel')"
        q, scale = mod.absmax_quantize(w.clone(), bits=8, granularity="channel")
        _check_scale_shape(scale, w, "channel", None, what)
        check_close(scale, w.abs().amax(dim=1) / 127, what=f"{what} -> scale", atol=0.0, rtol=SCALE_RTOL,
                    diagnose=_scale_diagnose(w, "channel", None, 127))
        what = "zeropoint_quantize(w (32, 32), bits=8, granularity='channel')"
        q, scale, zero = mod.zeropoint_quantize(w.clone(), bits=8, granularity="channel")
        lo, hi = w.amin(dim=1).clamp(max=0), w.amax(dim=1).clamp(min=0)

        def diagnose(got, want):
            lo0, hi0 = w.amin(dim=0).clamp(max=0), w.amax(dim=0).clamp(min=0)
            if close(got, (hi0 - lo0) / 255, atol=0.0, rtol=1e-4):
                return ("per-channel scales over the wrong axis: an output channel is a ROW of the "
                        "(out_features, in_features) weight, so reduce over dim=1")
            return None
        expect_type(scale, torch.Tensor, what=f"{what} -> scale")
        check_close(scale, (hi - lo) / 255, what=f"{what} -> scale ((hi - lo) / 255)", atol=0.0,
                    rtol=SCALE_RTOL, diagnose=diagnose)


def _zeropoint_rows(g):
    """Rows whose -lo/scale is 100.7, 50.3, 200.5 ± 0.2 …: rounding, floor and ceil all differ there.
    Each row holds its exact min and max, some exact zeros, and values in between."""
    rows, zeros = [], []
    for frac_code, step in [(100.7, 0.01), (50.3, 0.02), (180.6, 0.004), (20.2, 0.1)]:
        lo, hi = -frac_code * step, (255 - frac_code) * step
        r = lo + torch.rand(64, generator=g) * (hi - lo)
        r[0], r[1], r[2], r[3] = lo, hi, 0.0, 0.0
        rows.append(r)
        zeros.append(int(round(frac_code)))
    r = torch.rand(64, generator=g) * 3.0 + 0.5                   # all positive: lo = 0, zero = 0
    r[5] = 0.0
    rows.append(r)
    zeros.append(0)
    r = -torch.rand(64, generator=g) * 2.0 - 0.1                  # all negative: hi = 0, zero = 255
    rows.append(r)
    zeros.append(255)
    return torch.stack(rows), torch.tensor(zeros, dtype=torch.int32)


def test_zeropoint(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        mod = learner("quantize")
        w, want_zero = _zeropoint_rows(g)
        what = "zeropoint_quantize(w (6, 64), bits=8, granularity='channel')"
        out = mod.zeropoint_quantize(w.clone(), bits=8, granularity="channel")
        if not (type(out) is tuple and len(out) == 3):
            fail(f"{what}: expected a tuple (q, scale, zero), got {type(out).__name__}")
        q, scale, zero = out
        expect_type(q, torch.Tensor, what=f"{what} -> q")
        if q.dtype != torch.uint8:
            fail(f"{what} -> q: expected dtype torch.uint8 (codes 0 … 255), got {q.dtype}")
        expect_shape(q, tuple(w.shape), what=f"{what} -> q")
        _check_scale_shape(scale, w, "channel", None, what)
        lo, hi = w.amin(dim=1).clamp(max=0), w.amax(dim=1).clamp(min=0)
        check_close(scale, (hi - lo) / 255, what=f"{what} -> scale ((hi - lo) / 255)", atol=0.0, rtol=SCALE_RTOL)
        expect_type(zero, torch.Tensor, what=f"{what} -> zero")
        if zero.dtype != torch.int32:
            fail(f"{what} -> zero: expected dtype torch.int32, got {zero.dtype}")
        frac = -lo / ((hi - lo) / 255)
        if not close(zero.double(), want_zero.double(), atol=0.0):
            if close(zero.double(), frac.floor().clamp(0, 255).double(), atol=0.0):
                fail(f"{what} -> zero: got {zero.tolist()}, expected {want_zero.tolist()} (-lo/scale = "
                     f"{[round(float(f), 2) for f in frac]}): the zero point is rounded down (floor or "
                     "int() truncation); round it to the nearest integer")
            if close(zero.double(), frac.ceil().clamp(0, 255).double(), atol=0.0):
                fail(f"{what} -> zero: got {zero.tolist()}, expected {want_zero.tolist()}: the zero point "
                     "is rounded up (ceil); round it to the nearest integer")
            if close(zero.double(), (-want_zero).double(), atol=0.0):
                fail(f"{what} -> zero: got {zero.tolist()}: the zero point has the wrong sign; it is "
                     "round(-lo / scale), the code of the real number 0")
        expect_equal(zero, want_zero, what=f"{what} -> zero (round(-lo / scale))")
        deq = mod.dequantize(q, scale, zero)
        expect_type(deq, torch.Tensor, what=f"dequantize(q, scale, zero) after {what}")
        expect_equal(deq[w == 0], torch.zeros(int((w == 0).sum())),
                     what=f"dequantize(q, scale, zero) after {what}: the exact zeros of w (0.0 must be "
                          "stored exactly: that is what the integer zero point is for)")
        _check_bound(w, deq, scale, what)
        for granularity, group, _ in GRANULARITIES:
            w2 = _weight(g)
            what2 = f"zeropoint_quantize(w (24, 64), bits=4, granularity={granularity!r}, group_size={group})"
            q2, s2, z2 = mod.zeropoint_quantize(w2.clone(), bits=4, granularity=granularity, group_size=group)
            _check_scale_shape(s2, w2, granularity, group, what2)
            expect_between(float(to_numpy(q2).max()), 0, 15, what=f"{what2} -> max q", why="4-bit codes are 0 … 15")
            _check_bound(w2, mod.dequantize(q2, s2, z2), s2, what2)


def test_int8_matmul_accumulates_in_int32(seed):
    """K = 4096 products of about 127 · 120: the sums pass 2^24, where float32 stops counting by ones,
    and 2^15, where int16 wraps. Only an int32 (or wider) accumulator gets every digit."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        m, n, k = 3, 4, 4096
        a = torch.randint(-127, 128, (m, k), generator=g, dtype=torch.int64)
        a[0] = 127
        b = torch.randint(101, 128, (n, k), generator=g, dtype=torch.int64)
        b[:, -1] += (b.sum(dim=1) % 2 == 0).long() * torch.where(b[:, -1] < 127, 1, -1)   # odd sums
        want = (a @ b.T).to(torch.int32)
        got = learner("quantize").int8_matmul(a.to(torch.int8), b.to(torch.int8))
        what = "int8_matmul(a (3, 4096) int8, b (4, 4096) int8)"
        expect_type(got, torch.Tensor, what=what)
        if got.dtype != torch.int32:
            fail(f"{what}: expected dtype torch.int32 (exact integer sums), got {got.dtype}")
        expect_shape(got, (m, n), what=what)
        if not close(got.double(), want.double(), atol=0.0):
            f32 = (a.float() @ b.float().T)
            if close(got.double(), f32.double(), atol=0.0):
                fail(f"{what}: the sums are off by a few units, as float32 accumulation gives above 2^24: "
                     "accumulate in int32 (a.to(torch.int32) @ b.to(torch.int32).T)")
        expect_equal(got, want, what=f"{what} (exact int32 sums)")


def _codes_and_scales(g, m, k):
    """x = (code + δ) · s with |δ| <= 0.4 and one code of exactly 127 per row: round(x / s) is the same
    however the division is written (no value near a .5 tie)."""
    s = torch.rand(m, generator=g) * 0.05 + 0.01
    codes = torch.randint(-126, 127, (m, k), generator=g)
    codes[:, int(torch.randint(0, k, (1,), generator=g))] = 127
    delta = (torch.rand(m, k, generator=g) - 0.5) * 0.8
    delta[codes.abs() == 127] = 0.0
    return ((codes + delta) * s[:, None]).float(), codes, s


def test_quantized_linear_equals_dequantise_then_matmul(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        m, n, k = 6, 10, 256
        x, x_codes, x_scale = _codes_and_scales(g, m, k)
        w, w_codes, w_scale = _codes_and_scales(g, n, k)
        w_q = w_codes.to(torch.int8)
        w_scale32 = (w.abs().amax(dim=1) / 127).float()
        want = ((x_codes.double() * (x.abs().amax(dim=1) / 127).double()[:, None])
                @ (w_codes.double() * w_scale32.double()[:, None]).T).float()
        got = learner("quantize").quantized_linear(x.clone(), w_q, w_scale32)
        what = "quantized_linear(x (6, 256) float32, w_q (10, 256) int8, w_scale (10,))"
        expect_type(got, torch.Tensor, what=what)
        expect_shape(got, (m, n), what=what)
        # tolerance: the int32 sums are exact; two float32 scale multiplications add ~2e-7 relative
        check_close(got, want, what=f"{what} (= dequantise x and w, then matmul)", atol=1e-5, rtol=1e-5,
                    diagnose=lambda got_, want_: (
                        "close to the float product but not to the dequantised one: is x quantised per "
                        "row with absmax / 127 (one scale per token)?"
                        if close(got_, x @ (w_codes.float() * w_scale32[:, None]).T, atol=1e-3, rtol=1e-3)
                        else None))
