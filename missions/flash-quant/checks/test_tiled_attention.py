"""Checkpoint `tiled_attention`: flash_attention_forward(q, k, v, causal, block_q, block_k) -> (o, lse),
the FlashAttention-2 forward in PyTorch: equal to attention, never the T×T scores, hidden tiles skipped."""
import torch

from fq_check_utils import Watch, attention_by_hand, close, one_thread, scores_rowmax, visible_mask
from grader.checks import check_close, expect_equal, expect_shape, expect_type, fail
from grader.seam import learner

# tolerance: float32 attention over <= 300 keys, accumulated tile by tile in a different order from
# the float64 answer; observed differences ~3e-7 on outputs of size ~1, while every classic mistake
# moves them by 1e-2 or more.
ATOL, RTOL = 2e-5, 1e-5


def _qkv(g, b, h, t_q, t_k, d):
    return (torch.randn(b, h, t_q, d, generator=g), torch.randn(b, h, t_k, d, generator=g),
            torch.randn(b, h, t_k, d, generator=g))


def _block_suspects(t_q, t_k, bq, bk):
    """Causal masks that are off by one block, as tiled code gets them wrong (True = visible)."""
    i = torch.arange(t_q)[:, None] + (t_k - t_q)          # query positions
    j = torch.arange(t_k)[None, :]
    qb_start = (torch.arange(t_q)[:, None] // bq) * bq + (t_k - t_q)   # first position of i's block
    qb_end = qb_start + bq                                  # one past its last position
    return [
        ((j < qb_start), "the key tiles stop one block early (the tile on the diagonal is skipped)"),
        ((j <= i) | ((j >= qb_end) & (j < qb_end + bk)),
         "one key tile past the diagonal is visited without a mask"),
        ((j < qb_end), "the tile on the diagonal is not masked inside (each query sees its whole block)"),
        ((j <= i + bk), "the mask is shifted one block to the right"),
        ((j <= i - bk), "the mask is shifted one block to the left"),
    ]


def _unrescaled_output(q, k, v, causal, bq, bk):
    """The classic tiled mistake, by hand (float64): l is rescaled when the max moves, acc is not."""
    t_q, t_k, d = q.size(-2), k.size(-2), q.size(-1)
    mask = visible_mask(t_q, t_k, causal)
    s_all = q.double() @ k.double().transpose(-2, -1) / d ** 0.5
    s_all = s_all.masked_fill(~mask, float("-inf"))
    out = torch.zeros(q.shape, dtype=torch.float64)
    for qs in range(0, t_q, bq):
        m = torch.full(q[..., qs:qs + bq, 0].shape, float("-inf"), dtype=torch.float64)
        l = torch.zeros_like(m)
        acc = torch.zeros(q[..., qs:qs + bq, :].shape, dtype=torch.float64)
        for ks in range(0, t_k, bk):
            s = s_all[..., qs:qs + bq, ks:ks + bk]
            m_new = torch.maximum(m, s.amax(-1))
            shift = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
            p = torch.exp(s - shift[..., None])
            l = l * torch.exp(m - shift) + p.sum(-1)
            acc = acc + p @ v[..., ks:ks + bk, :].double()
            m = m_new
        out[..., qs:qs + bq, :] = acc / torch.where(l == 0, torch.ones_like(l), l)[..., None]
    return out.to(q.dtype)


def _diagnose_o(q, k, v, causal, bq, bk):
    def diagnose(got, want):
        t_q, t_k = q.size(-2), k.size(-2)
        if close(got, _unrescaled_output(q, k, v, causal, bq, bk), atol=1e-4, rtol=1e-4):
            return ("looks like the running output is not rescaled when the max changes: acc must be "
                    "multiplied by exp(m_old - m_new) exactly like l")
        if causal:
            for mask, why in _block_suspects(t_q, t_k, bq, bk):
                if close(got, attention_by_hand(q, k, v, mask)[0], atol=1e-4, rtol=1e-4):
                    return f"looks like the causal mask is off by one block: {why}"
            if close(got, attention_by_hand(q, k, v, None)[0], atol=1e-4, rtol=1e-4):
                return "looks like the causal mask is missing: every query sees every key"
            ones = torch.ones(t_q, t_k, dtype=torch.bool)
            if t_q != t_k and close(got, attention_by_hand(q, k, v, ones.tril())[0], atol=1e-4, rtol=1e-4):
                return ("with fewer queries than keys, query i sits at position T_k - T_q + i: line the "
                        "mask up with the END of the keys")
        elif close(got, attention_by_hand(q, k, v, visible_mask(q.size(-2), k.size(-2), True))[0],
                   atol=1e-4, rtol=1e-4):
            return "with causal=False every query sees every key; looks like the mask is applied anyway"
        return None
    return diagnose


def _check(mod, q, k, v, causal, bq, bk):
    what = (f"flash_attention_forward(q {tuple(q.shape)}, k {tuple(k.shape)}, v, causal={causal}, "
            f"block_q={bq}, block_k={bk})")
    want_o, want_lse = attention_by_hand(q, k, v, visible_mask(q.size(-2), k.size(-2), causal))
    out = mod.flash_attention_forward(q.clone(), k.clone(), v.clone(), causal=causal, block_q=bq, block_k=bk)
    if not (type(out) is tuple and len(out) == 2):
        fail(f"{what}: expected a tuple (o, lse), got {type(out).__name__}")
    o, lse = out
    expect_type(o, torch.Tensor, what=f"{what} -> o")
    expect_shape(o, tuple(q.shape), what=f"{what} -> o")
    check_close(o, want_o, what=f"{what} -> o", atol=ATOL, rtol=RTOL, diagnose=_diagnose_o(q, k, v, causal, bq, bk))
    expect_type(lse, torch.Tensor, what=f"{what} -> lse")
    expect_shape(lse, tuple(q.shape[:-1]), what=f"{what} -> lse")
    if lse.dtype != want_lse.dtype:
        fail(f"{what} -> lse: expected dtype {want_lse.dtype}, got {lse.dtype}")
    expect_equal(torch.isneginf(lse), torch.isneginf(want_lse),
                 what=f"{what} -> lse is -inf exactly for the queries that see no key")
    finite = torch.isfinite(want_lse)

    def diagnose(got, want):
        rowmax = scores_rowmax(q, k, visible_mask(q.size(-2), k.size(-2), causal))[finite]
        if close(got, want - rowmax, atol=1e-4, rtol=1e-4):
            return ("lse equals log(l) without the running max: looks like the logsumexp is missing "
                    "the max (lse = m + log(l), since l was summed as exp(s - m))")
        return None
    check_close(lse[finite], want_lse[finite], what=f"{what} -> lse (log Σ exp(scores))", atol=ATOL,
                rtol=RTOL, diagnose=diagnose)


def test_not_causal(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        t = int(torch.randint(40, 100, (1,), generator=g))
        mod = learner("tiled_attention")
        for (b, h, t_q, t_k, d), bq, bk in [((2, 3, 64, 64, 16), 16, 16), ((1, 2, t, t, 32), 32, 16),
                                             ((2, 2, 37, 53, 8), 16, 32), ((1, 1, 5, 5, 4), 64, 64)]:
            _check(mod, *_qkv(g, b, h, t_q, t_k, d), False, bq, bk)


def test_causal(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        t = int(torch.randint(40, 100, (1,), generator=g))
        mod = learner("tiled_attention")
        for (b, h, t_q, t_k, d), bq, bk in [((2, 3, 64, 64, 16), 16, 16), ((1, 2, 96, 96, 8), 32, 32),
                                             ((1, 2, t, t, 32), 32, 16), ((2, 2, 37, 37, 8), 16, 8)]:
            _check(mod, *_qkv(g, b, h, t_q, t_k, d), True, bq, bk)


def test_causal_queries_and_keys_differ(seed):
    """T_q < T_k (a KV cache's queries: the last T_q positions) and T_q > T_k (the first queries see
    no key at all: o = 0, lse = -inf)."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        mod = learner("tiled_attention")
        for (b, h, t_q, t_k, d), bq, bk in [((2, 2, 1, 40, 16), 16, 16), ((1, 3, 20, 50, 8), 16, 16),
                                             ((2, 2, 50, 20, 8), 16, 16)]:
            _check(mod, *_qkv(g, b, h, t_q, t_k, d), True, bq, bk)


def test_future_cannot_leak(seed):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        q, k, v = _qkv(g, 1, 2, 48, 48, 16)
        i = int(torch.randint(3, 44, (1,), generator=g))
        k2, v2 = k.clone(), v.clone()
        k2[..., i + 1:, :] += 3 * torch.randn(k2[..., i + 1:, :].shape, generator=g)
        v2[..., i + 1:, :] += 3 * torch.randn(v2[..., i + 1:, :].shape, generator=g)
        fwd = learner("tiled_attention").flash_attention_forward
        a = fwd(q.clone(), k, v, causal=True, block_q=16, block_k=16)[0]
        b = fwd(q.clone(), k2, v2, causal=True, block_q=16, block_k=16)[0]
        expect_type(a, torch.Tensor, what="flash_attention_forward(...)[0]")
        if not close(a[..., :i + 1, :], b[..., :i + 1, :], atol=1e-6):
            first = next(t for t in range(i + 1) if not close(a[..., t, :], b[..., t, :], atol=1e-6))
            fail(f"flash_attention_forward(causal=True, block 16): changing keys/values after position "
                 f"{i} changed the output at position {first}: the causal mask lets the future in"
                 + (" (off by one block?)" if i - first >= 1 else ""))


def test_never_builds_the_score_matrix(seed):
    """T = 4096: the full score matrix would be 4096 × 4096; a tile is 128 × 128."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        t, d, blk = 4096, 16, 128
        q, k, v = _qkv(g, 1, 1, t, t, d)
        fwd = learner("tiled_attention").flash_attention_forward
        with Watch() as w:
            fwd(q, k, v, causal=True, block_q=blk, block_k=blk)
        # an eighth of T×T: far above any tile (even one block of queries against all keys, 128 × 4096)
        if w.largest >= t * t // 8:
            fail(f"flash_attention_forward(q (1, 1, {t}, {d}), causal=True, block_q={blk}, block_k={blk}) "
                 f"created a tensor of shape {w.largest_shape} (in aten.{w.largest_op}): that is (a big "
                 f"part of) the T×T score matrix. Keep only one ({blk} × {blk}) tile of scores at a time.")


def test_skips_hidden_tiles(seed):
    """Causal attention over T = 256 in 32 × 32 tiles: 28 of the 64 tiles lie wholly above the
    diagonal; a tiled causal forward never computes them, so it does about half the work."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        q, k, v = _qkv(g, 1, 2, 256, 256, 16)
        fwd = learner("tiled_attention").flash_attention_forward
        with Watch() as full:
            fwd(q, k, v, causal=False, block_q=32, block_k=32)
        with Watch() as causal:
            fwd(q, k, v, causal=True, block_q=32, block_k=32)
        ratio = causal.work / max(full.work, 1)
        # margin: skipping gives 36/64 = 0.56 of the tiles (plus the masks on the diagonal); computing
        # every tile gives >= 1.0. 0.75 separates the two whatever the coding style.
        if ratio > 0.75:
            fail(f"flash_attention_forward(T=256, blocks 32): the causal call did {ratio:.2f}x the work of "
                 "the non-causal one; tiles that lie wholly above the diagonal (every key after every "
                 "query of the block) should be skipped, not computed and masked (about 0.56x)")
