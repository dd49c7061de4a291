"""Checkpoint `allreduce`: 2 ranks, each on its half of every batch, average their gradients and
take the same SGD steps as one process on the whole batch (3 steps, a frozen parameter, the tied
head); plus the ring all-reduce's traffic. One launch of 2 ranks for the whole file."""
import torch

import mg_ranks
from grader import ranks
from grader.checks import as_int, expect_equal, expect_shape, expect_type, fail
from grader.seam import learner
from mg_utils import CFG, WORLD, close, first_seed, once, same_params, single_process_sgd, token_batches

# tolerance: float32 gradients here are up to ~0.2 and weights up to ~1.3; the mean of two half-batch
# means and the whole-batch mean differ only by summation order (observed <= 3e-8 on gradients,
# <= 1.2e-7 on weights after 3 SGD steps). Every classic mistake is off by 1e-2 or more.
ATOL, RTOL = 1e-6, 1e-4
STEPS, BATCH, LR = 3, 8, 0.5
FROZEN = ("pos_emb.weight",)


def _setup(seed):
    xs, ys = token_batches(seed, STEPS, BATCH)
    want = single_process_sgd(seed, xs, ys, LR, FROZEN)
    spec = {"cfg": CFG, "seed": seed, "frozen": FROZEN, "xs": xs, "ys": ys, "lr": LR}
    got = ranks.run(mg_ranks.allreduce_run, world=WORLD, args=(spec,))
    return xs, want, got


def _results(seed):
    seed = first_seed("allreduce", seed)
    return once("allreduce", lambda: _setup(seed))


def test_shard_batch_gives_each_rank_its_contiguous_half(seed):
    xs, _, got = _results(seed)
    for rank in range(WORLD):
        for step, x in enumerate(xs):
            shard = got[rank]["shards"][step]
            what = f"shard_batch(batch {tuple(x.shape)}, rank={rank}, world={WORLD})"
            expect_type(shard, torch.Tensor, what=what)
            expect_shape(shard, (BATCH // WORLD, x.shape[1]), what=what)
            if rank == 1 and close(shard, x[::2], 0.0):
                fail(f"{what}: looks like the rows are dealt out in turn (x[rank::world]); the brief's "
                     "convention is contiguous blocks: rank r gets rows [r*B/W, (r+1)*B/W)")
            expect_equal(shard, x[rank * (BATCH // WORLD):(rank + 1) * (BATCH // WORLD)], what=what)


def test_averaged_gradients_equal_the_full_batch_gradient(seed):
    _, want, got = _results(seed)
    for rank in range(WORLD):
        local = got[rank]["local"][0]

        def diagnose(name, g, w, rank=rank, local=local):
            if close(g, w * WORLD, ATOL * WORLD, RTOL):
                return (f"rank {rank}'s gradient is {WORLD}x the full-batch gradient: the gradients are "
                        f"summed, not averaged (all_reduce adds; divide by the world size)")
            if close(g, local[name], ATOL, RTOL):
                return (f"rank {rank} kept its own half-batch gradient: it was never all-reduced "
                        "(every parameter with a .grad needs one)")
            if close(g, w / WORLD, ATOL / WORLD, RTOL):
                return "the gradient is divided by the world size twice (or a mean of means of means)"
            return None
        same_params(got[rank]["grads"][0], want["grads"][0],
                    f"rank {rank}: .grad after average_gradients (step 1)", atol=ATOL, rtol=RTOL,
                    diagnose=diagnose)


def test_frozen_parameter_has_no_gradient(seed):
    _, _, got = _results(seed)
    for rank in range(WORLD):
        g = got[rank]["grads"][0][FROZEN[0]]
        if g is not None:
            fail(f"rank {rank}: {FROZEN[0]} is frozen (requires_grad=False) and had no gradient, but after "
                 "average_gradients it has one: skip parameters whose .grad is None")


def test_ranks_take_the_same_steps_as_one_process(seed):
    _, want, got = _results(seed)
    for step in range(STEPS):
        for rank in range(WORLD):
            same_params(got[rank]["params"][step], want["params"][step],
                        f"rank {rank}: the weights after SGD step {step + 1} (2 ranks on half batches vs "
                        "1 process on the whole batch)", atol=ATOL, rtol=RTOL)


def test_one_all_reduce_per_gradient(seed):
    _, want, got = _results(seed)
    n = sum(1 for g in want["grads"][0].values() if g is not None)
    calls = as_int(got[0]["calls"], what="collective calls in average_gradients")
    if calls == 0:
        fail("average_gradients made no torch.distributed call at all: the ranks never exchanged "
             "their gradients")
    if calls > 2 * n:   # raw-ok: calls is an exact int (as_int above), n a count of reference grads
        fail(f"average_gradients made {calls} collective calls for {n} gradients; one all-reduce per "
             "gradient is enough")


def test_ring_allreduce_traffic():
    fn = learner("allreduce").ring_allreduce_bytes
    cases = [(1 << 20, 1), (1 << 20, 2), (1 << 20, 4), (3 * 8 * 1000, 8), (64, 64)]
    for n_bytes, world in cases:
        got = as_int(fn(n_bytes, world), what=f"ring_allreduce_bytes({n_bytes}, {world})")
        want = 2 * (world - 1) * (n_bytes // world)     # 2(W-1) chunks of n/W bytes each
        if world > 1 and got == 2 * n_bytes:
            fail(f"ring_allreduce_bytes({n_bytes}, {world}) = {got}: each rank sends 2·(W-1) chunks of n/W "
                 "bytes, i.e. 2·(W-1)/W·n, not 2·n (that is only the limit for many ranks)")
        if world > 1 and got == (world - 1) * (n_bytes // world):
            fail(f"ring_allreduce_bytes({n_bytes}, {world}) = {got}: that is the reduce-scatter alone; the "
                 "all-gather that follows sends as much again")
        expect_equal(got, want, what=f"ring_allreduce_bytes({n_bytes}, {world})")
