"""Checkpoint `mha`: MultiHeadAttention with the reference's weights gives the reference's output.

The state_dict layout both share: q_proj, k_proj, v_proj (Linear C -> C), out_proj (Linear C -> C).
"""
import numpy as np
import torch

from engine.gpt.attention import MultiHeadAttention as RefMHA, scaled_dot_product_attention as ref_sdpa
from gpt_check_utils import (HYPOTHESIS_TOL, expect_tensor, learner_config, load_reference_weights,
                             one_thread, ref_config)
from grader.checks import (check_close, expect, expect_between, expect_finite, expect_type, is_close,
                           to_numpy)
from grader.seam import learner

# tolerance: two float32 matmul chains of depth 3 over <= 64 channels; different but correct code
# differs by ~1e-6, so 1e-5 abs + 1e-5 rel; every classic mistake moves outputs by >= 1e-2.
ATOL, RTOL = 1e-5, 1e-5

SHAPES = [  # (d_model, n_head, bias, B, T): heads of 8, 16 and 4 channels; a head count that is odd
    dict(d_model=32, n_head=4, bias=True, B=2, T=9),
    dict(d_model=48, n_head=3, bias=False, B=1, T=16),
    dict(d_model=64, n_head=8, bias=True, B=3, T=5),
]

MESSAGES = {
    "split0": "looks like the heads are split along the wrong axis: (B, T, C) must be viewed as "
              "(B, T, nh, hs) and then transposed to (B, nh, T, hs); viewing it directly as "
              "(B, nh, T, hs) mixes positions into heads",
    "split1": "looks like the heads are split along the wrong axis: head h owns the channels "
              "h*hs .. (h+1)*hs-1, so view as (B, T, nh, hs), not (B, T, hs, nh)",
    "merge": "looks like the heads are merged back wrongly: transpose (B, nh, T, hs) to (B, T, nh, hs) "
             "before reshaping to (B, T, C)",
    "nocausal": "looks like MultiHeadAttention is not causal: call your attention with causal=True",
    "noproj": "looks like the output projection (out_proj) is missing",
    "onehead": "looks like the input is not split into nh heads: attention runs as one head of size C",
}


def _variants(ref, x):
    """Outputs of classic wrong ways to split/merge heads, with the reference's own weights."""
    B, T, C = x.shape
    nh, hs = ref.n_head, ref.head_dim
    q, k, v = ref.q_proj(x), ref.k_proj(x), ref.v_proj(x)

    def heads_ok(t):
        return t.view(B, T, nh, hs).transpose(1, 2)

    def merge_ok(y):
        return y.transpose(1, 2).reshape(B, T, C)

    out = {}
    split_wrong = [lambda t: t.view(B, nh, T, hs),                               # reshape, no transpose
                   lambda t: t.view(B, T, hs, nh).permute(0, 3, 1, 2)]          # heads interleaved
    for i, split in enumerate(split_wrong):
        out[f"split{i}"] = ref.out_proj(merge_ok(ref_sdpa(split(q), split(k), split(v), True)))
    out["merge"] = ref.out_proj(ref_sdpa(heads_ok(q), heads_ok(k), heads_ok(v), True).reshape(B, T, C))
    out["nocausal"] = ref.out_proj(merge_ok(ref_sdpa(heads_ok(q), heads_ok(k), heads_ok(v), False)))
    out["noproj"] = merge_ok(ref_sdpa(heads_ok(q), heads_ok(k), heads_ok(v), True))
    one = lambda t: t.view(B, 1, T, C)                    # noqa: E731  one big head of size C
    out["onehead"] = ref.out_proj(ref_sdpa(one(q), one(k), one(v), True).reshape(B, T, C))
    return out


def test_matches_reference(seed):
    with one_thread():
        cases = []
        for i, s in enumerate(SHAPES):
            torch.manual_seed(seed + i)
            ref = RefMHA(ref_config(d_model=s["d_model"], n_head=s["n_head"], bias=s["bias"])).eval()
            x = torch.randn(s["B"], s["T"], s["d_model"])
            with torch.no_grad():
                cases.append((s, ref, x, ref(x), _variants(ref, x)))

        MHA = learner("attention").MultiHeadAttention
        for s, ref, x, want, variants in cases:
            what = (f"MultiHeadAttention(d_model={s['d_model']}, n_head={s['n_head']}, "
                    f"bias={s['bias']}) on x {tuple(x.shape)}")
            mine = MHA(learner_config(d_model=s["d_model"], n_head=s["n_head"], bias=s["bias"]))
            load_reference_weights(mine, ref.state_dict(), what)
            mine.eval()
            with torch.no_grad():
                got = mine(x.clone())
            expect_tensor(got, want.shape, what)

            def diagnose(got, want, variants=variants):
                return next((MESSAGES[name] for name, out in variants.items()
                             if is_close(got, out, atol=HYPOTHESIS_TOL, rtol=HYPOTHESIS_TOL)), None)
            check_close(got, want, what=what, atol=ATOL, rtol=RTOL, diagnose=diagnose)


def test_gradients_flow(seed):
    """Every projection takes part: a backward pass reaches all four weight matrices."""
    with one_thread():
        torch.manual_seed(seed)
        x = torch.randn(2, 6, 32, requires_grad=True)
        upstream = torch.randn(2, 6, 32)
        mine = learner("attention").MultiHeadAttention(learner_config(d_model=32, n_head=4))
        what = "MultiHeadAttention(d_model=32, n_head=4)(x)"
        out = mine(x)
        expect_tensor(out, (2, 6, 32), what)
        (out * upstream).sum().backward()
        for name, p in mine.named_parameters():
            expect(p.grad is not None, f"MultiHeadAttention: parameter {name} gets no gradient; is it "
                                       "used in forward (and not detached)?")
            expect_type(p.grad, torch.Tensor, what=f"{name}.grad")
            g = to_numpy(p.grad)
            expect_finite(g, what=f"{what}: gradient of {name}")
            expect_between(int(np.count_nonzero(g)), 1, None,
                           what=f"{what}: nonzero entries in the gradient of {name}",
                           why="is it used in forward (and not detached)?")
        expect(x.grad is not None, "MultiHeadAttention: no gradient reaches the input x")
        expect_between(int(np.count_nonzero(to_numpy(x.grad))), 1, None,
                       what=f"{what}: nonzero entries in the gradient of the input x",
                       why="the output must depend on the input through the projections")
