"""Checkpoint `train`: minibatches, train_step, and a real training run on the bundled MNIST subset
that must reach the accuracy target on the 1,000 held-out digits."""
import time

import numpy as np

from engine.shared.data import load_mnist
from engine.mnist_mlp.loss import softmax_cross_entropy as ref_loss
from grader.checks import expect, expect_close, expect_type, fail
from grader.seam import learner

TARGET = 0.93   # the reference reaches 94.5-95.7% (mean ~95.3%) over seeds with the default settings


def test_minibatches(rng):
    n, bs = int(rng.integers(50, 120)), int(rng.integers(7, 16))
    seed = int(rng.integers(1 << 30))
    batches = list(learner("train").minibatches(n, bs, np.random.default_rng(seed)))
    what = f"minibatches(n={n}, batch_size={bs}, rng)"
    expect(len(batches) == -(-n // bs), f"{what}: expected {-(-n // bs)} batches (ceil(n / batch_size)), "
           f"got {len(batches)}")
    for k, b in enumerate(batches):
        expect_type(b, np.ndarray, what=f"{what}: batch #{k}")
        expect(np.issubdtype(b.dtype, np.integer), f"{what}: batch #{k} has dtype {b.dtype}; yield integer "
               "index arrays")
    sizes = [len(b) for b in batches]
    expect(sizes[:-1] == [bs] * (len(sizes) - 1) and 0 < sizes[-1] <= bs,
           f"{what}: batch sizes {sizes}; all but the last must be {bs}")
    seen = np.concatenate(batches)
    expect(np.array_equal(np.sort(seen), np.arange(n)),
           f"{what}: the batches must cover every index 0..{n - 1} exactly once per epoch")
    expect(not np.array_equal(seen, np.arange(n)),
           f"{what}: the indices come out in order 0, 1, 2, ...; shuffle them (rng.permutation(n)) so "
           "every batch is a random sample")
    again = np.concatenate(list(learner("train").minibatches(n, bs, np.random.default_rng(seed))))
    expect(np.array_equal(seen, again), f"{what}: two generators with the same seed gave different "
           "orders; draw the permutation from the rng argument, not from np.random")


def test_train_step(rng):
    from engine.mnist_mlp.mlp import MLP as RefMLP
    from engine.mnist_mlp.sgd import SGD as RefSGD
    sizes, n = [12, 9, 4], 6
    x, y = rng.normal(size=(n, sizes[0])), rng.integers(0, sizes[-1], size=n)
    ref = RefMLP(sizes, np.random.default_rng(1))
    ref_opt = RefSGD(ref.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    initial = [p.data.copy() for p in ref.parameters()]
    want_loss = ref_loss(ref.forward(x), y)[0]
    ref.backward(ref_loss(ref.forward(x), y)[1])
    ref_opt.step()

    model = learner("mlp").MLP(sizes, np.random.default_rng(1))
    for p, w in zip(model.parameters(), initial):
        p.data = w.copy()
    opt = learner("sgd").SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    loss = learner("train").train_step(model, opt, x.copy(), y.copy())
    what = f"train_step(MLP({sizes}), SGD(lr=0.1, momentum=0.9, weight_decay=0.01), x {x.shape}, y {y.shape})"
    expect_type(loss, float, what=what + " return value (the loss, a Python float)")
    # tolerance: the same float64 arithmetic, round-off only
    expect_close(loss, want_loss, what=what + ": loss (before the update)", atol=1e-10)
    params = model.parameters()
    if all(np.array_equal(p.data, w) for p, w in zip(params, initial)):
        fail(f"{what}: no parameter changed: after model.backward(dlogits), call opt.step()")
    for k, (p, r) in enumerate(zip(params, ref.parameters())):
        # tolerance: round-off only
        expect_close(p.data, r.data, what=f"{what}: parameter #{k} after the step", atol=1e-10)


def test_reaches_target_accuracy(seed):
    X, y = load_mnist("train", scale=True)
    X_val, y_val = load_mnist("test", scale=True)
    X, X_val = X.astype(np.float64), X_val.astype(np.float64)
    fit = learner("train").fit
    t0 = time.perf_counter()
    model = fit(X, y, seed=seed % 1000)
    seconds = time.perf_counter() - t0
    logits = model.forward(X_val)
    expect_type(logits, np.ndarray, what="model.forward(held-out images)")
    expect(logits.shape == (len(X_val), 10), f"model.forward(held-out images {X_val.shape}) has shape "
           f"{logits.shape}, expected ({len(X_val)}, 10)")
    acc = float((logits.argmax(axis=1) == y_val).mean())
    train_acc = float((model.forward(X).argmax(axis=1) == y).mean())
    if not np.isfinite(logits).all():
        fail("training diverged: the held-out logits contain nan/inf; check the loss gradient's 1/N, "
             "the sign of the update and the learning rate")
    if acc < TARGET:
        gap = TARGET - acc
        cause = ("it barely learned: is opt.step() called every batch, and do the batches change?"
                 if acc < 0.5 else "training accuracy is high but held-out accuracy is low: overfitting?"
                 if train_acc > 0.99 else "close: compare your minibatches and train_step with the brief")
        fail(f"fit() reached {acc:.1%} held-out accuracy in {seconds:.1f} s (training accuracy "
             f"{train_acc:.1%}); the target is {TARGET:.0%} ({gap:.1%} short). {cause}")
