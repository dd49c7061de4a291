"""Bonus checkpoint `rmsnorm`: RMSNorm by hand, then a block and a model with norm="rmsnorm"."""
import torch

from engine.gpt.block import Block as RefBlock
from engine.gpt.norm import RMSNorm as RefRMSNorm
from gpt_check_utils import allclose, configs, load_reference_weights, one_thread, randomize_
from grader.checks import expect_close, expect_shape, expect_type, fail
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
        centred = ref(x - x.mean(-1, keepdim=True))
        wrong_dim = x * torch.rsqrt(x.pow(2).mean(-2, keepdim=True) + 1e-5) * w
        eps_out = x / (x.pow(2).mean(-1, keepdim=True).sqrt() + 1e-5) * w
    what = "RMSNorm(24) on x (3, 7, 24)"
    mine = learner("norm").RMSNorm(24, 1e-5)
    load_reference_weights(mine, ref.state_dict(), what)
    with torch.no_grad():
        got = mine(x.clone())
    expect_type(got, torch.Tensor, what=what)
    expect_shape(got, tuple(x.shape), what=what)
    if not allclose(got, want, ATOL, RTOL):
        for out, message in ((centred, "looks like the mean is subtracted: RMSNorm does not centre, it "
                              "only divides by sqrt(mean(x^2) + eps)"),
                             (wrong_dim, "looks like the mean of squares is over the wrong dimension "
                              "(it is the last one, the C channels)"),
                             (eps_out, "eps goes inside the square root: x / sqrt(mean(x^2) + eps)")):
            if allclose(got, out, 1e-4, 1e-4):
                fail(f"{what}: {message}")
    expect_close(got, want, what=what, atol=ATOL, rtol=RTOL)


def test_block_with_rmsnorm(seed):
    with one_thread():
        torch.manual_seed(seed)
        ref_cfg, my_cfg = configs(norm="rmsnorm", d_model=32, n_head=4)
        ref = randomize_(RefBlock(ref_cfg), seed, std=0.1).eval()
        x = torch.randn(2, 9, 32)
        with torch.no_grad():
            want = ref(x)
        what = "Block(norm='rmsnorm') on x (2, 9, 32)"
        mine = learner("block").Block(my_cfg)
        load_reference_weights(mine, ref.state_dict(), what)
        with torch.no_grad():
            got = mine.eval()(x.clone())
        expect_close(got, want, what=what, atol=ATOL, rtol=RTOL)
