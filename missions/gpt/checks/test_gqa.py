"""Bonus checkpoint `gqa`: grouped-query attention (n_kv_head < n_head), including multi-query
attention (n_kv_head = 1), with the reference's weights."""
import torch

from engine.gpt.attention import MultiHeadAttention as RefMHA, scaled_dot_product_attention as ref_sdpa
from gpt_check_utils import allclose, configs, load_reference_weights, one_thread
from grader.checks import expect_close, expect_shape, expect_type, fail
from grader.seam import learner

# tolerance: the same float32 attention as checkpoint mha: 1e-5 abs + 1e-5 rel.
ATOL, RTOL = 1e-5, 1e-5


def _round_robin(ref, x):
    """GQA with query head h reading kv head h % n_kv (tiled) instead of h // group (grouped)."""
    B, T, C = x.shape
    nh, nkv, hs = ref.n_head, ref.n_kv_head, ref.head_dim
    q = ref.q_proj(x).view(B, T, nh, hs).transpose(1, 2)
    k = ref.k_proj(x).view(B, T, nkv, hs).transpose(1, 2).repeat(1, nh // nkv, 1, 1)
    v = ref.v_proj(x).view(B, T, nkv, hs).transpose(1, 2).repeat(1, nh // nkv, 1, 1)
    return ref.out_proj(ref_sdpa(q, k, v, True).transpose(1, 2).reshape(B, T, C))


def test_grouped_query_attention(seed):
    with one_thread():
        cases = []
        for i, (C, nh, nkv) in enumerate([(32, 4, 2), (48, 6, 3), (32, 8, 1)]):
            torch.manual_seed(seed + i)
            ref_cfg, my_cfg = configs(d_model=C, n_head=nh, n_kv_head=nkv)
            ref = RefMHA(ref_cfg).eval()
            x = torch.randn(2, 10, C)
            with torch.no_grad():
                cases.append((C, nh, nkv, my_cfg, ref, x, ref(x), _round_robin(ref, x)))
        MHA = learner("attention").MultiHeadAttention
        for C, nh, nkv, my_cfg, ref, x, want, tiled in cases:
            what = f"MultiHeadAttention(d_model={C}, n_head={nh}, n_kv_head={nkv}) on x {tuple(x.shape)}"
            mine = MHA(my_cfg)
            load_reference_weights(mine, ref.state_dict(), what)
            with torch.no_grad():
                got = mine.eval()(x.clone())
            expect_type(got, torch.Tensor, what=what)
            expect_shape(got, tuple(want.shape), what=what)
            if allclose(got, tiled, 1e-4, 1e-4) and not allclose(got, want, ATOL, RTOL):
                fail(f"{what}: query heads are matched to kv heads round-robin (h % n_kv_head); the "
                     "convention is contiguous groups: query head h reads kv head h // (n_head // "
                     "n_kv_head), i.e. repeat_interleave, not repeat")
            expect_close(got, want, what=what, atol=ATOL, rtol=RTOL)
