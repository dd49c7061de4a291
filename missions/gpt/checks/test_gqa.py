"""Bonus checkpoint `gqa`: grouped-query attention (n_kv_head < n_head), including multi-query
attention (n_kv_head = 1), with the reference's weights; then a GQA model decoding with a KV cache
(the cache holds n_kv_head heads; heads are expanded in contiguous groups on every path)."""
import torch

from engine.gpt.attention import MultiHeadAttention as RefMHA, scaled_dot_product_attention as ref_sdpa
from engine.gpt.model import GPT as RefGPT
from gpt_check_utils import (HYPOTHESIS_TOL, decode_and_compare, expect_tensor, learner_config,
                             load_reference_weights, one_thread, randomize_, ref_config, round_robin_twin)
from grader.checks import check_close, is_close
from grader.seam import learner

# tolerance: the same float32 attention as checkpoint mha: 1e-5 abs + 1e-5 rel.
ATOL, RTOL = 1e-5, 1e-5

ROUND_ROBIN = ("query heads are matched to kv heads round-robin (h % n_kv_head); the convention is "
               "contiguous groups: query head h reads kv head h // (n_head // n_kv_head), i.e. "
               "repeat_interleave, not repeat")


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
            ref = RefMHA(ref_config(d_model=C, n_head=nh, n_kv_head=nkv)).eval()
            x = torch.randn(2, 10, C)
            with torch.no_grad():
                cases.append((C, nh, nkv, ref, x, ref(x), _round_robin(ref, x)))
        MHA = learner("attention").MultiHeadAttention
        for C, nh, nkv, ref, x, want, tiled in cases:
            what = f"MultiHeadAttention(d_model={C}, n_head={nh}, n_kv_head={nkv}) on x {tuple(x.shape)}"
            mine = MHA(learner_config(d_model=C, n_head=nh, n_kv_head=nkv))
            load_reference_weights(mine, ref.state_dict(), what)
            with torch.no_grad():
                got = mine.eval()(x.clone())
            expect_tensor(got, want.shape, what)

            def diagnose(got, want, tiled=tiled):
                return ROUND_ROBIN if is_close(got, tiled, atol=HYPOTHESIS_TOL, rtol=HYPOTHESIS_TOL) else None
            check_close(got, want, what=what, atol=ATOL, rtol=RTOL, diagnose=diagnose)


def test_gqa_with_kv_cache(seed):
    """A GQA model (8 query heads, 2 kv heads) decoding with a KV cache of 2 kv heads: the logits of
    recomputing the whole prefix, step by step."""
    with one_thread():
        cfg = dict(vocab_size=40, block_size=24, n_layer=2, n_head=8, n_kv_head=2, d_model=32)
        torch.manual_seed(seed)
        ref = randomize_(RefGPT(ref_config(**cfg)), seed, std=0.05).eval()
        g = torch.Generator().manual_seed(seed)
        B, T0, steps = 2, int(torch.randint(3, 8, (1,), generator=g)), 8
        seq = torch.randint(0, 40, (B, T0 + steps), generator=g)
        with torch.no_grad():
            want = ref(seq)[0]
            tiled = round_robin_twin(ref)(seq)[0]
        model = learner("model").GPT(learner_config(**cfg))
        load_reference_weights(model, ref.state_dict(), "GPT(n_head=8, n_kv_head=2)")
        cache = learner("kvcache").KVCache(learner_config(**cfg), B, max_len=T0 + steps)
        shape = (cfg["n_layer"], B, cfg["n_kv_head"], T0 + steps, cfg["d_model"] // cfg["n_head"])
        for name in ("k", "v"):
            expect_tensor(getattr(cache, name, None), shape,
                          f"KVCache(cfg with n_kv_head=2).{name}: the cache stores the kv heads only, "
                          "(n_layer, B, n_kv_head, max_len, head_dim); expand them after cache.update")
        decode_and_compare(model.eval(), cache, seq, T0, want, "GPT(n_head=8, n_kv_head=2) with a KV cache",
                           suspects=[(tiled, "with the KV cache, " + ROUND_ROBIN)])
