"""Checkpoint `accumulation`: k = 4 micro-batches per rank, 2 ranks, through the learner's DDP:
no all-reduce before the last micro-step, the same weights as one process on the whole batch
(16 sequences) each step, the mean loss returned. One launch of 2 ranks for the whole file."""
import mg_ranks
from engine.multi_gpu.ddp import make_buckets
from grader import ranks
from grader.checks import as_float, as_int, expect_close, fail
from mg_utils import CFG, WORLD, close, first_seed, once, same_params, single_process_sgd, token_batches

# tolerance: summation order only, as in test_allreduce (observed <= 1.2e-7 on weights up to ~1.3
# after 2 SGD steps). A loss not divided by k moves the weights 4x as far: off by 1e-2 or more.
ATOL, RTOL = 1e-6, 1e-4
K, MICRO, STEPS, LR = 4, 2, 2, 0.5
BATCH = WORLD * K * MICRO           # 16 sequences: 8 per rank, 4 micro-batches of 2
CAP = 4096


def _results(seed):
    seed = first_seed("accumulation", seed)

    def compute():
        xs, ys = token_batches(seed, STEPS, BATCH)
        want = single_process_sgd(seed, xs, ys, LR)
        spec = {"cfg": CFG, "seed": seed, "xs": xs, "ys": ys, "lr": LR, "k": K, "cap": CAP}
        got = ranks.run(mg_ranks.accumulation_run, world=WORLD, args=(spec,))
        return xs, ys, want, got
    return once("accumulation", compute)


def test_no_sync_before_the_last_micro_step(seed):
    *_, got = _results(seed)
    buckets = len(make_buckets(list(reversed(list(mg_ranks.make_model(CFG, 0).parameters()))), CAP))
    for rank in range(WORLD):
        for step, record in enumerate(got[rank]["steps"]):
            marks = [as_int(m, what="all-reduce count") for m in record["marks"]]
            if len(marks) != K + 1:
                fail(f"rank {rank}, step {step + 1}: loss_fn was called {len(marks) - 1} times for {K} "
                     "micro-batches: call it once per micro-batch")
            during = [marks[i + 1] - marks[i] for i in range(K)]
            early = [i + 1 for i in range(K - 1) if during[i]]
            if early:
                fail(f"rank {rank}, step {step + 1}: gradients were all-reduced during micro-step "
                     f"{early[0]} of {K} ({during} all-reduces per micro-step): synchronising on every "
                     "micro-step sends k times the bytes for the same result. Run the first k-1 "
                     "backward passes inside model.no_sync()")
            if during[-1] != buckets:   # raw-ok: counts of the grader's own collective log (plain ints)
                fail(f"rank {rank}, step {step + 1}: {during[-1]} all-reduces in the last micro-step, "
                     f"expected {buckets} (one per bucket of your DDP): the last backward must synchronise")


def test_k_micro_batches_equal_one_large_batch(seed):
    xs, ys, want, got = _results(seed)
    for step in range(STEPS):
        for rank in range(WORLD):
            def diagnose(name, g, w, step=step):
                if close(g, _scaled(seed)["params"][step][name], ATOL, RTOL):
                    return (f"the weights moved {K}x as far as one large batch would move them: the loss of "
                            f"each micro-batch is not divided by k={K} (k backward passes ADD their gradients)")
                return None
            same_params(got[rank]["steps"][step]["params"], want["params"][step],
                        f"rank {rank}: weights after step {step + 1} ({K} micro-batches of {MICRO} on each of "
                        f"{WORLD} ranks vs one process on all {BATCH})", atol=ATOL, rtol=RTOL, diagnose=diagnose)


def _scaled(seed):
    seed = first_seed("accumulation", seed)
    xs, ys = token_batches(seed, STEPS, BATCH)
    return once("accumulation-scaled", lambda: single_process_sgd(seed, xs, ys, LR, grad_scale=K))


def test_returns_the_mean_micro_batch_loss(seed):
    *_, got = _results(seed)
    for rank in range(WORLD):
        for step, record in enumerate(got[rank]["steps"]):
            losses = [as_float(v, what="micro-batch loss") for v in record["losses"]]
            mean = sum(losses) / len(losses)
            value = as_float(record["returned"], what=f"accumulation_step(...) on rank {rank}, step {step + 1}")
            if close(value, mean / K, 1e-6, 1e-5):
                fail(f"accumulation_step returned the mean divided by k again ({value:.6g}); return the mean of "
                     "the micro-batch losses as they came from loss_fn")
            # tolerance: the same float32 losses added in another order: 1e-6 relative
            expect_close(value, mean, what=f"accumulation_step(...) on rank {rank}, step {step + 1} "
                         "(the mean of the micro-batch losses)", atol=1e-6, rtol=1e-6)
