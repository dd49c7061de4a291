"""Bonus checkpoint `rmsnorm`: RMSNorm by hand, then a block and a model with norm="rmsnorm"."""
import torch

from engine.gpt.block import Block as RefBlock
from engine.gpt.norm import RMSNorm as RefRMSNorm
from gpt_check_utils import (HYPOTHESIS_TOL, expect_tensor, learner_config, load_reference_weights,
                             one_thread, randomize_, ref_config)
from grader.checks import check_close, expect_close, is_close
from grader.seam import learner

# tolerance: float32 mean of squares over <= 48 channels; correct code agrees to ~1e-6.
ATOL, RTOL = 1e-5, 1e-5


def test_rmsnorm(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 7, 24, generator=g) * 2 + 1
    w = 1 + torch.randn(24, generator=g) * 0.5
    ref = RefRMSNorm(24, 1e-5)
    ref.load_state_dict({"weight": w})
    with torch.no_grad():
        want = ref(x)
        variants = [
            (ref(x - x.mean(-1, keepdim=True)), "looks like the mean is subtracted: RMSNorm does not "
             "centre, it only divides by sqrt(mean(x^2) + eps)"),
            (x * torch.rsqrt(x.pow(2).mean(-2, keepdim=True) + 1e-5) * w, "looks like the mean of "
             "squares is over the wrong dimension (it is the last one, the C channels)"),
            (x / (x.pow(2).mean(-1, keepdim=True).sqrt() + 1e-5) * w, "eps goes inside the square "
             "root: x / sqrt(mean(x^2) + eps)"),
        ]
    what = "RMSNorm(24) on x (3, 7, 24)"
    mine = learner("norm").RMSNorm(24, 1e-5)
    load_reference_weights(mine, ref.state_dict(), what)
    with torch.no_grad():
        got = mine(x.clone())
    expect_tensor(got, x.shape, what)

    def diagnose(got, want):
        return next((message for out, message in variants
                     if is_close(got, out, atol=HYPOTHESIS_TOL, rtol=HYPOTHESIS_TOL)), None)
    check_close(got, want, what=what, atol=ATOL, rtol=RTOL, diagnose=diagnose)


def test_block_with_rmsnorm(seed):
    with one_thread():
        torch.manual_seed(seed)
        ref = randomize_(RefBlock(ref_config(norm="rmsnorm", d_model=32, n_head=4)), seed, std=0.1).eval()
        x = torch.randn(2, 9, 32)
        with torch.no_grad():
            want = ref(x)
        what = "Block(norm='rmsnorm') on x (2, 9, 32)"
        mine = learner("block").Block(learner_config(norm="rmsnorm", d_model=32, n_head=4))
        load_reference_weights(mine, ref.state_dict(), what)
        with torch.no_grad():
            got = mine.eval()(x.clone())
        expect_tensor(got, want.shape, what)
        expect_close(got, want, what=what, atol=ATOL, rtol=RTOL)
