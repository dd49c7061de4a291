"""Bonus checkpoint `rope`: rotary position embeddings (pos="rope"): the tables, the rotation, its
relative-position property, attention/model outputs with the reference's weights, and decoding with
a KV cache (new tokens are rotated by their absolute positions)."""
import torch

from engine.gpt.attention import MultiHeadAttention as RefMHA
from engine.gpt.model import GPT as RefGPT
from engine.gpt.rope import apply_rope as ref_apply, rope_tables as ref_tables
from gpt_check_utils import (RopeAtZeroCache, decode_and_compare, expect_pair, expect_tensor,
                             learner_config, load_reference_weights, one_thread, randomize_, ref_config)
from grader.checks import check_close, expect, expect_close, expect_type, is_close
from grader.seam import learner

# tolerance: cos/sin of float64 angles stored as float32 (~6e-8 relative); rotations and attention
# in float32 agree to ~1e-6; 1e-5 everywhere.
ATOL = 1e-5
# tolerance: logits of a 2-layer model (size ~1-3) through float32 attention: ~1e-6 observed
MODEL_TOL = 1e-4


def test_tables(seed):
    g = torch.Generator().manual_seed(seed)
    hs, T = 2 * int(torch.randint(2, 17, (1,), generator=g)), int(torch.randint(5, 64, (1,), generator=g))
    base = float(torch.randint(100, 20000, (1,), generator=g))
    want_cos, want_sin = ref_tables(hs, T, base)
    out = learner("rope").rope_tables(hs, T, base)
    what = f"rope_tables(head_dim={hs}, max_len={T}, base={base:g})"
    expect_type(out, tuple, what=f"{what}, the pair (cos, sin)")
    expect(len(out) == 2, f"{what} should return the pair (cos, sin)")
    slow_first = torch.flip(want_cos, dims=[-1])

    def diagnose(got, want):
        if is_close(got, slow_first, atol=ATOL):
            return ("the speeds are reversed: pair i turns at base^(-2i/head_dim), so pair 0 is the "
                    "fastest")
        return None
    for name, got, want in (("cos", out[0], want_cos), ("sin", out[1], want_sin)):
        expect_tensor(got, want.shape, f"{what}: {name} (max_len, head_dim // 2)")
        check_close(got, want, what=f"{what}: {name}", atol=ATOL, diagnose=diagnose)


def test_apply_rope(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 10, 16, generator=g)
    cos, sin = ref_tables(16, 10)
    want = ref_apply(x, cos, sin)
    backwards = ref_apply(x, cos, -sin)
    half = x.chunk(2, dim=-1)               # the other common convention: rotate the two halves
    halves = torch.cat([half[0] * cos - half[1] * sin, half[0] * sin + half[1] * cos], dim=-1)
    lengths = x.norm(dim=-1)
    got = learner("rope").apply_rope(x.clone(), cos, sin)
    what = "apply_rope(x (2, 3, 10, 16), cos, sin)"
    expect_tensor(got, x.shape, what)

    def diagnose(got, want):
        if is_close(got, halves, atol=ATOL):
            return ("you rotate pairs (x[i], x[i + hs/2]) (the 'rotate half' convention); this "
                    "mission pairs neighbours (x[2i], x[2i+1]) as in the RoFormer paper (brief, "
                    "section 9.1)")
        if is_close(got, backwards, atol=ATOL):
            return ("the rotation goes the wrong way: x'[2i] = x[2i]cos - x[2i+1]sin, "
                    "x'[2i+1] = x[2i]sin + x[2i+1]cos")
        return None
    check_close(got, want, what=what, atol=ATOL, diagnose=diagnose)
    # tolerance: vector lengths ~4 in float32; a rotation keeps them to ~1e-6
    expect_close(got.norm(dim=-1), lengths, what=f"{what}: a rotation keeps each vector's length",
                 atol=1e-4, rtol=1e-4)


def test_relative_positions(seed):
    """q at m, k at n: the rotated dot product depends only on m - n."""
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(1, 1, 1, 8, generator=g), torch.randn(1, 1, 1, 8, generator=g)
    cos, sin = ref_tables(8, 40)
    shift = int(torch.randint(1, 20, (1,), generator=g))
    apply_rope = learner("rope").apply_rope

    def at(x, pos):
        out = apply_rope(x, cos[pos:pos + 1], sin[pos:pos + 1])
        expect_tensor(out, x.shape, f"apply_rope(x (1, 1, 1, 8), cos[{pos}:{pos + 1}], sin[...])")
        return out
    a = (at(q, 7) * at(k, 3)).sum()
    b = (at(q, 7 + shift) * at(k, 3 + shift)).sum()
    # tolerance: dot products of size ~3 after float32 rotations: ~1e-6 observed
    expect_close(b, a, what=f"rope(q, {7 + shift}) . rope(k, {3 + shift}) vs rope(q, 7) . rope(k, 3)",
                 atol=1e-4, rtol=1e-4)


def test_attention_and_model_with_rope(seed):
    with one_thread():
        torch.manual_seed(seed)
        ref = RefMHA(ref_config(pos="rope", d_model=32, n_head=4, block_size=16)).eval()
        x = torch.randn(2, 12, 32)
        with torch.no_grad():
            want = ref(x)
        gcfg = dict(pos="rope", vocab_size=40, block_size=16, n_layer=2, n_head=4, d_model=32)
        ref_model = randomize_(RefGPT(ref_config(**gcfg)), seed, std=0.05).eval()
        idx = torch.randint(0, 40, (2, 16), generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            want_logits = ref_model(idx)[0]

        what = "MultiHeadAttention(pos='rope', d_model=32, n_head=4) on x (2, 12, 32)"
        mine = learner("attention").MultiHeadAttention(learner_config(pos="rope", d_model=32, n_head=4,
                                                                      block_size=16))
        load_reference_weights(mine, ref.state_dict(), what)
        with torch.no_grad():
            got = mine.eval()(x.clone())
        expect_tensor(got, want.shape, what)
        expect_close(got, want, what=what, atol=ATOL, rtol=1e-5)   # rtol: as ATOL, see the top

        what = "GPT(pos='rope') logits"
        model = learner("model").GPT(learner_config(**gcfg))
        expect(not hasattr(model, "pos_emb"), "GPT(pos='rope') should have no position table "
                                              "(pos_emb): the rotation carries the positions")
        load_reference_weights(model, ref_model.state_dict(), what)
        with torch.no_grad():
            got, _ = expect_pair(model.eval()(idx), "GPT(pos='rope')(idx)")
        expect_tensor(got, want_logits.shape, what)
        expect_close(got, want_logits, what=what, atol=MODEL_TOL, rtol=MODEL_TOL)


def test_rope_with_kv_cache(seed):
    """Decoding with a KV cache: each new token's q and k are rotated by its absolute position
    (cache.pos onwards), so the logits equal recomputing the whole prefix."""
    with one_thread():
        cfg = dict(pos="rope", vocab_size=40, block_size=24, n_layer=2, n_head=4, d_model=32)
        torch.manual_seed(seed)
        ref = randomize_(RefGPT(ref_config(**cfg)), seed, std=0.05).eval()
        g = torch.Generator().manual_seed(seed)
        B, T0, steps = 2, int(torch.randint(3, 8, (1,), generator=g)), 8
        seq = torch.randint(0, 40, (B, T0 + steps), generator=g)
        with torch.no_grad():
            want = ref(seq)[0]
            at_zero_cache = RopeAtZeroCache(ref_config(**cfg), B, T0 + steps)
            at_zero = [ref(seq[:, :T0], cache=at_zero_cache)[0]]
            at_zero += [ref(seq[:, t:t + 1], cache=at_zero_cache)[0] for t in range(T0, T0 + steps)]
            at_zero = torch.cat(at_zero, dim=1)
        model = learner("model").GPT(learner_config(**cfg))
        load_reference_weights(model, ref.state_dict(), "GPT(pos='rope')")
        cache = learner("kvcache").KVCache(learner_config(**cfg), B, max_len=T0 + steps)
        decode_and_compare(model.eval(), cache, seq, T0, want, "GPT(pos='rope') with a KV cache", suspects=[
            (at_zero, "the new token is rotated as if it sat at position 0: with a KV cache, rotate q "
                      "and k by their absolute positions, the table rows cache.pos .. cache.pos + T - 1 "
                      "(the cache ignores the rotation positions)")])
