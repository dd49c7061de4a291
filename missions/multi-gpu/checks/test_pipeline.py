"""Bonus checkpoint `pipeline`: a 4-layer MLP cut into 2 stages on 2 ranks, 4 micro-batches through
GPipe's schedule (all forwards, then all backwards) gives the unsplit model's gradients on the whole
batch; and the bubble fraction. One launch of 2 ranks for the whole file."""
import torch

import mg_ranks
from grader import ranks
from grader.checks import as_float, check_close, expect_close, expect_equal, fail
from grader.seam import learner
from mg_utils import WORLD, close, first_seed, once

# tolerance: float32, 4 micro-batch gradients added instead of one batch: summation order only
# (observed <= 1e-8 on gradients ~1e-2). A loss not divided by m is 4x too large.
ATOL, RTOL = 1e-6, 1e-5
WIDTHS, CUTS, M, MICRO = [6, 12, 12, 12, 4], [4], 4, 2


def _results(seed):
    seed = first_seed("pipeline", seed)
    def compute():
        g = torch.Generator().manual_seed(seed)
        xs = [torch.randn(MICRO, WIDTHS[0], generator=g) for _ in range(M)]
        ys = [torch.randn(MICRO, WIDTHS[-1], generator=g) for _ in range(M)]
        full = mg_ranks.mlp_stack(seed, WIDTHS)
        loss = torch.nn.functional.mse_loss(full(torch.cat(xs)), torch.cat(ys))
        loss.backward()
        want = {"grads": {n: p.grad for n, p in full.named_parameters()}, "loss": loss.item()}
        spec = {"seed": seed, "widths": WIDTHS, "cuts": CUTS, "xs": xs, "ys": ys,
                "activation_shape": [MICRO, WIDTHS[2]]}
        return want, ranks.run(mg_ranks.pipeline_run, world=WORLD, args=(spec,))
    return once("pipeline", compute)


def test_bubble_fraction():
    fn = learner("pipeline").bubble_fraction
    for p, m in [(1, 1), (2, 4), (4, 4), (4, 16), (8, 1), (3, 30)]:
        got = as_float(fn(p, m), what=f"bubble_fraction({p} stages, {m} micro-batches)")
        want = (p - 1) / (m + p - 1)      # idle slots (p-1) over all slots (m+p-1) of a pass
        if p > 1 and close(got, (p - 1) / m, 1e-12):
            fail(f"bubble_fraction({p}, {m}) = {got:.4g}: that is idle time over BUSY time, (p-1)/m; the fraction "
                 "of the whole pass is (p-1)/(m+p-1)")
        # tolerance: a handful of float operations
        expect_close(got, want, what=f"bubble_fraction({p} stages, {m} micro-batches)", atol=1e-12)


def test_gpipe_gives_the_unsplit_models_gradients(seed):
    want, got = _results(seed)
    for rank in range(WORLD):
        grads = got[rank]["grads"]
        for name, g in grads.items():
            if g is None:
                fail(f"rank {rank}: layer {name} has no gradient after gpipe_step"
                     + (": the input received from the previous stage needs requires_grad_() so its gradient "
                        "can be sent back" if rank == 0 else ""))

            def diagnose(g_, w_):
                if close(g_, w_ * M, ATOL * M, RTOL):
                    return (f"{M}x the whole batch's gradient: each micro-batch loss must be divided by the "
                            f"number of micro-batches (m={M}) so that their gradients add up to the mean")
                return None
            check_close(g, want["grads"][name], what=f"rank {rank}: gradient of layer {name} after one GPipe pass "
                        f"of {M} micro-batches vs the unsplit model on the whole batch", atol=ATOL, rtol=RTOL,
                        diagnose=diagnose)


def test_last_stage_returns_the_mean_loss(seed):
    want, got = _results(seed)
    if got[0]["loss"] is not None:
        fail(f"gpipe_step on rank 0 returned {got[0]['loss']!r}; only the last stage knows the loss: return None "
             "elsewhere")
    loss = as_float(got[WORLD - 1]["loss"], what="gpipe_step on the last rank")
    # tolerance: mean of 4 float32 micro-batch losses vs one mean: 1e-6 relative
    expect_close(loss, want["loss"], what="the loss gpipe_step returns (mean over the whole batch)", atol=1e-6,
                 rtol=1e-6)


def test_schedule_is_all_forwards_then_all_backwards(seed):
    _, got = _results(seed)
    first = [c for c in got[0]["order"] if c in ("send", "recv")]
    last = [c for c in got[WORLD - 1]["order"] if c in ("send", "recv")]
    if first[:M] == ["send", "recv"] * (M // 2):
        fail("rank 0 alternates forward and backward (send, recv, send, ...): that is the 1F1B schedule; GPipe "
             "runs all m forwards, then all m backwards")
    expect_equal(first, ["send"] * M + ["recv"] * M, what="rank 0's point-to-point calls in order (GPipe: "
                 "send m activations forward, then receive m gradients)")
    expect_equal(last, ["recv"] * M + ["send"] * M, what=f"rank {WORLD - 1}'s point-to-point calls in order")
