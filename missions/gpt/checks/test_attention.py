"""Checkpoint `attention`: scaled_dot_product_attention(q, k, v, causal) against torch's fused
F.scaled_dot_product_attention (which the learner may not call: mission.toml forbids it here)."""
import math

import numpy as np
import torch
import torch.nn.functional as F

from gpt_check_utils import HYPOTHESIS_TOL, expect_tensor, one_thread
from grader.checks import check_close, is_close, to_numpy
from grader.seam import learner

# tolerance: float32 softmax-attention over <= 32 keys; torch's math kernel and a hand-written one
# differ only in summation order (observed ~1e-7), so 1e-5 absolute plus 1e-5 relative is generous
# and still far below any real mistake (those differ by 1e-2 or more).
ATOL, RTOL = 1e-5, 1e-5
# tolerance: outputs at positions the change cannot reach are the same arithmetic on the same inputs
# (the hidden future gets weight exactly 0), so nothing may move beyond float noise
LEAK_TOL = 1e-6


def _qkv(g, batch, heads, t_q, t_k, hs):
    q = torch.randn(batch, heads, t_q, hs, generator=g)
    k = torch.randn(batch, heads, t_k, hs, generator=g)
    v = torch.randn(batch, heads, t_k, hs, generator=g)
    return q, k, v


def _cases(seed):
    """Several shapes (with different B, nh, T, hs), so nothing can be tuned to one input."""
    g = torch.Generator().manual_seed(seed)
    t_random = int(torch.randint(9, 24, (1,), generator=g))
    shapes = [(2, 3, 7, 8), (1, 4, 16, 16), (3, 2, 5, 32), (2, 1, 1, 4), (1, 2, t_random, 12)]
    return [_qkv(g, b, h, t, t, hs) for b, h, t, hs in shapes]


def _by_hand(q, k, v, *, scale=None, mask=None, mask_after_softmax=False, softmax_dim=-1):
    """A deliberately wrong attention, to recognise a classic mistake by its exact output."""
    scores = q @ k.transpose(-2, -1) * (scale if scale is not None else 1 / math.sqrt(q.size(-1)))
    if mask is not None and not mask_after_softmax:
        scores = scores.masked_fill(~mask, float("-inf"))
    w = torch.softmax(scores, dim=softmax_dim)
    if mask is not None and mask_after_softmax:
        w = w.masked_fill(~mask, 0.0)
    return w @ v


def _suspects(q, k, v, causal: bool):
    """(wrong kwargs for _by_hand, message) for each classic mistake."""
    t_q, t_k, hs = q.size(-2), k.size(-2), q.size(-1)
    ones = torch.ones(t_q, t_k, dtype=torch.bool)
    right = ones.tril(t_k - t_q) if causal else ones
    suspects = [
        (dict(scale=1.0, mask=right), "looks like the scores are not scaled by 1/sqrt(d): divide "
         "q @ k^T by sqrt(hs) before the softmax (brief, section 2)"),
        (dict(scale=1.0 / hs, mask=right), "looks like the scores are divided by d instead of sqrt(d)"),
        (dict(scale=math.sqrt(hs), mask=right), "looks like the scores are multiplied by sqrt(d) "
         "instead of divided by it"),
        (dict(softmax_dim=-2, mask=right), "looks like the softmax runs over the wrong axis: each "
         "query's weights (dim=-1, over the keys) must sum to 1"),
    ]
    if causal:
        suspects += [
            (dict(mask=ones.tril(t_k - t_q + 1)), "looks like the mask lets position i see i+1 "
             "(off by one: keep the diagonal, hide everything above it)"),
            (dict(mask=ones.tril(t_k - t_q - 1)), "looks like the mask hides position i from itself: "
             "the diagonal must stay visible"),
            (dict(mask=ones), "looks like the causal mask is missing: position i can see the future"),
            (dict(mask=ones.triu(t_k - t_q)), "looks like the mask is flipped: it hides the past "
             "and shows the future"),
            (dict(mask=right, mask_after_softmax=True), "looks like the mask is applied after the "
             "softmax: the weights of the visible positions no longer sum to 1. Fill the scores "
             "with -inf before the softmax"),
        ]
        if t_q != t_k:
            suspects.append((dict(mask=ones.tril(0)), "with fewer queries than keys the mask must line "
                             "the queries up with the LAST keys (query i sits at position "
                             "T_k - T_q + i): use tril(diagonal=T_k - T_q). This is what a KV cache "
                             "needs"))
    else:
        suspects.append((dict(mask=right.tril()), "with causal=False every query sees every key; "
                         "looks like the mask is applied anyway"))
    return suspects


def _diagnoser(q, k, v, causal: bool):
    """diagnose(got, want) for check_close: the message of the classic mistake `got` matches."""
    def diagnose(got, want):
        for kwargs, message in _suspects(q, k, v, causal):
            if is_close(got, _by_hand(q, k, v, **kwargs), atol=HYPOTHESIS_TOL, rtol=HYPOTHESIS_TOL):
                return message
        return None
    return diagnose


def _check(got, want, q, k, v, causal, what):
    expect_tensor(got, want.shape, what)
    check_close(got, want, what=what, atol=ATOL, rtol=RTOL, diagnose=_diagnoser(q, k, v, causal))


def test_causal_matches_torch(seed):
    with one_thread():
        cases = _cases(seed)
        wants = [F.scaled_dot_product_attention(q, k, v, is_causal=True) for q, k, v in cases]
        sdpa = learner("attention").scaled_dot_product_attention
        for (q, k, v), want in zip(cases, wants):
            got = sdpa(q.clone(), k.clone(), v.clone(), causal=True)
            _check(got, want, q, k, v, True,
                   f"scaled_dot_product_attention(q {tuple(q.shape)}, k, v, causal=True)")


def test_not_causal_matches_torch(seed):
    with one_thread():
        cases = _cases(seed)
        wants = [F.scaled_dot_product_attention(q, k, v) for q, k, v in cases]
        sdpa = learner("attention").scaled_dot_product_attention
        for (q, k, v), want in zip(cases, wants):
            got = sdpa(q.clone(), k.clone(), v.clone(), causal=False)
            _check(got, want, q, k, v, False,
                   f"scaled_dot_product_attention(q {tuple(q.shape)}, k, v, causal=False)")


def test_fewer_queries_than_keys(seed):
    """A KV cache asks for the last T_q positions against all T_k keys (T_q < T_k)."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        cases = [_qkv(g, 2, 3, 1, 9, 8), _qkv(g, 1, 2, 4, 11, 16)]
        wants = []
        for q, k, v in cases:
            t_q, t_k = q.size(-2), k.size(-2)
            mask = torch.ones(t_q, t_k, dtype=torch.bool).tril(t_k - t_q)   # bottom-right aligned
            wants.append(F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
        sdpa = learner("attention").scaled_dot_product_attention
        for (q, k, v), want in zip(cases, wants):
            got = sdpa(q.clone(), k.clone(), v.clone(), causal=True)
            _check(got, want, q, k, v, True, f"scaled_dot_product_attention(q {tuple(q.shape)}, "
                   f"k {tuple(k.shape)}, v, causal=True) (fewer queries than keys)")


def test_future_cannot_leak(seed):
    """Change only the keys/values after position i: outputs at 0..i must not move."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        q, k, v = _qkv(g, 2, 2, 12, 12, 8)
        i = int(torch.randint(2, 10, (1,), generator=g))
        k2, v2 = k.clone(), v.clone()
        k2[..., i + 1:, :] += torch.randn(k2[..., i + 1:, :].shape, generator=g) * 3
        v2[..., i + 1:, :] += torch.randn(v2[..., i + 1:, :].shape, generator=g) * 3
        sdpa = learner("attention").scaled_dot_product_attention
        what = "scaled_dot_product_attention(causal=True)"
        a = sdpa(q.clone(), k.clone(), v.clone(), causal=True)
        b = sdpa(q.clone(), k2, v2, causal=True)
        expect_tensor(a, q.shape, what)
        expect_tensor(b, q.shape, what)
        before, after = to_numpy(a)[..., : i + 1, :], to_numpy(b)[..., : i + 1, :]

        def diagnose(got, want):
            moved = np.abs(got - want).max(axis=(0, 1, 3)) > LEAK_TOL   # per position, up to i
            first = int(np.argmax(moved))
            return (f"changing keys/values after position {i} changed the output at position {first}; "
                    + ("looks like the mask lets position i see i+1" if first == i else
                       "the causal mask does not hide the future"))
        check_close(after, before, what=f"{what}: outputs at positions 0..{i} after changing the "
                    f"future keys/values", atol=LEAK_TOL, diagnose=diagnose)
