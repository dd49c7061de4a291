"""Bonus checkpoint `swiglu`: the gated MLP down(silu(gate(x)) * up(x)), alone and in a block."""
import torch
import torch.nn.functional as F

from engine.gpt.block import Block as RefBlock, SwiGLU as RefSwiGLU
from gpt_check_utils import (HYPOTHESIS_TOL, expect_tensor, learner_config, load_reference_weights,
                             one_thread, randomize_, ref_config)
from grader.checks import check_close, expect_close, is_close
from grader.seam import learner

# tolerance: three float32 matmuls over <= 128 channels; correct code agrees to ~1e-6.
ATOL, RTOL = 1e-5, 1e-5


def test_swiglu(seed):
    with one_thread():
        torch.manual_seed(seed)
        ref_cfg = ref_config(mlp="swiglu", d_model=48, n_head=4)
        ref = randomize_(RefSwiGLU(ref_cfg), seed, std=0.1).eval()
        x = torch.randn(2, 7, 48)
        with torch.no_grad():
            want = ref(x)
            variants = [
                (ref.down(F.silu(ref.up(x)) * ref.gate(x)), "the SiLU goes on the gate branch: "
                 "down(silu(gate(x)) * up(x))"),
                (ref.down(F.gelu(ref.gate(x)) * ref.up(x)), "SwiGLU uses SiLU (x * sigmoid(x)), not GELU"),
                (ref.down(F.silu(ref.gate(x))), "the up branch is missing: multiply silu(gate(x)) by up(x)"),
            ]
        what = f"SwiGLU(d_model=48, hidden={ref_cfg.mlp_hidden}) on x (2, 7, 48)"
        mine = learner("block").SwiGLU(learner_config(mlp="swiglu", d_model=48, n_head=4))
        load_reference_weights(mine, ref.state_dict(), what)
        with torch.no_grad():
            got = mine.eval()(x.clone())
        expect_tensor(got, want.shape, what)

        def diagnose(got, want):
            return next((message for out, message in variants
                         if is_close(got, out, atol=HYPOTHESIS_TOL, rtol=HYPOTHESIS_TOL)), None)
        check_close(got, want, what=what, atol=ATOL, rtol=RTOL, diagnose=diagnose)


def test_block_with_swiglu(seed):
    with one_thread():
        torch.manual_seed(seed)
        ref = randomize_(RefBlock(ref_config(mlp="swiglu", d_model=32, n_head=2)), seed, std=0.1).eval()
        x = torch.randn(2, 9, 32)
        with torch.no_grad():
            want = ref(x)
        what = "Block(mlp='swiglu') on x (2, 9, 32)"
        mine = learner("block").Block(learner_config(mlp="swiglu", d_model=32, n_head=2))
        load_reference_weights(mine, ref.state_dict(), what)
        with torch.no_grad():
            got = mine.eval()(x.clone())
        expect_tensor(got, want.shape, what)
        expect_close(got, want, what=what, atol=ATOL, rtol=RTOL)
