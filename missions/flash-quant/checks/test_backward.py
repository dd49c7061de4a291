"""Checkpoint `backward` (bonus): flash_attention_backward(q, k, v, o, lse, do, causal, block_q, block_k)
-> (dq, dk, dv), recomputing the probabilities from the saved logsumexp, against autograd."""
import math

import torch

from fq_check_utils import Watch, attention_by_hand, close, one_thread, visible_mask
from grader.checks import check_close, expect_between, expect_shape, expect_type, fail
from grader.seam import learner

# tolerance: float32 gradients of size ~1 accumulated tile by tile (<= 64 keys) against float64
# autograd; observed differences ~1e-6, while a missing term or scale moves them by 1e-2 or more.
ATOL, RTOL = 5e-5, 1e-4


def _case(g, b, h, t_q, t_k, d, causal):
    """Inputs, the forward's (o, lse) and the upstream gradient, plus autograd's answer (float64)."""
    q, k, v = (torch.randn(b, h, t, d, generator=g, dtype=torch.float64) for t in (t_q, t_k, t_k))
    do = torch.randn(b, h, t_q, d, generator=g, dtype=torch.float64)
    mask = visible_mask(t_q, t_k, causal)
    leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
    o, lse = attention_by_hand(*leaves, mask)
    grads = torch.autograd.grad(o, leaves, do)
    f32 = lambda x: x.detach().float()
    return [f32(x) for x in (q, k, v, o, lse, do)], [f32(x) for x in grads], mask


def _no_D_grads(q, k, v, do, mask):
    """The classic softmax-backward mistake, by hand: ds = P ∘ dP without subtracting D."""
    q, k, v, do = (x.double() for x in (q, k, v, do))
    c = 1 / math.sqrt(q.size(-1))
    s = (q @ k.transpose(-2, -1) * c).masked_fill(~mask, float("-inf"))
    p = torch.softmax(s, -1).nan_to_num(0.0)
    ds = p * (do @ v.transpose(-2, -1))
    return [(ds @ k * c).float(), (ds.transpose(-2, -1) @ q * c).float(), (p.transpose(-2, -1) @ do).float()]


def _check(mod, inputs, want, mask, causal, bq, bk):
    q, k, v, o, lse, do = inputs
    what = (f"flash_attention_backward(q {tuple(q.shape)}, k {tuple(k.shape)}, ..., causal={causal}, "
            f"block_q={bq}, block_k={bk})")
    out = mod.flash_attention_backward(*(x.clone() for x in inputs), causal=causal, block_q=bq, block_k=bk)
    if not (type(out) is tuple and len(out) == 3):
        fail(f"{what}: expected a tuple (dq, dk, dv), got {type(out).__name__}")
    wrong = None
    for name, got, w, like in zip(("dq", "dk", "dv"), out, want, (q, k, v)):
        expect_type(got, torch.Tensor, what=f"{what} -> {name}")
        expect_shape(got, tuple(like.shape), what=f"{what} -> {name}")

        def diagnose(got_, want_, name=name):
            nonlocal wrong
            wrong = wrong or _no_D_grads(q, k, v, do, mask)
            if close(got_, wrong[("dq", "dk", "dv").index(name)], atol=1e-4, rtol=1e-4):
                return ("looks like the softmax backward is missing the D term: ds = P ∘ (dP - D) with "
                        "D_i = Σ_d do_id · o_id")
            if name in ("dq", "dk") and close(got_, want_ * math.sqrt(q.size(-1)), atol=1e-4, rtol=1e-4):
                return f"{name} is off by sqrt(d): s = q·kᵀ/sqrt(d), so d{name[1]} carries the 1/sqrt(d) too"
            return None
        check_close(got, w, what=f"{what} -> {name}", atol=ATOL, rtol=RTOL, diagnose=diagnose)


def test_gradients_match_autograd(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        t = int(torch.randint(20, 60, (1,), generator=g))
        mod = learner("backward")
        for (b, h, t_q, t_k, d), causal, bq, bk in [((2, 2, 32, 32, 16), False, 16, 16),
                                                     ((2, 2, 48, 48, 8), True, 16, 16),
                                                     ((1, 2, t, t, 16), True, 16, 8),
                                                     ((1, 2, 10, 40, 8), True, 16, 16),
                                                     ((1, 1, 40, 10, 8), True, 16, 16)]:
            inputs, want, mask = _case(g, b, h, t_q, t_k, d, causal)
            _check(mod, inputs, want, mask, causal, bq, bk)


def test_recomputes_from_the_logsumexp(seed):
    """P must be rebuilt as exp(s - lse) from the lse it is given: hand it lse + 1 and every gradient
    must shrink by e (a backward that recomputes the softmax itself would not notice)."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        inputs, want, _ = _case(g, 1, 2, 32, 32, 16, True)
        q, k, v, o, lse, do = inputs
        got = learner("backward").flash_attention_backward(q, k, v, o, lse + 1.0, do, causal=True,
                                                           block_q=16, block_k=16)
        if not (type(got) is tuple and len(got) == 3):
            fail(f"flash_attention_backward: expected a tuple (dq, dk, dv), got {type(got).__name__}")
        if close(got[2], want[2], atol=1e-4, rtol=1e-4):
            fail("flash_attention_backward(..., lse + 1, ...): dv did not change; it should be dv / e. "
                 "Looks like the backward ignores the saved logsumexp and recomputes the softmax: "
                 "rebuild P = exp(s - lse) from the lse argument")
        check_close(got[2], want[2] / math.e, what="flash_attention_backward(..., lse + 1, ...) -> dv "
                    "(every P is divided by e)", atol=ATOL, rtol=RTOL)


def test_never_builds_the_score_matrix(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        t, d, blk = 2048, 16, 128
        q, k, v, do = (torch.randn(1, 1, t, d, generator=g) for _ in range(4))
        o = torch.randn(1, 1, t, d, generator=g)
        lse = torch.randn(1, 1, t, generator=g) + 8.0
        bwd = learner("backward").flash_attention_backward
        with Watch() as w:
            bwd(q, k, v, o, lse, do, causal=True, block_q=blk, block_k=blk)
        # an eighth of T×T: far above any tile (even one block against all keys, 128 × 2048)
        expect_between(w.largest, 0, t * t // 8 - 1,
                       what=f"flash_attention_backward(q (1, 1, {t}, {d}), causal=True, blocks {blk}): elements "
                            f"of the largest tensor it created (shape {w.largest_shape}, in aten.{w.largest_op})",
                       why="that is (a big part of) the T×T matrix of scores or probabilities; recompute "
                           "one tile at a time from lse")
