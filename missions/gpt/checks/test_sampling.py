"""Checkpoint `sampling`: the filters exactly (top-p at p = 1 keeps everything), then the
distribution sample_next draws from, measured over many draws (fixed seeds, tolerances stated), then
greedy generation."""
import numpy as np
import torch

from engine.gpt.model import GPT as RefGPT
from engine.gpt.sample import generate as ref_generate, top_k_filter as ref_top_k, top_p_filter as ref_top_p
from gpt_check_utils import expect_tensor, one_thread, randomize_, ref_config
from grader.checks import check_close, expect_between, expect_close, expect_equal, fail, to_numpy
from grader.seam import learner

N_DRAWS = 40_000
# tolerance for observed frequencies: each has std <= sqrt(0.25 / 40000) = 0.0025, so 0.015 is a
# 6-sigma band (a false alarm about once in 10^8 comparisons), while every classic mistake moves
# some frequency by 0.05 or more.
FREQ_TOL = 0.015
# tolerance: a filter only masks; the kept logits are its inputs, unchanged (a round trip through
# log/softmax would move them by ~1e-7, allowed)
KEPT_TOL = 1e-6
# top-p: a token whose exact (float64) preceding mass lies within 1e-6 of p may fall either side in
# float32; such boundary tokens are accepted kept or dropped (random logits almost never have one)
BOUNDARY = 1e-6


def _logits(seed, rows, vocab, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, vocab, generator=g) * scale


def _filtered(got, logits, what):
    """(kept mask, values) of a filter's output as numpy arrays, after the exact-type checks."""
    expect_tensor(got, logits.shape, what)
    values = to_numpy(got)
    return np.isfinite(values), values


def _same_filter(got, want, logits, what, must_keep=None, may_keep=None, diagnose=None):
    """The same tokens removed as `want` (boundary tokens in may_keep either way), every removed
    token at -inf, and the kept logits untouched."""
    kept, values = _filtered(got, logits, what)
    want_kept = np.isfinite(to_numpy(want))
    if may_keep is not None:                      # accept boundary tokens as the learner has them
        want_kept = np.where(may_keep, kept, want_kept)
    if diagnose is not None and not bool((kept == want_kept).all()):
        message = diagnose(kept)
        if message:
            fail(f"{what}: {message}")
    for row in range(kept.shape[0]):
        expect_equal(kept[row], want_kept[row],
                     what=f"{what}: which tokens row {row} keeps ({int(want_kept[row].sum())} expected, "
                          f"ids {np.flatnonzero(want_kept[row]).tolist()[:12]}; True = kept)")
    x = to_numpy(logits)
    expect_close(values[kept], x[kept], what=f"{what}: the kept logits (they stay as they were)",
                 atol=KEPT_TOL)
    expect_equal(values[~kept], np.full(int((~kept).sum()), -np.inf, dtype=values.dtype),
                 what=f"{what}: the removed logits (set to -inf, so softmax gives them exactly 0)")


def test_top_k_filter(seed):
    logits = _logits(seed, 5, 40)
    cases = [(k, ref_top_k(logits, k)) for k in (1, 3, 17, 40)]
    top_k_filter = learner("sample").top_k_filter
    for k, want in cases:
        _same_filter(top_k_filter(logits.clone(), k), want, logits,
                     f"top_k_filter(logits {tuple(logits.shape)}, k={k})")


def _top_p_expected(logits, p):
    """(keep for sure, boundary) masks in vocabulary order, from float64 arithmetic."""
    probs = torch.softmax(logits.double(), dim=-1)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    before = sorted_p.cumsum(-1) - sorted_p

    def unsort(mask):
        return torch.zeros_like(mask).scatter(-1, order, mask).numpy()
    return unsort(before < p - BOUNDARY), unsort((before - p).abs() <= BOUNDARY)


def _top_p_variants(logits, p):
    """Kept masks of the classic wrong top-p rules, in vocabulary order."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    cum = probs.cumsum(-1)
    keep_right = (cum - probs) < p

    def unsort(keep):
        return torch.zeros_like(keep).scatter(-1, order, keep).numpy()
    vocab_order_cum = torch.softmax(logits, -1).cumsum(-1)
    return {
        "looks like top-p keeps the wrong side of the cutoff: it must keep the most likely tokens "
        "(the nucleus) and drop the unlikely tail": [unsort(~keep_right), unsort(cum > p), unsort(cum >= p)],
        "looks like top-p drops the token that crosses p: keep every token whose preceding mass is "
        "still below p, so the kept mass is at least p": [unsort(cum <= p), unsort(cum < p)],
        "looks like the cumulative sum runs in vocabulary order; sort by probability (descending) "
        "first": [((vocab_order_cum - torch.softmax(logits, -1)) < p).numpy(), (vocab_order_cum <= p).numpy()],
    }


def test_top_p_filter(seed):
    logits = _logits(seed, 6, 30)
    cases = []
    for p in (0.3, 0.75, 0.9):
        keep, boundary = _top_p_expected(logits, p)
        want = logits.masked_fill(torch.from_numpy(~keep), float("-inf"))
        cases.append((p, want, boundary, _top_p_variants(logits, p)))
    top_p_filter = learner("sample").top_p_filter
    for p, want, boundary, variants in cases:
        def diagnose(kept, variants=variants):
            return next((message for message, masks in variants.items()
                         if any(bool((kept == m).all()) for m in masks)), None)
        _same_filter(top_p_filter(logits.clone(), p), want, logits,
                     f"top_p_filter(logits {tuple(logits.shape)}, p={p})", may_keep=boundary,
                     diagnose=diagnose)


def test_top_p_one_keeps_every_token(seed):
    """p = 1.0 is the whole distribution: every token with nonzero probability stays. In float32 the
    running sum reaches 1.0 early (0.5 + (0.5 - 3e-12) rounds to 1.0), and `mass_before >= p` would
    cut the tokens after that point: with GPT-2's vocabulary, thousands of them."""
    tiny = torch.tensor([[0.0, 0.0, -25.0]])              # probabilities 0.5, 0.5, 7e-12
    wide = _logits(seed, 2, 50257, scale=3.0)              # GPT-2's vocabulary size
    cases = [(logits, torch.softmax(logits, dim=-1).numpy() > 0) for logits in (tiny, wide)]
    top_p_filter = learner("sample").top_p_filter
    for logits, nonzero in cases:
        what = f"top_p_filter(logits {tuple(logits.shape)}, p=1.0)"
        kept, values = _filtered(top_p_filter(logits.clone(), 1.0), logits, what)
        lost = nonzero & ~kept
        if bool(lost.any()):
            fail(f"{what} removed {int(lost.sum())} tokens with nonzero probability: with p = 1.0 the "
                 "nucleus is the whole distribution, but the float32 running sum reaches 1.0 before "
                 "the last tokens and `mass_before >= p` cuts them. Keep every token when p >= 1 "
                 "(brief, section 7)")
        expect_close(values, to_numpy(logits), what=f"{what}: the logits (nothing is removed)",
                     atol=KEPT_TOL)


def _frequencies(sample_next, logits, what, **kw):
    g = torch.Generator().manual_seed(kw.pop("seed"))
    rows = logits.expand(N_DRAWS, -1).clone()
    out = sample_next(rows, generator=g, **kw)
    expect_tensor(out, (N_DRAWS, 1), f"{what} on logits of shape {tuple(rows.shape)} (B, 1)",
                  dtype=torch.int64)
    ids = to_numpy(out).ravel()
    for end, value in (("smallest", ids.min()), ("largest", ids.max())):
        expect_between(int(value), 0, logits.size(-1) - 1, what=f"{what}: the {end} token id drawn",
                       why="ids index the vocabulary")
    return np.bincount(ids, minlength=logits.size(-1)) / N_DRAWS


def _check_distribution(freq, want, what, wrong=None):
    want = want.numpy()
    drawn_forbidden = np.flatnonzero((want == 0) & (freq > 0)).tolist()
    expect_equal(drawn_forbidden, [], what=f"{what}: tokens drawn that should have probability 0 "
                                           "(filtered out)")

    def diagnose(got, want):
        for message, dist in (wrong or {}).items():
            if bool(np.abs(got - dist.numpy()).max() <= FREQ_TOL):
                return message
        return None
    check_close(freq, want, what=f"{what}: drawn frequencies {np.round(freq, 3).tolist()} vs the "
                f"expected probabilities {np.round(want, 3).tolist()} ({N_DRAWS} draws)",
                atol=FREQ_TOL, diagnose=diagnose)


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
             dict(temperature=0.7, top_k=6, top_p=0.9), dict(temperature=1.0, top_p=1.0)]
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
    expect_equal(got, want, what="sample_next(logits of shape (7, 20), temperature=0): greedy, the "
                                 "argmax of each row, as an int64 tensor (B, 1)")
    a = sample_next(logits.clone(), temperature=1.0, generator=torch.Generator().manual_seed(seed))
    b = sample_next(logits.clone(), temperature=1.0, generator=torch.Generator().manual_seed(seed))
    expect_tensor(a, (7, 1), "sample_next(logits, temperature=1.0, generator)", dtype=torch.int64)
    expect_equal(b, a, what="sample_next with an identically seeded generator, drawn twice (pass the "
                            "generator to torch.multinomial(probs, 1, generator=generator))")


def test_generate_greedy(seed):
    with one_thread():
        torch.manual_seed(seed)
        model = randomize_(RefGPT(ref_config(vocab_size=30, block_size=16, n_layer=2, n_head=2,
                                             d_model=16)), seed, std=0.3).eval()
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
        expect_tensor(got, (2, 4 + n), f"{what}: prompt plus new tokens", dtype=torch.int64)
        tokens = to_numpy(got)
        expect_equal(tokens[:, :4], prompt.numpy(), what=f"{what}: the first 4 tokens (the prompt)")
        differs = np.flatnonzero((tokens != want.numpy()).any(0))
        col = int(differs[0]) if differs.size else 0
        expect_equal(tokens, want.numpy(), what=f"{what}: the greedy tokens (first difference at "
                                               f"position {col})")
