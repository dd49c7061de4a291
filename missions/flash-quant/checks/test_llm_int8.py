"""Checkpoint `llm_int8` (bonus): LLM.int8()'s outlier split: input features with any |x| above the
threshold go through a float matmul, everything else through vector-wise int8."""
import numpy as np
import torch

from fq_check_utils import one_thread
from grader.checks import check_close, expect_between, expect_equal, expect_shape, expect_type, to_numpy
from grader.seam import learner


def _inputs(g, m=16, k=128, n=32, outliers=(5, 77), size=60.0):
    x = torch.randn(m, k, generator=g)
    x[:, list(outliers)] = size * torch.sign(torch.randn(m, len(outliers), generator=g)) \
        * (0.5 + torch.rand(m, len(outliers), generator=g))
    w = torch.randn(n, k, generator=g) * 0.05
    return x, w


def _vectorwise_int8(x, w):
    """One absmax scale per row of x and per output channel of w, int32 sums (float64 here)."""
    sx = x.abs().amax(dim=1) / 127
    sw = w.abs().amax(dim=1) / 127
    xq = torch.round(x / sx[:, None])
    wq = torch.round(w / sw[:, None])
    return (xq.double() @ wq.double().T) * sx.double()[:, None] * sw.double()[None, :]


def test_outlier_features(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        x, _ = _inputs(g, outliers=(3, 40, 41))
        x[7, 100] = -6.5                          # one value past the threshold makes a feature an outlier
        x[2, 90] = 5.9                            # just below it: not an outlier
        want = torch.zeros(128, dtype=torch.bool)
        want[[3, 40, 41, 100]] = True
        got = learner("outliers").outlier_features(x.clone(), 6.0)
        expect_equal(got, want, what="outlier_features(x (16, 128), threshold=6.0): True for the input "
                                     "features (columns of x) with any |x| > 6")


def test_split_matmul(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        x, w = _inputs(g)
        exact = x.double() @ w.double().T
        outl = (x.abs() > 6.0).any(dim=0)
        want = (x[:, outl].double() @ w[:, outl].double().T + _vectorwise_int8(x[:, ~outl], w[:, ~outl])).float()
        got = learner("outliers").int8_matmul_with_outliers(x.clone(), w.clone(), 6.0)
        what = "int8_matmul_with_outliers(x (16, 128) with 2 outlier features of ~60, w (32, 128), 6.0)"
        expect_type(got, torch.Tensor, what=what)
        expect_shape(got, (16, 32), what=what)
        # tolerance: float32 and float64 scale arithmetic may put a value sitting on a rounding tie into
        # neighbouring codes (rare); one code step of x times the largest |w|, twice, covers that
        # (~1e-2), while int8 without the split is off by ~0.3 here.
        atol = float(2 * (x[:, ~outl].abs().amax(dim=1) / 127).max() * w.abs().max())
        check_close(got, want, what=f"{what} (float part for outlier columns + vector-wise int8)",
                    atol=atol, rtol=1e-4,
                    diagnose=lambda got_, want_: (
                        "equals plain vector-wise int8 over all features: the outlier features were "
                        "not split off" if np.abs(to_numpy(got_) - to_numpy(_vectorwise_int8(x, w).float())).max() < atol
                        else None))
        err = float(np.abs(to_numpy(got) - to_numpy(exact.float())).max())
        plain = float(np.abs(to_numpy(_vectorwise_int8(x, w)) - to_numpy(exact)).max())
        expect_between(err, 0.0, plain / 10, what=f"{what}: max error against the float product",
                       why=f"plain int8 is off by {plain:.3g}; keeping the outliers in float should cut that "
                           "at least tenfold")
