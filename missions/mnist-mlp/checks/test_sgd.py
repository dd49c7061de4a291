"""Checkpoint `sgd`: SGD.step with momentum and weight decay equals torch.optim.SGD, step by step."""
import numpy as np
import torch

from grader.checks import check_close, expect_type, fail, is_close
from grader.seam import learner


def _trajectory(p0, grads, lr, mu, wd):
    """Parameters after each step of v = mu·v + (g + wd·p); p -= lr·v, in plain numpy."""
    ps, vs = [p.copy() for p in p0], [np.zeros_like(p) for p in p0]
    out = []
    for gs in grads:
        for p, v, g in zip(ps, vs, gs):
            v *= mu
            v += g + wd * p
            p -= lr * v
        out.append([p.copy() for p in ps])
    return out


def _run_learner(p0, grads, lr, mu, wd):
    Param = learner("linear").Param
    params = [Param(p.copy()) for p in p0]
    opt = learner("sgd").SGD(params, lr=lr, momentum=mu, weight_decay=wd)
    out = []
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = g.copy()
        opt.step()
        for p, g in zip(params, gs):
            if not is_close(p.grad, g, atol=0.0):   # exact: step() only reads the gradient
                fail("SGD.step changed p.grad; read the gradient, do not modify it (weight decay goes "
                     "into a new array g = p.grad + wd·p)")
        out.append([p.data.copy() for p in params])
    return out


def _problem(rng):
    shapes = [(int(rng.integers(2, 6)), int(rng.integers(2, 6))), (int(rng.integers(2, 6)),)]
    p0 = [rng.normal(size=s) for s in shapes]
    grads = [[rng.normal(size=s) for s in shapes] for _ in range(5)]
    return p0, grads


def _torch_trajectory(p0, grads, lr, mu, wd):
    tp = [torch.tensor(p.copy(), requires_grad=True) for p in p0]
    opt = torch.optim.SGD(tp, lr=lr, momentum=mu, weight_decay=wd)
    out = []
    for gs in grads:
        for p, g in zip(tp, gs):
            p.grad = torch.tensor(g)
        opt.step()
        out.append([p.detach().numpy().copy() for p in tp])
    return out


def _compare(got, want, p0, grads, lr, mu, wd, what):
    for step, (g_step, w_step) in enumerate(zip(got, want), start=1):
        for k, (g, w) in enumerate(zip(g_step, w_step)):
            expect_type(g, np.ndarray, what=f"{what}: param #{k}.data after step {step}")
            # tolerance: a few float64 multiply-adds, round-off ~1e-15
            check_close(g, w, what=f"{what}: param #{k} (shape {w.shape}) after step {step} vs "
                        "torch.optim.SGD", atol=1e-10,
                        diagnose=lambda _g, _w, step=step, g_step=g_step: _slip(p0, grads, lr, mu, wd, step, g_step))


def _slip(p0, grads, lr, mu, wd, step, g_step):
    """The classic mistake whose trajectory the learner's parameters match at `step`, in words."""
    def matches(traj):
        # the check's own 1e-10: a few float64 multiply-adds per step
        return all(is_close(b, a, atol=1e-10) for a, b in zip(traj[step - 1], g_step))
    for alt, cause in ((dict(wd=0.0), "weight decay is missing: add wd·p to the gradient"),
                       (dict(mu=-mu), "momentum applied with the wrong sign: v = mu·v + g"),
                       (dict(lr=-lr), "the step goes uphill: p = p - lr·v"),
                       (dict(wd=-wd), "weight decay has the wrong sign: g + wd·p pulls p toward 0")):
        if (wd or "wd" not in alt) and (mu or "mu" not in alt):
            if matches(_trajectory(p0, grads, **(dict(lr=lr, mu=mu, wd=wd) | alt))):
                return f"step {step}: looks like {cause}"
    if mu and step > 1 and matches(_damped(p0, grads, lr, mu, wd)):
        return ("step {step}: looks like dampened momentum v = mu·v + (1 - mu)·g; torch (and this mission) "
                "uses v = mu·v + g").format(step=step)
    return None


def _damped(p0, grads, lr, mu, wd):
    ps, vs, out = [p.copy() for p in p0], [np.zeros_like(p) for p in p0], []
    for gs in grads:
        for p, v, g in zip(ps, vs, gs):
            v *= mu
            v += (1 - mu) * (g + wd * p)
            p -= lr * v
        out.append([p.copy() for p in ps])
    return out


def test_plain_sgd(rng):
    p0, grads = _problem(rng)
    lr = float(rng.uniform(0.01, 0.5))
    want = _torch_trajectory(p0, grads, lr, 0.0, 0.0)
    got = _run_learner(p0, grads, lr, 0.0, 0.0)
    _compare(got, want, p0, grads, lr, 0.0, 0.0, f"SGD(lr={lr:.3g}) with no momentum, no weight decay")


def test_momentum(rng):
    p0, grads = _problem(rng)
    lr, mu = float(rng.uniform(0.01, 0.5)), float(rng.uniform(0.5, 0.95))
    want = _torch_trajectory(p0, grads, lr, mu, 0.0)
    got = _run_learner(p0, grads, lr, mu, 0.0)
    _compare(got, want, p0, grads, lr, mu, 0.0, f"SGD(lr={lr:.3g}, momentum={mu:.3g})")


def test_momentum_and_weight_decay(rng):
    p0, grads = _problem(rng)
    lr, mu, wd = float(rng.uniform(0.01, 0.5)), float(rng.uniform(0.5, 0.95)), float(rng.uniform(0.01, 0.2))
    want = _torch_trajectory(p0, grads, lr, mu, wd)
    got = _run_learner(p0, grads, lr, mu, wd)
    _compare(got, want, p0, grads, lr, mu, wd,
             f"SGD(lr={lr:.3g}, momentum={mu:.3g}, weight_decay={wd:.3g})")
