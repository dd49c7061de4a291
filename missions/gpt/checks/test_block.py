"""Checkpoint `block`: LayerNorm, the GELU MLP and the pre-norm residual block, each loaded with the
reference's weights (moved away from their init, so a missing gain or bias shows)."""
import torch
import torch.nn.functional as F

from engine.gpt.block import MLP as RefMLP, Block as RefBlock
from gpt_check_utils import (HYPOTHESIS_TOL, expect_tensor, learner_config, load_reference_weights,
                             one_thread, randomize_, ref_config)
from grader.checks import check_close, is_close
from grader.seam import learner

# tolerance: float32, LayerNorm over <= 64 channels and a few matmuls; correct implementations agree
# to ~1e-6; 1e-5 abs + 1e-5 rel leaves room for summation order, never for a mistake.
ATOL, RTOL = 1e-5, 1e-5


def _ln_variants(x, w, b, eps):
    """Wrong LayerNorms, to name the mistake when the output matches one of them exactly."""
    def norm(x, dim, correction=0, eps_inside=True, affine=True):
        mean = x.mean(dim, keepdim=True)
        var = x.var(dim, keepdim=True, correction=correction)
        y = (x - mean) / (torch.sqrt(var + eps) if eps_inside else torch.sqrt(var) + eps)
        return y * w + b if affine else y
    return {
        "looks like LayerNorm normalises over the wrong dimension: the statistics must be taken over "
        "the last axis (the C channels of one position), dim=-1": [norm(x, -2), norm(x, 0), norm(x, (-2, -1))],
        "looks like LayerNorm uses the unbiased variance (divides by C - 1); use the biased one "
        "(divide by C), as torch.nn.LayerNorm does": [norm(x, -1, correction=1)],
        "looks like eps is added to the standard deviation; it goes inside the square root: "
        "(x - mean) / sqrt(var + eps)": [norm(x, -1, eps_inside=False)],
        "looks like LayerNorm ignores its weight and bias (the learnable gain and shift)":
            [norm(x, -1, affine=False)],
        "looks like LayerNorm ignores its bias": [norm(x, -1) - b],
    }


def _named(variants: dict):
    """diagnose(got, want): the message whose wrong outputs `got` matches."""
    def diagnose(got, want):
        for message, outs in variants.items():
            if any(is_close(got, o, atol=HYPOTHESIS_TOL, rtol=HYPOTHESIS_TOL) for o in outs):
                return message
        return None
    return diagnose


def test_layernorm(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        cases = []
        for shape in [(2, 7, 16), (3, 5, 48), (1, 12, 8)]:
            C = shape[-1]
            x = torch.randn(shape, generator=g) * 3 + torch.randn(1, 1, C, generator=g)  # mean != 0
            w, b = 1 + torch.randn(C, generator=g) * 0.5, torch.randn(C, generator=g) * 0.5
            want = F.layer_norm(x, (C,), w, b, eps=1e-5)
            cases.append((x, w, b, want, _ln_variants(x, w, b, 1e-5)))
        LayerNorm = learner("norm").LayerNorm
        for x, w, b, want, variants in cases:
            C = x.shape[-1]
            what = f"LayerNorm({C}) on x {tuple(x.shape)}"
            ln = LayerNorm(C, 1e-5)
            load_reference_weights(ln, {"weight": w, "bias": b}, what)
            with torch.no_grad():
                got = ln(x.clone())
            expect_tensor(got, want.shape, what)
            check_close(got, want, what=f"{what} vs torch.nn.functional.layer_norm", atol=ATOL, rtol=RTOL,
                        diagnose=_named(variants))


def test_mlp(seed):
    with one_thread():
        torch.manual_seed(seed)
        ref = randomize_(RefMLP(ref_config(d_model=32, n_head=4)), seed, std=0.1).eval()
        x = torch.randn(2, 6, 32)
        with torch.no_grad():
            want = ref(x)
            variants = {"looks like ReLU; GPT-2's MLP uses GELU (F.gelu)": [ref.down(F.relu(ref.up(x)))],
                        "looks like the tanh approximation of GELU; use the exact one, F.gelu(x) "
                        "(approximate='none'), as the reference does":
                            [ref.down(F.gelu(ref.up(x), approximate="tanh"))]}
        mine = learner("block").MLP(learner_config(d_model=32, n_head=4))
        what = f"MLP(d_model=32) on x {tuple(x.shape)}"
        load_reference_weights(mine, ref.state_dict(), what)
        mine.eval()
        with torch.no_grad():
            got = mine(x.clone())
        expect_tensor(got, want.shape, what)
        # the tanh GELU differs from the exact one by < 1e-3 here: a tighter hypothesis tolerance
        # (1e-6, float32 noise of the same formula) tells them apart
        def diagnose(got, want):
            for message, (out,) in variants.items():
                if is_close(got, out, atol=1e-6, rtol=1e-6):
                    return message
            return None
        check_close(got, want, what=what, atol=ATOL, rtol=RTOL, diagnose=diagnose)


SUBLAYER_MISTAKES = {
    "post": "looks like post-norm (x = norm(x + f(x))): this block is pre-norm, "
            "x = x + attn(norm1(x)), then x = x + mlp(norm2(x))",
    "after": "looks like the residual is added after the norm (x = norm(x); x = x + f(x)): the "
             "residual stream itself must stay un-normalised; only the branch input is normed: "
             "x = x + attn(norm1(x))",
    "nores": "looks like a residual connection is missing: x = x + attn(norm1(x)), not "
             "x = attn(norm1(x))",
}


def _sublayer(mode, x, norm, f):
    if mode == "pre":
        return x + f(norm(x))
    if mode == "post":
        return norm(x + f(x))
    if mode == "after":
        h = norm(x)
        return h + f(h)
    return f(norm(x))                                   # "nores"


def _block_variants(ref, x):
    """Every mix of right/wrong residual wiring for the two sublayers, plus two other slips."""
    out = {}
    modes = ["pre", *SUBLAYER_MISTAKES]
    for m1 in modes:
        for m2 in modes:
            if m1 == m2 == "pre":
                continue
            h = _sublayer(m1, x, ref.norm1, ref.attn)
            h = _sublayer(m2, h, ref.norm2, ref.mlp)
            out.setdefault(SUBLAYER_MISTAKES[m1 if m1 != "pre" else m2], []).append(h)
    swapped = x + ref.attn(ref.norm2(x))
    out["looks like norm1 and norm2 are swapped: norm1 feeds attention, norm2 feeds the MLP"] = \
        [swapped + ref.mlp(ref.norm1(swapped))]
    out["looks like attention and MLP run in parallel on the same x; here they are sequential: the "
        "MLP reads the stream after attention has added to it"] = \
        [x + ref.attn(ref.norm1(x)) + ref.mlp(ref.norm2(x))]
    return out


def test_block(seed):
    with one_thread():
        torch.manual_seed(seed)
        ref = randomize_(RefBlock(ref_config(d_model=48, n_head=4)), seed, std=0.1).eval()
        x = torch.randn(2, 11, 48) * 2
        with torch.no_grad():
            want = ref(x)
            variants = _block_variants(ref, x)
        mine = learner("block").Block(learner_config(d_model=48, n_head=4))
        what = f"Block(d_model=48, n_head=4) on x {tuple(x.shape)}"
        load_reference_weights(mine, ref.state_dict(), what)
        mine.eval()
        with torch.no_grad():
            got = mine(x.clone())
        expect_tensor(got, want.shape, what)
        check_close(got, want, what=what, atol=ATOL, rtol=RTOL, diagnose=_named(variants))
