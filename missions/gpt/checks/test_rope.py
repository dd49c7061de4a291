"""Bonus checkpoint `rope`: rotary position embeddings (pos="rope"): the tables, the rotation, its
relative-position property, and attention/model outputs with the reference's weights."""
import torch

from engine.gpt.attention import MultiHeadAttention as RefMHA
from engine.gpt.model import GPT as RefGPT
from engine.gpt.rope import apply_rope as ref_apply, rope_tables as ref_tables
from gpt_check_utils import allclose, configs, load_reference_weights, one_thread, randomize_
from grader.checks import expect, expect_close, expect_shape, expect_type, fail
from grader.seam import learner

# tolerance: cos/sin of float64 angles stored as float32 (~6e-8 relative); rotations and attention
# in float32 agree to ~1e-6; 1e-5 everywhere.
ATOL = 1e-5


def test_tables(seed):
    g = torch.Generator().manual_seed(seed)
    hs, T = 2 * int(torch.randint(2, 17, (1,), generator=g)), int(torch.randint(5, 64, (1,), generator=g))
    base = float(torch.randint(100, 20000, (1,), generator=g))
    want_cos, want_sin = ref_tables(hs, T, base)
    out = learner("rope").rope_tables(hs, T, base)
    what = f"rope_tables(head_dim={hs}, max_len={T}, base={base:g})"
    expect(isinstance(out, tuple) and len(out) == 2, f"{what} should return (cos, sin)")
    for name, got, want in (("cos", out[0], want_cos), ("sin", out[1], want_sin)):
        expect_type(got, torch.Tensor, what=f"{what}: {name}")
        expect_shape(got, tuple(want.shape), what=f"{what}: {name} (max_len, head_dim // 2)")
        if name == "cos" and not allclose(got, want, ATOL):
            slow_first = torch.flip(want, dims=[-1])
            if allclose(got, slow_first, ATOL):
                fail(f"{what}: the speeds are reversed: pair i turns at base^(-2i/head_dim), so "
                     "pair 0 is the fastest")
        expect_close(got, want, what=f"{what}: {name}", atol=ATOL, rtol=0)


def test_apply_rope(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 10, 16, generator=g)
    cos, sin = ref_tables(16, 10)
    want = ref_apply(x, cos, sin)
    half = x.chunk(2, dim=-1)               # the other common convention: rotate the two halves
    halves = torch.cat([half[0] * cos - half[1] * sin, half[0] * sin + half[1] * cos], dim=-1)
    got = learner("rope").apply_rope(x.clone(), cos, sin)
    what = "apply_rope(x (2, 3, 10, 16), cos, sin)"
    expect_type(got, torch.Tensor, what=what)
    expect_shape(got, tuple(x.shape), what=what)
    if allclose(got, halves, ATOL):
        fail(f"{what}: you rotate pairs (x[i], x[i + hs/2]) (the 'rotate half' convention); this "
             "mission pairs neighbours (x[2i], x[2i+1]) as in the RoFormer paper (brief, section 9)")
    if allclose(got, ref_apply(x, cos, -sin), ATOL):
        fail(f"{what}: the rotation goes the wrong way: x'[2i] = x[2i]cos - x[2i+1]sin, "
             "x'[2i+1] = x[2i]sin + x[2i+1]cos")
    expect_close(got, want, what=what, atol=ATOL, rtol=0)
    norms = got.norm(dim=-1)
    expect_close(norms, x.norm(dim=-1), what=f"{what}: a rotation keeps each vector's length", atol=1e-4, rtol=1e-4)


def test_relative_positions(seed):
    """q at m, k at n: the rotated dot product depends only on m - n."""
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(1, 1, 1, 8, generator=g), torch.randn(1, 1, 1, 8, generator=g)
    cos, sin = ref_tables(8, 40)
    apply_rope = learner("rope").apply_rope

    def at(x, pos):
        return apply_rope(x, cos[pos:pos + 1], sin[pos:pos + 1])
    shift = int(torch.randint(1, 20, (1,), generator=g))
    a = (at(q, 7) * at(k, 3)).sum()
    b = (at(q, 7 + shift) * at(k, 3 + shift)).sum()
    expect_close(b, a, what=f"rope(q, {7 + shift}) . rope(k, {3 + shift}) vs rope(q, 7) . rope(k, 3)",
                 atol=1e-4, rtol=1e-4)


def test_attention_and_model_with_rope(seed):
    with one_thread():
        torch.manual_seed(seed)
        ref_cfg, my_cfg = configs(pos="rope", d_model=32, n_head=4, block_size=16)
        ref = RefMHA(ref_cfg).eval()
        x = torch.randn(2, 12, 32)
        with torch.no_grad():
            want = ref(x)
        gcfg = dict(pos="rope", vocab_size=40, block_size=16, n_layer=2, n_head=4, d_model=32)
        ref_gcfg, my_gcfg = configs(**gcfg)
        ref_model = randomize_(RefGPT(ref_gcfg), seed, std=0.05).eval()
        idx = torch.randint(0, 40, (2, 16), generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            want_logits = ref_model(idx)[0]

        what = "MultiHeadAttention(pos='rope', d_model=32, n_head=4) on x (2, 12, 32)"
        mine = learner("attention").MultiHeadAttention(my_cfg)
        load_reference_weights(mine, ref.state_dict(), what)
        with torch.no_grad():
            got = mine.eval()(x.clone())
        expect_close(got, want, what=what, atol=ATOL, rtol=1e-5)

        what = "GPT(pos='rope') logits"
        model = learner("model").GPT(my_gcfg)
        if hasattr(model, "pos_emb"):
            fail("GPT(pos='rope') should have no position table (pos_emb): the rotation carries the "
                 "positions")
        load_reference_weights(model, ref_model.state_dict(), what)
        with torch.no_grad():
            got = model.eval()(idx)[0]
        expect_close(got, want_logits, what=what, atol=1e-4, rtol=1e-4)
