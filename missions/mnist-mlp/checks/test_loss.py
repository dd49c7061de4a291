"""Checkpoint `loss`: softmax and softmax_cross_entropy against torch float64, finite differences,
and logits large enough to overflow a naive exp."""
import numpy as np
import torch
import torch.nn.functional as F

from engine.mnist_mlp.gradcheck import numerical_gradient
from grader.checks import check_close, expect_close, expect_finite, expect_shape, expect_type, fail, is_close
from grader.seam import learner


def _batch(rng, scale=3.0):
    n, c = int(rng.integers(4, 12)), int(rng.integers(3, 11))
    logits = rng.normal(size=(n, c)) * scale
    labels = rng.integers(0, c, size=n)
    return logits, labels


def _torch_loss(logits, labels):
    t = torch.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(t, torch.tensor(labels))
    loss.backward()
    return loss.item(), t.grad.numpy()


def _unpack(out, what):
    if not (type(out) is tuple and len(out) == 2):
        fail(f"{what}: expected a tuple (loss, dlogits), got {type(out).__name__}")
    return out


def test_softmax(rng):
    logits, _ = _batch(rng)
    want = torch.softmax(torch.tensor(logits), dim=1).numpy()
    got = learner("loss").softmax(logits.copy())
    what = f"softmax(logits of shape {logits.shape})"
    expect_type(got, np.ndarray, what=what)
    # tolerance: float64 exp and division, ~1e-16 relative
    # diagnosis: column sums of probabilities, round-off ~1e-15, so 1e-9 is generous
    check_close(got, want, what=what + " vs torch.softmax", atol=1e-12, diagnose=lambda g, w: (
        "the columns sum to 1, not the rows: normalise over axis=1 (the classes)")
        if g.shape == w.shape and is_close(g.sum(axis=0), np.ones(w.shape[1]), atol=1e-9) else None)


def test_cross_entropy_matches_torch(rng):
    logits, labels = _batch(rng)
    n = len(labels)
    want_loss, want_grad = _torch_loss(logits, labels)
    what = f"softmax_cross_entropy(logits {logits.shape}, labels {labels.shape})"
    loss, grad = _unpack(learner("loss").softmax_cross_entropy(logits.copy(), labels.copy()), what)
    expect_type(loss, float, what=what + " loss")
    expect_type(grad, np.ndarray, what=what + " dlogits")
    expect_shape(grad, logits.shape, what=what + " dlogits")
    # tolerance: float64 log-sum-exp on both sides, ~1e-15; 1e-10 leaves room for summation order
    # diagnosis: N × a loss of order 1, round-off only; 1e-6 separates it from any other slip
    check_close(loss, want_loss, what=what + " loss vs torch F.cross_entropy", atol=1e-10, diagnose=lambda g, w: (
        f"{n} × the expected value: looks like a sum over the batch; take the mean")
        if is_close(g, n * w, atol=1e-6) else None)
    # tolerance: as for the loss; diagnoses (N× or negated): probabilities, round-off only, so 1e-9
    check_close(grad, want_grad, what=what + " dlogits vs torch autograd", atol=1e-10, diagnose=lambda g, w: (
        f"{n} × the expected value: looks like you forgot to divide by the batch size N={n} "
        "((softmax - onehot) / N, since the loss is a mean)") if is_close(g, n * w, atol=1e-9) else (
        "the wrong sign: it is softmax - onehot, not onehot - softmax") if is_close(g, -w, atol=1e-9) else None)


def test_large_logits_do_not_overflow(rng):
    logits, labels = _batch(rng)
    logits = logits * 1000.0           # exp(3000) overflows float64 (max ~ exp(709))
    want_loss, want_grad = _torch_loss(logits, labels)
    want_soft = torch.softmax(torch.tensor(logits), dim=1).numpy()
    mod = learner("loss")
    with np.errstate(all="ignore"):
        soft = mod.softmax(logits.copy())
        loss, grad = _unpack(mod.softmax_cross_entropy(logits.copy(), labels.copy()),
                             "softmax_cross_entropy")
    hint = ("exp overflowed to inf (then inf/inf = nan): subtract the max of each row before exp; "
            "softmax is unchanged by that shift")
    expect_type(soft, np.ndarray, what=f"softmax(logits × 1000, shape {logits.shape})")
    expect_finite(soft, what=f"softmax(logits × 1000, shape {logits.shape}): {hint}")
    expect_type(grad, np.ndarray, what="softmax_cross_entropy(logits × 1000) dlogits")
    expect_finite(grad, what=f"softmax_cross_entropy(logits × 1000) dlogits: {hint}")
    expect_type(loss, float, what="softmax_cross_entropy(logits × 1000) loss")
    expect_finite(loss, what="softmax_cross_entropy(logits × 1000) loss, while dlogits is finite: looks like "
                  "log of a probability that rounded to 0; compute log-probabilities as "
                  "z - log(sum(exp(z))) with z the shifted logits, never log(softmax)")
    # tolerance: the loss is ~1e3 here, so relative 1e-9 (absolute ~1e-6)
    expect_close(loss, want_loss, what="softmax_cross_entropy(logits × 1000) loss", atol=1e-9, rtol=1e-9)
    # tolerance: probabilities in [0, 1] divided by N, float64 round-off only
    expect_close(grad, want_grad, what="softmax_cross_entropy(logits × 1000) dlogits", atol=1e-9)
    # tolerance: probabilities in [0, 1], float64 round-off only
    expect_close(soft, want_soft, what="softmax(logits × 1000)", atol=1e-12)


def test_cross_entropy_matches_finite_differences(rng):
    logits, labels = _batch(rng)
    ce = learner("loss").softmax_cross_entropy
    z = logits.copy()
    want = numerical_gradient(lambda: ce(z, labels)[0], z)
    _, grad = _unpack(ce(logits.copy(), labels.copy()), "softmax_cross_entropy")
    expect_type(grad, np.ndarray, what="softmax_cross_entropy dlogits")
    # tolerance: central differences with h = 1e-5 on a smooth function: error ~1e-10
    expect_close(grad, want, what=f"dlogits vs central finite differences of your own loss, logits "
                 f"{logits.shape}", atol=1e-7)
