"""Bonus checkpoint `swiglu`: the gated MLP down(silu(gate(x)) * up(x)), alone and in a block."""
import torch
import torch.nn.functional as F

from engine.gpt.block import Block as RefBlock, SwiGLU as RefSwiGLU
from gpt_check_utils import allclose, configs, load_reference_weights, one_thread, randomize_
from grader.checks import expect_close, expect_shape, expect_type, fail
from grader.seam import learner

# tolerance: three float32 matmuls over <= 128 channels; correct code agrees to ~1e-6.
ATOL, RTOL = 1e-5, 1e-5


def test_swiglu(seed):
    with one_thread():
        torch.manual_seed(seed)
        ref_cfg, my_cfg = configs(mlp="swiglu", d_model=48, n_head=4)
        ref = randomize_(RefSwiGLU(ref_cfg), seed, std=0.1).eval()
        x = torch.randn(2, 7, 48)
        with torch.no_grad():
            want = ref(x)
            swapped = ref.down(F.silu(ref.up(x)) * ref.gate(x))
            gelu = ref.down(F.gelu(ref.gate(x)) * ref.up(x))
            ungated = ref.down(F.silu(ref.gate(x)))
        what = f"SwiGLU(d_model=48, hidden={ref_cfg.mlp_hidden}) on x (2, 7, 48)"
        mine = learner("block").SwiGLU(my_cfg)
        load_reference_weights(mine, ref.state_dict(), what)
        with torch.no_grad():
            got = mine.eval()(x.clone())
        expect_type(got, torch.Tensor, what=what)
        expect_shape(got, tuple(want.shape), what=what)
        if not allclose(got, want, ATOL, RTOL):
            for out, message in ((swapped, "the SiLU goes on the gate branch: down(silu(gate(x)) * up(x))"),
                                 (gelu, "SwiGLU uses SiLU (x * sigmoid(x)), not GELU"),
                                 (ungated, "the up branch is missing: multiply silu(gate(x)) by up(x)")):
                if allclose(got, out, 1e-4, 1e-4):
                    fail(f"{what}: {message}")
        expect_close(got, want, what=what, atol=ATOL, rtol=RTOL)


def test_block_with_swiglu(seed):
    with one_thread():
        torch.manual_seed(seed)
        ref_cfg, my_cfg = configs(mlp="swiglu", d_model=32, n_head=2)
        ref = randomize_(RefBlock(ref_cfg), seed, std=0.1).eval()
        x = torch.randn(2, 9, 32)
        with torch.no_grad():
            want = ref(x)
        what = "Block(mlp='swiglu') on x (2, 9, 32)"
        mine = learner("block").Block(my_cfg)
        load_reference_weights(mine, ref.state_dict(), what)
        with torch.no_grad():
            got = mine.eval()(x.clone())
        expect_close(got, want, what=what, atol=ATOL, rtol=RTOL)
