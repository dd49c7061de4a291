"""Checkpoint `fast_decode`: a preallocated KV cache (and its size formula), a lean GPT-2 forward built
once from the tiny GPT-2 (FastGPT2), and greedy generation: the logits of transformers' own forward,
one position of work per new token, nothing per step that could be done once, and 100 new tokens
from the int8 model in well under a second."""
import time

import torch

from fq_check_utils import Watch, close, one_thread, tiny_gpt2, val_tokens
from grader.checks import (as_float, as_int, check_close, expect_between, expect_equal,
                           expect_shape, expect_type, fail)
from grader.seam import learner

# tolerance: the same float32 ops as transformers' GPT-2 in a different grouping (attention over the
# cache, addmm vs matmul); observed ~1e-6 on logits of size ~10. A wrong position or a stale cache
# moves them by 1e-1 or more.
ATOL, RTOL = 1e-4, 1e-4
CFG = dict(n_layer=4, n_head=4, head_dim=32)    # the tiny GPT-2 (assets/models/tiny-gpt2/config.json)


def _prompt_and_rest(seed, t0, steps):
    ids = val_tokens()
    start = int(torch.randint(0, len(ids) - t0 - steps, (1,), generator=torch.Generator().manual_seed(seed)))
    return ids[start:start + t0 + steps][None, :]                  # (1, t0 + steps)


def test_cache_size_and_layout(seed):
    g = torch.Generator().manual_seed(seed)
    L, kvh, hs, T, B = (int(torch.randint(1, 9, (1,), generator=g)) for _ in range(5))
    kv = learner("kvcache")
    got = kv.kv_cache_bytes(L, kvh, hs, T, B, 2)
    want = 2 * L * kvh * hs * T * B * 2
    what = (f"kv_cache_bytes(n_layer={L}, n_kv_head={kvh}, head_dim={hs}, seq_len={T}, batch_size={B}, "
            "bytes_per_value=2)")
    got = as_int(got, what=what)
    if got * 2 == want:
        fail(f"{what}: got {got}, expected {want}: the 2 is for keys AND values")
    expect_equal(got, want, what=f"{what} = 2 · layers · kv heads · head_dim · seq_len · batch · bytes")
    cache = kv.KVCache(L, kvh, hs, 20, batch_size=B)
    for name in ("k", "v"):
        t = getattr(cache, name, None)
        expect_type(t, torch.Tensor, what=f"KVCache({L}, {kvh}, {hs}, max_len=20, batch_size={B}).{name}")
        expect_shape(t, (L, B, kvh, 20, hs), what=f"KVCache(...).{name}: preallocated (n_layer, B, n_kv_head, "
                     "max_len, head_dim)")
        if t.dtype != torch.float32:
            fail(f"KVCache(...).{name}: expected float32 by default, got {t.dtype}")
    expect_equal(as_int(cache.pos, what="KVCache(...).pos"), 0, what="a new KVCache's pos")
    expect_equal(as_int(cache.nbytes(), what="KVCache(...).nbytes()"), 2 * L * kvh * hs * 20 * B * 4,
                 what="KVCache(...).nbytes() (the formula, float32)")


def _positions_frozen_logits(model, seq, t0):
    """transformers' logits if every decoded token were given position 0 (the classic mistake)."""
    pos = torch.cat([torch.arange(t0), torch.zeros(seq.size(1) - t0, dtype=torch.long)])[None, :]
    with torch.no_grad():
        return model(input_ids=seq, position_ids=pos).logits


def _run_cached(fast, kv, seq, t0, max_len):
    """Prefill seq[:, :t0], then feed seq one token at a time; logits of every position."""
    cache = kv.KVCache(CFG["n_layer"], CFG["n_head"], CFG["head_dim"], max_len)
    out = [fast(seq[:, :t0], cache)]
    positions = [as_int(cache.pos, what="cache.pos after the prefill")]
    for t in range(t0, seq.size(1)):
        out.append(fast(seq[:, t:t + 1], cache))
        positions.append(as_int(cache.pos, what=f"cache.pos after feeding the token at position {t}"))
    return out, positions


def test_logits_match_transformers(seed):
    with one_thread():
        hf = tiny_gpt2()
        t0, steps = int(torch.randint(8, 40, (1,), generator=torch.Generator().manual_seed(seed))), 24
        seq = _prompt_and_rest(seed, t0, steps)
        with torch.no_grad():
            want = hf(input_ids=seq).logits                          # (1, t0 + steps, V)
        fast = learner("decode").FastGPT2(tiny_gpt2())
        kv = learner("kvcache")
        out, positions = _run_cached(fast, kv, seq, t0, t0 + steps)
        what = f"FastGPT2(tiny GPT-2)(prompt (1, {t0}), cache)"
        expect_type(out[0], torch.Tensor, what=what)
        expect_shape(out[0], (1, t0, want.size(-1)), what=f"{what}: logits (B, T, V)")

        def untrimmed(got_, i):
            """The logits of step i (0 = prefill) move with the size of the buffer: not trimmed."""
            longer, _ = _run_cached(learner("decode").FastGPT2(tiny_gpt2()), kv, seq[:, :t0 + i], t0,
                                    t0 + steps + 37)
            if not close(longer[i], got_, atol=1e-5, rtol=1e-5):
                return ("the logits change with the cache's max_len (the size of the buffer): the KV "
                        "cache is not trimmed; attention must read only keys/values 0 .. pos + T, not "
                        "the zeros in the unused slots")
            return None
        check_close(out[0], want[:, :t0], what=f"prefill: {what} logits", atol=ATOL, rtol=RTOL,
                    diagnose=lambda got_, want_: untrimmed(got_, 0))
        expect_equal(positions, list(range(t0, t0 + steps + 1)),
                     what="cache.pos after the prefill and after each one-token step (advance by the "
                          "number of tokens fed, once per forward pass)")
        frozen = None
        for i, t in enumerate(range(t0, t0 + steps)):
            got = out[i + 1]
            what = f"decode step {i}: FastGPT2(token at position {t}, cache)"
            expect_type(got, torch.Tensor, what=what)
            expect_shape(got, (1, 1, want.size(-1)), what=f"{what}: logits (B, 1, V)")

            def diagnose(got_, want_, i=i, t=t):
                nonlocal frozen
                frozen = frozen if frozen is not None else _positions_frozen_logits(hf, seq, t0)
                if close(got_, frozen[:, t:t + 1], atol=1e-3, rtol=1e-3):
                    return ("equal to the logits with every new token at position 0: the positions are "
                            "not advanced (the token fed at step t sits at position cache.pos: index the "
                            "position table with cache.pos + arange(T))")
                return untrimmed(got_, i + 1)
            check_close(got, want[:, t:t + 1], what=f"{what} logits", atol=ATOL, rtol=RTOL, diagnose=diagnose)


def test_cache_is_trimmed(seed):
    """The logits may not depend on how big the buffer is (max_len), only on what is in it."""
    with one_thread():
        seq = _prompt_and_rest(seed, 12, 6)
        fast = learner("decode").FastGPT2(tiny_gpt2())
        kv = learner("kvcache")
        tight, _ = _run_cached(fast, kv, seq, 12, 18)
        roomy, _ = _run_cached(fast, kv, seq, 12, 18 + 100)
        for i, (a, b) in enumerate(zip(tight, roomy)):
            check_close(b, a, what=f"{'prefill' if i == 0 else f'decode step {i - 1}'} with max_len=118 against "
                        "max_len=18", atol=1e-5, rtol=1e-5,
                        diagnose=lambda g_, w_: ("the KV cache is not trimmed: attention reads the unused "
                                                 "(zero) slots after pos; use the keys/values [:pos + T] only"))


def test_generate(seed):
    with one_thread():
        hf = tiny_gpt2()
        prompt = _prompt_and_rest(seed, 20, 0)
        n = 40
        dec = learner("decode")
        fast = dec.FastGPT2(tiny_gpt2())
        t_start = time.perf_counter()
        out = dec.generate(fast, prompt.clone(), n)
        wall = time.perf_counter() - t_start
        what = f"generate(FastGPT2(tiny GPT-2), prompt (1, 20), {n})"
        if not (type(out) is tuple and len(out) == 2):
            fail(f"{what}: expected (tokens, stats), got {type(out).__name__}")
        tokens, stats = out
        expect_type(tokens, torch.Tensor, what=f"{what} -> tokens")
        expect_shape(tokens, (1, 20 + n), what=f"{what} -> tokens")
        expect_equal(tokens[:, :20], prompt, what=f"{what} -> tokens[:, :20] (the prompt, unchanged)")
        with torch.no_grad():
            logits = hf(input_ids=tokens).logits[0]                    # scores after each position
        for t in range(20, 20 + n):
            row = logits[t - 1]
            top2 = torch.topk(row, 2).values
            chosen = int(tokens[0, t])
            if chosen != int(row.argmax()) and float(top2[0] - top2[1]) > 1e-4 and float(row[chosen]) < float(top2[0]) - 1e-4:
                fail(f"{what}: the token at position {t} ({chosen}) is not the most likely one after the "
                     f"tokens before it ({int(row.argmax())}): greedy decoding takes the argmax of the last "
                     "position's logits")
        expect_type(stats, dict, what=f"{what} -> stats")
        missing = [key for key in ("ttft_s", "tok_s", "cache_bytes") if key not in stats]
        expect_equal(missing, [], what=f"{what} -> stats: keys missing (it has {sorted(map(str, stats))})")
        ttft = expect_between(as_float(stats["ttft_s"], what="stats['ttft_s']"), 0.0, wall,
                              what=f"{what} -> stats['ttft_s'] (seconds to the first new token)",
                              why=f"the whole call took {wall:.3f} s")
        rate = (n - 1) / max(wall - ttft, 1e-9)
        # margin: the loop after the first token is most of the rest of the call; a factor of 2
        # either way allows for the bookkeeping around it, a wrong definition is off by far more.
        expect_between(as_float(stats["tok_s"], what="stats['tok_s']"), rate / 2, rate * 2,
                       what=f"{what} -> stats['tok_s'] (new tokens per second after the first)",
                       why=f"measured around the call: {n - 1} tokens in about {wall - ttft:.3f} s")
        expect_equal(as_int(stats["cache_bytes"], what="stats['cache_bytes']"),
                     2 * CFG["n_layer"] * CFG["n_head"] * CFG["head_dim"] * (20 + n) * 4,
                     what=f"{what} -> stats['cache_bytes'] (a float32 cache of exactly 20 + {n} positions)")


def _decode_step_watch(fast, kv, seq, t0):
    cache = kv.KVCache(CFG["n_layer"], CFG["n_head"], CFG["head_dim"], seq.size(1))
    fast(seq[:, :t0], cache)
    expect_type(cache.k, torch.Tensor, what="cache.k")
    expect_type(cache.v, torch.Tensor, what="cache.v")
    ptr_k, ptr_v = as_int(cache.k.data_ptr(), what="cache.k.data_ptr()"), as_int(cache.v.data_ptr(), what="cache.v.data_ptr()")
    watches = []
    for t in range(t0, seq.size(1)):
        w = Watch()
        with w:
            fast(seq[:, t:t + 1], cache)
        watches.append(w)
    for name, ptr in (("k", ptr_k), ("v", ptr_v)):
        t = getattr(cache, name)
        expect_type(t, torch.Tensor, what=f"cache.{name}")
        expect_equal(as_int(t.data_ptr(), what=f"cache.{name}.data_ptr()"), ptr,
                     what=f"cache.{name}'s memory after decoding (it must be the same buffer: preallocated "
                          "once and written in place, cache.k[layer, :, :, pos:pos+T] = k, never grown with "
                          "torch.cat)")
    return watches


def test_nothing_per_step_that_could_be_hoisted(seed):
    """One decode step of the float32 model at position ~150: nothing it creates is anywhere near a
    weight matrix (128 × 128 = 16,384 numbers) or a copy of the cache; and the number of tensor ops per
    step does not grow with the position."""
    with one_thread():
        seq = _prompt_and_rest(seed, 140, 16)
        fast = learner("decode").FastGPT2(tiny_gpt2())
        watches = _decode_step_watch(fast, learner("kvcache"), seq, 140)
        biggest = max(watches, key=lambda w: w.largest)
        # the largest honest tensor of a step is the logits (1 × 1,024) or the scores (4 heads × ~160)
        limit = 128 * 128 // 2
        expect_between(biggest.largest, 0, limit - 1,
                       what=f"a decode step (one token, float32 weights): elements of the largest tensor it "
                            f"created (shape {biggest.largest_shape}, in aten.{biggest.largest_op})",
                       why="work that could be done once per model is done per token (transposed or copied "
                           "weights? build them in FastGPT2.__init__) or the cache is copied (torch.cat / "
                           ".contiguous() on the cache; attend over a view of it)")
        first, last = watches[0].ops, watches[-1].ops
        expect_between(last, 0, first * 1.1 + 2,
                       what=f"tensor ops in a decode step at position 155 (at position 140: {first})",
                       why="the work per step grows with the position outside attention (a Python loop "
                           "over positions?)")


def test_one_position_per_new_token(seed):
    """Generation does about the work of one forward pass over the final sequence (the prefix is never
    recomputed): compared with the reference decoder, counted op by op."""
    with one_thread():
        from engine.flash_quant.decode import FastGPT2 as RefFast, generate as ref_generate
        prompt = _prompt_and_rest(seed, 20, 0)
        dec = learner("decode")
        mine, ref = Watch(), Watch()
        fast = dec.FastGPT2(tiny_gpt2())
        with mine:
            dec.generate(fast, prompt.clone(), 30)
        ref_fast = RefFast(tiny_gpt2())
        with ref:
            ref_generate(ref_fast, prompt.clone(), 30)
        ratio = mine.work / max(ref.work, 1)
        # margin: recomputing the prefix at every step costs several times more here (30 steps over
        # 20-50 tokens); a cached decoder written another way stays within ~1.3x of the reference.
        expect_between(ratio, 0.0, 2.0, what="generate(FastGPT2, prompt (1, 20), 30): arithmetic done / a cached "
                       "decoder's", why="is the whole prefix fed again at every step? Prefill once, then feed "
                       "only the new token with the cache")


def test_quantized_decode_matches(seed):
    """FastGPT2 over the int8 model gives the logits of transformers' forward over the same model."""
    with one_thread():
        q = learner("quantized_model").quantize_model(tiny_gpt2(), bits=8)
        seq = _prompt_and_rest(seed, 16, 8)
        with torch.no_grad():
            want = q(input_ids=seq).logits
        out, _ = _run_cached(learner("decode").FastGPT2(q), learner("kvcache"), seq, 16, 24)
        check_close(out[0], want[:, :16], what="prefill of FastGPT2(int8 tiny GPT-2)", atol=ATOL, rtol=RTOL)
        for i in range(8):
            check_close(out[i + 1], want[:, 16 + i:17 + i], what=f"decode step {i} of FastGPT2(int8 tiny GPT-2)",
                        atol=ATOL, rtol=RTOL)


def test_100_tokens_fast(seed):
    """100 new tokens from the int8 model: under a second, or (on a busy machine) within 3x of the
    reference decoder timed in the same process, best of two each."""
    with one_thread():
        from engine.flash_quant.decode import FastGPT2 as RefFast, generate as ref_generate
        from engine.flash_quant.quantized_model import quantize_model as ref_quantize
        prompt = _prompt_and_rest(seed, 20, 0)
        dec = learner("decode")
        mine = dec.FastGPT2(learner("quantized_model").quantize_model(tiny_gpt2(), bits=8))
        ref = RefFast(ref_quantize(tiny_gpt2(), bits=8))
        dec.generate(mine, prompt.clone(), 5)                       # warm up both
        ref_generate(ref, prompt.clone(), 5)
        t_mine = t_ref = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            _, stats = dec.generate(mine, prompt.clone(), 100)
            t_mine = min(t_mine, time.perf_counter() - t)
            t = time.perf_counter()
            ref_generate(ref, prompt.clone(), 100)
            t_ref = min(t_ref, time.perf_counter() - t)
        print(f"100 new tokens, int8 tiny GPT-2: yours {t_mine:.3f} s (TTFT {stats['ttft_s'] * 1e3:.1f} ms, "
              f"{stats['tok_s']:.0f} tok/s), reference {t_ref:.3f} s")
        # margin: the goal is under a second (the reference takes ~0.1-0.3 s on a 2-core CPU); when the
        # machine is busy, 3x the reference measured right now is the fair bound.
        limit = max(1.0, 3 * t_ref)
        expect_between(t_mine, 0.0, limit, what="generate(FastGPT2(int8 tiny GPT-2), prompt (1, 20), 100): seconds",
                       why=f"the reference took {t_ref:.3f} s here; per-step Python work that could be done "
                           "once (in FastGPT2.__init__), or a cache that is copied, is the usual cause")
