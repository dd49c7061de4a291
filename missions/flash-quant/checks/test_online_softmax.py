"""Checkpoint `online_softmax`: online_softmax_stats(x, block_size) -> (m, l) in one pass over blocks,
and online_softmax(x, block_size) -> probabilities, against torch.softmax."""
import torch

from fq_check_utils import Watch, close, finite_where_expected, one_thread
from grader.checks import check_close, expect_between, expect_equal, expect_shape, expect_type, fail
from grader.seam import learner

NEG_INF = float("-inf")
# tolerance: float32 exp and sums over <= 300 terms in a different order from torch.softmax; observed
# differences ~1e-7 on probabilities <= 1 (and ~1e-6 relative on the sums), while each classic
# mistake is off by 1e-2 or more (or NaN).
P_ATOL, P_RTOL = 2e-6, 1e-5
L_RTOL = 1e-5


def _unrescaled_sum(x, block):
    """The classic mistake, by hand: l += Σ exp(x_b - m_new) without multiplying the old l."""
    m = torch.full(x.shape[:-1], NEG_INF, dtype=torch.float64)
    l = torch.zeros(x.shape[:-1], dtype=torch.float64)
    for s in range(0, x.size(-1), block):
        b = x[..., s:s + block].double()
        m = torch.maximum(m, b.amax(-1))
        shift = torch.where(m == NEG_INF, torch.zeros_like(m), m)
        l = l + torch.exp(b - shift[..., None]).sum(-1)
    return m.to(x.dtype), l.to(x.dtype)


def _expected(x):
    """torch.softmax in float64; fully masked rows (all -inf) are zeros by this mission's convention."""
    xd = x.double()
    m = xd.amax(-1)
    masked = m == NEG_INF
    p = torch.softmax(torch.where(masked[..., None], torch.zeros_like(xd), xd), dim=-1)
    p = torch.where(masked[..., None], torch.zeros_like(p), p)
    shift = torch.where(masked, torch.zeros_like(m), m)
    l = torch.exp(xd - shift[..., None]).sum(-1)
    return p.to(x.dtype), m.to(x.dtype), l.to(x.dtype)


def _last_block_max(x, block):
    start = ((x.size(-1) - 1) // block) * block
    return x[..., start:].amax(-1)


def _check_stats(mod, x, block, what):
    p_want, m_want, l_want = _expected(x)
    out = mod.online_softmax_stats(x.clone(), block)
    if not (type(out) is tuple and len(out) == 2):
        fail(f"{what}: expected a tuple (m, l), got {type(out).__name__}")
    m, l = out
    for name, t in (("m", m), ("l", l)):
        expect_type(t, torch.Tensor, what=f"{what} -> {name}")
        expect_shape(t, tuple(x.shape[:-1]), what=f"{what} -> {name}")
    if not close(m, m_want, atol=0.0):
        if close(m, _last_block_max(x, block), atol=0.0):
            fail(f"{what}: m equals the max of the LAST block only: looks like the max per block is "
                 "never combined with the running max (m_new = max(m, max of this block))")
        fail(f"{what}: m should be the max of every x seen (exactly x.amax(-1)); got {m.tolist()[:4]}…, "
             f"expected {m_want.tolist()[:4]}…")
    expect_equal(m, m_want, what=f"{what} -> m (the running max, exact)")

    def diagnose(got, want):
        if close(got, _unrescaled_sum(x, block)[1], atol=0.0, rtol=L_RTOL):
            return ("l equals the sum of the blocks' exp(x - m_new) with the old sum never "
                    "multiplied: looks like the running sum is not rescaled when the max changes "
                    "(l_new = l · exp(m_old - m_new) + Σ exp(x_block - m_new))")
        if not finite_where_expected(got, want):
            return "l has NaN/inf: is exp() taken of -inf - (-inf) on a fully masked block (use a safe max of 0)?"
        return None
    check_close(l, l_want, what=f"{what} -> l (Σ exp(x - m))", atol=0.0, rtol=L_RTOL, diagnose=diagnose)


def _check_probs(mod, x, block, what):
    p_want, _, _ = _expected(x)
    got = mod.online_softmax(x.clone(), block)
    expect_type(got, torch.Tensor, what=what)
    expect_shape(got, tuple(x.shape), what=what)

    def diagnose(got, want):
        m, l = _unrescaled_sum(x, block)
        wrong = torch.exp(x.double() - torch.where(m == NEG_INF, 0, m).double()[..., None]) / l.double()[..., None]
        if close(got, wrong.to(x.dtype), atol=P_ATOL, rtol=P_RTOL):
            return ("looks like the running sum is not rescaled when the max changes: the rows no "
                    "longer sum to 1 (l_new = l · exp(m_old - m_new) + Σ exp(x_block - m_new))")
        if not finite_where_expected(got, want):
            rows = [i for i in range(x.size(0)) if not bool(torch.isfinite(got[i]).all())]
            fully = [i for i in rows if bool((x[i] == NEG_INF).all())]
            if fully:
                return (f"rows {fully} are fully masked (all -inf) and came out NaN: the convention "
                        "here is zeros (denominator 0 -> output 0; subtract a safe max of 0)")
            return (f"rows {rows[:5]} came out NaN/inf: looks like the max per block is never "
                    "combined (exp overflows when a later block's max is far below an earlier "
                    "one), or -inf - (-inf) on a masked block")
        return None
    check_close(got, p_want, what=what, atol=P_ATOL, rtol=P_RTOL, diagnose=diagnose)


def test_matches_softmax(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        n_rand = int(torch.randint(9, 200, (1,), generator=g))
        mod = learner("online_softmax")
        for rows, n, block in [(3, 7, 1), (4, 64, 16), (5, 37, 8), (2, n_rand, 13), (3, 20, 32), (1, 1, 4)]:
            x = torch.randn(rows, n, generator=g) * 4
            what = f"online_softmax_stats(x {tuple(x.shape)}, block_size={block})"
            _check_stats(mod, x, block, what)
            _check_probs(mod, x, block, f"online_softmax(x {tuple(x.shape)}, block_size={block})")
        x = torch.randn(2, 3, 40, generator=g) * 3                 # leading batch axes
        _check_probs(mod, x, 16, f"online_softmax(x {tuple(x.shape)}, block_size=16)")


def _extreme(g):
    """Rows of ±1e4 logits (block size 8, 4 blocks) whose block maxima rise, fall and jump: each
    classic mistake shows on at least one of them, whatever the seed."""
    j = torch.rand(6, 32, generator=g)
    x = torch.empty(6, 32)
    x[0] = torch.cat([-1e4 + j[0, :8], j[0, 8:16], 5e3 + j[0, 16:24], 1e4 + j[0, 24:]])   # max rises every block
    x[1] = torch.cat([1e4 + j[1, :8], 5e3 + j[1, 8:16], j[1, 16:24], -1e4 + j[1, 24:]])   # max only in block 0
    x[2] = torch.where(torch.arange(32) % 2 == 0, 1e4, -1e4) + j[2]                      # ±1e4 everywhere
    x[3] = torch.cat([j[3, :24] * 3, 1e4 + j[3, 24:]])                                    # one far larger block, last
    x[4] = torch.cat([-1e4 + j[4, :24], -1e4 + 5 + j[4, 24:]])                           # all very negative
    x[5] = j[5] * 2
    return x


def test_extreme_logits(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        x = _extreme(g)
        mod = learner("online_softmax")
        _check_stats(mod, x, 8, "online_softmax_stats(rows of ±1e4 logits (6, 32), block_size=8)")
        _check_probs(mod, x, 8, "online_softmax(rows of ±1e4 logits (6, 32), block_size=8)")


def test_fully_masked_rows(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(5, 24, generator=g) * 3
        x[0] = NEG_INF                          # nothing visible: zeros, m = -inf, l = 0
        x[1, :8] = NEG_INF                      # the whole first block masked, then values
        x[2, 8:16] = NEG_INF                    # a masked block in the middle
        x[3, :-1] = NEG_INF                     # only the last entry visible: probability 1
        mod = learner("online_softmax")
        what = "online_softmax(x (5, 24) with masked (-inf) rows and blocks, block_size=8)"
        _check_probs(mod, x, 8, what)
        p_want, m_want, l_want = _expected(x)
        out = mod.online_softmax_stats(x.clone(), 8)
        if not (type(out) is tuple and len(out) == 2):
            fail(f"online_softmax_stats: expected a tuple (m, l), got {type(out).__name__}")
        m, l = out
        expect_equal(m, m_want, what="online_softmax_stats(masked rows) -> m (-inf on the fully masked row)")
        check_close(l, l_want, what="online_softmax_stats(masked rows) -> l (0 on the fully masked row)",
                    atol=0.0, rtol=L_RTOL, diagnose=lambda got, want: (
                        "l is NaN on a row with a masked block: subtract a safe max (0 while the "
                        "max is still -inf)" if not finite_where_expected(got, want) else None))


def test_one_block_at_a_time(seed):
    """The point of an online softmax: the statistics never need more than one block at once."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        rows, n, block = 8, 256, 32
        x = torch.randn(rows, n, generator=g)
        stats = learner("online_softmax").online_softmax_stats
        with Watch() as w:
            stats(x, block)
        expect_between(w.largest, 0, 2 * rows * block,
                       what=f"online_softmax_stats(x {(rows, n)}, block_size={block}): elements of the largest "
                            f"tensor it created (shape {w.largest_shape}, in aten.{w.largest_op})",
                       why=f"it should only ever hold about one block ({rows}, {block}) at a time; read "
                           "x[..., start:start + block_size] in a loop")
