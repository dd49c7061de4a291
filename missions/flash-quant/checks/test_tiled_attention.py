"""Checkpoint `tiled_attention`: flash_attention_forward(q, k, v, causal, block_q, block_k) -> (o, lse),
the FlashAttention-2 forward in PyTorch: equal to attention, never the T×T scores, hidden tiles skipped."""
import torch

from fq_check_utils import (Watch, attention_by_hand, close, diagnose_attention, one_thread,
                            scores_rowmax, visible_mask)
from grader.checks import check_close, expect_between, expect_equal, expect_shape, expect_type, fail
from grader.seam import learner

# tolerance: float32 attention over <= 300 keys, accumulated tile by tile in a different order from
# the float64 answer; observed differences ~3e-7 on outputs of size ~1, while every classic mistake
# moves them by 1e-2 or more.
ATOL, RTOL = 2e-5, 1e-5


def _qkv(g, b, h, t_q, t_k, d):
    return (torch.randn(b, h, t_q, d, generator=g), torch.randn(b, h, t_k, d, generator=g),
            torch.randn(b, h, t_k, d, generator=g))


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
    check_close(o, want_o, what=f"{what} -> o", atol=ATOL, rtol=RTOL, diagnose=diagnose_attention(q, k, v, causal, bq, bk))
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
        expect_between(w.largest, 0, t * t // 8 - 1,
                       what=f"flash_attention_forward(q (1, 1, {t}, {d}), causal=True, block_q={blk}, "
                            f"block_k={blk}): elements of the largest tensor it created (shape "
                            f"{w.largest_shape}, in aten.{w.largest_op})",
                       why="that is (a big part of) the T×T score matrix, or a T×T mask. Keep only one "
                           f"({blk} × {blk}) tile of scores at a time")


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
        expect_between(ratio, 0.0, 0.75, what="flash_attention_forward(T=256, blocks 32): work of the causal "
                       "call / work of the non-causal one",
                       why="tiles that lie wholly above the diagonal (every key after every query of the "
                           "block) should be skipped, not computed and masked (about 0.56x)")
