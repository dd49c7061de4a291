"""Bonus checkpoint `tensor_parallel`: an MLP split Megatron-style over 2 ranks (column-parallel fc,
row-parallel out) gives the full layers' output, input gradient and weight gradients, with one
all-reduce forward and one backward. One launch of 2 ranks for the whole file."""
import torch
import torch.nn.functional as F

import mg_ranks
from grader import ranks
from grader.checks import as_int, check_close, expect_equal, fail
from mg_utils import WORLD, close, first_seed, once

# tolerance: float32 matmuls over 8-16 inputs, split in two partial sums and added: summation order
# only (observed <= 5e-7 on values ~1). A missing all-reduce or a doubled bias is off by >= 1e-2.
ATOL, RTOL = 1e-5, 1e-5
D, HIDDEN, B, T = 8, 16, 3, 4


def _full(seed, x, w):
    torch.manual_seed(seed)
    fc, out = torch.nn.Linear(D, HIDDEN), torch.nn.Linear(HIDDEN, D)
    x = x.clone().requires_grad_()
    h = fc(x)
    y = out(F.gelu(h))
    (y * w).sum().backward()
    return {"h": h.detach(), "y": y.detach(), "x_grad": x.grad, "fc_w": fc.weight.grad, "fc_b": fc.bias.grad,
            "out_w": out.weight.grad, "out_b": out.bias.grad, "out_bias": out.bias.detach(), "fc": fc, "out": out}


def _partial_x_grad(want, rank, x, w):
    """dL/dx through this rank's half of the hidden features only (what a rank has before the sum)."""
    rows = slice(rank * HIDDEN // WORLD, (rank + 1) * HIDDEN // WORLD)
    x = x.clone().requires_grad_()
    h = F.linear(x, want["fc"].weight[rows], want["fc"].bias[rows])
    part = F.linear(F.gelu(h), want["out"].weight[:, rows])
    (part * w).sum().backward()
    return x.grad


def _results(seed):
    seed = first_seed("tensor_parallel", seed)
    def compute():
        g = torch.Generator().manual_seed(seed)
        x, w = torch.randn(B, T, D, generator=g), torch.randn(B, T, D, generator=g)
        want = _full(seed, x, w)
        spec = {"seed": seed, "d": D, "hidden": HIDDEN, "x": x, "w": w}
        return x, w, want, ranks.run(mg_ranks.tensor_parallel_run, world=WORLD, args=(spec,))
    return once("tensor_parallel", compute)


def _rows(rank):
    return slice(rank * HIDDEN // WORLD, (rank + 1) * HIDDEN // WORLD)


def test_column_parallel_forward_gives_this_ranks_features(seed):
    _, _, want, got = _results(seed)
    for rank in range(WORLD):
        check_close(got[rank]["h"], want["h"][..., _rows(rank)], what=f"rank {rank}: ColumnParallelLinear(fc)(x): "
                    f"hidden features {_rows(rank).start}..{_rows(rank).stop - 1} of fc(x)", atol=ATOL, rtol=RTOL)


def test_row_parallel_forward_gives_the_whole_output(seed):
    _, _, want, got = _results(seed)
    for rank in range(WORLD):
        def diagnose(g, w):
            if close(g, w + (WORLD - 1) * want["out_bias"], ATOL, RTOL):
                return (f"the output carries the bias {WORLD} times: every rank added it before the all-reduce "
                        "summed the partial outputs. Add it once, after the sum")
            if close(g, w - want["out_bias"], ATOL, RTOL):
                return "the output has no bias: add out's bias once, after the all-reduce"
            return ("not the full layer's output: each rank's x_r·W_rᵀ is a partial sum; all-reduce them (and "
                    "add the bias after)")
        check_close(got[rank]["y"], want["y"], what=f"rank {rank}: RowParallelLinear(out)(gelu(h_r))", atol=ATOL,
                    rtol=RTOL, diagnose=diagnose)


def test_backward_gives_full_input_gradient_and_sliced_weight_gradients(seed):
    x, w, want, got = _results(seed)
    for rank in range(WORLD):
        r = got[rank]

        def diagnose(g, w_, rank=rank):
            if close(g, _partial_x_grad(want, rank, x, w), ATOL, RTOL):
                return ("this is the input gradient through this rank's half of the features only: the "
                        "column-parallel layer must all-reduce dL/dx in backward (Megatron's f: identity "
                        "forward, all-reduce backward)")
            return None
        check_close(r["x_grad"], want["x_grad"], what=f"rank {rank}: dL/dx", atol=ATOL, rtol=RTOL, diagnose=diagnose)
        check_close(r["col_w"], want["fc_w"][_rows(rank)], what=f"rank {rank}: ColumnParallelLinear.weight.grad "
                    "(its rows of fc.weight.grad)", atol=ATOL, rtol=RTOL)
        if r["col_b"] is None:
            fail(f"rank {rank}: ColumnParallelLinear has no bias gradient: keep this rank's slice of fc.bias")
        check_close(r["col_b"], want["fc_b"][_rows(rank)], what=f"rank {rank}: ColumnParallelLinear.bias.grad",
                    atol=ATOL, rtol=RTOL)
        check_close(r["row_w"], want["out_w"][:, _rows(rank)], what=f"rank {rank}: RowParallelLinear.weight.grad "
                    "(its columns of out.weight.grad)", atol=ATOL, rtol=RTOL)
        if r["row_b"] is None:
            fail(f"rank {rank}: RowParallelLinear has no bias gradient: it keeps the whole bias of out")
        check_close(r["row_b"], want["out_b"], what=f"rank {rank}: RowParallelLinear.bias.grad", atol=ATOL, rtol=RTOL)


def test_one_all_reduce_forward_and_one_backward(seed):
    *_, got = _results(seed)
    for rank in range(WORLD):
        fwd = as_int(got[rank]["forward_calls"], what="collective calls in forward")
        bwd = as_int(got[rank]["backward_calls"], what="collective calls in backward")
        expect_equal([fwd, bwd], [1, 1], what=f"rank {rank}: collective calls [forward, backward] of the "
                     "column-then-row MLP (one all-reduce of the output forward, one of dL/dx backward)")
