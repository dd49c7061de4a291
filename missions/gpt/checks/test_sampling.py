"""Checkpoint `sampling`: the filters exactly, then the distribution sample_next draws from, measured
over many draws (fixed seeds, tolerances stated), then greedy generation."""
import torch

from engine.gpt.model import GPT as RefGPT
from engine.gpt.sample import generate as ref_generate, top_k_filter as ref_top_k, top_p_filter as ref_top_p
from gpt_check_utils import configs, one_thread, randomize_
from grader.checks import expect, expect_shape, expect_type, fail
from grader.seam import learner

N_DRAWS = 40_000
# tolerance for observed frequencies: each has std <= sqrt(0.25 / 40000) = 0.0025, so 0.015 is a
# 6-sigma band (a false alarm about once in 10^8 comparisons), while every classic mistake moves
# some frequency by 0.05 or more.
FREQ_TOL = 0.015


def _kept(x):
    return torch.isfinite(x)


def _same_filter(got, want, what):
    """Same tokens removed (-inf), the survivors' logits untouched."""
    expect_type(got, torch.Tensor, what=what)
    expect_shape(got, tuple(want.shape), what=what)
    if not torch.equal(_kept(got), _kept(want)):
        row = int((_kept(got) != _kept(want)).any(-1).nonzero()[0])
        fail(f"{what}: row {row} keeps {int(_kept(got)[row].sum())} tokens, expected "
             f"{int(_kept(want)[row].sum())} (kept ids {_kept(want)[row].nonzero().flatten().tolist()[:12]})")
    if not torch.allclose(got[_kept(want)], want[_kept(want)], atol=1e-6, rtol=0):
        fail(f"{what}: the kept logits must stay as they were; only the removed ones become -inf")
    if (got[~_kept(want)] != float("-inf")).any():
        fail(f"{what}: removed tokens must be set to -inf (so softmax gives them exactly 0)")


def _logits(seed, rows, vocab, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, vocab, generator=g) * scale


def test_top_k_filter(seed):
    logits = _logits(seed, 5, 40)
    cases = [(k, ref_top_k(logits, k)) for k in (1, 3, 17, 40)]
    top_k_filter = learner("sample").top_k_filter
    for k, want in cases:
        _same_filter(top_k_filter(logits.clone(), k), want, f"top_k_filter(logits {tuple(logits.shape)}, k={k})")


def _top_p_variants(logits, p):
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    cum = probs.cumsum(-1)
    keep_right = (cum - probs) < p

    def unsort(keep):
        return torch.zeros_like(keep).scatter(-1, order, keep)
    vocab_order_cum = torch.softmax(logits, -1).cumsum(-1)
    return {
        "looks like top-p keeps the wrong side of the cutoff: it must keep the most likely tokens "
        "(the nucleus) and drop the unlikely tail": [unsort(~keep_right), unsort(cum > p), unsort(cum >= p)],
        "looks like top-p drops the token that crosses p: keep every token whose preceding mass is "
        "still below p, so the kept mass is at least p": [unsort(cum <= p), unsort(cum < p)],
        "looks like the cumulative sum runs in vocabulary order; sort by probability (descending) "
        "first": [(vocab_order_cum - torch.softmax(logits, -1)) < p, vocab_order_cum <= p],
    }


def test_top_p_filter(seed):
    logits = _logits(seed, 6, 30)
    cases = [(p, ref_top_p(logits, p), _top_p_variants(logits, p)) for p in (0.3, 0.75, 0.9)]
    top_p_filter = learner("sample").top_p_filter
    for p, want, variants in cases:
        what = f"top_p_filter(logits {tuple(logits.shape)}, p={p})"
        got = top_p_filter(logits.clone(), p)
        expect_type(got, torch.Tensor, what=what)
        expect_shape(got, tuple(want.shape), what=what)
        if not torch.equal(_kept(got), _kept(want)):
            for message, masks in variants.items():
                if any(torch.equal(_kept(got), m) for m in masks):
                    fail(f"{what}: {message}")
        _same_filter(got, want, what)


def _frequencies(sample_next, logits, what, **kw):
    g = torch.Generator().manual_seed(kw.pop("seed"))
    rows = logits.expand(N_DRAWS, -1).clone()
    out = sample_next(rows, generator=g, **kw)
    expect_type(out, torch.Tensor, what=what)
    expect_shape(out, (N_DRAWS, 1), what=f"{what} on logits of shape {tuple(rows.shape)} (B, 1)")
    expect(out.dtype == torch.int64, f"{what}: token ids should be int64 (torch.long), got {out.dtype}")
    return torch.bincount(out.flatten(), minlength=logits.size(-1)).double() / N_DRAWS


def _check_distribution(freq, want, what, wrong=None):
    zero = want == 0
    if (freq[zero] > 0).any():
        bad = zero.nonzero().flatten()[(freq[zero] > 0)].tolist()
        fail(f"{what}: drew tokens {bad[:8]} that should have probability 0 (filtered out)")
    err = (freq - want).abs().max().item()
    if err > FREQ_TOL:
        if wrong is not None:
            for message, dist in wrong.items():
                if (freq - dist).abs().max().item() <= FREQ_TOL:
                    fail(f"{what}: {message}")
        fail(f"{what}: drawn frequencies {[round(f, 3) for f in freq.tolist()]} differ from the "
             f"expected probabilities {[round(f, 3) for f in want.tolist()]} by up to {err:.3f} "
             f"(tolerance {FREQ_TOL} over {N_DRAWS} draws)")


def test_temperature_distribution(seed):
    logits = _logits(seed, 1, 8, scale=1.5)[0]
    cases = [(t, torch.softmax(logits.double() / t, -1), torch.softmax(logits.double() * t, -1))
             for t in (0.5, 1.0, 2.0)]
    sample_next = learner("sample").sample_next
    for t, want, multiplied in cases:
        what = f"sample_next(logits, temperature={t})"
        freq = _frequencies(sample_next, logits, what, temperature=t, seed=seed + 1)
        _check_distribution(freq, want, what, {
            "looks like the logits are multiplied by the temperature; divide them by it "
            "(t < 1 sharpens, t > 1 flattens)": multiplied})


def test_top_k_and_top_p_distribution(seed):
    logits = _logits(seed, 1, 12, scale=1.5)[0]
    specs = [dict(temperature=1.0, top_k=3), dict(temperature=1.0, top_p=0.8),
             dict(temperature=0.7, top_k=6, top_p=0.9)]
    cases = []
    for kw in specs:
        x = logits / kw["temperature"]                      # the order: temperature, top-k, top-p
        if "top_k" in kw:
            x = ref_top_k(x, kw["top_k"])
        if "top_p" in kw:
            x = ref_top_p(x, kw["top_p"])
        cases.append((kw, torch.softmax(x.double(), -1)))
    sample_next = learner("sample").sample_next
    for kw, want in cases:
        what = "sample_next(logits, " + ", ".join(f"{k}={v}" for k, v in kw.items()) + ")"
        freq = _frequencies(sample_next, logits, what, seed=seed + 2, **kw)
        _check_distribution(freq, want, what + " (apply temperature, then top-k, then top-p, then "
                            "softmax and draw)")


def test_greedy_and_generator(seed):
    logits = _logits(seed, 7, 20)
    want = logits.argmax(-1, keepdim=True)
    sample_next = learner("sample").sample_next
    got = sample_next(logits.clone(), temperature=0.0)
    expect_type(got, torch.Tensor, what="sample_next(logits, temperature=0)")
    expect_shape(got, (7, 1), what="sample_next(logits of shape (7, 20), temperature=0)")
    if not torch.equal(got, want):
        fail(f"sample_next(temperature=0) should be greedy (argmax of each row): expected "
             f"{want.flatten().tolist()}, got {got.flatten().tolist()}")
    a = sample_next(logits.clone(), temperature=1.0, generator=torch.Generator().manual_seed(seed))
    b = sample_next(logits.clone(), temperature=1.0, generator=torch.Generator().manual_seed(seed))
    if not torch.equal(a, b):
        fail("sample_next: two calls with identically seeded generators drew different tokens; pass "
             "the generator to torch.multinomial(probs, 1, generator=generator)")


def test_generate_greedy(seed):
    with one_thread():
        ref_cfg, _ = configs(vocab_size=30, block_size=16, n_layer=2, n_head=2, d_model=16)
        torch.manual_seed(seed)
        model = randomize_(RefGPT(ref_cfg), seed, std=0.3).eval()
        prompt = torch.randint(0, 30, (2, 4), generator=torch.Generator().manual_seed(seed))
        n = 20   # 4 + 20 > block_size 16: the context must be cropped to the last 16 tokens
        want = ref_generate(model, prompt.clone(), n, temperature=0.0)
        generate = learner("sample").generate
        what = f"generate(model with block_size 16, prompt {tuple(prompt.shape)}, {n}, temperature=0)"
        try:
            got = generate(model, prompt.clone(), n, temperature=0.0)
        except ValueError as e:
            if "block_size" in str(e):
                fail(f"{what}: the context grew past block_size; feed the model only the last "
                     "block_size tokens: idx[:, -block_size:]")
            raise
        expect_type(got, torch.Tensor, what=what)
        expect_shape(got, (2, 4 + n), what=f"{what}: prompt plus new tokens")
        if not torch.equal(got[:, :4], prompt):
            fail(f"{what}: the output should start with the prompt")
        if not torch.equal(got, want):
            col = int((got != want).any(0).nonzero()[0])
            fail(f"{what}: greedy tokens differ from the reference's at position {col}: expected "
                 f"{want[:, col].tolist()}, got {got[:, col].tolist()}")
